"""`optimize --symbol BTCUSDT --start … --end … [--space FILE] [--objective …] [--walk-forward TRAIN/TEST]
[--jobs N] [--json FILE]`: search grid settings with the sweep kernel, walk-forward windows and the crash suite as a
gate; the winners become new config versions with their provenance."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.configs import config_resolve
from grid_trading.services.optimize import check_period, optimize_run, parse_space_arg
from grid_trading.services.symbols import symbol_registry
from gridcore.optimize.search import OBJECTIVES
from gridcore.timeframes import parse_utc

SHOW = 15


class Command(GridCommand):
    help = ("Search grid settings over walk-forward windows with the crash suite as a gate (numba sweep kernel); "
            "save the winners as new config versions.")

    def add_arguments(self, parser):
        parser.add_argument("--symbol", default="BTCUSDT")
        parser.add_argument("--start", required=True, help="UTC date or time, e.g. 2021-01-01")
        parser.add_argument("--end", required=True, help="UTC date or time (exclusive), e.g. 2024-01-01")
        parser.add_argument("--market", default="perp", choices=["perp", "spot"])
        parser.add_argument("--config", help="base config NAME or NAME@VERSION (default: the 'default' config)")
        parser.add_argument("--space", type=Path, help="search space file (.toml/.yaml/.json; default: built in)")
        parser.add_argument("--objective", default="sharpe", choices=OBJECTIVES,
                            help="score of a window (default: daily Sharpe)")
        parser.add_argument("--walk-forward", default="365d/90d", metavar="TRAIN/TEST",
                            help="fit on TRAIN, score on the next TEST, roll by TEST (default 365d/90d)")
        parser.add_argument("--jobs", type=int, help="worker processes (default: every core)")
        parser.add_argument("--exec-interval", default="auto", choices=["auto", "1m", "5m", "15m", "1h"])
        parser.add_argument("--save", type=int, default=3, help="save this many winners as config versions")
        parser.add_argument("--data", type=Path, help="the shared data files for the crash suite "
                                                      "(default AUTOGRID_DATA_DIR)")
        parser.add_argument("--json", metavar="FILE", help="write the results document to FILE ('-': stdout)")

    def handle(self, *args, **o):
        symbol = symbol_registry().normalize(o["symbol"])
        start_ms, end_ms = parse_utc(o["start"]), parse_utc(o["end"])
        check_period(start_ms, end_ms)
        doc = optimize_run(symbol=symbol, market=o["market"], start_ms=start_ms, end_ms=end_ms,
                           config=config_resolve(o["config"]), space=parse_space_arg(o["space"]),
                           objective=o["objective"], walk=o["walk_forward"], workers=o["jobs"],
                           exec_interval=o["exec_interval"], data_dir=o["data"] or Path(settings.DATA_DIR),
                           save=o["save"], progress=self.progress)
        if o["json"] == "-":
            self.stdout.write(json.dumps(doc, default=str))
            return
        if o["json"]:
            Path(o["json"]).write_text(json.dumps(doc, default=str, indent=1))
            self.stderr.write(f"results document -> {o['json']}")
        self.stdout.write(table(doc))


def _short(point: dict) -> str:
    return " ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())


def _num(x, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def table(doc: dict) -> str:
    lines = [f"optimize {doc['symbol']} {doc['market']} {doc['start']} .. {doc['end']}: {doc['evaluated']:,} "
             f"configurations, {len(doc['folds'])} walk-forward folds ({doc['walk_forward']}), "
             f"{len(doc['crash_suite'])} crash scenarios; {doc['runs']:,} runs in {doc['elapsed_s']:.1f} s on "
             f"{doc['workers']} process(es) ({doc['bar_evaluations_per_s'] or 0:,.0f} bar x config evaluations/s)",
             *[f"note: {n}" for n in doc["notes"]],
             f"passed the crash gate: {doc['passed_crash_gate']:,} of {doc['evaluated']:,}", "",
             f"{'rank':>4} {'mean test':>9} {'worst':>7} {'period':>8} {'max DD':>7} {'crash max DD':>12}  "
             f"parameters ({doc['objective']} per test window; period = the whole run)"]
    for r in doc["results"][:SHOW]:
        worst_dd = max((c["max_drawdown"] for c in r["crashes"].values()), default=0.0)
        gate = "" if r["passed_crash_gate"] else "  OUT: " + "; ".join(r["crash_failures"][:2])
        per = r["period"]
        lines.append(f"{r['rank']:>4} {_num(r['mean_test_score']):>9} {_num(r['worst_test_score']):>7} "
                     f"{100 * per['return']:>7.2f}% {100 * per['max_drawdown']:>6.2f}% {100 * worst_dd:>11.2f}%  "
                     f"{_short(r['params'])}{gate}")
    lines += ["", "walk-forward (best on train, scored on the next window):"]
    for p in doc["walk_forward_picks"]:
        lines.append(f"  fold {p['fold']}: train {p['train']}, test {p['test']}: config "
                     f"{'-' if p['pick'] is None else p['pick']} train {_num(p['train_score'])} test "
                     f"{_num(p['test_score'])}")
    if doc["results"] and doc["results"][0]["passed_crash_gate"]:
        best = doc["results"][0]
        lines += ["", f"winner {best.get('saved_as', '(not saved)')} in the crash suite:"]
        for name, c in best["crashes"].items():
            ended = ", ".join(f"{k} {v}" for k, v in sorted(c["exits"].items())) or "no exit"
            lines.append(f"  {name:<11} return {100 * c['return']:>6.2f} %  max DD {100 * c['max_drawdown']:>5.2f} %  "
                         f"grids {c['grids']}  fills {c['fills']}  {ended}")
    for w in doc["winners"]:
        lines.append(f"saved rank {w['rank']} as {w['config']}" + ("" if w["created"] else " (already stored)"))
    return "\n".join(lines)
