"""TTM squeeze and the analyzer state machine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcore.analysis.squeeze import (
    SQUEEZE_STATES,
    STATE_CODE,
    SqueezeState,
    squeeze_last_bar,
    squeeze_series,
    squeeze_span,
)
from gridcore.errors import ConfigError, InputError
from tests.reference import naive_indicators as ref
from tests.reference import slow_analysis as slow


def _ohlc_from_close(close, half_range):
    open_ = np.concatenate([[close[0]], close[:-1]])
    return open_, np.maximum(open_, close) + half_range, np.minimum(open_, close) - half_range, close


def breakout_bars(*, n_trend=40, n_flat=40, n_break=30, direction=1, scale=1.0, seed=0):
    """Trend (bands wide), a flat low-volatility segment (BB inside KC), then a breakout trend."""
    rng = np.random.default_rng(seed)
    trend = 100.0 + 0.5 * np.arange(n_trend)
    flat = trend[-1] + rng.normal(0, 0.01, n_flat)
    brk = flat[-1] + direction * 1.0 * np.arange(1, n_break + 1)
    close = np.concatenate([trend, flat, brk])
    half = np.concatenate([np.full(n_trend, 0.05), np.full(n_flat, 0.5), np.full(n_break, 0.1)])
    o, h, lo, c = _ohlc_from_close(close, half)
    return o * scale, h * scale, lo * scale, c * scale


@st.composite
def regime_bars(draw, max_size=160):
    """Random walk whose volatility and bar ranges switch between regimes, so squeezes come and go."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, max_size))
    rng = np.random.default_rng(seed)
    regime = np.repeat(rng.uniform(0.02, 2.0, n // 15 + 1), 15)[:n]
    close = 100.0 + np.cumsum(rng.normal(0, 1, n) * regime)
    return _ohlc_from_close(close, rng.uniform(0.05, 1.5, n))


def test_state_enum_and_codes():
    assert [s.value for s in SqueezeState] == ["WARMUP", "COMPRESSION", "FIRED", "RANGING", "TRENDING"]
    assert all(s.value == s.name for s in SqueezeState)
    assert [STATE_CODE[s] for s in SQUEEZE_STATES] == list(range(5))


@settings(max_examples=60)
@given(regime_bars())
def test_on_and_off_never_both_and_states_match_plain_loops(b):
    s = squeeze_series(*b)
    n = len(b[3])
    assert len(s) == n
    assert not np.any(s.sqz_on & s.sqz_off)
    bands_ok = np.isfinite(s.upper_bb) & np.isfinite(s.lower_kc)
    fired, dirs, states = ref.squeeze_states(s.sqz_on.tolist(), s.mom.tolist(), bands_ok=bands_ok.tolist())
    np.testing.assert_array_equal(s.fired, fired)
    assert [x.value for x in s.states()] == states
    np.testing.assert_array_equal(s.fire_dir, dirs)


@settings(max_examples=60)
@given(regime_bars())
def test_states_never_contradict(b):
    s = squeeze_series(*b)
    st_ = s.state
    code = STATE_CODE
    assert np.all(s.sqz_on[st_ == code[SqueezeState.COMPRESSION]])
    assert not np.any(s.sqz_on[(st_ != code[SqueezeState.COMPRESSION]) & (st_ != code[SqueezeState.WARMUP])])
    fired_bars = st_ == code[SqueezeState.FIRED]
    assert np.all((s.bars_since_fire[fired_bars] >= 0) & (s.bars_since_fire[fired_bars] < 5))
    assert np.all(s.fire_dir[~fired_bars] == 0)
    assert np.all(np.isin(s.fire_dir, [-1, 0, 1]))
    for t in np.flatnonzero(s.fired):
        assert s.sqz_on[t - 3 : t].all() and not s.sqz_on[t]
        assert s.bars_since_fire[t] == 0
    warm = st_ == code[SqueezeState.WARMUP]
    if warm.any() and not warm.all():
        first = int(np.argmin(warm))
        assert warm[:first].all() and not warm[first:].any()  # finite input: warm-up is one leading block
        assert first == 58  # bands from bar 19, mom from 38, plus the 20-bar cross window


@settings(max_examples=25)
@given(regime_bars(max_size=120))
def test_causal_prefix_equals_full(b):
    full = squeeze_series(*b)
    n = len(b[3])
    for k in sorted({1, 2, 19, 20, 39, 58, 59, n // 2, n - 1, n} & set(range(1, n + 1))):
        part = squeeze_series(*(a[:k] for a in b))
        for name in ("sqz_on", "sqz_off", "mom", "fired", "fire_dir", "bars_since_fire", "state", "upper_bb",
                     "lower_kc"):
            np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[:k], err_msg=f"{name} k={k}")


@settings(max_examples=20)
@given(regime_bars(max_size=100))
def test_bands_and_momentum_equal_plain_loops(b):
    _, h, lo, c = b
    s = squeeze_series(*b)
    basis, dev = np.array(ref.sma(c, 20)), 2.0 * np.array(ref.rolling_std(c, 20))
    ma, rangema = np.array(ref.sma(c, 20)), np.array(ref.sma(ref.true_range(h, lo, c), 20))
    np.testing.assert_allclose(s.upper_bb, basis + dev, rtol=1e-12)
    np.testing.assert_allclose(s.lower_kc, ma - 1.5 * rangema, rtol=1e-12)
    mid = (np.array(ref.highest(h.tolist(), 20)) + np.array(ref.lowest(lo.tolist(), 20))) / 2
    mom = np.array(ref.linreg(c - (mid + ma) / 2, 20))
    np.testing.assert_allclose(s.mom, mom, rtol=1e-12, atol=1e-12 * float(np.max(np.abs(c))))


def test_constant_prices_are_never_on():
    c = np.full(120, 96_123.4)
    s = squeeze_series(c, c, c, c)
    assert not s.sqz_on.any() and not s.sqz_off.any()
    assert not s.fired.any()
    assert SqueezeState.COMPRESSION not in s.states()


def test_flat_closes_with_bar_ranges_are_on():
    c = np.full(60, 100.0)
    s = squeeze_series(c, c + 1.0, c - 1.0, c)
    assert s.sqz_on[19:].all() and not s.sqz_on[:19].any()


@settings(max_examples=30)
@given(st.integers(25, 60), st.integers(15, 40), st.sampled_from([1, -1]), st.sampled_from([0.01, 1.0, 600.0]),
       st.integers(0, 2**32 - 1))
def test_low_volatility_then_breakout_fires_exactly_once(n_flat, n_break, direction, scale, seed):
    b = breakout_bars(n_flat=n_flat, n_break=n_break, direction=direction, scale=scale, seed=seed)
    s = squeeze_series(*b)
    fires = np.flatnonzero(s.fired)
    assert fires.size == 1
    t = int(fires[0])
    start = 40 + n_flat
    assert start <= t < start + 10  # fires early in the breakout
    assert s.sqz_on[start - 5 : start].all()
    assert s.fire_dir[t] == direction
    states = s.states()
    assert states[t : t + 5] == [SqueezeState.FIRED] * len(states[t : t + 5])
    assert SqueezeState.FIRED not in states[t + 5 :]
    assert SqueezeState.COMPRESSION not in states[t:]
    assert all(x == SqueezeState.COMPRESSION for x, on in zip(states, s.sqz_on, strict=True) if on and x != "WARMUP")


def test_fire_needs_min_on_bars():
    b = breakout_bars(n_flat=30)
    t = int(np.flatnonzero(squeeze_series(*b).fired)[0])
    on = squeeze_series(*b).sqz_on
    run = t - 1 - int(np.flatnonzero(~on[:t])[-1])  # on-bars just before the fire
    assert squeeze_series(*b, min_on_bars=run).fired.sum() == 1
    assert not squeeze_series(*b, min_on_bars=run + 1).fired.any()


def test_bad_input():
    c = np.ones(5)
    with pytest.raises(InputError):
        squeeze_series(c, c, c, c[:4])
    with pytest.raises(ConfigError) as e:
        squeeze_series(c, c, c, c, bb_len=0, kc_mult=-1.0)
    assert len(e.value.problems) == 2


# ---------------------------------------------------------------------------------------------------- kernel parity

SERIES_FIELDS = ("sqz_on", "sqz_off", "mom", "fired", "fire_dir", "bars_since_fire", "state", "upper_bb", "lower_bb",
                 "upper_kc", "lower_kc")
SPAN_KEYS = ("bb_len", "kc_len", "mom_len", "fire_window", "min_on_bars", "range_window", "fall_bars")


@st.composite
def squeeze_params(draw):
    return {"bb_len": draw(st.integers(1, 25)), "kc_len": draw(st.integers(1, 25)), "mom_len": draw(st.integers(1, 25)),
            "fire_window": draw(st.integers(1, 12)), "min_on_bars": draw(st.integers(1, 6)),
            "range_window": draw(st.integers(1, 25)), "fall_bars": draw(st.integers(1, 6)),
            "min_crosses": draw(st.integers(1, 3)), "use_true_range": draw(st.booleans()),
            "bb_mult": draw(st.sampled_from([0.5, 1.0, 2.0, 2.7])), "kc_mult": draw(st.sampled_from([0.8, 1.5, 3.0]))}


def _same_series(a, b) -> None:
    for name in SERIES_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


@settings(max_examples=80)
@given(regime_bars(max_size=200), st.one_of(st.just({}), squeeze_params()))
def test_kernel_equals_the_numpy_reference_bit_for_bit(b, kw):
    _same_series(squeeze_series(*b, **kw), slow.squeeze_series(*b, **kw))


def test_kernel_equals_the_numpy_reference_on_breakouts_and_flat_bars():
    for seed in range(20):
        b = breakout_bars(seed=seed, direction=1 if seed % 2 else -1, scale=10.0 ** (seed % 5))
        _same_series(squeeze_series(*b), slow.squeeze_series(*b))
    flat = np.full(60, 100.0)
    _same_series(squeeze_series(flat, flat + 0.5, flat - 0.5, flat), slow.squeeze_series(flat, flat + 0.5,
                                                                                         flat - 0.5, flat))


def test_the_last_squeeze_span_bars_decide_the_last_bar():
    """squeeze_series of the last squeeze_span bars gives the last bar's state, fire_dir, mom and sqz_on exactly
    (what the scanner reads), for random parameters and every bar of fast-switching regimes; one bar fewer does
    not."""
    rng = np.random.default_rng(2021)
    checked = fired = shorter_differs = 0
    for _ in range(150):
        kw = {"bb_len": int(rng.integers(2, 25)), "kc_len": int(rng.integers(2, 25)),
              "mom_len": int(rng.integers(2, 25)), "fire_window": int(rng.integers(1, 30)),
              "min_on_bars": int(rng.integers(1, 8)), "range_window": int(rng.integers(2, 30)),
              "fall_bars": int(rng.integers(1, 8))}
        extra = {"min_crosses": int(rng.integers(1, 4)), "use_true_range": bool(rng.integers(2))}
        span = squeeze_span(**kw)
        n = span + int(rng.integers(1, 100))
        regime = np.repeat(rng.uniform(0.005, 2.0, n // 8 + 1), 8)[:n]
        close = 100.0 + np.cumsum(rng.normal(0, 1, n) * regime)
        o, h, lo, c = _ohlc_from_close(close, rng.uniform(0.01, 1.5, n) * regime)
        full = squeeze_series(o, h, lo, c, **kw, **extra)
        for t in range(n):
            want = (int(full.state[t]), int(full.fire_dir[t]), full.mom[t].tobytes(), bool(full.sqz_on[t]))
            s = max(0, t + 1 - span)
            tail = squeeze_series(o[s:t + 1], h[s:t + 1], lo[s:t + 1], c[s:t + 1], **kw, **extra)
            assert (int(tail.state[-1]), int(tail.fire_dir[-1]), tail.mom[-1].tobytes(), bool(tail.sqz_on[-1])) == want
            checked += 1
            fired += int(full.state[t]) == STATE_CODE[SqueezeState.FIRED]
            if t + 1 >= span and t % 5 == 0:
                short = squeeze_series(o[s + 1:t + 1], h[s + 1:t + 1], lo[s + 1:t + 1], c[s + 1:t + 1], **kw, **extra)
                shorter_differs += short.mom[-1].tobytes() != full.mom[t].tobytes() or short.state[-1] != full.state[t]
    assert checked > 10_000 and fired > 500 and shorter_differs > 0


def test_squeeze_span_of_the_defaults():
    assert squeeze_span() == 59  # 20 momentum bars back, each a 20-bar fit of 20-bar detrended closes


def test_squeeze_last_bar_equals_the_series_at_its_last_bar():
    """squeeze_last_bar (the scanner's read) is squeeze_series at the last bar, bit for bit, for random parameters
    and every prefix of fast-switching regimes."""
    rng = np.random.default_rng(2023)
    for _ in range(40):
        kw = {"bb_len": int(rng.integers(2, 25)), "kc_len": int(rng.integers(2, 25)),
              "mom_len": int(rng.integers(2, 25)), "fire_window": int(rng.integers(1, 30)),
              "min_on_bars": int(rng.integers(1, 8)), "range_window": int(rng.integers(2, 30)),
              "fall_bars": int(rng.integers(1, 8)), "min_crosses": int(rng.integers(1, 4)),
              "use_true_range": bool(rng.integers(2))}
        n = int(rng.integers(1, 160))
        regime = np.repeat(rng.uniform(0.005, 2.0, n // 8 + 1), 8)[:n]
        close = 100.0 + np.cumsum(rng.normal(0, 1, n) * regime)
        o, h, lo, c = _ohlc_from_close(close, rng.uniform(0.01, 1.5, n) * regime)
        full = squeeze_series(o, h, lo, c, **kw)
        for t in range(n):
            last = squeeze_last_bar(o[:t + 1], h[:t + 1], lo[:t + 1], c[:t + 1], **kw)
            assert (last.state, last.fire_dir, np.float64(last.mom).tobytes(), last.sqz_on) == (
                full.state_at(t), int(full.fire_dir[t]), full.mom[t].tobytes(), bool(full.sqz_on[t]))


def test_squeeze_last_bar_refuses_what_squeeze_series_refuses():
    with pytest.raises(ConfigError, match="bb_len"):
        squeeze_last_bar([1.0], [1.0], [1.0], [1.0], bb_len=0)
    with pytest.raises(InputError, match="equal length"):
        squeeze_last_bar([1.0], [1.0, 2.0], [1.0], [1.0])
    with pytest.raises(InputError, match="at least one bar"):
        squeeze_last_bar([], [], [], [])
