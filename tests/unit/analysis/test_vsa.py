"""VSA features and signals (algorithms.md §3.1–3.2, properties of §3.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcore.analysis.vsa import (
    DEFAULT_PARAMS,
    SIGNAL_ORDER,
    SIGNAL_SIDE,
    VsaParams,
    VsaSignal,
    ZoneLevels,
    vsa_features,
    vsa_signal_arrays,
    vsa_signals,
)
from gridcore.errors import ConfigError, InputError
from tests.reference import naive_vsa as ref

S = VsaSignal
FEW = settings(max_examples=40)
SOME = settings(max_examples=80)
TICK = 0.1
TOL = 0.2


def arrays(rows) -> tuple[np.ndarray, ...]:
    """(open, high, low, close, volume) arrays from rows of the same five values."""
    return tuple(np.array(col, dtype=float) for col in zip(*rows, strict=True))


def falling() -> list[tuple]:
    """20 bars falling one point a bar (closes 100..81), spread 2, volume 100."""
    return [(100.5 - i, 101.0 - i, 99.0 - i, 100.0 - i, 100.0) for i in range(20)]


def rising() -> list[tuple]:
    """20 bars rising one point a bar (closes 80..99), spread 2, volume 100."""
    return [(79.5 + i, 81.0 + i, 79.0 + i, 80.0 + i, 100.0) for i in range(20)]


def flat() -> list[tuple]:
    """20 bars at 100 (range 99..101), volume 100; bar 0 closes at 97 so the SMA slope is positive."""
    return [(97.0, 98.0, 96.0, 97.0, 100.0)] + [(100.0, 101.0, 99.0, 100.0, 100.0)] * 19


# name: (rows, levels, bar, signal). Each fixture fires exactly `signal` at `bar` (and nothing else anywhere, except
# the confirmed signal one bar earlier for the confirmations).
FIXTURES = {
    # §3.4's example: 20 falling bars of volume 100, then spread 2x average, volume 250, CL = 0.4, new low.
    "selling_climax": (falling() + [(81.0, 82.0, 78.0, 79.6, 250.0)], None, 20, S.SELLING_CLIMAX),
    # Down bar, average spread, volume 1.8x, CL 0.55 in the down-trend (not wide/ultra: no climax).
    "stopping_volume": (falling() + [(81.0, 80.5, 78.5, 79.6, 180.0)], None, 20, S.STOPPING_VOLUME),
    "no_supply": (falling() + [(81.0, 81.0, 80.0, 80.5, 80.0)], None, 20, S.NO_SUPPLY),
    # Up bar (so not no-supply) dipping below the previous low, closing high on low volume.
    "test": (falling() + [(80.0, 81.5, 79.5, 81.2, 80.0)], None, 20, S.TEST),
    "test_confirmed": (falling() + [(80.0, 81.5, 79.5, 81.2, 80.0), (81.2, 82.5, 81.0, 82.0, 100.0)], None, 21,
                       S.TEST_CONFIRMED),
    "spring_s1": (flat() + [(100.0, 100.5, 98.5, 100.0, 100.0)], ZoneLevels(s1=99.0), 20, S.SPRING),
    # Wide, high-volume bar through S1 closing on its high but still below S1 (so not a spring).
    "shakeout": (rising() + [(99.0, 96.0, 92.0, 95.2, 160.0)], ZoneLevels(s1=96.0), 20, S.SHAKEOUT),
    "upthrust": (rising() + [(99.5, 102.0, 98.0, 99.0, 100.0)], None, 20, S.UPTHRUST),
    "upthrust_confirmed": (rising() + [(99.5, 102.0, 98.0, 99.0, 100.0), (99.0, 99.5, 97.5, 98.0, 100.0)], None,
                           21, S.UPTHRUST_CONFIRMED),
    "no_demand": (rising() + [(99.0, 99.6, 98.8, 99.1, 80.0)], None, 20, S.NO_DEMAND),
    "absorption": (flat() + [(100.0, 101.0, 99.0, 100.2, 200.0)], ZoneLevels(s1=99.0), 20, S.ABSORPTION),
    "ease_of_move": (flat() + [(100.0, 102.5, 100.0, 102.3, 60.0)], None, 20, S.EASE_OF_MOVE),
}


def signals_of(rows, levels=None, *, tol=TOL, tick=TICK, params=DEFAULT_PARAMS):
    return vsa_signals(*arrays(rows), levels=levels, tol=tol, tick=tick, params=params)


def test_every_signal_has_a_fixture():
    assert {f[3] for f in FIXTURES.values()} == set(VsaSignal)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_triggers_exactly_its_signal(name):
    rows, levels, bar, signal = FIXTURES[name]
    events = signals_of(rows, levels)
    assert [e.signal for e in events if e.bar == bar] == [signal]
    others = [e for e in events if e.bar != bar]
    if signal in (S.TEST_CONFIRMED, S.UPTHRUST_CONFIRMED):
        confirmed = S.TEST if signal is S.TEST_CONFIRMED else S.UPTHRUST
        assert [(e.bar, e.signal) for e in others] == [(bar - 1, confirmed)]
        assert [e.ref_bar for e in events if e.bar == bar] == [bar - 1]
    else:
        assert others == []
    assert events == ref.naive_signals(*arrays(rows), levels=levels, tol=TOL, tick=TICK)


def test_fixture_details():
    sc = signals_of(FIXTURES["selling_climax"][0])[0]
    assert sc.side == 1 and sc.level is None
    spring = signals_of(*FIXTURES["spring_s1"][:2])[0]
    assert (spring.level, spring.level_name, spring.strong, spring.side) == (99.0, "S1", True, 1)
    shakeout = signals_of(*FIXTURES["shakeout"][:2])[0]
    assert (shakeout.level, shakeout.level_name) == (96.0, "S1")
    ut = signals_of(FIXTURES["upthrust"][0])[0]
    assert (ut.level, ut.level_name, ut.strong, ut.side) == (100.0, "RANGE_HIGH", False, -1)
    ut_r1 = signals_of(FIXTURES["upthrust"][0], ZoneLevels(r1=101.0))[0]
    assert (ut_r1.level, ut_r1.level_name) == (101.0, "R1")
    assert signals_of(FIXTURES["no_demand"][0])[0].side == -1
    assert signals_of(*FIXTURES["absorption"][:2])[0].side == 1
    assert signals_of(FIXTURES["ease_of_move"][0])[0].side == 1


def test_spring_without_levels_uses_the_range_low():
    rows = [(100.0, 101.0, 99.0, 100.0, 100.0)] + FIXTURES["spring_s1"][0][1:]  # range low 99
    (e,) = signals_of(rows, None)
    assert (e.signal, e.level, e.level_name) == (S.SPRING, 99.0, "RANGE_LOW")


def test_spring_strength_follows_relative_volume():
    rows = flat() + [(100.0, 100.5, 98.5, 100.0, 140.0)]
    (e,) = signals_of(rows, ZoneLevels(s1=99.0))
    assert e.signal is S.SPRING and not e.strong


def test_spring_needs_more_than_one_tick_below_the_level():
    # The low undercuts S1 (and the range low 99) by half a tick: not a spring; by 1.5 ticks: a spring.
    for low, expected in ((98.95, []), (98.85, [S.SPRING])):
        rows = flat() + [(100.0, 100.5, low, 100.0, 100.0)]
        assert [e.signal for e in signals_of(rows, ZoneLevels(s1=99.0))] == expected


def test_absorption_is_bearish_when_closing_low_or_away_from_support():
    rows = flat() + [(100.0, 101.0, 99.0, 99.8, 200.0)]
    assert [(e.signal, e.side) for e in signals_of(rows, ZoneLevels(s1=99.0))] == [(S.ABSORPTION, -1)]
    rows = flat() + [(100.0, 101.0, 99.0, 100.2, 200.0)]
    levels = ZoneLevels(s1=90.0)  # range low 96 and S1 90 are both far from the bar
    rows[0] = (90.0, 91.0, 89.0, 90.0, 100.0)
    assert [(e.signal, e.side) for e in signals_of(rows, levels)] == [(S.ABSORPTION, -1)]


def test_warm_up_bars_emit_nothing():
    # The selling-climax bar moved into the warm-up: bar 19 has only 19 previous bars.
    rows = falling()[1:] + [(82.0, 83.0, 79.0, 80.6, 250.0)]
    assert signals_of(rows) == []
    f = vsa_features(*arrays(rows))
    assert np.isnan(f.rs[:20]).all() and not f.warm.any()


def test_signal_sides_and_bits_are_stable():
    assert [s.value for s in SIGNAL_ORDER] == [s.name for s in SIGNAL_ORDER]
    assert [s.bit for s in SIGNAL_ORDER] == [1 << i for i in range(len(SIGNAL_ORDER))]
    assert {s for s, side in SIGNAL_SIDE.items() if side == 1} == {
        S.SELLING_CLIMAX, S.STOPPING_VOLUME, S.NO_SUPPLY, S.TEST, S.TEST_CONFIRMED, S.SPRING, S.SHAKEOUT}
    assert {s for s, side in SIGNAL_SIDE.items() if side == 0} == {S.ABSORPTION, S.EASE_OF_MOVE}


def test_features_of_a_hand_computed_bar():
    rows, _, bar, _ = FIXTURES["selling_climax"]
    f = vsa_features(*arrays(rows))
    assert f.spread[bar] == 4.0 and f.rs[bar] == 2.0 and f.rv[bar] == 2.5
    assert f.cl[bar] == pytest.approx(0.4)
    assert f.down[bar] and f.wide[bar] and f.ultra_vol[bar] and f.close_mid[bar] and f.downtrend[bar]
    assert f.sma[bar] == pytest.approx((sum(100.0 - i for i in range(1, 20)) + 79.6) / 20)
    assert f.sma_slope[bar] == pytest.approx((79.6 - 100.0) / 20)
    assert f.atr[19] == 2.0 and f.evr_result[bar] == pytest.approx(1.4 / 2.0)


def test_zero_averages_do_not_divide_by_zero():
    rows = [(100.0, 100.0, 100.0, 100.0, 0.0)] * 25 + [(100.0, 101.0, 99.0, 100.5, 10.0)]
    f = vsa_features(*arrays(rows))
    assert np.isnan(f.rs[20]) and np.isnan(f.rv[20]) and f.cl[20] == 0.5
    assert f.rs[25] == math.inf and f.rv[25] == math.inf
    assert signals_of(rows) == ref.naive_signals(*arrays(rows), tol=TOL, tick=TICK)


def test_invalid_input_is_refused():
    o, h, lo, c, v = arrays(falling())
    with pytest.raises(InputError, match="close: expected 20 values"):
        vsa_signals(o, h, lo, c[:-1], v, levels=None, tol=TOL, tick=TICK)
    with pytest.raises(InputError, match="tick"):
        vsa_signals(o, h, lo, c, v, levels=None, tol=TOL, tick=0.0)
    with pytest.raises(ConfigError, match="vsa.lookback: expected > spring_range_exclude"):
        vsa_signals(o, h, lo, c, v, levels=None, tol=TOL, tick=TICK, params=VsaParams(lookback=3))
    with pytest.raises(ConfigError, match="vsa.evr_effort_low"):
        vsa_features(o, h, lo, c, v, params=VsaParams(evr_effort_low=2.0))


# ---------------------------------------------------------------------------------------------------- properties

@st.composite
def tick_bars(draw, min_size: int = 22, max_size: int = 70) -> tuple[np.ndarray, ...]:
    """Bars on a coarse tick grid (ties everywhere: equal closes, equal volumes, H == L, thresholds hit exactly)."""
    m = draw(st.integers(min_size, max_size))
    steps = draw(st.lists(st.integers(-6, 6), min_size=m, max_size=m))
    close = 1000 + np.cumsum(steps)
    below = np.array(draw(st.lists(st.integers(0, 6), min_size=m, max_size=m)))
    above = np.array(draw(st.lists(st.integers(0, 6), min_size=m, max_size=m)))
    open_frac = np.array(draw(st.lists(st.integers(0, 4), min_size=m, max_size=m))) / 4
    volume = np.array(draw(st.lists(st.integers(0, 40), min_size=m, max_size=m)), float) * 25
    high, low = close + above, close - below
    open_ = low + np.round(open_frac * (high - low))
    return tuple(np.asarray(x, float) for x in (open_, high, low, close, volume))


def random_walk_bars(seed: int, m: int = 300) -> tuple[np.ndarray, ...]:
    """Continuous bars with trend regimes, wide-bar and volume bursts, so every signal occurs."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.normal(0, 0.4, m // 25 + 1), 25)[:m]
    close = 100 * np.exp(np.cumsum(drift * 0.01 + rng.normal(0, 0.008, m)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, m))
    burst = np.where(rng.random(m) < 0.1, 3.0, 1.0)
    high = np.maximum(open_, close) * (1 + rng.exponential(0.003, m) * burst)
    low = np.minimum(open_, close) * (1 - rng.exponential(0.003, m) * burst)
    volume = rng.lognormal(3, 0.5, m) * np.where(rng.random(m) < 0.08, 3.0, 1.0)
    return open_, high, low, close, volume


