"""OHLCV bars as numpy arrays: validation, gaps and exact resampling.

Prices and volumes are held as int64 in units of 1e-8 (`SCALE`), so resampling sums volume exactly and the store
never drifts; analysis code reads float64 views (`bars.close` etc.). Binance quotes prices and quantities with at
most 8 decimals, so the conversion from a CSV's decimal text is exact (checked on import).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

import numpy as np

from gridcore.errors import DataError, InputError
from gridcore.timeframes import interval_ms

SCALE_DECIMALS = 8
SCALE = 10**SCALE_DECIMALS
OPEN, HIGH, LOW, CLOSE, VOLUME = range(5)
_MAX_VALUE = (2**63 - 1) / SCALE  # about 9.2e10: the largest price or volume the int64 units can hold


def decimal_units(x: Decimal, rounding: str | None = None, what: str = "a price") -> int:
    """A Decimal price or quantity in int 1e-8 units: exact (InputError naming `what` when it is off the grid), or
    rounded with a decimal rounding mode (ROUND_CEILING, ROUND_FLOOR) where a level must not be missed."""
    u = x * SCALE
    if rounding is not None:
        return int(u.to_integral_value(rounding=rounding))
    if u != u.to_integral_value():
        raise InputError(f"expected {what} on the 1e-8 unit grid, was {x}")
    return int(u)


@dataclass(frozen=True, eq=False)
class Bars:
    """Closed klines of one (symbol, market, interval), strictly increasing in open time.

    `source_interval` is the stored interval these bars come from: equal to `interval` when they were stored as
    such, finer when they were resampled.
    """

    symbol: str
    market: str
    interval: str
    open_ms: np.ndarray  # int64, candle open times
    units: np.ndarray  # int64, shape (n, 5): open, high, low, close, volume in 1e-8 units
    source_interval: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.source_interval:
            object.__setattr__(self, "source_interval", self.interval)

    def __len__(self) -> int:
        return int(self.open_ms.shape[0])

    @property
    def resampled(self) -> bool:
        return self.source_interval != self.interval

    @property
    def interval_ms(self) -> int:
        return interval_ms(self.interval)

    @cached_property
    def close_ms(self) -> np.ndarray:
        return self.open_ms + self.interval_ms

    def _col(self, j: int) -> np.ndarray:
        out = self.units[:, j] / SCALE
        out.setflags(write=False)
        return out

    @cached_property
    def open(self) -> np.ndarray:
        return self._col(OPEN)

    @cached_property
    def high(self) -> np.ndarray:
        return self._col(HIGH)

    @cached_property
    def low(self) -> np.ndarray:
        return self._col(LOW)

    @cached_property
    def close(self) -> np.ndarray:
        return self._col(CLOSE)

    @cached_property
    def volume(self) -> np.ndarray:
        return self._col(VOLUME)

    def float_rows(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """open, high, low, close, volume of rows lo..hi-1 as read-only float64 arrays, equal bit for bit to
        `self.close[lo:hi]` etc.: views of the float columns once they exist (see `warm`), else converted for
        these rows only, so a tail window of a long series costs only its own rows."""
        d = self.__dict__
        if "volume" in d and "open" in d and "high" in d and "low" in d and "close" in d:
            return d["open"][lo:hi], d["high"][lo:hi], d["low"][lo:hi], d["close"][lo:hi], d["volume"][lo:hi]
        out = np.empty((5, max(hi - lo, 0)))  # one C-ordered block: each column is a contiguous row of it
        np.true_divide(self.units[lo:hi].T, SCALE, out=out)
        out.setflags(write=False)
        return out[OPEN], out[HIGH], out[LOW], out[CLOSE], out[VOLUME]

    def warm(self) -> Bars:
        """Compute the float columns now (worth it before many window reads, e.g. a backtest replay)."""
        for name in ("open", "high", "low", "close", "volume"):
            getattr(self, name)
        return self

    def slice_ms(self, start_ms: int | None = None, end_ms: int | None = None) -> Bars:
        """Bars with start_ms <= open_ms < end_ms (either bound optional)."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_ms, start_ms, side="left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.open_ms, end_ms, side="left"))
        return self.take(slice(lo, hi))

    def closed_by(self, t_ms: int) -> Bars:
        """Bars whose close time is <= t_ms: everything an analysis at time t may see."""
        return self.slice_ms(None, t_ms - self.interval_ms + 1)

    def take(self, index: slice | np.ndarray) -> Bars:
        return Bars(self.symbol, self.market, self.interval, self.open_ms[index], self.units[index],
                    self.source_interval, dict(self.meta))


