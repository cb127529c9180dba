"""Full backtest pipeline speed on every real 1m window of ../shared/data: the Scanner at each 4h close, the Trigger
at each 15m close and the executor on every 1m bar (the engine, with the fast path for quiet bars), then the
metrics — as `backtest` runs them, database excluded. Target: at least 100,000 1m bars per second (a year of 1m data
in about 5 s; a pure-Python per-candle grid bot manages about 5,000, ../shared/docs/peers.md).

Also measures, on one window, the engine handed every bar (fast=False) for the speed-up of the fast path.

Each window runs three times (--repeat N) and the fastest run counts (as timeit advises: slower runs measure the
other work on a shared machine, not this code); the slowest is printed beside it.

Run: .venv/bin/python bench/bench_backtest.py [--quick] [--repeat N]   (--quick: two windows only; default N 3)
"""

from __future__ import annotations

import sys
import time

from _setup import DATA_DIR, REPO, verdict

sys.path.insert(0, str(REPO))

from gridcore.backtest.metrics import backtest_metrics  # noqa: E402
from gridcore.backtest.runner import replay_for_backtest, run_backtest  # noqa: E402
from gridcore.bars import resample  # noqa: E402
from gridcore.kline_files import identify, read_klines  # noqa: E402
from gridcore.params import default_params  # noqa: E402
from gridcore.runtime import tune_collector_for_batch  # noqa: E402
from gridcore.symbols import default_registry  # noqa: E402
from gridcore.timeframes import DAY_MS, HOUR_MS, ms_to_iso  # noqa: E402

TARGET = 100_000
SPOT_1H = "BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz"
WINDOWS = ["BTCUSDT-1m-spot-2019-10-15_2019-12-15.csv.gz", "BTCUSDT-1m-spot-2020-05-21_2020-06-20.csv.gz",
           "BTCUSDT-1m-spot-2021-04-02_2021-05-20.csv.gz", "BTCUSDT-1m-spot-2021-09-17_2021-10-17.csv.gz",
           "BTCUSDT-1m-spot-2021-10-30_2021-12-11.csv.gz", "BTCUSDT-1m-spot-2022-05-27_2022-06-26.csv.gz",
           "BTCUSDT-1m-spot-2023-03-16_2023-05-01.csv.gz"]


def _bars(name: str):
    path = DATA_DIR / name
    return read_klines(path, identify(path)).bars


def run_window(hourly, trend, minute, params, rules, *, fast: bool = True) -> dict:
    trigger = resample(minute, "15m")
    start = (int(minute.open_ms[0]) + DAY_MS) // (4 * HOUR_MS) * (4 * HOUR_MS) + 4 * HOUR_MS  # a day of warm-up
    end = int(minute.close_ms[-1]) // HOUR_MS * HOUR_MS
    t0 = time.perf_counter()
    replay = replay_for_backtest(profile_bars=hourly, trend_bars=trend, trigger_bars=trigger, start_ms=start,
                                 end_ms=end, params=params, rules=rules)
    t1 = time.perf_counter()
    result = run_backtest(profile_bars=hourly, trend_bars=trend, trigger_bars=trigger, exec_bars=minute,
                          start_ms=start, end_ms=end, params=params, rules=rules, replay=replay, fast=fast)
    backtest_metrics(result)
    t2 = time.perf_counter()
    return {"start": start, "end": end, "bars": result.bars, "fills": len(result.fills), "replay_s": t1 - t0,
            "exec_s": t2 - t1, "total_s": t2 - t0, "result": result}


def best_of(repeat: int, *args, **kw) -> dict:
    """The fastest of `repeat` runs of run_window (results are identical; checked), with the slowest's time."""
    runs = [run_window(*args, **kw) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["total_s"])
    if any(r["result"].fills != best["result"].fills or r["result"].final != best["result"].final for r in runs):
        sys.exit("the same window gave different results on repeated runs")
    return {**best, "slowest_s": max(r["total_s"] for r in runs)}


def main() -> None:
    quick = "--quick" in sys.argv
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    names = WINDOWS[4:6] if quick else WINDOWS
    missing = [n for n in [SPOT_1H, *names] if not (DATA_DIR / n).exists()]
    if missing:
        sys.exit(f"needs {', '.join(missing)} in {DATA_DIR}")
    params, rules = default_params(), default_registry().rules("BTC")
    hourly = _bars(SPOT_1H)
    trend = resample(hourly, "4h")
    minutes = {n: _bars(n) for n in names}
    warm = minutes[names[0]].slice_ms(int(minutes[names[0]].open_ms[0]), int(minutes[names[0]].open_ms[0]) + 4 * DAY_MS)
    run_window(hourly, trend, warm, params, rules)  # numba JIT / cache load outside the timings
    tune_collector_for_batch()  # as the backtest command does at its start

    print(f"best of {repeat} runs per window")
    print(f"{'window':<28} {'1m bars':>8} {'fills':>6} {'replay s':>9} {'exec s':>7} {'total s':>8} {'slowest s':>10} "
          f"{'bars/s':>9}")
    tot = {"bars": 0, "replay_s": 0.0, "exec_s": 0.0, "total_s": 0.0, "slowest_s": 0.0, "fills": 0}
    for name in names:
        r = best_of(repeat, hourly, trend, minutes[name], params, rules)
        for k in tot:
            tot[k] += r[k]
        span = f"{ms_to_iso(r['start'])[:10]} .. {ms_to_iso(r['end'])[:10]}"
        print(f"{span:<28} {r['bars']:>8,} {r['fills']:>6,} {r['replay_s']:>9.3f} {r['exec_s']:>7.3f} "
              f"{r['total_s']:>8.3f} {r['slowest_s']:>10.3f} {r['bars'] / r['total_s']:>9,.0f}")
    rate = tot["bars"] / tot["total_s"]
    print(f"{'all windows':<28} {tot['bars']:>8,} {tot['fills']:>6,} {tot['replay_s']:>9.3f} {tot['exec_s']:>7.3f} "
          f"{tot['total_s']:>8.3f} {tot['slowest_s']:>10.3f} {rate:>9,.0f}")
    print(f"the slowest runs together: {tot['bars'] / tot['slowest_s']:,.0f} 1m bars/s")
    print(f"scanner+trigger replay: {tot['replay_s'] / tot['bars'] * 1e6:.2f} us per 1m bar; executor + metrics: "
          f"{tot['exec_s'] / tot['bars'] * 1e6:.2f} us per 1m bar")
    print(f"a year of 1m bars (525,600) at this rate: {525_600 / rate:.1f} s")
    print(verdict("full pipeline, seconds per 100,000 1m bars", 100_000 / rate, 100_000 / TARGET))
    print(f"[{'OK ' if rate >= TARGET else 'SLOW'}] full pipeline: {rate:,.0f} 1m bars/s (target >= {TARGET:,}, "
          f"{rate / TARGET:.2f}x of target)")

    name = names[-1]
    fast = run_window(hourly, trend, minutes[name], params, rules)
    slow = run_window(hourly, trend, minutes[name], params, rules, fast=False)
    same = fast["result"].final == slow["result"].final and fast["result"].fills == slow["result"].fills
    print(f"fast path on {name}: executor {fast['exec_s']:.3f} s vs every bar through the engine "
          f"{slow['exec_s']:.3f} s: {slow['exec_s'] / fast['exec_s']:.1f}x faster; same result: {same}")


if __name__ == "__main__":
    main()
