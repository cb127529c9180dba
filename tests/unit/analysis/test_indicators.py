"""Indicators: equal to plain loops, causal, warm-up NaNs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcore.analysis import indicators as ind
from gridcore.errors import ConfigError, InputError
from tests.reference import naive_indicators as ref

RTOL = 1e-12


@st.composite
def bars(draw, min_size=0, max_size=80):
    """Random-walk OHLC with positive prices; H >= max(O, C), L <= min(O, C)."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(min_size, max_size))
    level = draw(st.sampled_from([1.0, 100.0, 60_000.0]))
    rng = np.random.default_rng(seed)
    close = level * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[level], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    return open_, high, low, close


lengths = st.integers(1, 30)


def _close(actual, expected, scale=None):
    """rtol 1e-12; where a value can be near zero (stdev, detrended fits) also atol 1e-12 of the data scale."""
    atol = 0.0 if scale is None else 1e-12 * scale
    np.testing.assert_allclose(actual, np.array(expected, dtype=float), rtol=RTOL, atol=atol)


@settings(max_examples=60)
@given(bars(), lengths)
def test_rolling_functions_equal_plain_loops(b, n):
    _, high, low, close = b
    scale = float(np.max(np.abs(close))) if close.size else 1.0
    _close(ind.sma(close, n), ref.sma(close, n))
    _close(ind.rolling_std(close, n), ref.rolling_std(close, n), scale)
    _close(ind.linreg(close, n), ref.linreg(close, n), scale)
    _close(ind.highest(high, n), ref.highest(high.tolist(), n))
    _close(ind.lowest(low, n), ref.lowest(low.tolist(), n))
    _close(ind.true_range(high, low, close), ref.true_range(high, low, close))
    _close(ind.rma(close, n), ref.rma(close.tolist(), n))
    _close(ind.atr(high, low, close, n), ref.atr(high, low, close, n))


@settings(max_examples=30)
@given(bars(min_size=1, max_size=60), lengths)
def test_causal_prefix_equals_full(b, n):
    _, high, low, close = b
    fns = {
        "sma": lambda k: ind.sma(close[:k], n),
        "std": lambda k: ind.rolling_std(close[:k], n),
        "linreg": lambda k: ind.linreg(close[:k], n),
        "highest": lambda k: ind.highest(high[:k], n),
        "lowest": lambda k: ind.lowest(low[:k], n),
        "tr": lambda k: ind.true_range(high[:k], low[:k], close[:k]),
        "rma": lambda k: ind.rma(close[:k], n),
        "atr": lambda k: ind.atr(high[:k], low[:k], close[:k], n),
    }
    for name, f in fns.items():
        full = f(close.size)
        assert full.dtype == np.float64 and full.shape == close.shape, name
        for k in range(close.size + 1):
            np.testing.assert_array_equal(f(k), full[:k], err_msg=f"{name} k={k}")


@given(bars(min_size=1, max_size=60), lengths)
def test_warm_up_is_nan_then_finite(b, n):
    _, high, low, close = b
    for out in (ind.sma(close, n), ind.rolling_std(close, n), ind.linreg(close, n), ind.highest(high, n),
                ind.lowest(low, n), ind.rma(close, n), ind.atr(high, low, close, n)):
        assert np.all(np.isnan(out[: n - 1]))
        assert np.all(np.isfinite(out[n - 1 :]))
    assert np.all(np.isfinite(ind.true_range(high, low, close)))


def test_hand_values():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    np.testing.assert_array_equal(ind.sma(x, 2), [np.nan, 1.5, 2.5, 3.5, 7.0])
    np.testing.assert_allclose(ind.rolling_std(x, 2), [np.nan, 0.5, 0.5, 0.5, 3.0])
    np.testing.assert_array_equal(ind.highest(x, 3), [np.nan, np.nan, 3.0, 4.0, 10.0])
    np.testing.assert_array_equal(ind.lowest(x, 3), [np.nan, np.nan, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(ind.linreg(x, 3), [np.nan, np.nan, 3.0, 4.0, 17 / 3 + 3.5])  # 3,4,10: mean + slope
    h, lo, c = np.array([10.0, 12.0, 9.0]), np.array([8.0, 11.0, 7.0]), np.array([9.0, 11.5, 8.0])
    np.testing.assert_array_equal(ind.true_range(h, lo, c), [2.0, 3.0, 4.5])
    np.testing.assert_allclose(ind.atr(h, lo, c, 2), [np.nan, 2.5, (2.5 + 4.5) / 2])


def test_linreg_of_a_line_is_the_line_and_length_one_is_identity():
    x = 60_000.0 + 0.5 * np.arange(50)
    np.testing.assert_allclose(ind.linreg(x, 20)[19:], x[19:], rtol=1e-15)
    np.testing.assert_array_equal(ind.linreg(x, 1), x)


def test_constant_window_has_exactly_zero_stdev():
    assert np.all(ind.rolling_std(np.full(30, 0.1), 20)[19:] == 0.0)
    assert np.all(ind.rolling_std(np.full(30, 96_123.4), 20)[19:] == 0.0)


def test_nan_in_a_window_gives_nan_there_only():
    x = np.arange(10, dtype=float)
    x[4] = np.nan
    for f in (ind.sma, ind.rolling_std, ind.linreg, ind.highest, ind.lowest):
        out = f(x, 3)
        assert np.all(np.isfinite(out[2:4])) and np.all(np.isnan(out[4:7])) and np.all(np.isfinite(out[7:])), f.__name__
    r = ind.rma(np.concatenate([[np.nan, np.nan], np.arange(1.0, 6.0)]), 2)
    np.testing.assert_allclose(r, [np.nan, np.nan, np.nan, 1.5, 2.25, 3.125, 4.0625])


def test_bad_arguments():
    with pytest.raises(ConfigError):
        ind.sma([1.0, 2.0], 0)
    with pytest.raises(ConfigError):
        ind.sma([1.0, 2.0], 2.5)
    with pytest.raises(InputError):
        ind.sma(np.ones((2, 2)), 1)
    with pytest.raises(InputError):
        ind.atr([1.0, 2.0], [1.0], [1.0, 2.0], 1)
