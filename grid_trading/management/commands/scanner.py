"""`scanner --symbol BTC [--market perp|spot] [--at T] [--json] [--plot FILE]`: one scan -> one GridZone."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.configs import config_params, config_resolve
from grid_trading.services.fetch import clock_now_ms
from grid_trading.services.scanner import last_scan_time, zone_as_dict, zone_expire_stale, zone_scan
from grid_trading.services.symbols import symbol_registry
from gridcore.strategy.scanner import TREND_WINDOW_BARS
from gridcore.timeframes import interval_ms, ms_to_iso, parse_utc


class Command(GridCommand):
    help = "Scan one symbol at the last (or a given) 4h close and write its GridZone."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--market", default="perp", choices=["perp", "spot"])
        parser.add_argument("--at", help="scan as of this past 4h close (UTC), e.g. 2020-03-10T00:00Z")
        parser.add_argument("--config", help="NAME or NAME@VERSION (default: the 'default' config)")
        parser.add_argument("--plot", type=Path, help="draw the zone to FILE.png or FILE.html")
        parser.add_argument("--fetch", action="store_true",
                            help="download the bars the scan reads from Binance first (live cron use)")
        super().add_arguments(parser)

    def handle(self, *args, **o):
        symbol = symbol_registry().normalize(o["symbol"])
        config = config_resolve(o["config"])
        params = config_params(config)
        now_ms = clock_now_ms(exchange=o["fetch"], market=o["market"])
        if o["at"]:
            at_ms = parse_utc(o["at"])
            if at_ms % interval_ms(params.timeframes.scan_interval):
                raise CommandError(f"--at: expected a {params.timeframes.scan_interval} close such as "
                                   f"{ms_to_iso(last_scan_time(at_ms, params))}, was {o['at']}")
        else:
            at_ms = last_scan_time(now_ms, params)
            zone_expire_stale(symbol=symbol, market=o["market"], now_ms=now_ms)
        if o["fetch"]:
            from grid_trading.services.fetch import klines_fetch_window

            vp = params.volume_profile
            klines_fetch_window(symbol=symbol, market=o["market"], interval=vp.interval, at_ms=at_ms,
                                bars=vp.lookback_bars + 4 * TREND_WINDOW_BARS + 8, progress=self.progress)
        outcome = zone_scan(symbol=symbol, market=o["market"], at_ms=at_ms, config=config)
        zone = zone_as_dict(outcome.zone)
        zone["created"] = outcome.created
        if o["plot"]:
            self._plot(o["plot"], zone, symbol, o["market"], at_ms, params)
            zone["plot"] = str(o["plot"])
        self.emit(o, zone, text=_text(zone))

    def _plot(self, path, zone, symbol, market, at_ms, params):
        from grid_trading.services.klines import bars_for_analysis
        from gridcore.reporting.zone_plot import save_zone_plot, zone_figure

        vp = params.volume_profile
        span = (vp.lookback_bars + 200) * interval_ms(vp.interval)
        profile = bars_for_analysis(symbol=symbol, market=market, interval=vp.interval, start_ms=at_ms - span,
                                    end_ms=at_ms)
        trend = bars_for_analysis(symbol=symbol, market=market, interval=params.timeframes.analysis_interval,
                                  start_ms=at_ms - span, end_ms=at_ms)
        tick = float(symbol_registry().rules(symbol).tick_size)
        fig = zone_figure(dict(zone, bar_ms=at_ms), profile, trend, tick=tick, rows=vp.rows,
                          lookback=vp.lookback_bars)
        save_zone_plot(path, fig)
        self.progress(f"plot written to {path}")



def _text(z: dict) -> str:
    lv = lambda k: "-" if z[k] is None else f"{z[k]:,.1f}"  # noqa: E731
    head = f"zone {z['id']} {z['symbol']} {z['market']} @ {z['bar_time']} [{z['status']}]" + (
        "" if z["created"] else " (already scanned)")
    box = f"  S2 {lv('s2')} < S1 {lv('s1')} < price {z['price']:,.2f} < R1 {lv('r1')} < R2 {lv('r2')}"
    ctx = (f"  POC {lv('poc')}  VA {lv('val')}..{lv('vah')}  MA25 {lv('ma25')}  ATR {lv('atr')}  "
           f"bias {z['bias']:+d}  squeeze {z['squeeze_state']}")
    verdict = "  valid box" if z["valid"] else "  INVALID: " + "; ".join(z["reasons"])
    return "\n".join([head, box, ctx, verdict, f"  config {z['config']} ({z['config_hash'][:12]})"])
