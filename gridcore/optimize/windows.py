"""Walk-forward windows: fit on one window, score on the next, then roll forward by the test length.

`TRAIN/TEST` is two durations such as `365d/90d` or `12M/3M` (d = days, w = weeks, M = 30-day months). Fold k trains
on [s + k·test, s + k·test + train) and tests on the test-length window right after it; folds stop where a test
window would pass the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gridcore.errors import InputError
from gridcore.timeframes import DAY_MS, ms_to_iso

_UNIT_DAYS = {"d": 1, "w": 7, "M": 30}
_DURATION = re.compile(r"^(\d+)([dwM])$")


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[int, int]
    test: tuple[int, int]

    def as_dict(self) -> dict[str, str | int]:
        return {"fold": self.index, "train": f"{ms_to_iso(self.train[0])} .. {ms_to_iso(self.train[1])}",
                "test": f"{ms_to_iso(self.test[0])} .. {ms_to_iso(self.test[1])}"}


def parse_duration(text: str, what: str) -> int:
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise InputError(f"{what}: expected a duration such as 90d, 12w or 6M, was {text!r}")
    return int(m.group(1)) * _UNIT_DAYS[m.group(2)] * DAY_MS


def parse_walk_forward(text: str) -> tuple[int, int]:
    """'TRAIN/TEST' → (train ms, test ms)."""
    train, sep, test = text.partition("/")
    if not sep:
        raise InputError(f"--walk-forward: expected TRAIN/TEST such as 365d/90d, was {text!r}")
    return parse_duration(train, "--walk-forward TRAIN"), parse_duration(test, "--walk-forward TEST")


def walk_forward(start_ms: int, end_ms: int, train_ms: int, test_ms: int) -> list[Fold]:
    folds = []
    k = 0
    while start_ms + k * test_ms + train_ms + test_ms <= end_ms:
        a = start_ms + k * test_ms
        folds.append(Fold(k + 1, (a, a + train_ms), (a + train_ms, a + train_ms + test_ms)))
        k += 1
    if not folds:
        raise InputError(f"--walk-forward: expected TRAIN + TEST to fit in {ms_to_iso(start_ms)} .. "
                         f"{ms_to_iso(end_ms)}, was {train_ms // DAY_MS} + {test_ms // DAY_MS} days")
    return folds
