"""`executor --symbol BTC [--market perp|spot] [--once] [--until T] [--reset] [--status] [--json]`: the paper grid.

Each pass applies every closed bar since the last one applied, one transaction a bar. Without --once it loops
(`--interval` seconds between passes) until SIGTERM / SIGINT, which stop it cleanly between bars.
"""

from __future__ import annotations

import signal
import time

from django.db import close_old_connections, connection

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.configs import config_params, config_resolve
from grid_trading.services.executor import (
    executor_lock,
    executor_reset,
    executor_run_once,
    executor_status,
)
from grid_trading.services.fetch import clock_now_ms
from grid_trading.services.symbols import symbol_registry
from gridcore.timeframes import DAY_MS, interval_ms, parse_utc


class Command(GridCommand):
    help = "Run the paper grid executor over every closed bar since the last one it applied."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--market", default="perp", choices=["perp", "spot"])
        parser.add_argument("--config", help="NAME or NAME@VERSION (default: the 'default' config)")
        parser.add_argument("--once", action="store_true", help="one pass, then exit (cron use)")
        parser.add_argument("--until", help="stop after the bar closing at this UTC time (replays)")
        parser.add_argument("--start", help="first bar (open time) of a fresh strategy; default: its first signal")
        parser.add_argument("--reset", action="store_true", help="leave HALTED (after the kill switch)")
        parser.add_argument("--status", action="store_true", help="print the state and exit")
        parser.add_argument("--interval", type=float, default=20.0, help="seconds between passes in loop mode")
        parser.add_argument("--fetch", action="store_true",
                            help="live: download new bars (mark prices, funding) first; now = the exchange's clock")
        super().add_arguments(parser)

    def handle(self, *args, **o):
        symbol = symbol_registry().normalize(o["symbol"])
        market = o["market"]
        config = config_resolve(o["config"])
        key = dict(symbol=symbol, market=market, config=config)
        if o["status"]:
            res = executor_status(**key)
            self.emit(o, res, text=_text(res))
            return
        until_ms = parse_utc(o["until"]) if o["until"] else None
        start_ms = parse_utc(o["start"]) if o["start"] else None
        stop = {"flag": False}

        def on_signal(signum, frame):
            stop["flag"] = True
            self.progress(f"signal {signum}: stopping after the current bar")

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            with executor_lock(**key):
                if o["reset"]:
                    res = executor_reset(**key)
                    self.emit(o, res, text=f"reset: {_text(res)}")
                    return
                while True:
                    if not connection.in_atomic_block:  # (tests run commands inside a transaction)
                        close_old_connections()
                    now_ms = self._fetch(symbol, market, config) if o["fetch"] else clock_now_ms(exchange=False)
                    res = executor_run_once(**key, until_ms=until_ms, now_ms=now_ms,
                                            start_ms=start_ms, progress=self.progress,
                                            should_stop=lambda: stop["flag"])
                    if o["once"] or stop["flag"] or (until_ms is not None and _reached(res, until_ms)):
                        break
                    self.progress(f"{symbol} {market}: {res['bars_processed']} bars, {res['fills']} fills; "
                                  f"state {res['status']['state']}, last bar {res['status']['last_bar']}")
                    deadline = time.monotonic() + o["interval"]
                    while not stop["flag"] and time.monotonic() < deadline:
                        time.sleep(min(0.5, o["interval"]))
                    if stop["flag"]:
                        break
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        self.emit(o, res, text=_run_text(res))

    def _fetch(self, symbol, market, config) -> int:
        from grid_trading.services.fetch import klines_fetch_recent

        params = config_params(config)
        now_ms = clock_now_ms(exchange=True, market=market)
        interval = params.execution.intervals[0]  # live: the finest (1m by default)
        klines_fetch_recent(symbol=symbol, market=market, interval=interval, now_ms=now_ms,
                            lookback_ms=2 * DAY_MS)
        return now_ms


def _reached(res: dict, until_ms: int) -> bool:
    """The bar closing at --until has been applied."""
    st = res["status"]
    return st["last_bar"] is not None and parse_utc(st["last_bar"]) + interval_ms(st["interval"]) >= until_ms


def _text(r: dict) -> str:
    if r["state"] is None:
        return f"{r['symbol']} {r['market']} ({r['config']}): no strategy state yet"
    lines = [f"{r['symbol']} {r['market']} ({r['config']}) {r['state']} at {r['last_bar']} ({r['interval']} bars)",
             f"  position {r['position']} @ {r['entry_price']}, equity {r['equity']}, cash {r['cash']}, "
             f"peak {r['peak_equity']}",
             f"  realised grid profit {r['realised_grid_profit']}, unrealised {r['unrealised_pnl']}, fees "
             f"{r['fees']}, funding {r['funding']}",
             f"  open orders: {len(r['open_orders'])}, fills: {r['fills']}"]
    lines += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def _run_text(r: dict) -> str:
    head = (f"{r['bars_processed']} bars from {r['first_bar']}: {r['orders_placed']} orders placed, {r['fills']} "
            f"fills, signals consumed {r['signals_consumed']} / rejected {r['signals_rejected']} / expired "
            f"{r['signals_expired']}" + (" (stopped by signal)" if r["stopped"] else ""))
    return head + "\n" + _text(r["status"])
