"""Four-peaks box, MA25 confluence snap and MA25 bias."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gridcore.analysis.indicators import sma
from gridcore.analysis.levels import LEVEL_NAMES, Box, four_peaks_box, ma25_snap, ma_bias, ma_slope
from gridcore.errors import ConfigError, InputError
from tests.reference import slow_analysis as slow

MEANS = (100.0, 105.0, 111.0, 118.0)


def gaussian_profile(amps=(1.0, 1.0, 1.0, 1.0), sigma=1.0, h=0.25, lo=95.0, hi=123.0, floor=0.0):
    centres = np.arange(lo, hi, h) + h / 2
    volumes = sum(a * np.exp(-0.5 * ((centres - m) / sigma) ** 2) for a, m in zip(amps, MEANS, strict=True))
    return centres, volumes + floor * volumes.max()


@st.composite
def four_gaussians(draw):
    amps = tuple(draw(st.lists(st.floats(0.5, 2.0), min_size=4, max_size=4)))
    sigma = draw(st.floats(0.5, 1.2))
    h = draw(st.floats(0.05, 0.5))
    floor = draw(st.sampled_from([0.0, 1e-3]))
    return (*gaussian_profile(amps, sigma, h, floor=floor), h)


@st.composite
def random_profiles(draw):
    """Random bins on a grid with random zeros; price somewhere inside; ATR a fraction of the range."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 120))
    h = draw(st.sampled_from([0.1, 0.5, 2.0, 50.0]))
    centres = 1000.0 + h * (np.arange(n) + 0.5)
    volumes = rng.exponential(1.0, n) * (rng.random(n) > draw(st.floats(0.0, 0.9)))
    price = float(centres[0] + rng.uniform(0, n * h))
    atr = float(h * rng.uniform(0, 10))
    return centres, volumes, price, atr, h


def _box(centres, volumes, price=108.0, atr=1.0, h=0.25, **kw) -> Box:
    return four_peaks_box(centres, volumes, price=price, atr=atr, row_height=h, **kw)


def _assert_valid_shape(box: Box):
    assert box.s2 < box.s1 < box.price < box.r1 < box.r2
    assert box.s1 - box.s2 >= box.gap and box.r2 - box.r1 >= box.gap
    assert box.reasons == ()


# --- four-peaks box ---------------------------------------------------------------------------------------------


def test_four_gaussians_example():
    c, v = gaussian_profile()
    box = _box(c, v)
    assert box.valid, box.reasons
    for level, mean in zip(box.levels, MEANS, strict=True):
        assert abs(level - mean) <= 0.125 + 1e-12
    assert box.gap == pytest.approx(max(0.5 * 1.0, 0.003 * 108.0))
    assert all(s == pytest.approx(0.5, abs=0.02) for s in box.shares)
    for (lo, hi), level, centroid in zip(box.bounds, box.levels, box.centroids, strict=True):
        assert lo <= level <= hi and lo <= centroid <= hi
    assert box.confluent is None and box.level_mode == "peak"


@settings(max_examples=60)
@given(four_gaussians())
def test_four_gaussians_recovered_within_one_bin(p):
    c, v, h = p
    box = _box(c, v, h=h)
    assert box.valid, box.reasons
    for level, mean in zip(box.levels, MEANS, strict=True):
        assert abs(level - mean) < 1.5 * h + 1e-9


@settings(max_examples=100)
@given(random_profiles())
def test_valid_box_is_ordered_with_gaps(p):
    c, v, price, atr, h = p
    box = _box(c, v, price=price, atr=atr, h=h)
    assert box.valid == (box.reasons == ())
    if box.valid:
        _assert_valid_shape(box)
        assert min(box.shares) >= 0.05
    assert all(isinstance(r, str) and r for r in box.reasons)
    for name, level in zip(LEVEL_NAMES, box.levels, strict=True):
        if not math.isnan(level):  # levels are bins on their own side of price, at least one row away
            assert level < price - h if name.startswith("s") else level > price + h
            assert level in c
    json.dumps(box.as_dict(), allow_nan=False)


