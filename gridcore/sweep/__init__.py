"""Parameter sweeps of the grid strategy: many configurations over the same bars and zones/signals, with the
reference engine's rules (gridcore.strategy.engine via run_backtest) in a numba kernel.

    market = prepare_market(exec_bars=..., funding=..., start_ms=..., end_ms=..., replay=replay)
    results = sweep_market(config_grid(base, {"grid.min_spacing_pct": [...], "policy": [...]}), market, rules)

Modules: config (SweepConfig, config_grid, kernel parameters), market (the shared inputs), driver (the per
configuration loop and start decisions), planning (the engine's start checks and planner), kernel (the numba
entry point), _bar_nb / _actions_nb / _walk_nb / _ledger_nb (the engine's rules, bar, event, walk and ledger
level), layout (array layouts), parity (the comparison with run_backtest).
"""

from gridcore.sweep.config import SweepConfig, config_grid
from gridcore.sweep.driver import Decisions, GridStart, SweepResult, run_one, sweep, sweep_market
from gridcore.sweep.market import SweepMarket, prepare_market

__all__ = ["Decisions", "GridStart", "SweepConfig", "SweepMarket", "SweepResult", "config_grid", "prepare_market",
           "run_one", "sweep", "sweep_market"]
