"""The intrabar path (algorithms.md §5.2, §5.9)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcore.errors import InputError
from gridcore.sim.path import PATH_RULES, SimBar, bar_body, bar_path, units_to_decimal
from tests.reference.naive_fills import naive_path


@st.composite
def bars(draw) -> tuple[SimBar, D | None]:
    lo = draw(st.integers(1, 1000))
    hi = draw(st.integers(lo, lo + 500))
    o, c = draw(st.integers(lo, hi)), draw(st.integers(lo, hi))
    prev = draw(st.none() | st.integers(1, 2000))
    tick = D("0.1")
    return SimBar(0, o * tick, hi * tick, lo * tick, c * tick), None if prev is None else prev * tick


@given(bars(), st.sampled_from(PATH_RULES))
def test_path_starts_at_open_ends_at_close_and_visits_high_and_low_once(case, rule):
    bar, prev = case
    path = bar_path(bar, rule, prev)
    gap = prev is not None and prev != bar.open
    assert len(path) == (5 if gap else 4)
    if gap:
        assert path[0] == prev
    body = path[-4:]
    assert body[0] == bar.open and body[-1] == bar.close
    assert sorted(body[1:3]) == [bar.low, bar.high]
    assert list(path) == naive_path(bar.open, bar.high, bar.low, bar.close, prev, rule)


def test_bar_direction_goes_low_first_on_bullish_and_high_first_on_bearish_bars():
    up = SimBar(0, D(10), D(12), D(9), D(11))
    down = SimBar(0, D(11), D(12), D(9), D(10))
    assert bar_body(up) == (D(10), D(9), D(12), D(11))
    assert bar_body(down) == (D(11), D(12), D(9), D(10))
    doji = SimBar(0, D(10), D(12), D(9), D(10))
    assert bar_body(doji)[1] == D(9)  # C >= O counts as bullish


def test_adaptive_visits_the_nearer_extreme_first_and_ties_go_low_first():
    assert bar_body(SimBar(0, D(10), D(11), D(7), D(8)), "adaptive")[1] == D(11)
    assert bar_body(SimBar(0, D(10), D(13), D(9), D(12)), "adaptive")[1] == D(9)
    assert bar_body(SimBar(0, D(10), D(12), D(8), D(9)), "adaptive")[1] == D(8)


def test_high_first_always_visits_the_high_first():
    assert bar_body(SimBar(0, D(10), D(12), D(9), D(11)), "high_first") == (D(10), D(12), D(9), D(11))


def test_gap_segment_is_prepended_only_when_the_previous_close_differs():
    bar = SimBar(0, D(10), D(12), D(9), D(11))
    assert bar_path(bar, prev_close=D(10)) == bar_body(bar)
    assert bar_path(bar, prev_close=D(13))[:2] == (D(13), D(10))


def test_units_convert_exactly_to_decimal():
    assert units_to_decimal(6_000_012_345_678) == D("60000.12345678")
    assert SimBar.from_units(5, 100, 200, 50, 150, 7).high == D("0.000002")


def test_bad_bar_is_refused_with_expected_was_message():
    with pytest.raises(InputError, match="expected low <= open, close <= high, was"):
        SimBar(0, D(13), D(12), D(9), D(11))
    with pytest.raises(InputError, match="expected a path rule"):
        bar_body(SimBar(0, D(10), D(12), D(9), D(11)), "random")  # type: ignore[arg-type]