@settings(max_examples=60)
@given(random_profiles(), st.integers(0, 1), st.sampled_from(["below", "above"]))
def test_less_than_two_bins_on_a_side_is_invalid(p, keep, side):
    c, v, price, atr, h = p
    v = v.copy()
    mask = c < price - h if side == "below" else c > price + h
    nonzero = np.flatnonzero(mask & (v > 0))
    v[nonzero[keep:]] = 0.0
    box = _box(c, v, price=price, atr=atr, h=h)
    n = min(keep, nonzero.size)
    assert not box.valid
    assert f"not enough structure {side} price: {n} non-empty bin{'' if n == 1 else 's'}, need 2" in box.reasons
    missing = ("s2", "s1") if side == "below" else ("r1", "r2")
    assert all(math.isnan(box.level(name)) for name in missing)


def test_other_side_is_still_reported():
    c, v = gaussian_profile()
    v[c > 108.0] = 0.0
    box = _box(c, v)
    assert box.reasons == ("not enough structure above price: 0 non-empty bins, need 2",)
    assert abs(box.s2 - 100.0) <= 0.125 and abs(box.s1 - 105.0) <= 0.125
    assert math.isnan(box.r1) and math.isnan(box.shares[2])
    d = box.as_dict()
    assert d["r1"] is None and d["valid"] is False and d["shares"]["r1"] is None


def test_gap_reasons():
    c = np.array([100.0, 101.0, 110.0, 111.0, 130.0, 131.0, 140.0, 141.0])
    v = np.array([1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 1.0, 2.0])
    box = _box(c, v, price=120.0, atr=30.0, h=1.0)
    assert (box.s2, box.s1, box.r1, box.r2) == (101.0, 110.0, 131.0, 141.0)
    assert box.reasons == ("S1 - S2 = 9 < gap 15", "R2 - R1 = 10 < gap 15")
    assert not box.valid


def test_share_reason():
    c = np.array([100.0, 110.0, 111.0, 130.0, 140.0])
    v = np.array([1.0, 30.0, 30.0, 1.0, 1.0])
    box = _box(c, v, price=120.0, atr=1.0, h=1.0)
    assert box.reasons == ("S2 cluster share 0.01639344262 < min_share 0.05",)
    assert box.shares[0] == pytest.approx(1 / 61)


def test_duplicate_centres_give_an_order_reason():
    box = _box([100.0, 100.0, 130.0, 140.0], [1.0, 1.0, 1.0, 1.0], price=120.0, atr=1.0, h=1.0)
    assert box.reasons[0] == ("levels out of order: need S2 < S1 < price < R1 < R2, got S2=100 S1=100 price=120 "
                              "R1=130 R2=140")
    assert box.reasons[1] == "S1 - S2 = 0 < gap 0.5"


def test_bins_within_one_row_of_price_are_ignored():
    c = np.array([100.0, 101.0, 107.9, 108.1, 115.0, 116.0])
    v = np.array([1.0, 1.0, 100.0, 100.0, 1.0, 1.0])
    box = _box(c, v, price=108.0, atr=0.1, h=0.5)
    assert box.levels == (100.0, 101.0, 115.0, 116.0)


def test_peak_tie_goes_to_the_bin_nearest_the_centroid():
    c = [90.0, 91.0, 104.0, 105.0, 106.0, 120.0, 121.0]
    v = [1.0, 1.0, 3.0, 1.0, 3.0, 1.0, 1.0]
    even = _box(c, v, price=112.0, atr=1.0, h=1.0)
    assert even.centroids[1] == pytest.approx(105.0)
    assert even.s1 == 104.0  # equal distance to the centroid too -> the lower bin
    skew = _box(c + [107.0], v + [0.5], price=112.0, atr=1.0, h=1.0)  # unsorted input on purpose
    assert skew.centroids[1] > 105.0 and skew.s1 == 106.0
    assert skew.bounds[1] == (104.0, 107.0)


def test_centroid_mode():
    c, v = gaussian_profile()
    box = _box(c, v, level_mode="centroid")
    assert box.valid and box.level_mode == "centroid"
    assert box.levels == box.centroids
    for level, mean in zip(box.levels, MEANS, strict=True):
        assert abs(level - mean) < 0.05