@st.composite
def levels_and_tol(draw, bars) -> tuple[ZoneLevels, float]:
    lo, hi = float(bars[2].min()), float(bars[1].max())
    pick = st.floats(lo, hi, allow_nan=False) | st.none()
    levels = ZoneLevels(*(draw(pick) for _ in range(4)))
    return levels, draw(st.floats(0, (hi - lo) * 0.05))


@given(bars=tick_bars())
def test_close_location_bounds(bars):
    f = vsa_features(*bars)
    assert ((f.cl >= 0) & (f.cl <= 1)).all()
    flat_bar = bars[1] == bars[2]
    assert (f.cl[flat_bar] == 0.5).all()


@SOME
@given(data=st.data())
def test_parity_with_the_naive_reference_on_tick_bars(data):
    bars = data.draw(tick_bars())
    levels, tol = data.draw(levels_and_tol(bars))
    tick = data.draw(st.sampled_from([0.5, 1.0, 2.0]))
    assert vsa_signals(*bars, levels=levels, tol=tol, tick=tick) == ref.naive_signals(
        *bars, levels=levels, tol=tol, tick=tick)


@FEW
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_parity_with_the_naive_reference_on_random_walks(seed, data):
    bars = random_walk_bars(seed, 200)
    levels, tol = data.draw(levels_and_tol(bars))
    assert vsa_signals(*bars, levels=levels, tol=tol, tick=0.01) == ref.naive_signals(
        *bars, levels=levels, tol=tol, tick=0.01)
    f = vsa_features(*bars)
    for t, expected in ref.naive_features(*bars).items():
        for key in ("spread", "rs", "rv", "cl", "sma", "sma_slope", "evr_result", "atr"):
            np.testing.assert_equal(getattr(f, key)[t], expected[key], err_msg=f"{key} at bar {t}")
        assert (f.up[t], f.down[t], f.low2[t]) == (expected["up"], expected["down"], expected["low2"])


