"""The parameter search: every configuration of a space through the sweep kernel over the search period (whose
daily equity scores the walk-forward windows) and every crash scenario.

The fan-out is one function, `run_job(job)`, over independent jobs (one market × a chunk of configurations); it
reads the markets from `Context` and returns plain dicts. `run_jobs` maps it over a local process pool; the same map
could be Ray's `ray.get([remote_run_job.remote(j) for j in jobs])` or Dask's `client.map(run_job, jobs)` with the
context shipped once to the workers (README, "Parameter search"), and the kernel would not change.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridcore.backtest.metrics import calmar, sharpe, sortino
from gridcore.backtest.metrics import max_drawdown as metrics_max_drawdown
from gridcore.errors import InputError
from gridcore.optimize.space import point_params
from gridcore.params import StrategyParams
from gridcore.sweep.config import SweepConfig
from gridcore.sweep.driver import Decisions, SweepResult, run_one
from gridcore.sweep.market import SweepMarket
from gridcore.symbols import SymbolRules

OBJECTIVES = ("sharpe", "sortino", "calmar", "return", "return_dd")


@dataclass(frozen=True)
class MarketCase:
    """One market of the search: the period or a crash scenario, with the parameters its replay used (base) and
    the slippage mode its runs use."""

    key: str
    kind: str  # "period" (the walk-forward windows are scored on its daily equity) or "crash"
    market: SweepMarket
    base: StrategyParams
    slippage_mode: str = "normal"


@dataclass
class Context:
    cases: dict[str, MarketCase]
    points: list[dict[str, Any]]
    rules: SymbolRules
    objective: str = "sharpe"


@dataclass(frozen=True)
class Job:
    case: str
    configs: tuple[int, ...]


_CONTEXT: Context | None = None  # the workers' copy (inherited at fork, or set by an initializer)
_DECISIONS: dict[str, Decisions] = {}  # per market case: start decisions shared by the configurations (pure)


def window_score(ms, equity, start_ms: int, end_ms: int, *, initial: float, max_drawdown: float | None,
                 objective: str) -> float | None:
    """The objective over [start_ms, end_ms) of a daily equity curve (end-of-day values at `ms`): returns of the
    days closing in the window against the day before it (or `initial`). max_drawdown: the run's intrabar figure
    when the window is the whole run (None: from the daily closes). A window without a position scores 0; None
    when there is no data, or the ratio is undefined (Sortino without a losing day, Calmar without a drawdown)."""
    if objective not in OBJECTIVES:
        raise InputError(f"expected an objective in {', '.join(OBJECTIVES)}, was {objective!r}")
    ms = np.asarray(ms, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    lo, hi = int(np.searchsorted(ms, start_ms, "left")), int(np.searchsorted(ms, end_ms, "left"))
    if hi <= lo:
        return None
    base = float(eq[lo - 1]) if lo > 0 else initial
    closes = eq[lo:hi]
    rets = (closes / np.r_[base, closes[:-1]] - 1).tolist()
    total = float(closes[-1]) / base - 1
    if max_drawdown is None:
        max_drawdown = metrics_max_drawdown(base, closes)
    if objective == "return":
        return total
    if objective == "return_dd":
        return total / max(max_drawdown, 0.01)
    if not any(rets):
        return 0.0  # no position all window long: nothing earned, nothing risked
    if objective == "sharpe":
        return sharpe(rets)
    if objective == "sortino":
        return sortino(rets)
    return calmar(total, (hi - lo), max_drawdown)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def summarise(res: SweepResult, objective: str, *, start_ms: int, end_ms: int, keep_curve: bool) -> dict[str, Any]:
    exits: dict[str, int] = {}
    for _, kind in res.exits:
        exits[kind] = exits.get(kind, 0) + 1
    s = window_score(res.equity_ms, res.equity, start_ms, end_ms,
                     initial=res.initial_equity, max_drawdown=res.max_drawdown, objective=objective) \
        if len(res.equity_ms) else None
    out = {"return": res.final_equity / res.initial_equity - 1, "max_drawdown": res.max_drawdown,
           "final_equity": res.final_equity, "fees": res.fees, "funding": res.funding,
           "grid_profit": res.realised_grid, "fills": res.fill_count, "grids": len(res.grids),
           "refused": res.refused, "exits": exits, "liquidations": res.liquidation_count, "status": res.status,
           "score": _finite(s), "initial_equity": res.initial_equity}
    if keep_curve:
        out["daily_ms"] = res.equity_ms.tolist()
        out["daily_equity"] = res.equity.tolist()
    return out


def run_job(job: Job) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    """Run a chunk of configurations on one market case (the unit a distributed engine would schedule)."""
    ctx = _CONTEXT
    if ctx is None:
        raise RuntimeError("run_job: expected the search context to be set (set_context) in this process")
    case = ctx.cases[job.case]
    decisions = _DECISIONS.setdefault(job.case, Decisions())
    out = []
    for i in job.configs:
        point = ctx.points[i]
        cfg = SweepConfig(point_params(case.base, point), policy=point.get("policy", "headline"),
                          slippage_mode=case.slippage_mode, label=f"#{i}")
        res = run_one(cfg, case.market, ctx.rules, equity="daily", decisions=decisions)
        out.append((i, summarise(res, ctx.objective, start_ms=case.market.start_ms, end_ms=case.market.end_ms,
                                 keep_curve=case.kind == "period")))
    return job.case, out


def set_context(ctx: Context) -> None:
    global _CONTEXT
    _CONTEXT = ctx
    _DECISIONS.clear()


def make_jobs(cases: Sequence[str], n_points: int, chunk: int) -> list[Job]:
    return [Job(c, tuple(range(a, min(a + chunk, n_points)))) for c in cases for a in range(0, n_points, chunk)]


def run_jobs(ctx: Context, jobs: Sequence[Job], *, workers: int,
             progress: Callable[[int, int], None] | None = None) -> dict[str, dict[int, dict[str, Any]]]:
    """Every job, on `workers` processes (1: in this process); results[case][config index]."""
    set_context(ctx)
    results: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in ctx.cases}
    total = sum(len(j.configs) for j in jobs)
    done = 0

    def collect(case: str, rows: list[tuple[int, dict[str, Any]]]) -> None:
        nonlocal done
        for i, row in rows:
            results[case][i] = row
        done += len(rows)
        if progress is not None:
            progress(done, total)

    if workers <= 1:
        for job in jobs:
            collect(*run_job(job))
        return results
    # fork: the workers inherit the prepared markets and the compiled kernel instead of rebuilding them
    mp = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp, initializer=set_context, initargs=(ctx,)) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for fut in as_completed(futures):
            collect(*fut.result())
    return results


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
