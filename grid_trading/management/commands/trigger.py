"""`trigger --symbol BTC [--market perp|spot] [--at T] [--json]`: VSA confirmation at the last closed 15m bar."""

from __future__ import annotations

from django.core.management.base import CommandError

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.configs import config_params, config_resolve
from grid_trading.services.fetch import clock_now_ms
from grid_trading.services.symbols import symbol_registry
from grid_trading.services.trigger import last_trigger_time, signal_trigger
from gridcore.strategy.trigger import TRIGGER_WINDOW_BARS
from gridcore.timeframes import interval_ms, ms_to_iso, parse_utc


class Command(GridCommand):
    help = "Evaluate the last closed 15m bar against the active zone; write a TradingSignal when a grid may start."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--market", default="perp", choices=["perp", "spot"])
        parser.add_argument("--at", help="evaluate the 15m bar closing at this UTC time, e.g. 2020-03-12T12:15Z")
        parser.add_argument("--config", help="NAME or NAME@VERSION (default: the 'default' config)")
        parser.add_argument("--fetch", action="store_true",
                            help="download the bars the evaluation reads from Binance first (live cron use)")
        super().add_arguments(parser)

    def handle(self, *args, **o):
        symbol = symbol_registry().normalize(o["symbol"])
        config = config_resolve(o["config"])
        params = config_params(config)
        if o["at"]:
            at_ms = parse_utc(o["at"])
            step = params.timeframes.trigger_interval
            if at_ms % interval_ms(step):
                raise CommandError(f"--at: expected a {step} close such as "
                                   f"{ms_to_iso(last_trigger_time(at_ms, params))}, was {o['at']}")
        else:
            now_ms = clock_now_ms(exchange=o["fetch"], market=o["market"])
            at_ms = last_trigger_time(now_ms, params)
        if o["fetch"]:
            from grid_trading.services.fetch import klines_fetch_window

            klines_fetch_window(symbol=symbol, market=o["market"], interval=params.timeframes.trigger_interval,
                                at_ms=at_ms, bars=TRIGGER_WINDOW_BARS + 4, progress=self.progress)
        res = signal_trigger(symbol=symbol, market=o["market"], at_ms=at_ms, config=config)
        self.emit(o, res, text=_text(res))



def _text(r: dict) -> str:
    if r["zone_id"] is None:
        return f"{r['symbol']} {r['market']} @ {r['bar_time']}: {r['reasons'][0]}"
    head = (f"{r['symbol']} {r['market']} @ {r['bar_time']} zone {r['zone_id']}: "
            + (f"START {r['direction']} (signal {r['signal_id']})" if r["start"] else "no start"))
    lines = [head, f"  VSA signals on this bar: {', '.join(r['signals']) or 'none'}"]
    if r["setup"]:
        lines.append(f"  setup: {', '.join(r['setup'])}")
    lines += [f"  - {x}" for x in r["reasons"]]
    return "\n".join(lines)
