"""Run the crash suite through the backtest: one row per scenario with loss, drawdown and how each grid ended."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from grid_trading.models import GridStrategyConfig
from grid_trading.services.backtest import backtest_run
from grid_trading.services.configs import config_create, config_params
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import klines_import_file
from gridcore.backtest.scenarios import CRASH_SUITE, Scenario
from gridcore.errors import DataError
from gridcore.params import merge_dicts, params_to_dict
from gridcore.timeframes import parse_utc


def scenario_config(base: GridStrategyConfig, sc: Scenario) -> GridStrategyConfig:
    """The base config, or a derived version carrying the scenario's parameter changes (versioned, hashed)."""
    if not sc.overrides:
        return base
    params = merge_dicts(params_to_dict(config_params(base)), sc.overrides)
    cfg, _ = config_create(name=f"{base.name}-{sc.name}", params=params, parent=base,
                           note=f"{base.ref} for scenario {sc.name}: {sc.overrides}")
    return cfg


def ensure_scenario_data(sc: Scenario, data_dir: Path) -> None:
    """Import the scenario's files (idempotent: bars already stored are left as they are)."""
    store = DjangoKlineStore()
    for name in sc.files:
        path = data_dir / name
        if not path.exists():
            raise DataError(f"scenario {sc.name}: expected the shared data file {path}")
        klines_import_file(path=path, store=store)


def scenarios_run(*, config: GridStrategyConfig, names: list[str] | None = None, data_dir: Path,
                  slippage_mode: str = "crash", progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    rows = []
    for sc in CRASH_SUITE:
        if names and sc.name not in names:
            continue
        if progress:
            progress(f"scenario {sc.name}: {sc.title} ({sc.market}, {sc.exec_interval} execution)")
        ensure_scenario_data(sc, data_dir)
        cfg = scenario_config(config, sc)
        run, results, doc = backtest_run(symbol="BTCUSDT", market=sc.market, start_ms=parse_utc(sc.start),
                                         end_ms=parse_utc(sc.end), config=cfg, exec_interval=sc.exec_interval,
                                         slippage_mode=slippage_mode)
        m = doc["results"]["headline"]
        c = m["counts"]
        r = results["headline"]
        exits: dict[str, int] = {}
        for g in r.grids:
            exits[g.exit or "RUNNING"] = exits.get(g.exit or "RUNNING", 0) + 1
        rows.append({"scenario": sc.name, "title": sc.title, "market": sc.market, "period": f"{sc.start} .. {sc.end}",
                     "exec_interval": doc["exec_interval"], "config": cfg.ref, "run_id": doc.get("run_id"),
                     "return_pct": round(100 * m["total_return"], 2),
                     "loss_usdt": str(r.initial_equity - r.ledger.equity),
                     "max_drawdown_pct": round(100 * max(m["max_drawdown"], m["max_drawdown_intrabar"]), 2),
                     "grids": c["grids_started"], "exits": exits, "stops": c["stops"],
                     "range_breaks": c["range_breaks"], "kill_switches": c["kill_switches"],
                     "liquidations": c["liquidations"], "signals": c["signals"], "fills": c["fills"],
                     "notes": doc["notes"]})
    return rows
