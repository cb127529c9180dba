"""Scanner speed on the real 1h perpetual bars: one scan (target <= 5 ms, database excluded) and the full
2019-10-01 .. 2023-12-31 sweep at every 4h close (target <= 60 s). Also prints the sweep's statistics.

Run: .venv/bin/python bench/bench_scanner.py
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
from gridcore.strategy.scanner import scan_times, scan_zone, sweep_zones  # noqa: E402
from gridcore.timeframes import parse_utc  # noqa: E402

PERP_1H = DATA_DIR / "BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz"


def main() -> None:
    if not PERP_1H.exists():
        sys.exit(f"needs {PERP_1H}")
    bars = read_klines(PERP_1H, identify(PERP_1H)).bars
    trend = resample(bars, "4h")
    params, tick = default_params(), Decimal("0.1")
    at = parse_utc("2020-03-10T00:00Z")
    scan_zone(profile_bars=bars, trend_bars=trend, at_ms=at, params=params, tick=tick)  # JIT warm-up
    samples = []
    for _ in range(300):
        t = time.perf_counter()
        scan_zone(profile_bars=bars, trend_bars=trend, at_ms=at, params=params, tick=tick)
        samples.append(time.perf_counter() - t)
    one = statistics.median(samples)
    print(f"one scan (median of 300, 720 x 1h bars, 100 rows): {one * 1000:.2f} ms")
    print(verdict("one scan", one * 1000, 5.0, "ms"))

    times = scan_times(parse_utc("2019-10-01"), parse_utc("2023-12-31T20:00Z"), params)
    t = time.perf_counter()
    res = sweep_zones(profile_bars=bars, trend_bars=trend, times=times, params=params, tick=tick,
                      progress=lambda i, n: print(f"  sweep {i}/{n}", file=sys.stderr))
    sweep = time.perf_counter() - t
    print(f"sweep: {len(times)} scans in {sweep:.1f} s ({sweep / len(times) * 1000:.2f} ms per scan)")
    print(verdict("full 2019-10..2023-12 sweep", sweep, 60.0))
    zones = res.zones
    valid = [z for z in zones if z.valid]
    widths = [(z.r1 - z.s1) / z.price * 100 for z in valid]
    outer = [(z.r2 - z.s2) / z.price * 100 for z in valid]
    print(f"zones: {len(zones)} computed, {len(res.skipped)} skipped (history shorter than the 30-day window)")
    print(f"valid boxes: {len(valid)} = {len(valid) / len(zones) * 100:.1f} % of computed zones")
    print(f"median box width S1..R1: {statistics.median(widths):.2f} % of price; S2..R2: "
          f"{statistics.median(outer):.2f} %")
    reasons: dict[str, int] = {}
    for z in zones:
        for r in z.reasons:
            key = r.split(" = ")[0].split(":")[0].split(" cluster share")[0]
            reasons[key] = reasons.get(key, 0) + 1
    print("invalid-box reasons (a box can have several):")
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {v:5d}  {k}")
    states: dict[str, int] = {}
    for z in zones:
        states[z.squeeze_state] = states.get(z.squeeze_state, 0) + 1
    print("squeeze states: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))


if __name__ == "__main__":
    main()
