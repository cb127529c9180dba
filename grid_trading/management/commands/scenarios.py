"""`scenarios [--only NAME ...] [--config REF] [--slippage crash|stress|normal] [--json]`: the crash suite."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.configs import config_resolve
from grid_trading.services.scenarios import scenarios_run
from gridcore.backtest.scenarios import CRASH_SUITE
from gridcore.runtime import tune_collector_for_batch


class Command(GridCommand):
    help = "Backtest the crash suite (March 2020, May 2021, June 2022, LUNA, FTX) with crash slippage."

    def add_arguments(self, parser):
        parser.add_argument("--only", nargs="+", choices=[s.name for s in CRASH_SUITE], help="run these only")
        parser.add_argument("--config", help="NAME or NAME@VERSION (default: the 'default' config)")
        parser.add_argument("--slippage", default="crash", choices=["crash", "stress", "normal"])
        parser.add_argument("--data", type=Path, help="where the shared data files are (default AUTOGRID_DATA_DIR)")
        super().add_arguments(parser)

    def handle(self, *args, **o):
        tune_collector_for_batch()
        config = config_resolve(o["config"])
        rows = scenarios_run(config=config, names=o["only"], data_dir=o["data"] or Path(settings.DATA_DIR),
                             slippage_mode=o["slippage"], progress=self.progress)
        self.emit(o, {"config": config.ref, "slippage": o["slippage"], "scenarios": rows}, text=_table(rows))


def _table(rows: list[dict]) -> str:
    head = (f"{'scenario':<11} {'exec':>4} {'return':>8} {'loss USDT':>10} {'max DD':>7} {'grids':>5} {'fills':>6} "
            f"{'stops':>5} {'breaks':>6} {'kills':>5} {'liqs':>4}  how grids ended")
    lines = [head]
    for r in rows:
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r["exits"].items())) or "no grid"
        lines.append(f"{r['scenario']:<11} {r['exec_interval']:>4} {r['return_pct']:>7.2f}% "
                     f"{float(r['loss_usdt']):>10.2f} {r['max_drawdown_pct']:>6.2f}% {r['grids']:>5} {r['fills']:>6} "
                     f"{r['stops']:>5} "
                     f"{r['range_breaks']:>6} {r['kill_switches']:>5} {r['liquidations']:>4}  {ended}")
    return "\n".join(lines)