@settings(max_examples=40)
@given(random_profiles(), st.integers(-8, 8))
def test_scale_invariance_power_of_two_is_exact(p, e):
    c, v, price, atr, h = p
    f = 2.0**e
    a, b = _box(c, v, price=price, atr=atr, h=h), _box(c * f, v, price=price * f, atr=atr * f, h=h * f)
    assert b.valid == a.valid
    np.testing.assert_array_equal(b.levels, np.array(a.levels) * f)
    np.testing.assert_array_equal(b.shares, a.shares)


@settings(max_examples=40)
@given(four_gaussians(), st.floats(1e-3, 1e3))
def test_scale_invariance(p, f):
    c, v, h = p
    a = _box(c, v, h=h)
    b = _box(c * f, v, price=108.0 * f, atr=f, h=h * f)
    assert a.valid and b.valid
    # levels only: a bin exactly between two bumps may change cluster under rounding, which moves shares a little
    np.testing.assert_allclose(b.levels, np.array(a.levels) * f, rtol=1e-12)


@settings(max_examples=40)
@given(random_profiles(), st.integers(-10, 10))
def test_volume_scaling_changes_nothing(p, e):
    c, v, price, atr, h = p
    a, b = _box(c, v, price=price, atr=atr, h=h), _box(c, v * 2.0**e, price=price, atr=atr, h=h)
    assert a.as_dict() == b.as_dict()


def test_bad_inputs():
    c, v = gaussian_profile()
    with pytest.raises(InputError):
        _box(c, v[:-1])
    with pytest.raises(InputError):
        _box(c, -v)
    with pytest.raises(InputError):
        _box(c, v, price=float("nan"))
    with pytest.raises(InputError):
        _box(c, v, h=0.0)
    with pytest.raises(InputError):
        _box(c, v, atr=float("nan"))
    with pytest.raises(ConfigError):
        _box(c, v, level_mode="mode")


# --- MA25 snap --------------------------------------------------------------------------------------------------


def _tol(box: Box, tol_atr=0.25, tol_pct=0.002) -> float:
    return max(tol_atr * box.atr, tol_pct * box.price)


def test_snap_moves_the_nearest_level_to_the_rounded_ma():
    c, v = gaussian_profile()
    box = _box(c, v)
    assert box.s1 == 104.875
    out = ma25_snap(box, ma=105.03, tick=0.1)  # tol = max(0.25 ATR, 0.2 % of 108) = 0.25
    assert out.confluent == "s1"
    assert out.s1 == pytest.approx(105.0)
    assert (out.s2, out.r1, out.r2) == (box.s2, box.r1, box.r2)
    assert out.valid and out.shares == box.shares


def test_snap_refused_when_it_would_break_the_gap():
    c = np.array([100.0, 101.0, 110.0, 111.0, 130.0, 131.0, 140.0, 141.0])
    v = np.array([1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 1.0, 2.0])
    box = _box(c, v, price=120.0, atr=17.0, h=1.0)  # gap 8.5, S1 - S2 = 9
    assert box.valid
    assert ma25_snap(box, ma=108.0, tick=0.5) is box  # S1 -> 108 would leave 7 < 8.5
    assert ma25_snap(box, ma=111.0, tick=0.5).s1 == 111.0


def test_snap_leaves_invalid_boxes_and_missing_ma_alone():
    c, v = gaussian_profile()
    v[c > 108] = 0.0
    invalid = _box(c, v)
    assert ma25_snap(invalid, ma=invalid.s1, tick=0.1) is invalid
    valid = _box(*gaussian_profile())
    assert ma25_snap(valid, ma=float("nan"), tick=0.1) is valid
    with pytest.raises(InputError):
        ma25_snap(valid, ma=105.0, tick=0.0)


def test_level_already_at_the_ma_is_marked_without_moving():
    box = _box(*gaussian_profile(), h=0.25)
    out = ma25_snap(box, ma=box.r1, tick=0.125)
    assert out.confluent == "r1" and out.levels == box.levels