def test_random_walks_exercise_every_signal():
    seen = set()
    for seed in range(6):
        bars = random_walk_bars(seed, 600)
        mid = float(np.median(bars[3]))
        levels = ZoneLevels(mid * 0.98, mid * 0.95, mid * 1.02, mid * 1.05)
        seen |= {e.signal for e in vsa_signals(*bars, levels=levels, tol=mid * 0.002, tick=0.01)}
    assert seen == set(VsaSignal)


def _key(events):
    return [(e.bar, e.signal, e.side, e.level_name, e.strong, e.ref_bar) for e in events]


@SOME
@given(data=st.data(), k=st.integers(-8, 8), kv=st.integers(-8, 8))
def test_scale_invariance_exact_for_powers_of_two(data, k, kv):
    bars = data.draw(tick_bars())
    levels, tol = data.draw(levels_and_tol(bars))
    c, cv = 2.0**k, 2.0**kv
    base = vsa_signals(*bars, levels=levels, tol=tol, tick=1.0)
    o, h, lo, cl, v = bars
    scaled_levels = ZoneLevels(*(None if x is None else x * c for x in (levels.s1, levels.s2, levels.r1, levels.r2)))
    scaled = vsa_signals(o * c, h * c, lo * c, cl * c, v * cv, levels=scaled_levels, tol=tol * c, tick=c)
    assert _key(scaled) == _key(base)


