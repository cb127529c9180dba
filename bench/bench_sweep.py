"""Sweep kernel speed on real data: N grid configurations (spacing x range x grid type x leverage x fill policy)
through the kernel on one core, and the reference engine (run_backtest with the same shared replay) for a few of
the same configurations, in the same run. Two markets:

* perp5m: the 2023 BTCUSDT perpetual, 5m bars with funding, zones from the 1h perpetual (the year);
* spot1m: the 1m spot window 2021-10-30 .. 2021-12-11, zones from the 1h spot bars (six busy weeks: many grids,
  about 550 fills per configuration).

Per market: bars, configurations, seconds, bar x configuration evaluations per second per core (target
>= 20,000,000, kernel time; the whole sweep with the start planning in Python beside it), the speed-up over
run_backtest per configuration, and a parity check of the reference configurations (gridcore.sweep.parity).

Run: .venv/bin/python bench/bench_sweep.py [--market perp5m|spot1m|both] [--reference 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _setup import DATA_DIR, REPO

sys.path.insert(0, str(REPO))

from gridcore.backtest.runner import replay_for_backtest  # noqa: E402
from gridcore.bars import resample  # noqa: E402
from gridcore.kline_files import identify, read_funding, read_klines  # noqa: E402
from gridcore.params import default_params  # noqa: E402
from gridcore.sweep.config import config_grid  # noqa: E402
from gridcore.sweep.driver import Decisions, run_one  # noqa: E402
from gridcore.sweep.market import prepare_market  # noqa: E402
from gridcore.sweep.parity import differences, reference  # noqa: E402
from gridcore.symbols import default_registry  # noqa: E402
from gridcore.timeframes import HOUR_MS, parse_utc  # noqa: E402

TARGET = 20_000_000
AXES = {"grid.min_spacing_pct": ["0.0015", "0.002", "0.003", "0.004", "0.006"],
        "grid.range_mode": ["s1_r1", "s2_r2"], "grid.grid_type": ["geometric", "arithmetic"],
        "account.leverage": [2, 3, 5, 10, 20], "policy": ["headline", "optimistic"]}
RULES = default_registry().rules("BTC")


def _bars(name: str):
    path = DATA_DIR / name
    if not path.exists():
        sys.exit(f"needs {path}")
    return read_klines(path, identify(path)).bars


def _perp5m() -> dict:
    hourly, five = _bars("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz"), _bars(
        "BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz")
    path = DATA_DIR / "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz"
    f = read_funding(path, identify(path))
    return dict(name="perp5m 2023 (5m, funding)", hourly=hourly, exec_bars=five,
                funding=(f.funding_ms.tolist(), f.rates), start_ms=parse_utc("2023-01-01"),
                end_ms=int(five.close_ms[-1]))


def _spot1m() -> dict:
    hourly, minute = _bars("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz"), _bars(
        "BTCUSDT-1m-spot-2021-10-30_2021-12-11.csv.gz")
    start = (int(minute.open_ms[0]) + 24 * HOUR_MS) // (4 * HOUR_MS) * (4 * HOUR_MS) + 4 * HOUR_MS
    return dict(name="spot1m 2021-10-30 .. 2021-12-11 (1m)", hourly=hourly, exec_bars=minute, funding=None,
                start_ms=start, end_ms=int(minute.close_ms[-1]) // HOUR_MS * HOUR_MS)


def scenario(spec: dict, n_reference: int) -> bool:
    """One market: the sweep, the reference runs, the figures. True when the references agree."""
    params = default_params()
    ex, start, end = spec["exec_bars"], spec["start_ms"], spec["end_ms"]
    print(f"== {spec['name']}")
    t = time.perf_counter()
    replay = replay_for_backtest(profile_bars=spec["hourly"], trend_bars=resample(spec["hourly"], "4h"),
                                 trigger_bars=resample(ex, "15m"), start_ms=start, end_ms=end, params=params,
                                 rules=RULES)
    print(f"replay (scanner + trigger, shared by every configuration): {time.perf_counter() - t:.1f} s, "
          f"{len(replay.zones)} zones, {sum(1 for _, e in replay.evaluations if e.start)} starts")
    market = prepare_market(exec_bars=ex, funding=spec["funding"], start_ms=start, end_ms=end, replay=replay)
    configs = config_grid(params, AXES)
    run_one(configs[0], market, RULES)  # loads the compiled kernel (numba cache) once

    decisions = Decisions()
    t = time.perf_counter()
    results = [run_one(cfg, market, RULES, equity="daily", decisions=decisions) for cfg in configs]
    wall = time.perf_counter() - t
    kernel = sum(r.kernel_seconds for r in results)
    evals = market.n * len(configs)
    print(f"bars {market.n}, configurations {len(configs)}, evaluations {evals:,}")
    print(f"kernel: {kernel:.3f} s -> {evals / kernel:,.0f} bar x configuration evaluations / s / core "
          f"(target {TARGET:,}: {evals / kernel / TARGET:.2f}x)")
    print(f"whole sweep incl. Python start planning: {wall:.3f} s -> {evals / wall:,.0f} evaluations / s / core")
    print(f"  grids started {sum(len(r.grids) for r in results)}, signals refused {sum(r.refused for r in results)}, "
          f"fills {sum(r.fill_count for r in results):,}, bars walked event by event "
          f"{sum(r.walked_bars for r in results) / evals:.2%}")
    print(f"[{'OK ' if evals / kernel >= TARGET else 'SLOW'}] kernel evaluations per second per core: "
          f"{evals / kernel:,.0f} (target >= {TARGET:,})")

    picks = sorted({0, len(configs) // 2, len(configs) - 1, *range(1, max(n_reference - 2, 0))})[:max(n_reference, 1)]
    ref_times, ok = [], True
    for i in picks:
        cfg = configs[i]
        t = time.perf_counter()
        ref = reference(cfg, exec_bars=ex, funding=spec["funding"], replay=replay, start_ms=start, end_ms=end,
                        rules=RULES)
        ref_times.append(time.perf_counter() - t)
        diff = differences(run_one(cfg, market, RULES, equity="bar"), ref, RULES)
        ok &= not diff
        print(f"  reference [{i}] {cfg.label}: run_backtest {ref_times[-1]:.2f} s, kernel "
              f"{results[i].kernel_seconds * 1e3:.2f} ms, fills {len(ref.fills)}, "
              f"{'equal' if not diff else 'DIFFERENT: ' + diff[0]}")
    per_ref = statistics.mean(ref_times)
    per_kernel, per_sweep = kernel / len(configs), wall / len(configs)
    print(f"speed-up over run_backtest per configuration: {per_ref / per_kernel:,.0f}x (kernel), "
          f"{per_ref / per_sweep:,.0f}x (whole sweep); run_backtest {per_ref:.2f} s, kernel {per_kernel * 1e3:.2f} "
          f"ms, sweep {per_sweep * 1e3:.2f} ms per configuration")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--market", choices=["perp5m", "spot1m", "both"], default="both")
    ap.add_argument("--reference", type=int, default=3, help="configurations also run through run_backtest")
    args = ap.parse_args()
    specs = {"perp5m": [_perp5m], "spot1m": [_spot1m], "both": [_perp5m, _spot1m]}[args.market]
    ok = all([scenario(make(), args.reference) for make in specs])
    if not ok:
        sys.exit("the kernel differs from run_backtest (see above)")


if __name__ == "__main__":
    main()
