"""Monthly VSA signal and grid-start counts on the real data, as the README tables.

Scanner (1h profile, 4h trend) and Trigger (15m) replayed with the commands' own pure functions:
- spot 2019-12 .. 2020-03: zones from the 1h spot file, 15m bars resampled from the 5m spot file;
- perpetual 2023: zones from the 1h perpetual file, 15m bars resampled from the 5m perpetual file.
Run: .venv/bin/python tools/trigger_months.py
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gridcore.analysis.vsa import VsaSignal  # noqa: E402
from gridcore.bars import resample  # noqa: E402
from gridcore.kline_files import identify, read_klines  # noqa: E402
from gridcore.params import default_params  # noqa: E402
from gridcore.strategy.replay import replay_signals  # noqa: E402
from gridcore.timeframes import parse_utc  # noqa: E402

DATA = Path(os.environ.get("AUTOGRID_DATA_DIR", REPO.parent / "shared" / "data"))
ABBREV = {"SELLING_CLIMAX": "SC", "STOPPING_VOLUME": "SV", "NO_SUPPLY": "NS", "TEST": "T", "TEST_CONFIRMED": "T✓",
          "SPRING": "SP", "SHAKEOUT": "SO", "UPTHRUST": "UT", "UPTHRUST_CONFIRMED": "UT✓", "NO_DEMAND": "ND",
          "ABSORPTION": "EvR-abs", "EASE_OF_MOVE": "EvR-ease"}


def bars(name):
    path = DATA / name
    return read_klines(path, identify(path)).bars


def table(title, profile, trigger_src, start, end):
    params = default_params()
    res = replay_signals(profile_bars=profile, trend_bars=resample(profile, "4h"),
                         trigger_bars=resample(trigger_src, "15m"), start_ms=parse_utc(start), end_ms=parse_utc(end),
                         params=params, tick=Decimal("0.1"))
    months = res.monthly()
    cols = [s.value for s in VsaSignal]
    head = "| month | 15m bars with a zone | " + " | ".join(ABBREV[c] for c in cols) + " | starts (L/S/N) |"
    print(f"\n{title}\n")
    print(head)
    print("|" + "---|" * (len(cols) + 3))
    for m, c in sorted(months.items()):
        starts = f"{c['starts']} ({c['start_LONG']}/{c['start_SHORT']}/{c['start_NEUTRAL']})"
        print(f"| {m} | {c['evaluations']} | " + " | ".join(str(c[s]) for s in cols) + f" | {starts} |")
    zones = len(res.zones)
    valid = sum(z.valid for z in res.zones)
    print(f"\n{zones} scans, {valid} valid zones; {len(res.skipped)} scans/evaluations skipped for missing data")


def main():
    spot_1h = bars("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz")
    table("Spot, 2019-12-01 .. 2020-03-12 (the 5m spot file ends 2020-03-12 21:05)", spot_1h,
          bars("BTCUSDT-5m-spot-2019-11-15_2020-03-12.csv.gz"), "2019-12-01", "2020-03-12T20:45Z")
    perp_1h = bars("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    table("USDT-M perpetual, 2023", perp_1h, bars("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz"), "2023-01-01",
          "2023-12-31T23:45Z")


if __name__ == "__main__":
    main()