@FEW
@given(seed=st.integers(0, 2**32 - 1), c=st.floats(1e-3, 1e3), cv=st.floats(1e-3, 1e3), data=st.data())
def test_scale_invariance_on_random_walks(seed, c, cv, data):
    bars = random_walk_bars(seed, 200)
    levels, tol = data.draw(levels_and_tol(bars))
    base = vsa_signals(*bars, levels=levels, tol=tol, tick=0.01)
    o, h, lo, cl, v = bars
    scaled_levels = ZoneLevels(*(None if x is None else x * c for x in (levels.s1, levels.s2, levels.r1, levels.r2)))
    scaled = vsa_signals(o * c, h * c, lo * c, cl * c, v * cv, levels=scaled_levels, tol=tol * c, tick=0.01 * c)
    assert _key(scaled) == _key(base)


@SOME
@given(bars=tick_bars(max_size=120))
def test_exclusivity(bars):
    a = vsa_signal_arrays(*bars, levels=None, tol=1.0, tick=1.0)
    for t in range(len(a)):
        sigs = set(a.signals_at(t))
        assert not ({S.NO_SUPPLY, S.NO_DEMAND, S.TEST} & sigs and S.SELLING_CLIMAX in sigs)
        assert not {S.NO_SUPPLY, S.NO_DEMAND} <= sigs