def empty_bars(symbol: str, market: str, interval: str) -> Bars:
    return Bars(symbol, market, interval, np.empty(0, np.int64), np.empty((0, 5), np.int64))


def to_units(values: np.ndarray, what: str, source: str, first_line: int) -> np.ndarray:
    """Floats parsed from decimal text -> exact int64 1e-8 units; refuses more than 8 decimals."""
    too_big = np.flatnonzero(~(np.abs(values) < _MAX_VALUE))  # also catches NaN and inf
    if too_big.size:
        i = int(too_big[0])
        raise InputError(f"{source}:{first_line + i}: expected a finite {what} below {_MAX_VALUE:.3g}, "
                         f"was {values[i]!r}")
    scaled = values * SCALE
    units = np.rint(scaled)
    # Up to about 9e7 a float resolves the 8th decimal, so a leftover fraction means more than 8 decimals;
    # beyond that the float's own spacing is the tolerance (a relative error below 1e-15).
    bad = np.flatnonzero(np.abs(scaled - units) > np.maximum(1e-3, 4 * np.spacing(scaled)))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{source}:{first_line + i}: {what} {values[i]!r} has more than {SCALE_DECIMALS} decimals")
    return units.astype(np.int64)


def validate_rows(open_ms: np.ndarray, units: np.ndarray, interval: str, source: str,
                  line_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Check one file's rows and sort out exact duplicates.

    Refuses (naming the file and line): open time off the interval grid, time going backwards, one bar twice with
    different values, high < low, open/close outside [low, high], negative volume. Returns the rows in time order
    with exact duplicates removed, and the number of exact duplicates.
    """
    problems: list[str] = []
    step = interval_ms(interval)

    def report(mask: np.ndarray, text: str) -> None:
        for i in np.flatnonzero(mask)[:5]:
            problems.append(f"{source}:{int(line_of[i])}: {text(int(i))}")
        extra = int(np.count_nonzero(mask)) - 5
        if extra > 0:
            problems.append(f"{source}: ... and {extra} more rows like that")

    o, h, lo, c, v = (units[:, j] for j in range(5))
    report(open_ms % step != 0,
           lambda i: f"open_time {int(open_ms[i])} is not on the {interval} grid (expected a multiple of {step} ms)")
    report(h < lo, lambda i: f"high {h[i] / SCALE} < low {lo[i] / SCALE}")
    report((h >= lo) & ((o > h) | (o < lo) | (c > h) | (c < lo)),
           lambda i: f"open {o[i] / SCALE} / close {c[i] / SCALE} outside [low {lo[i] / SCALE}, high {h[i] / SCALE}]")
    report(v < 0, lambda i: f"negative volume {v[i] / SCALE}")
    if open_ms.size > 1:
        back = np.zeros(open_ms.size, bool)
        back[1:] = open_ms[1:] < open_ms[:-1]
        report(back, lambda i: f"time goes backwards: open_time {int(open_ms[i])} after {int(open_ms[i - 1])}")
    if problems:
        raise InputError("refused, nothing imported:\n" + "\n".join(problems))
    same = np.zeros(open_ms.size, bool)
    same[1:] = open_ms[1:] == open_ms[:-1]
    differs = same.copy()
    differs[1:] &= np.any(units[1:] != units[:-1], axis=1)
    report(differs, lambda i: f"bar {int(open_ms[i])} appears twice with different values "
                              f"(line {int(line_of[i - 1])} and here)")
    if problems:
        raise InputError("refused, nothing imported:\n" + "\n".join(problems))
    keep = ~same
    return open_ms[keep], units[keep], int(np.count_nonzero(same))


@dataclass(frozen=True)
class Gaps:
    count: int
    missing_bars: int
    largest_bars: int
    largest_after_ms: int | None  # open time of the last bar before the largest gap


def find_gaps(open_ms: np.ndarray, interval: str) -> Gaps:
    step = interval_ms(interval)
    if open_ms.size < 2:
        return Gaps(0, 0, 0, None)
    missing = np.diff(open_ms) // step - 1
    holes = np.flatnonzero(missing > 0)
    if holes.size == 0:
        return Gaps(0, 0, 0, None)
    worst = int(holes[np.argmax(missing[holes])])
    return Gaps(int(holes.size), int(missing[holes].sum()), int(missing[worst]), int(open_ms[worst]))


def resample(bars: Bars, target: str) -> Bars:
    """Aggregate to a coarser interval aligned to UTC (epoch-aligned buckets: 4h = 00,04,..,20; 1d = 00:00).

    OHLCV is aggregated exactly (first, max, min, last, sum of int units). A bucket is emitted only when every
    source bar in it is present: incomplete buckets (at the edges or around a gap) are left out, never filled.
    """
    src = bars.interval_ms
    dst = interval_ms(target)
    if dst == src:
        return bars
    if dst < src or dst % src:
        raise DataError(f"expected a target interval that is a multiple of {bars.interval}, was {target}")
    if len(bars) == 0:
        return Bars(bars.symbol, bars.market, target, bars.open_ms, bars.units, bars.source_interval)
    bucket = (bars.open_ms // dst) * dst
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, len(bars)])
    u = bars.units
    agg = np.empty((starts.size, 5), np.int64)
    agg[:, OPEN] = u[starts, OPEN]
    agg[:, HIGH] = np.maximum.reduceat(u[:, HIGH], starts)
    agg[:, LOW] = np.minimum.reduceat(u[:, LOW], starts)
    agg[:, CLOSE] = u[starts + counts - 1, CLOSE]
    agg[:, VOLUME] = np.add.reduceat(u[:, VOLUME], starts)
    complete = counts == dst // src
    return Bars(bars.symbol, bars.market, target, bucket[starts][complete], agg[complete], bars.source_interval)


def concat(parts: list[Bars]) -> Bars:
    """Join bars of one series given in time order (no overlap allowed)."""
    first = parts[0]
    open_ms = np.concatenate([p.open_ms for p in parts])
    units = np.concatenate([p.units for p in parts])
    if open_ms.size > 1 and np.any(np.diff(open_ms) <= 0):
        raise DataError(f"{first.symbol} {first.market} {first.interval}: chunks overlap or are out of order")
    return Bars(first.symbol, first.market, first.interval, open_ms, units, first.source_interval)


def merge_series(old_ms: np.ndarray, old_units: np.ndarray, new_ms: np.ndarray,
                 new_units: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Upsert `new` into `old` (both sorted, unique): new values win. Returns (ms, units, (inserted, updated, same))."""
    pos = np.searchsorted(old_ms, new_ms)
    hit = (pos < old_ms.size) & (old_ms[np.minimum(pos, max(old_ms.size - 1, 0))] == new_ms) if old_ms.size else \
        np.zeros(new_ms.size, bool)
    same = np.zeros(new_ms.size, bool)
    if hit.any():
        same[hit] = np.all(old_units[pos[hit]] == new_units[hit], axis=1)
    inserted = int(np.count_nonzero(~hit))
    updated = int(np.count_nonzero(hit & ~same))
    unchanged = int(np.count_nonzero(same))
    if inserted == 0 and updated == 0:
        return old_ms, old_units, (0, 0, unchanged)
    keep_old = np.ones(old_ms.size, bool)
    keep_old[pos[hit]] = False
    ms = np.concatenate([old_ms[keep_old], new_ms])
    units = np.concatenate([old_units[keep_old], new_units])
    order = np.argsort(ms, kind="stable")
    return ms[order], units[order], (inserted, updated, unchanged)
