"""Volume profile (algorithms.md §1): the §1.7 properties, the worked example, parity with the naive references.

Parity tolerance (kernel vs tests/reference/naive_volume_profile.py): rtol=1e-9 and atol=1e-9 * total volume.
The kernels work in row units, the references in price units, so the two differ by float rounding only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter1d

from gridcore.analysis import volume_profile as vp
from gridcore.analysis.volume_profile import (
    Nodes,
    Profile,
    ValueArea,
    point_of_control,
    row_height_for,
    value_area,
    volume_nodes,
    volume_profile,
    volume_profile_ltf,
)
from gridcore.errors import InputError
from tests.reference import naive_volume_profile as ref
from tests.reference import slow_analysis as slow

METHODS = ["uniform", "triangular", "path", "close"]
FEW = settings(max_examples=40)
SOME = settings(max_examples=60)


class Case(NamedTuple):
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tick: float
    rows: int


VOLUMES = st.one_of(st.just(0.0), st.floats(1e-3, 1e6), st.integers(1, 10_000).map(float))


@st.composite
def cases(draw, max_bars: int = 25, flat: bool = True) -> Case:
    """Bars on the tick grid (prices = integer ticks * tick), some flat, some with zero volume."""
    tick = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0, 5.0]))
    base = draw(st.integers(100, 200_000))
    cols: list[list[int]] = [[], [], [], []]
    volume = []
    for _ in range(draw(st.integers(1, max_bars))):
        lo = base + draw(st.integers(0, 300))
        hi = lo + draw(st.integers(0 if flat else 1, 80))
        for col, t in zip(cols, (draw(st.integers(lo, hi)), hi, lo, draw(st.integers(lo, hi))), strict=True):
            col.append(t)
        volume.append(draw(VOLUMES))
    o, h, lo_, c = (np.array(col, dtype=np.float64) * tick for col in cols)
    return Case(o, h, lo_, c, np.array(volume), tick, draw(st.integers(1, 60)))


def profile_of(case: Case, method: str, **kw) -> Profile:
    return volume_profile(case.high, case.low, case.close, case.volume, tick=case.tick, rows=case.rows,
                          method=method, open_=case.open, **kw)


def reference_profile(case: Case, method: str) -> tuple[list[float], list[float]]:
    lo, hi = float(case.low.min()), float(case.high.max())
    h = ref.row_height(lo, hi, case.tick, case.rows)
    edges = ref.edges_of(*ref.layout(lo, hi, h), h)
    args = (case.high.tolist(), case.low.tolist(), case.close.tolist(), case.volume.tolist())
    if method == "uniform":
        out = ref.profile_uniform(*args, edges)
    elif method == "triangular":
        out = ref.profile_triangular(*args, edges)
    elif method == "path":
        out = ref.profile_path(case.open.tolist(), *args, edges)
    else:
        out = ref.profile_close(case.close.tolist(), case.volume.tolist(), edges)
    return edges, out


def framed(tick: float, frame: tuple[float, float], bars: list[tuple[float, float, float, float, float]],
           method: str, row_height: float) -> Profile:
    """A zero-volume frame bar fixes the layout; `bars` are (open, high, low, close, volume)."""
    all_bars = [(frame[0], frame[1], frame[0], frame[0], 0.0), *bars]
    o, h, lo, c, v = (np.array(col, dtype=np.float64) for col in zip(*all_bars, strict=True))
    return volume_profile(h, lo, c, v, tick=tick, method=method, open_=o, row_height=row_height)


# ------------------------------------------------------------------------------------------------ bins, layout


@pytest.mark.parametrize(("low", "high", "tick", "rows", "expected"), [
    (100.0, 110.0, 0.1, 100, 0.1),      # exactly one tick per row, despite 10/100/0.1 = 1.0000000000000002
    (0.0, 10.0, 0.1, 3, 3.4),           # 33.3 ticks -> 34
    (0.3, 0.6, 0.1, 3, 0.1),            # 0.3/3/0.1 = 0.9999999999999998 -> one tick
    (5.0, 5.0, 0.5, 100, 0.5),          # flat window: one tick
    (100.0, 100.05, 0.1, 100, 0.1),     # less than a tick per row: one tick
])
def test_row_height_for(low, high, tick, rows, expected):
    assert row_height_for(low, high, tick=tick, rows=rows) == pytest.approx(expected, rel=1e-12)


def test_layout_floors_the_first_edge_to_the_row_height_and_covers_the_high():
    p = volume_profile([109.95], [100.05], [105.0], [1.0], tick=0.1, rows=100)
    assert p.row_height == pytest.approx(0.1)
    assert p.edges.shape == (101,) and p.volumes.shape == (100,)
    assert p.edges[0] == pytest.approx(100.0) and p.edges[-1] == pytest.approx(110.0)
    np.testing.assert_allclose(np.diff(p.edges), 0.1, rtol=1e-9)
    np.testing.assert_allclose(p.centres, p.edges[:-1] + 0.05, rtol=1e-12)
    assert p.total == pytest.approx(1.0)


def test_edges_are_multiples_of_the_row_height():
    p = volume_profile([100.9, 101.3], [100.2, 100.4], [100.5, 101.0], [1.0, 2.0], tick=0.1, row_height=0.3)
    k = p.edges / 0.3
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert round(k[0]) == 334 and p.volumes.shape == (4,)  # e_0 = 100.2 = 334 * 0.3 exactly on an edge


def test_price_on_an_interior_edge_goes_to_the_bin_above_and_the_top_edge_to_the_last_bin():
    # h = 0.3 (0.30000000000000004 in floats); edges 100.2, 100.5, 100.8, 101.1
    close = np.array([100.2, 100.5, 100.8, 101.1])
    p = volume_profile(close, close, close, [1.0, 2.0, 4.0, 8.0], tick=0.1, method="close", row_height=0.3)
    np.testing.assert_array_equal(p.volumes, [1.0, 2.0, 12.0])


@pytest.mark.parametrize("method", ["uniform", "triangular", "path"])
def test_bar_from_edge_to_edge_touches_only_the_bins_between(method):
    # frame 100.0..103.0, h = 0.5: bar from e_2 = 101.0 to e_4 = 102.0 touches bins 2 and 3 only
    p = framed(0.1, (100.0, 103.0), [(101.3, 102.0, 101.0, 101.6, 10.0)], method, 0.5)
    assert np.flatnonzero(p.volumes).tolist() == [2, 3]
    assert p.total == pytest.approx(10.0, rel=1e-12)


# ------------------------------------------------------------------------------------------------ distribution


@SOME
@given(case=cases(), method=st.sampled_from(METHODS))
def test_conservation_and_non_negativity(case, method):
    p = profile_of(case, method)
    total = case.volume.sum()
    assert np.all(p.volumes >= 0)
    if total == 0:
        assert np.all(p.volumes == 0)
    else:
        assert abs(p.total - total) / total < 1e-9


@SOME
@given(case=cases(), method=st.sampled_from(METHODS))
def test_kernels_match_the_naive_reference(case, method):
    p = profile_of(case, method)
    edges, expected = reference_profile(case, method)
    np.testing.assert_allclose(p.edges, edges, rtol=1e-12)
    np.testing.assert_allclose(p.volumes, expected, rtol=1e-9, atol=1e-9 * case.volume.sum())


def test_path_weights_wicks_twice_the_body():
    # bullish bar O=1, C=2, L=0, H=3 on h=1: path 0-1 twice, 1-2 once, 2-3 twice -> 2:1:2
    for o, c in [(1.0, 2.0), (2.0, 1.0)]:  # and the bearish mirror O->H->L->C
        p = volume_profile([3.0], [0.0], [c], [5.0], tick=1.0, rows=3, method="path", open_=[o])
        np.testing.assert_allclose(p.volumes, [2.0, 1.0, 2.0], rtol=1e-12)


def test_triangular_matches_the_closed_form():
    # L=0, H=3, C=0 -> mode TP=1; F(x) = x^2/3 on [0,1], 1-(3-x)^2/6 on [1,3]
    p = volume_profile([3.0], [0.0], [0.0], [9.0], tick=1.0, rows=3, method="triangular")
    np.testing.assert_allclose(p.volumes, [9 / 3, 9 * (5 / 6 - 1 / 3), 9 / 6], rtol=1e-12)


def test_zero_volume_bars_contribute_nothing_but_set_the_range():
    p = volume_profile([110.0, 101.0], [100.0, 100.0], [105.0, 100.5], [0.0, 3.0], tick=1.0, rows=10)
    assert p.edges[-1] == pytest.approx(110.0)
    np.testing.assert_allclose(p.volumes, [3.0] + [0.0] * 9)


@FEW
@given(tick=st.sampled_from([0.01, 0.1, 1.0]), k=st.integers(1, 6), j=st.integers(0, 40),
       offset=st.integers(0, 5), volume=st.floats(1e-3, 1e6), method=st.sampled_from(METHODS))
def test_flat_bar_puts_all_volume_in_the_bin_of_its_close(tick, k, j, offset, volume, method):
    h = k * tick
    price = 1000 * h + (j * k + min(offset, k - 1)) * tick  # on the tick grid, in bin j of the frame
    p = framed(tick, (1000 * h, 1050 * h), [(price, price, price, price, volume)], method, h)
    assert np.flatnonzero(p.volumes).tolist() == [j]
    assert p.volumes[j] == pytest.approx(volume, rel=1e-12)


@FEW
@given(tick=st.sampled_from([0.01, 0.1, 1.0]), k=st.integers(2, 8), j=st.integers(0, 40), data=st.data(),
       volume=st.floats(1e-3, 1e6), method=st.sampled_from(METHODS))
def test_bar_inside_one_bin_puts_all_volume_there(tick, k, j, data, volume, method):
    h = k * tick
    # bin j is [e_j, e_j+1): a spread bar may end on e_j+1 (zero overlap above), a close on e_j+1 is in bin j + 1
    top = k if method != "close" else k - 1
    lo_t = data.draw(st.integers(0, top - 1))
    hi_t = data.draw(st.integers(lo_t + 1, top))
    o_t, c_t = data.draw(st.integers(lo_t, hi_t)), data.draw(st.integers(lo_t, hi_t))
    e_j = (1000 + j) * h
    o, hi, lo, c = (e_j + t * tick for t in (o_t, hi_t, lo_t, c_t))
    p = framed(tick, (1000 * h, 1050 * h), [(o, hi, lo, c, volume)], method, h)
    assert np.flatnonzero(p.volumes).tolist() == [j]
    assert p.volumes[j] == pytest.approx(volume, rel=1e-9)


@FEW
@given(tick=st.sampled_from([0.01, 0.1, 1.0]), k=st.integers(1, 5), a=st.integers(0, 30), width=st.integers(1, 15),
       volume=st.floats(1e-3, 1e6))
def test_uniform_bar_over_k_whole_bins_gives_each_v_over_k(tick, k, a, width, volume):
    h = k * tick
    lo, hi = (1000 + a) * h, (1000 + a + width) * h
    p = framed(tick, (1000 * h, 1050 * h), [(lo, hi, lo, hi, volume)], "uniform", h)
    expected = np.zeros(50)
    expected[a:a + width] = volume / width
    np.testing.assert_allclose(p.volumes, expected, rtol=1e-12, atol=0)


@FEW
@given(case=cases(), method=st.sampled_from(METHODS), c=st.floats(1e-3, 1e3))
def test_profile_is_linear_in_volume(case, method, c):
    p = profile_of(case, method)
    q = profile_of(case._replace(volume=case.volume * c), method)
    np.testing.assert_array_equal(q.edges, p.edges)
    np.testing.assert_allclose(q.volumes, c * p.volumes, rtol=1e-12, atol=0)


@FEW
@given(case=cases(flat=False), method=st.sampled_from(METHODS), e=st.integers(-20, 20), step=st.sampled_from([1, 2]))
def test_poc_value_area_and_nodes_are_unchanged_by_scaling_volume(case, method, e, step):
    # a power of two scales every float operation exactly, so the derived results must be identical
    p = profile_of(case, method)
    q = profile_of(case._replace(volume=case.volume * 2.0**e), method)
    np.testing.assert_array_equal(q.volumes, p.volumes * 2.0**e)
    poc = point_of_control(p.volumes)
    assert point_of_control(q.volumes) == poc
    va_p, va_q = value_area(p.volumes, poc, step=step), value_area(q.volumes, poc, step=step)
    assert (va_q.lo, va_q.hi, va_q.share) == (va_p.lo, va_p.hi, va_p.share)
    n_p, n_q = volume_nodes(p.volumes), volume_nodes(q.volumes)
    np.testing.assert_array_equal(n_q.hvn, n_p.hvn)
    np.testing.assert_array_equal(n_q.lvn, n_p.lvn)


def test_poc_value_area_and_nodes_are_unchanged_by_a_non_binary_scale():
    v = bimodal(100, (20, 70), (100.0, 60.0))
    for c in (3.7, 0.013):
        assert point_of_control(v * c) == point_of_control(v)
        va, vc = value_area(v, point_of_control(v)), value_area(v * c, point_of_control(v))
        assert (vc.lo, vc.hi) == (va.lo, va.hi) and vc.share == pytest.approx(va.share, rel=1e-12)
        nodes, scaled = volume_nodes(v), volume_nodes(v * c)
        np.testing.assert_array_equal(scaled.hvn, nodes.hvn)
        np.testing.assert_array_equal(scaled.lvn, nodes.lvn)


@SOME
@given(case=cases(), method=st.sampled_from(METHODS), m=st.integers(-80, 80))
def test_translation_by_whole_rows_shifts_the_profile_by_whole_bins(case, method, m):
    p = profile_of(case, method)
    shift = m * p.row_height
    moved = case._replace(open=case.open + shift, high=case.high + shift, low=case.low + shift,
                          close=case.close + shift)
    q = profile_of(moved, method)
    assert q.row_height == pytest.approx(p.row_height, rel=1e-12)
    assert q.volumes.shape == p.volumes.shape
    assert round(q.edges[0] / q.row_height) == round(p.edges[0] / p.row_height) + m
    np.testing.assert_allclose(q.volumes, p.volumes, rtol=1e-9, atol=1e-9 * case.volume.sum())


# ------------------------------------------------------------------------------------------------ lower timeframe


@st.composite
def ltf_cases(draw) -> tuple[Case, Case]:
    window = draw(cases(max_bars=8))
    lo_t = int(round(window.low.min() / window.tick))
    hi_t = int(round(window.high.max() / window.tick))
    cols: list[list[int]] = [[], [], [], []]
    volume = []
    for _ in range(draw(st.integers(1, 20))):
        lo = draw(st.integers(lo_t, hi_t))
        hi = draw(st.integers(lo, hi_t))
        for col, t in zip(cols, (lo, hi, lo, draw(st.integers(lo, hi))), strict=True):
            col.append(t)
        volume.append(draw(VOLUMES))
    o, h, lo_, c = (np.array(col, dtype=np.float64) * window.tick for col in cols)
    return window, Case(o, h, lo_, c, np.array(volume), window.tick, window.rows)


@SOME
@given(pair=ltf_cases())
def test_ltf_conserves_the_finer_volume_on_the_window_layout(pair):
    window, fine = pair
    p = volume_profile_ltf(window.high, window.low, fine.high, fine.low, fine.close, fine.volume,
                           tick=window.tick, rows=window.rows)
    layout = profile_of(window, "uniform")
    np.testing.assert_array_equal(p.edges, layout.edges)
    assert np.all(p.volumes >= 0)
    total = fine.volume.sum()
    if total == 0:
        assert np.all(p.volumes == 0)
    else:
        assert abs(p.total - total) / total < 1e-9
    edges = layout.edges.tolist()
    expected = ref.profile_uniform(fine.high.tolist(), fine.low.tolist(), fine.close.tolist(), fine.volume.tolist(),
                                   edges)
    np.testing.assert_allclose(p.volumes, expected, rtol=1e-9, atol=1e-9 * total)


@FEW
@given(case=cases())
def test_ltf_with_the_window_bars_themselves_is_the_uniform_profile(case):
    p = volume_profile_ltf(case.high, case.low, case.high, case.low, case.close, case.volume, tick=case.tick,
                           rows=case.rows)
    np.testing.assert_array_equal(p.volumes, profile_of(case, "uniform").volumes)


def test_ltf_refuses_finer_bars_outside_the_window():
    with pytest.raises(InputError, match="expected the lower-timeframe bars inside"):
        volume_profile_ltf([110.0], [100.0], [111.0], [105.0], [106.0], [1.0], tick=0.1)


# ------------------------------------------------------------------------------------------------ POC


@pytest.mark.parametrize(("v", "expected"), [
    ([1, 5, 2], 1),                 # plain argmax
    ([1, 3, 3, 1], 1),              # tied pair straddling the middle (1.5): equidistant -> lower
    ([3, 1, 1, 3], 0),              # tied at both ends: equidistant -> lower
    ([3, 0, 0, 0, 3, 0], 4),        # mid 2.5: index 4 (1.5 away) beats index 0 (2.5 away)
    ([5, 1, 5, 1, 1], 2),           # mid 2: the middle one
    ([4, 0, 0, 0, 0, 0, 0, 4, 0], 7),  # mid 4: 7 is 3 away, 0 is 4 away
    ([0, 0, 0, 0], 1),              # empty profile: the middle, lower
    ([7.0], 0),
])
def test_point_of_control_tie_break(v, expected):
    assert point_of_control(np.array(v, dtype=np.float64)) == expected


def test_point_of_control_treats_float_noise_as_a_tie():
    v = np.array([0.1 + 0.2, 0.0, 0.3, 0.0, 0.0])  # 0.30000000000000004 vs 0.3
    assert int(np.argmax(v)) == 0
    assert point_of_control(v) == 2


@SOME
@given(v=st.lists(st.integers(0, 20), min_size=1, max_size=40))
def test_point_of_control_matches_the_reference(v):
    arr = np.array(v, dtype=np.float64)
    poc = point_of_control(arr)
    assert poc == ref.point_of_control(v)
    assert arr[poc] == arr.max()


# ------------------------------------------------------------------------------------------------ value area


def test_value_area_worked_example():
    v = np.array([5, 10, 20, 40, 80, 60, 30, 20, 10, 5], dtype=np.float64)
    poc = point_of_control(v)
    va = value_area(v, poc)
    assert poc == 4
    assert va == ValueArea(lo=2, hi=6, volume=230.0, share=230.0 / 280.0)
    edges = np.arange(11) * 0.5 + 100.0
    assert va.prices(edges) == (101.0, 103.5)


def test_value_area_one_row_at_a_time():
    v = np.array([5, 10, 20, 40, 80, 60, 30, 20, 10, 5], dtype=np.float64)
    va = value_area(v, 4, step=1)
    # 80 -> +60 (140) -> +40 (180, 40 > 30) -> +30 (210 >= 196)
    assert (va.lo, va.hi, va.volume) == (3, 6, 210.0)
    assert (va.lo, va.hi, va.volume) == ref.value_area(v.tolist(), 4, step=1)[:3]


def test_value_area_tie_goes_above_and_edges_count_zero():
    va = value_area(np.array([1.0, 1.0, 4.0, 1.0, 1.0]), 2, pct=0.7)  # up 2 == down 2 -> above
    assert (va.lo, va.hi) == (2, 4)
    # up = v[3] + 0 (beyond the top) = 3 < down = 2 + 2 = 4 -> below, although v[3] > v[1]
    va = value_area(np.array([2.0, 2.0, 9.0, 3.0]), 2)
    assert (va.lo, va.hi, va.volume) == (0, 2, 13.0)


def test_value_area_of_an_empty_profile_is_the_poc_row():
    assert value_area(np.zeros(5), 2) == ValueArea(2, 2, 0.0, 0.0)


VOLUME_LISTS = st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1e3)), min_size=1, max_size=60)


def _last_groups_removed(v: np.ndarray, lo: int, hi: int, poc: int, step: int) -> list[float]:
    """Volume left after removing the last group added above, or below (one of them was the last one)."""
    left = []
    if hi > poc:
        k = (hi - poc - 1) % step + 1
        left.append(float(v[lo:hi + 1 - k].sum()))
    if lo < poc:
        k = (poc - lo - 1) % step + 1
        left.append(float(v[lo + k:hi + 1].sum()))
    return left


@SOME
@given(v=VOLUME_LISTS, step=st.sampled_from([1, 2]), pct=st.floats(0.05, 1.0))
def test_value_area_properties(v, step, pct):
    v = np.array(v)
    n, total = v.size, float(v.sum())
    poc = point_of_control(v)
    va = value_area(v, poc, pct=pct, step=step)
    edges = 50.0 + 0.25 * np.arange(n + 1)
    val, vah = va.prices(edges)
    assert 0 <= va.lo <= poc <= va.hi < n
    assert val <= edges[poc] + 0.125 <= vah
    assert va.volume == pytest.approx(float(v[va.lo:va.hi + 1].sum()), rel=1e-12, abs=1e-12)
    target = pct * total
    assert va.volume >= target or (va.lo, va.hi) == (0, n - 1)
    if (va.lo, va.hi) != (poc, poc):
        assert min(_last_groups_removed(v, va.lo, va.hi, poc, step)) < target * (1 + 1e-12)
    if total > 0:
        assert va.share == pytest.approx(va.volume / total, rel=1e-12)


@SOME
@given(v=st.lists(st.integers(0, 1000), min_size=1, max_size=60), step=st.sampled_from([1, 2]),
       pct=st.sampled_from([0.5, 0.68, 0.7, 0.9, 1.0]))
def test_value_area_matches_the_reference_and_the_last_group_was_needed(v, step, pct):
    arr = np.array(v, dtype=np.float64)
    poc = point_of_control(arr)
    va = value_area(arr, poc, pct=pct, step=step)
    lo, hi, acc, groups = ref.value_area([float(x) for x in v], poc, pct=pct, step=step)
    assert (va.lo, va.hi, va.volume) == (lo, hi, acc)
    if groups:  # integer volumes: sums are exact, so "removing the last group leaves < pct * total" is exact
        side, k = groups[-1]
        before = arr[lo:hi + 1 - k].sum() if side == "up" else arr[lo + k:hi + 1].sum()
        assert before < pct * arr.sum()


@SOME
@given(rise=st.lists(st.integers(1, 50), max_size=25), extra=st.integers(1, 50), step=st.sampled_from([1, 2]),
       pct=st.floats(0.05, 1.0))
def test_value_area_of_a_symmetric_unimodal_profile_is_balanced(rise, extra, step, pct):
    side = np.cumsum(rise).tolist()  # strictly increasing towards the peak, integer-valued
    peak = (side[-1] if side else 0) + extra
    v = np.array(side + [peak] + side[::-1], dtype=np.float64)
    poc = point_of_control(v)
    assert poc == len(side)
    va = value_area(v, poc, pct=pct, step=step)
    assert abs((va.hi - poc) - (poc - va.lo)) <= step


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"poc": 5}, "expected poc < 5"),
    ({"poc": -1}, "expected poc to be an integer >= 0"),
    ({"poc": 1, "step": 3}, "expected step 1 or 2"),
    ({"poc": 1, "pct": 0.0}, "expected 0 < pct <= 1"),
    ({"poc": 1, "pct": 1.5}, "expected 0 < pct <= 1"),
])
def test_value_area_refuses_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        value_area(np.ones(5), **kwargs)


# ------------------------------------------------------------------------------------------------ HVN / LVN


def bimodal(n: int, means: tuple[int, ...], heights: tuple[float, ...], width: float = 5.0) -> np.ndarray:
    x = np.arange(n, dtype=np.float64)
    return sum(hgt * np.exp(-0.5 * ((x - mu) / width) ** 2) for mu, hgt in zip(means, heights, strict=True))


def _check_nodes(nodes: Nodes, v: np.ndarray, sigma: float, prominence: float, distance: int) -> None:
    y = nodes.smoothed
    np.testing.assert_array_equal(y, gaussian_filter1d(v, sigma, mode="constant") if sigma > 0 else v)
    assert nodes.hvn.dtype == np.int64 and nodes.lvn.dtype == np.int64
    assert np.all(np.diff(nodes.hvn) >= distance) and np.all(np.diff(nodes.lvn) > 0)
    assert nodes.hvn_prominence.shape == nodes.hvn.shape
    assert np.all(nodes.hvn_prominence >= prominence - 1e-12)
    for i in nodes.hvn:
        assert 0 < i < y.size - 1 and y[i] >= y[i - 1] and y[i] >= y[i + 1]
    for i in nodes.lvn:
        assert 0 < i < y.size - 1 and y[i] <= y[i - 1] and y[i] <= y[i + 1]
    assert not set(nodes.hvn.tolist()) & set(nodes.lvn.tolist())
    for a, b in zip(nodes.hvn[:-1], nodes.hvn[1:], strict=True):
        inside = nodes.lvn[(nodes.lvn > a) & (nodes.lvn < b)]
        assert inside.size == 1 and y[inside[0]] == y[a:b + 1].min()


@SOME
@given(v=st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1e4)), min_size=3, max_size=80),
       sigma=st.sampled_from([0.0, 0.8, 1.5, 3.0]), prominence=st.sampled_from([0.0, 0.05, 0.1, 0.3]),
       distance=st.integers(1, 5))
def test_nodes_properties(v, sigma, prominence, distance):
    v = np.array(v)
    nodes = volume_nodes(v, sigma=sigma, prominence=prominence, distance=distance)
    _check_nodes(nodes, v, sigma, prominence, distance)


def test_nodes_of_a_bimodal_profile():
    v = bimodal(100, (20, 70), (100.0, 60.0))
    nodes = volume_nodes(v)
    _check_nodes(nodes, v, 1.5, 0.10, 3)
    assert nodes.hvn.tolist() == [20, 70]
    assert nodes.lvn.size == 1 and 40 <= nodes.lvn[0] <= 50
    np.testing.assert_allclose(nodes.hvn_prominence, [1.0, 0.6], atol=0.02)


def test_nodes_keep_one_lvn_between_hvns_when_there_are_several_troughs():
    # no smoothing; the peak at 12 is dropped by distance=3, so troughs at 11 and 13..29 both lie between the HVNs
    v = np.zeros(40)
    v[[10, 12, 30]] = [10.0, 9.0, 10.0]
    nodes = volume_nodes(v, sigma=0.0, distance=3)
    assert nodes.hvn.tolist() == [10, 30]
    assert nodes.lvn.tolist() == [11]


def test_nodes_find_an_lvn_outside_the_outermost_hvn():
    v = bimodal(100, (30,), (100.0,))
    v[99] += 100.0  # volume piled on the top row: y rises into the edge (no peak there), so a trough lies between
    nodes = volume_nodes(v)
    _check_nodes(nodes, v, 1.5, 0.10, 3)
    assert nodes.hvn.tolist() == [30]
    assert nodes.lvn.size == 1 and 40 < nodes.lvn[0] < 95


def test_nodes_of_an_empty_or_flat_profile():
    for v in (np.zeros(10), np.ones(10)):
        nodes = volume_nodes(v, sigma=0.0)
        assert nodes.hvn.size == 0 and nodes.lvn.size == 0


def test_nodes_edge_shelf_is_an_hvn_with_zero_padding():
    v = np.zeros(30)
    v[:3] = 10.0  # volume concentrated at the bottom edge
    v[20] = 5.0
    nodes = volume_nodes(v)
    assert nodes.hvn.tolist() == [1, 20]


# ------------------------------------------------------------------------------------------------ validation


GOOD = {"high": [2.0, 3.0], "low": [1.0, 1.5], "close": [1.5, 2.0], "volume": [1.0, 1.0]}


@pytest.mark.parametrize(("change", "match"), [
    ({"high": [2.0]}, "expected arrays of equal length"),
    ({"high": [2.0, np.nan]}, "expected finite high"),
    ({"low": [1.0, np.inf]}, "expected finite low"),
    ({"high": [0.5, 3.0], "close": [0.7, 2.0]}, "expected high >= low"),
    ({"close": [2.5, 2.0]}, "expected low <= close <= high"),
    ({"volume": [1.0, -1.0]}, "expected volume >= 0"),
    ({"high": [], "low": [], "close": [], "volume": []}, "expected at least one bar"),
    ({"high": [[2.0, 3.0]]}, "expected high to be 1-D"),
    ({"tick": 0.0}, "expected a finite positive tick"),
    ({"tick": float("nan")}, "expected a finite positive tick"),
    ({"rows": 0}, "expected rows to be an integer >= 1"),
    ({"rows": 2.5}, "expected rows to be an integer >= 1"),
    ({"method": "vwap"}, "expected method out of"),
    ({"method": "path"}, "expected open_ for method 'path'"),
    ({"method": "path", "open_": [3.0, 2.0]}, "expected low <= open <= high"),
    ({"row_height": 0.25}, "expected row_height to be a positive multiple of tick"),
    ({"row_height": -0.1}, "expected a finite positive row_height"),
])
def test_volume_profile_refuses_bad_input(change, match):
    kwargs = {**GOOD, "tick": 0.1, **change}
    with pytest.raises(InputError, match=match):
        volume_profile(kwargs.pop("high"), kwargs.pop("low"), kwargs.pop("close"), kwargs.pop("volume"), **kwargs)


def test_other_functions_refuse_bad_input():
    with pytest.raises(InputError, match="expected high >= low"):
        row_height_for(2.0, 1.0, tick=0.1, rows=10)
    with pytest.raises(InputError, match="expected volumes >= 0"):
        point_of_control(np.array([1.0, -1.0]))
    with pytest.raises(InputError, match="expected at least one bin"):
        point_of_control(np.array([]))
    with pytest.raises(InputError, match="expected distance to be an integer >= 1"):
        volume_nodes(np.ones(5), distance=0)


def test_profile_arrays_are_read_only():
    p = volume_profile([2.0], [1.0], [1.5], [1.0], tick=0.1, rows=4)
    with pytest.raises(ValueError):
        p.volumes[0] = 5.0


# ------------------------------------------------------------------------------------------------ kernel parity
# point_of_control, value_area and volume_nodes run numba kernels (and a port of scipy's find_peaks and
# gaussian_filter1d); tests/reference/slow_analysis.py keeps the numpy / scipy versions they must equal bit for bit.

TIED_VOLUMES = st.lists(st.sampled_from([0.0, 1.0, 2.0, 2.5, 7.0]), min_size=1, max_size=90)  # plateaus and ties
FREE_VOLUMES = st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1e6)), min_size=1, max_size=150)


def _same_nodes(a: Nodes, b: Nodes) -> None:
    for name in ("hvn", "lvn", "smoothed", "hvn_prominence"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


@SOME
@given(v=st.one_of(TIED_VOLUMES, FREE_VOLUMES), step=st.sampled_from([1, 2]), pct=st.sampled_from([0.3, 0.7, 1.0]))
def test_poc_and_value_area_equal_the_numpy_reference(v, step, pct):
    v = np.array(v)
    poc = point_of_control(v)
    assert poc == slow.point_of_control(v)
    assert repr(value_area(v, poc, pct=pct, step=step)) == repr(slow.value_area(v, poc, pct=pct, step=step))


@settings(max_examples=150)
@given(v=st.one_of(TIED_VOLUMES, FREE_VOLUMES), sigma=st.sampled_from([0.0, 0.3, 0.8, 1.5, 3.0, 7.5]),
       prominence=st.sampled_from([0.0, 0.02, 0.1, 0.3]), distance=st.integers(1, 6))
def test_nodes_equal_scipy_find_peaks_bit_for_bit(v, sigma, prominence, distance):
    v = np.array(v)
    _same_nodes(volume_nodes(v, sigma=sigma, prominence=prominence, distance=distance),
                slow.volume_nodes(v, sigma=sigma, prominence=prominence, distance=distance))


def test_nodes_equal_scipy_on_many_random_profiles():
    rng = np.random.default_rng(1)
    for k in range(400):
        n = int(rng.integers(3, 220))
        v = rng.exponential(1.0, n) * 10.0 ** rng.integers(-2, 7)
        v[rng.random(n) < rng.uniform(0, 0.6)] = 0.0
        if k % 3 == 0:
            v = np.round(v, 1)  # equal heights, so the argsort's tie order matters
        sigma = float(rng.choice([0.0, 0.5, 1.5, 2.2]))
        kw = {"sigma": sigma, "prominence": float(rng.choice([0.0, 0.05, 0.1])), "distance": int(rng.integers(1, 8))}
        _same_nodes(volume_nodes(v, **kw), slow.volume_nodes(v, **kw))


@pytest.mark.parametrize("sigma", [1e-3, 0.1, 0.5, 0.7, 1.0, 1.5, 2.0, 3.3, 12.0])
def test_the_gaussian_port_equals_gaussian_filter1d(sigma):
    rng = np.random.default_rng(int(sigma * 1000))
    assert vp._gaussian_weights(sigma) is not None  # this scipy is reproduced (else the port is bypassed)
    for n in (1, 2, 5, 50, 100, 333):
        v = rng.random(n) * 10.0 ** rng.integers(-3, 8)
        v[rng.random(n) < 0.4] = 0.0
        assert vp._gaussian(v, sigma).tobytes() == gaussian_filter1d(v, sigma, mode="constant").tobytes()


def test_the_fast_bar_check_falls_back_to_the_precise_messages():
    h, lo, c, v = np.array([2.0, 3.0]), np.array([1.0, 1.0]), np.array([1.5, 2.0]), np.array([1.0, 1.0])
    with pytest.raises(InputError, match=r"expected finite low, was .*nan.* at index 1"):
        volume_profile(h, np.array([1.0, np.nan]), c, v, tick=0.1)
    with pytest.raises(InputError, match=r"expected low <= close <= high, was violated at index 0 \(1 bars\)"):
        volume_profile(h, lo, np.array([0.5, 2.0]), v, tick=0.1)
    with pytest.raises(InputError, match="low <= open <= high"):
        volume_profile(h, lo, c, v, tick=0.1, method="path", open_=np.array([1.0, 9.0]))
    with pytest.raises(InputError, match="expected arrays of equal length"):
        volume_profile(h, lo, c, v[:1], tick=0.1)
    assert volume_profile(h.tolist(), lo.tolist(), c.tolist(), v.tolist(), tick=0.1).total == 2.0