@FEW
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(0, 199), data=st.data())
def test_no_look_ahead(seed, t, data):
    bars = random_walk_bars(seed, 200) if data.draw(st.booleans()) else data.draw(tick_bars(200, 200))
    levels, tol = data.draw(levels_and_tol(bars))
    full = vsa_signals(*bars, levels=levels, tol=tol, tick=0.01)
    cut = vsa_signals(*(x[: t + 1] for x in bars), levels=levels, tol=tol, tick=0.01)
    assert cut == [e for e in full if e.bar <= t]
    f_full, f_cut = vsa_features(*bars), vsa_features(*(x[: t + 1] for x in bars))
    for key in ("rs", "rv", "cl", "sma_slope", "atr", "evr_result"):
        np.testing.assert_array_equal(getattr(f_cut, key), getattr(f_full, key)[: t + 1])


@FEW
@given(seed=st.integers(0, 2**32 - 1), start=st.integers(0, 199), data=st.data())
def test_tail_window_equals_the_full_run(seed, start, data):
    bars = random_walk_bars(seed, 200)
    levels, tol = data.draw(levels_and_tol(bars))
    full = vsa_signal_arrays(*bars, levels=levels, tol=tol, tick=0.01)
    tail = vsa_signal_arrays(*bars, levels=levels, tol=tol, tick=0.01, start=start)
    assert tail.events() == full.events(start)
    assert len(tail) == 200 and tail.mask.shape == (200 - start,)
    np.testing.assert_array_equal(tail.mask, full.mask[start:])
    if start > 0:
        with pytest.raises(IndexError, match="evaluated window"):
            tail.signals_at(start - 1)


def test_custom_lookback_matches_the_reference():
    params = VsaParams(lookback=10, wide=1.3, high_vol=1.3, lowvol_prev_bars=3, sv_low_window=3,
                       spring_range_exclude=2, spring_delta_ticks=2)
    bars = random_walk_bars(7, 300)
    levels = ZoneLevels(s1=float(np.quantile(bars[2], 0.2)))
    events = vsa_signals(*bars, levels=levels, tol=0.1, tick=0.01, params=params)
    assert events and min(e.bar for e in events) >= 10
    assert events == ref.naive_signals(*bars, levels=levels, tol=0.1, tick=0.01, params=params)
