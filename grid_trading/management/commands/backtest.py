"""`backtest --symbol BTCUSDT --start 2020-03-01 --end 2020-04-01 [--market perp|spot] [--config NAME@VERSION]
[--exec-interval auto|1m|5m|1h] [--fill-policy conservative|optimistic] [--json [FILE]] [--trades FILE.csv]
[--equity FILE.csv] [--report FILE.html]`: replay scanner, trigger and executor over history; record a BacktestRun."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from django.core.management.base import CommandError

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.backtest import backtest_run, write_equity_csv, write_trade_log
from grid_trading.services.configs import config_resolve
from grid_trading.services.symbols import symbol_registry
from gridcore.runtime import tune_collector_for_batch
from gridcore.timeframes import parse_utc

ROWS = [("total return", "total_return", "pct"), ("annualised return", "annualised_return", "pct"),
        ("final equity", "final_equity_exact", "money"), ("realised grid profit", "realised_grid_profit", "money"),
        ("realised other (trend, stops, closes)", "realised_other", "money"),
        ("unrealised P&L", "unrealised_pnl", "money"), ("fees", "fees", "money"),
        ("funding (+ received / - paid)", "funding", "money"), ("slippage cost", "slippage_cost", "money"),
        ("max drawdown (closes)", "max_drawdown", "pct"), ("max drawdown (intrabar)", "max_drawdown_intrabar", "pct"),
        ("Sharpe (daily, x sqrt 365)", "sharpe", "ratio"), ("Sortino", "sortino", "ratio"),
        ("Calmar", "calmar", "ratio"), ("time in market", "time_in_market", "pct")]


def _fmt(v, kind: str) -> str:
    if v is None:
        return "n/a"
    if kind == "pct":
        return f"{float(v) * 100:.2f} %"
    if kind == "money":
        return f"{float(v):,.2f}"
    if kind == "ratio":
        return f"{float(v):.2f}"
    return str(v)


def summary(doc: dict) -> str:
    head = doc["headline_policy"]
    other = "optimistic" if head == "headline" else "headline"
    name = {"headline": "conservative", "optimistic": "optimistic"}
    a, b = doc["results"][head], doc["results"][other]
    lines = [f"backtest {doc['symbol']} {doc['market']} {doc['start']} .. {doc['end']}, execution on "
             f"{doc['exec_interval']} bars, config {doc['config']} ({doc['config_hash'][:12]}), code "
             f"{doc['code_version']}, data {doc['data_checksum'][:12]}" + (f", run {doc['run_id']}" if
                                                                           doc.get("run_id") else ""),
             f"{'':40} {name[head] + ' (headline)':>26} {name[other]:>16}"]
    if doc.get("data_label"):
        lines.insert(1, f"data: {doc['data_label']}")
    for label, key, kind in ROWS:
        lines.append(f"{label:40} {_fmt(a.get(key), kind):>26} {_fmt(b.get(key), kind):>16}")
    for key in a["counts"]:
        lines.append(f"{key.replace('_', ' '):40} {a['counts'][key]:>26} {b['counts'][key]:>16}")
    lines += [f"note: {n}" for n in doc["notes"]]
    lines.append(f"runtime {doc['runtime_s']} s ({doc['bars_per_s']} execution bars/s over both policies)")
    return "\n".join(lines)


def progress_printer(write: Callable[[str], None]) -> Callable[[str, int, int], None]:
    """backtest_run's progress callback: one line per stage every 10 % (and at the end)."""
    last: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        if last.get(stage) != pct // 10 or done == total:
            last[stage] = pct // 10
            write(f"{stage}: {done}/{total} ({pct} %)")

    return progress


class Command(GridCommand):
    help = "Backtest the scanner, trigger and executor over history (both fill policies); record a BacktestRun."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--start", required=True, help="UTC date or time, e.g. 2020-03-01")
        parser.add_argument("--end", required=True, help="UTC date or time (exclusive), e.g. 2020-04-01")
        parser.add_argument("--market", default="perp", choices=["perp", "spot"])
        parser.add_argument("--config", help="NAME or NAME@VERSION (default: the 'default' config)")
        parser.add_argument("--exec-interval", default="auto", choices=["auto", "1m", "5m", "15m", "1h"])
        parser.add_argument("--fill-policy", default="conservative", choices=["conservative", "optimistic"],
                            help="the headline policy (the other one is shown beside it)")
        parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                            help="write the results document to FILE (no FILE or '-': stdout)")
        parser.add_argument("--slippage", default="normal", choices=["normal", "stress", "crash"],
                            help="market/stop slippage (§5.4): 0.05 %%, stress 0.10 %%, crash max(stress, 0.25(H-L)/O)")
        parser.add_argument("--trades", metavar="FILE.csv", help="write the headline trade log (CSV)")
        parser.add_argument("--equity", metavar="FILE.csv", help="write the headline equity curve (CSV)")
        parser.add_argument("--report", metavar="FILE.html", help="write an offline HTML report")

    def handle(self, *args, **o):
        tune_collector_for_batch()
        symbol = symbol_registry().normalize(o["symbol"])
        config = config_resolve(o["config"])
        start_ms, end_ms = parse_utc(o["start"]), parse_utc(o["end"])
        if end_ms <= start_ms:
            raise CommandError(f"--end: expected a time after --start {o['start']}, was {o['end']}")
        run, results, doc = backtest_run(symbol=symbol, market=o["market"], start_ms=start_ms, end_ms=end_ms,
                                         config=config, exec_interval=o["exec_interval"],
                                         fill_policy=o["fill_policy"], progress=progress_printer(self.stderr.write),
                                         slippage_mode=o["slippage"],
                                         report=Path(o["report"]) if o["report"] else None)
        head = results[doc["headline_policy"]]
        if o["trades"]:
            n = write_trade_log(head, Path(o["trades"]))
            self.stderr.write(f"trade log: {n} fills -> {o['trades']}")
        if o["equity"]:
            write_equity_csv(head, Path(o["equity"]))
            self.stderr.write(f"equity curve -> {o['equity']}")
        if o["report"]:
            self.stderr.write(f"report -> {o['report']}")
        if o["json"] == "-":
            self.stdout.write(json.dumps(doc, default=str))
            return
        if o["json"]:
            Path(o["json"]).write_text(json.dumps(doc, default=str, indent=1))
            self.stderr.write(f"results document -> {o['json']}")
        self.stdout.write(summary(doc))
