"""Parameter search service: load the period and the crash suite from the store, run gridcore.optimize, save the
winners as new config versions with their provenance."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grid_trading.models import GridStrategyConfig
from grid_trading.services.backtest import BacktestData, backtest_load
from grid_trading.services.configs import config_create, config_params
from grid_trading.services.provenance import code_version
from grid_trading.services.scenarios import ensure_scenario_data
from grid_trading.services.symbols import symbol_registry
from gridcore.backtest.runner import replay_for_backtest
from gridcore.backtest.scenarios import CRASH_SUITE
from gridcore.errors import InputError
from gridcore.optimize.cases import period_case
from gridcore.optimize.ranking import rank
from gridcore.optimize.search import Context, MarketCase, default_workers, make_jobs, run_jobs
from gridcore.optimize.space import DEFAULT_SPACE, check_space, load_space, point_params, space_points, space_size
from gridcore.optimize.windows import parse_walk_forward, walk_forward
from gridcore.params import StrategyParams, merge_dicts, params_from_dict, params_to_dict
from gridcore.sweep.market import prepare_market
from gridcore.timeframes import ms_to_iso, parse_utc

Progress = Callable[[str], None]
CHUNK = 24  # configurations per job: large enough to amortise a job, small enough to balance two cores


def _load(*, symbol: str, market: str, params: StrategyParams, start_ms: int, end_ms: int,
          exec_interval: str) -> tuple[StrategyParams, BacktestData, list[str]]:
    """The period's series; when no trigger bars cover it (no 15m perpetual bars exist before 2023), the trigger
    reads the execution interval instead, said in the notes (as the crash suite does for March 2020)."""
    data = backtest_load(symbol=symbol, market=market, params=params, start_ms=start_ms, end_ms=end_ms,
                         exec_interval=exec_interval)
    trig = data.trigger
    covered = len(trig) and int(trig.open_ms[0]) <= start_ms and int(trig.close_ms[-1]) >= end_ms - 86_400_000
    if covered:
        return params, data, data.notes
    iv = data.exec.interval
    derived = params_from_dict(merge_dicts(params_to_dict(params), {"timeframes": {"trigger_interval": iv}}))
    note = (f"no stored {params.timeframes.trigger_interval} {market} bars cover {ms_to_iso(start_ms)} .. "
            f"{ms_to_iso(end_ms)}: the trigger reads {iv} bars (timeframes.trigger_interval = {iv})")
    data = backtest_load(symbol=symbol, market=market, params=derived, start_ms=start_ms, end_ms=end_ms,
                         exec_interval=exec_interval)
    return derived, data, [note, *data.notes]


def _crash_cases(*, points_base: StrategyParams, data_dir: Path, rules, progress: Progress) -> dict[str, MarketCase]:
    out = {}
    for sc in CRASH_SUITE:
        progress(f"      crash scenario {sc.name}: {sc.title} ({sc.market}, {sc.exec_interval})")
        ensure_scenario_data(sc, data_dir)
        params = params_from_dict(merge_dicts(params_to_dict(points_base), sc.overrides))
        start, end = parse_utc(sc.start), parse_utc(sc.end)
        data = backtest_load(symbol="BTCUSDT", market=sc.market, params=params, start_ms=start, end_ms=end,
                             exec_interval=sc.exec_interval)
        replay = replay_for_backtest(profile_bars=data.profile, trend_bars=data.trend, trigger_bars=data.trigger,
                                     start_ms=start, end_ms=end, params=params, rules=rules)
        market = prepare_market(exec_bars=data.exec, mark_bars=data.mark, funding=data.funding, start_ms=start,
                                end_ms=end, replay=replay)
        out[f"crash-{sc.name}"] = MarketCase(f"crash-{sc.name}", "crash", market, params, "crash")
    return out


def optimize_run(*, symbol: str, market: str, start_ms: int, end_ms: int, config: GridStrategyConfig,
                 space: dict[str, list[Any]] | None, objective: str, walk: str, workers: int | None,
                 exec_interval: str, data_dir: Path, save: int = 3, progress: Progress = lambda s: None,
                 ) -> dict[str, Any]:
    """The whole search; returns the document the command prints and writes."""
    t0 = time.perf_counter()
    rules = symbol_registry().rules(symbol)
    base = config_params(config)
    space = check_space(space if space is not None else DEFAULT_SPACE, base=base,
                        source="default space" if space is None else "--space")
    points = space_points(space)
    train_ms, test_ms = parse_walk_forward(walk)
    folds = walk_forward(start_ms, end_ms, train_ms, test_ms)
    workers = workers or default_workers()
    progress(f"[1/4] {symbol} {market} {ms_to_iso(start_ms)} .. {ms_to_iso(end_ms)}: {space_size(space):,} "
             f"configurations x (the period, scored in {len(folds)} walk-forward folds, + {len(CRASH_SUITE)} crash "
             f"scenarios)")
    params, data, notes = _load(symbol=symbol, market=market, params=base, start_ms=start_ms, end_ms=end_ms,
                                exec_interval=exec_interval)
    for n in notes:
        progress(f"      note: {n}")
    progress(f"[2/4] scanner + trigger replay over the period ({data.exec.interval} execution bars: "
             f"{len(data.exec):,})")
    replay = replay_for_backtest(profile_bars=data.profile, trend_bars=data.trend, trigger_bars=data.trigger,
                                 start_ms=start_ms, end_ms=end_ms, params=params, rules=rules)
    cases = period_case(exec_bars=data.exec, mark_bars=data.mark, funding=data.funding, replay=replay,
                        params=params, start_ms=start_ms, end_ms=end_ms)
    cases.update(_crash_cases(points_base=base, data_dir=data_dir, rules=rules, progress=progress))
    prepared = time.perf_counter() - t0
    jobs = make_jobs(list(cases), len(points), CHUNK)
    total = len(points) * len(cases)
    progress(f"[3/4] {total:,} runs ({len(points):,} configurations x {len(cases)} markets) on {workers} "
             f"process(es)")
    last = [0.0]

    def tick(done: int, of: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 5 or done == of:
            last[0] = now
            progress(f"      {done:,}/{of:,} runs ({100 * done // max(of, 1)} %), {now - t0:.0f} s")

    ctx = Context(cases=cases, points=points, rules=rules, objective=objective)
    t_search = time.perf_counter()
    results = run_jobs(ctx, jobs, workers=workers, progress=tick)
    search_s = time.perf_counter() - t_search
    bar_evals = sum(c.market.n for c in cases.values()) * len(points)
    verdict = rank(points=points, folds=folds, results=results, crash_names=[s.name for s in CRASH_SUITE],
                   max_drawdown=float(base.risk.max_drawdown), objective=objective)
    checksum = hashlib.sha256((data.checksum + "|" + "|".join(
        f"{k}:{c.market.n}:{c.market.start_ms}:{c.market.end_ms}" for k, c in sorted(cases.items()))).encode()
    ).hexdigest()
    provenance = {"kind": "optimize", "symbol": symbol, "market": market, "period": [ms_to_iso(start_ms),
                                                                                      ms_to_iso(end_ms)],
                  "objective": objective, "walk_forward": walk, "space": space,
                  "folds": [f.as_dict() for f in folds], "crash_suite": [s.name for s in CRASH_SUITE],
                  "data_checksum": checksum, "base_config": config.ref, "code_version": code_version()}
    progress("[4/4] ranking and saving the winners")
    winners = []
    for row in [r for r in verdict["results"] if r["passed_crash_gate"]][:save]:
        cfg, created = config_create(name=f"{config.name}-opt", params=point_params(params, row["params"]),
                                     parent=config, provenance={**provenance, "rank": row["rank"],
                                                                "point": row["params"],
                                                                "mean_test_score": row["mean_test_score"]},
                                     note=f"optimize rank {row['rank']} ({objective}, walk-forward {walk}) of "
                                          f"{len(points)} configurations from {config.ref}")
        row["saved_as"] = cfg.ref
        winners.append({"rank": row["rank"], "config": cfg.ref, "created": created})
    elapsed = time.perf_counter() - t0
    return {"symbol": symbol, "market": market, "start": ms_to_iso(start_ms), "end": ms_to_iso(end_ms),
            "base_config": config.ref, "objective": objective, "walk_forward": walk, "notes": notes,
            "folds": [f.as_dict() for f in folds], "crash_suite": [s.name for s in CRASH_SUITE], "space": space,
            "evaluated": len(points), "runs": total, "workers": workers, "elapsed_s": round(elapsed, 2),
            "prepare_s": round(prepared, 2), "search_s": round(search_s, 2), "bar_evaluations": bar_evals,
            "bar_evaluations_per_s": round(bar_evals / search_s) if search_s > 0 else None,
            "data_checksum": checksum, "passed_crash_gate": verdict["passed_crash_gate"],
            "walk_forward_picks": verdict["walk_forward"], "winners": winners, "results": verdict["results"]}


def parse_space_arg(path: Path | None) -> dict[str, list[Any]] | None:
    if path is None:
        return None
    return load_space(path)


def check_period(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise InputError(f"--end: expected a time after --start {ms_to_iso(start_ms)}, was {ms_to_iso(end_ms)}")

