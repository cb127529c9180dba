"""The intrabar price path of a closed bar (algorithms.md §5.2), in exact Decimals.

Rules (`FillPolicyParams.path`):

* `bar_direction` (default): bullish bar (C >= O) O→L→H→C, bearish bar O→H→L→C.
* `adaptive` (Nautilus `bar_adaptive_high_low_ordering`): O→H→L→C when H is strictly closer to O than L,
  else O→L→H→C (a tie goes low first).
* `high_first`: always O→H→L→C.

The previous close is prepended (C_{t−1}→O) when it differs from O, so gaps are walked by the same code. The body
always has four points, O, one extreme, the other extreme, C, so H and L are each visited once (zero-length legs
are kept: a matcher skips them, and the mark path aligns leg by leg with the trade path).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from gridcore.bars import SCALE_DECIMALS
from gridcore.errors import InputError

PathRule = Literal["bar_direction", "adaptive", "high_first"]
PATH_RULES: tuple[str, ...] = ("bar_direction", "adaptive", "high_first")


def units_to_decimal(units: int) -> Decimal:
    """Exact Decimal of a gridcore.bars int 1e-8 unit value."""
    return Decimal(int(units)).scaleb(-SCALE_DECIMALS)


@dataclass(frozen=True, slots=True)
class SimBar:
    """One closed bar as the simulator sees it: open time and exact Decimal OHLCV."""

    ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise InputError(f"bar {self.ms}: expected low <= open, close <= high, was O {self.open} H {self.high} "
                             f"L {self.low} C {self.close}")
        if self.low <= 0:
            raise InputError(f"bar {self.ms}: expected prices > 0, was low {self.low}")

    @classmethod
    def from_units(cls, ms: int, o: int, h: int, lo: int, c: int, v: int = 0) -> SimBar:
        """From the int 1e-8 units of gridcore.bars (exact)."""
        return cls(int(ms), units_to_decimal(o), units_to_decimal(h), units_to_decimal(lo), units_to_decimal(c),
                   units_to_decimal(v))


def extremes(bar: SimBar, rule: PathRule = "bar_direction") -> tuple[Decimal, Decimal]:
    """(first extreme, second extreme) visited after O."""
    if rule == "bar_direction":
        high_first = bar.close < bar.open
    elif rule == "adaptive":
        high_first = bar.high - bar.open < bar.open - bar.low
    elif rule == "high_first":
        high_first = True
    else:
        raise InputError(f"expected a path rule in {PATH_RULES}, was {rule!r}")
    return (bar.high, bar.low) if high_first else (bar.low, bar.high)


def bar_body(bar: SimBar, rule: PathRule = "bar_direction") -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """O, first extreme, second extreme, C."""
    x, y = extremes(bar, rule)
    return bar.open, x, y, bar.close


def bar_path(bar: SimBar, rule: PathRule = "bar_direction", prev_close: Decimal | None = None) -> tuple[Decimal, ...]:
    """The bar's path: [prev_close when it differs from O] + O, extreme, extreme, C."""
    body = bar_body(bar, rule)
    if prev_close is not None and prev_close != bar.open:
        return (prev_close, *body)
    return body
