"""Backtest signal replay speed (scanner at every 4h close + trigger at every 15m close, as replay_for_backtest runs
it), without Django. Two windows:

* 2021-10/12 spot: 1m spot file -> 15m trigger bars, 1h spot profile, 4h trend (the pipeline's reference window;
  target <= 0.29 s, a quarter of the 1.17 s it took before the batch kernels);
* 2023 Q1 perp: 5m perp file -> 15m trigger bars, 1h perp profile, 4h trend.

The target is per 1m execution bar, so the backtest can reach 100,000 1m bars/s with the replay taking a
quarter of the budget it had: 0.29 s / 58,860 bars = 4.93 us per 1m bar (for the 5m file, per minute of the window).
Times are the median of --repeat runs after a warm-up replay (numba's cache load is not counted).

Run: .venv/bin/python bench/bench_replay.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _setup import DATA_DIR, REPO, verdict

sys.path.insert(0, str(REPO))

from gridcore.bars import resample  # noqa: E402
from gridcore.kline_files import identify, read_klines  # noqa: E402
from gridcore.params import default_params  # noqa: E402
from gridcore.strategy.replay import replay_signals  # noqa: E402
from gridcore.symbols import default_registry  # noqa: E402
from gridcore.timeframes import HOUR_MS, MINUTE_MS, parse_utc  # noqa: E402

TARGET_S = 0.29  # the spot window
TARGET_BARS = 58_860  # its 1m execution bars
TARGET_US_PER_BAR = TARGET_S / TARGET_BARS * 1e6


def read(name: str):
    path = DATA_DIR / name
    if not path.exists():
        sys.exit(f"needs {path}")
    return read_klines(path, identify(path)).bars


def windows():
    """(name, profile 1h, trigger source, start, end) of the two windows."""
    spot_1h = read("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz")
    spot_1m = read("BTCUSDT-1m-spot-2021-10-30_2021-12-11.csv.gz")
    start = (int(spot_1m.open_ms[0]) + 24 * HOUR_MS) // (4 * HOUR_MS) * 4 * HOUR_MS + 4 * HOUR_MS
    end = int(spot_1m.close_ms[-1]) // HOUR_MS * HOUR_MS
    yield "spot 2021-10-31..2021-12-11 (1m -> 15m)", spot_1h, spot_1m, start, end
    perp_1h = read("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    perp_5m = read("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz")
    yield "perp 2023-Q1 (5m -> 15m)", perp_1h, perp_5m, parse_utc("2023-01-01"), parse_utc("2023-04-01")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    params, tick = default_params(), default_registry().rules("BTC").tick_size
    for name, h1, source, start, end in windows():
        h4, m15 = resample(h1, "4h"), resample(source, "15m")

        def run(stop, h1=h1, h4=h4, m15=m15, start=start):
            return replay_signals(profile_bars=h1, trend_bars=h4, trigger_bars=m15, start_ms=start, end_ms=stop,
                                  params=params, tick=tick)

        run(start + 2 * 24 * HOUR_MS)  # warm-up: numba cache load, float columns
        walls, cpus, res = [], [], None
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            res = run(end)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        bars = (end - start) // MINUTE_MS
        us = wall / bars * 1e6
        print(f"{name}: {len(res.zones)} scans, {len(res.evaluations)} trigger evaluations, {bars} 1m bars")
        print(f"  replay {wall:.3f} s wall (min {min(walls):.3f}), {cpu:.3f} s cpu; {us:.2f} us per 1m bar "
              f"= {us / TARGET_US_PER_BAR:.2f}x of the {TARGET_US_PER_BAR:.2f} us target; "
              f"{len(res.zones) and wall / (len(res.zones) + len(res.evaluations)) * 1e6:.0f} us per decision")
        print("  " + verdict(f"{name} replay", wall, round(TARGET_US_PER_BAR * bars / 1e6, 3)))


if __name__ == "__main__":
    main()
