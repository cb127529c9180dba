"""`klines import | fetch | check | rules`: get market data into the store and look at it."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from grid_trading.management.commands._base import GridCommand
from grid_trading.services import klines as svc
from grid_trading.services.symbols import symbol_registry
from gridcore.kline_files import MARKETS
from gridcore.timeframes import INTERVAL_MS, parse_utc


class Command(GridCommand):
    help = "Import, fetch and check klines and funding rates."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="import kline / funding files (all-or-nothing per file)")
        imp.add_argument("paths", nargs="+", type=Path)
        imp.add_argument("--symbol", help="override the symbol from the file name")
        imp.add_argument("--market", choices=MARKETS, help="needed for Binance public-data files")
        imp.add_argument("--interval", choices=list(INTERVAL_MS), help="override the interval from the file name")
        fetch = sub.add_parser("fetch", help="download klines, funding rates and mark prices from Binance")
        fetch.add_argument("--symbol", required=True)
        fetch.add_argument("--interval", default="1m", choices=list(INTERVAL_MS))
        fetch.add_argument("--market", default="perp", choices=MARKETS)
        fetch.add_argument("--start", required=True, help="UTC date or time, e.g. 2020-03-01")
        fetch.add_argument("--end", required=True, help="UTC date or time (exclusive)")
        fetch.add_argument("--no-funding", action="store_true", help="skip funding rates and mark prices")
        check = sub.add_parser("check", help="rows, gaps, OHLC violations and duplicates of a stored series")
        check.add_argument("--symbol", required=True)
        check.add_argument("--interval", required=True, choices=list(INTERVAL_MS))
        check.add_argument("--market", default="perp", choices=MARKETS)
        check.add_argument("--start", help="only bars from this UTC time")
        check.add_argument("--end", help="only bars before this UTC time")
        rules = sub.add_parser("rules", help="symbol rules (tick, step, min notional, funding interval)")
        rules.add_argument("--symbol")
        rules.add_argument("--refresh", action="store_true", help="fetch exchangeInfo and update the cache")
        for p in (imp, fetch, check, rules):
            super().add_arguments(p)

    def handle(self, *args, **o):
        return getattr(self, "handle_" + o["action"])(o)

    def handle_import(self, o):
        results = []
        symbol = symbol_registry().normalize(o["symbol"]) if o["symbol"] else None
        for i, path in enumerate(o["paths"], 1):
            if not path.exists():
                raise CommandError(f"{path}: no such file")
            r = svc.klines_import_file(path=path, symbol=symbol, market=o["market"], interval=o["interval"])
            results.append(r.as_dict())
            self.progress(f"[{i}/{len(o['paths'])}] {path.name}: {r.rows} rows {r.first} .. {r.last}, "
                          f"{r.inserted} new, {r.updated} updated, {r.unchanged} unchanged")
        self.emit(o, {"files": results}, text=f"imported {len(results)} file(s)")

    def handle_fetch(self, o):
        from grid_trading.services.fetch import klines_fetch

        symbol = symbol_registry().normalize(o["symbol"])
        report = klines_fetch(symbol=symbol, market=o["market"], interval=o["interval"],
                              start_ms=parse_utc(o["start"]), end_ms=parse_utc(o["end"]),
                              with_funding=not o["no_funding"], progress=self.progress)
        self.emit(o, report, text="\n".join(f"{k}: {v}" for k, v in report.items()))

    def handle_check(self, o):
        symbol = symbol_registry().normalize(o["symbol"])
        res = svc.klines_check(symbol=symbol, market=o["market"], interval=o["interval"],
                               start_ms=parse_utc(o["start"]) if o["start"] else None,
                               end_ms=parse_utc(o["end"]) if o["end"] else None)
        text = "\n".join(f"{k:>18}: {v}" for k, v in res.items())
        self.emit(o, res, text=text)

    def handle_rules(self, o):
        from grid_trading.services.symbols import symbol_rules_refresh

        if o["refresh"]:
            symbol_rules_refresh()
        reg = symbol_registry()
        names = [reg.normalize(o["symbol"])] if o["symbol"] else reg.symbols
        rows = []
        for name in names:
            r = reg.rules(name)
            rows.append({"symbol": r.symbol, "tick_size": str(r.tick_size), "step_size": str(r.step_size),
                         "min_qty": str(r.min_qty), "min_notional": str(r.min_notional),
                         "funding_interval_hours": r.funding_interval_hours, "source": r.source})
        text = "\n".join(f"{r['symbol']:<10} tick {r['tick_size']:<8} step {r['step_size']:<6} "
                         f"min notional {r['min_notional']:<5} funding every {r['funding_interval_hours']}h"
                         for r in rows) + f"\n(rules from {reg.source})"
        self.emit(o, {"source": reg.source, "symbols": rows}, text=text)