@settings(max_examples=100)
@given(four_gaussians(), st.integers(0, 3), st.floats(-3.0, 3.0), st.sampled_from([0.01, 0.1, 0.25, 1.0]),
       st.floats(0.0, 0.5), st.floats(0.0, 0.01))
def test_snap_properties(p, which, offset, tick, tol_atr, tol_pct):
    c, v, h = p
    box = _box(c, v, h=h)
    assume(box.valid)
    tol = _tol(box, tol_atr, tol_pct)
    ma = box.levels[which] + offset * max(tol, tick)
    out = ma25_snap(box, ma=ma, tick=tick, tol_atr=tol_atr, tol_pct=tol_pct)
    changed = [i for i in range(4) if out.levels[i] != box.levels[i]]
    assert len(changed) <= 1
    for i in changed:
        assert abs(out.levels[i] - box.levels[i]) <= tol + tick / 2 + 1e-9 * box.price
        assert out.confluent == LEVEL_NAMES[i]
    if min(abs(level - ma) for level in box.levels) > tol:
        assert out is box
    assert out.valid
    _assert_valid_shape(out)
    again = ma25_snap(out, ma=ma, tick=tick, tol_atr=tol_atr, tol_pct=tol_pct)
    assert again.as_dict() == out.as_dict()
    assert out.shares == box.shares and out.centroids == box.centroids


# --- MA25 bias --------------------------------------------------------------------------------------------------


def test_bias():
    up = sma(np.linspace(100.0, 130.0, 60), 25)
    down = up[::-1].copy()
    atr = 1.0
    assert ma_slope(up, atr) == pytest.approx(5 * 30 / 59)
    assert ma_bias(up, atr, price=up[-1] + 1) == 1
    assert ma_bias(up, atr, price=up[-1] - 1) == 0  # rising MA but price below it
    assert ma_bias(sma(np.linspace(130.0, 100.0, 60), 25), atr, price=90.0) == -1
    assert ma_bias(up, atr=1000.0, price=200.0) == 0  # slope 0.0025 ATR/5 bars < s_min
    assert ma_bias(up[:5], atr, price=200.0) == 0  # not enough bars for the slope
    assert ma_bias(up, 0.0, price=200.0) == 0
    assert ma_bias(up[:29], atr, price=200.0) == 0  # m_{t-5} still in warm-up (NaN)
    assert ma_bias(up[:30], atr, price=200.0) == 1
    assert math.isnan(ma_slope(down[:3], atr))


# --- kernel parity ---------------------------------------------------------------------------------------------


@st.composite
def tied_profiles(draw):
    """Few distinct volumes (equal peaks inside clusters) on a grid, price on or between bin centres."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 80))
    h = draw(st.sampled_from([0.1, 0.25, 1.0]))
    centres = 100.0 + h * (np.arange(n) + 0.5)
    volumes = rng.choice([0.0, 1.0, 2.0, 3.0], n)
    price = float(centres[int(rng.integers(0, n))] + draw(st.sampled_from([0.0, h / 2, h / 3])))
    return centres, volumes, price, float(h * rng.uniform(0, 6)), h


@settings(max_examples=120)
@given(st.one_of(random_profiles(), tied_profiles()), st.sampled_from(["peak", "centroid"]),
       st.sampled_from([0.0, 1e-9, 1.0]))
def test_four_peaks_box_equals_the_numpy_reference(profile, level_mode, eps_rows):
    centres, volumes, price, atr, h = profile
    kw = {"price": price, "atr": atr, "row_height": h * eps_rows or 1e-9 * price, "level_mode": level_mode}
    assert repr(four_peaks_box(centres, volumes, **kw)) == repr(slow.four_peaks_box(centres, volumes, **kw))


def test_four_peaks_box_checks_its_inputs_as_before():
    c, v = np.array([1.0, 2.0, 3.0]), np.array([1.0, np.nan, 1.0])
    for vol in (v, np.array([1.0, -1.0, 1.0])):
        with pytest.raises(InputError, match="finite centres and finite volumes >= 0"):
            four_peaks_box(c, vol, price=2.0, atr=1.0, row_height=0.1)
