"""Trigger speed on real 15m bars (resampled from the 2023 5m perpetual file): one evaluation at a 15m close,
database excluded (target <= 1 ms). Run: .venv/bin/python bench/bench_trigger.py
"""

from __future__ import annotations

import statistics
import sys
import time
from decimal import Decimal

from _setup import DATA_DIR, REPO, verdict

sys.path.insert(0, str(REPO))

from gridcore.bars import resample  # noqa: E402
from gridcore.kline_files import identify, read_klines  # noqa: E402
from gridcore.params import default_params  # noqa: E402
from gridcore.strategy.replay import zone_context  # noqa: E402
from gridcore.strategy.scanner import scan_zone  # noqa: E402
from gridcore.strategy.trigger import evaluate_trigger  # noqa: E402
from gridcore.timeframes import parse_utc  # noqa: E402


def read(name):
    path = DATA_DIR / name
    if not path.exists():
        sys.exit(f"needs {path}")
    return read_klines(path, identify(path)).bars


def main() -> None:
    h = read("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    m15 = resample(read("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz"), "15m")
    params = default_params()
    at = parse_utc("2023-01-02T16:00Z")
    zone = zone_context(scan_zone(profile_bars=h, trend_bars=resample(h, "4h"), at_ms=at, params=params,
                                  tick=Decimal("0.1")))
    times = [at + k * 900_000 for k in range(1, 401)]
    for t in times[:5]:
        evaluate_trigger(bars=m15, at_ms=t, zone=zone, params=params, tick=0.1)  # JIT warm-up
    samples, starts = [], 0
    for t in times:
        t0 = time.perf_counter()
        ev = evaluate_trigger(bars=m15, at_ms=t, zone=zone, params=params, tick=0.1)
        samples.append(time.perf_counter() - t0)
        starts += ev.start
    med = statistics.median(samples)
    print(f"one trigger evaluation (median of {len(samples)} consecutive 15m closes, 200-bar window, {starts} starts):"
          f" {med * 1000:.3f} ms; p90 {sorted(samples)[int(0.9 * len(samples))] * 1000:.3f} ms")
    print(verdict("one trigger evaluation", med * 1000, 1.0, "ms"))


if __name__ == "__main__":
    main()
