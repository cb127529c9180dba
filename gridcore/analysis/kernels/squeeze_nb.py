"""TTM squeeze bands, momentum, fires and the analyzer state per bar in one pass (analysis/squeeze.py documents the
rules). The same float operations, in the same order, as the numpy formulation it replaced
(tests/reference/slow_analysis.py), which the parity test compares bit for bit."""

from __future__ import annotations

import numpy as np

from gridcore.analysis.kernels import indicators_nb as ind
from gridcore.analysis.kernels._jit import njit

WARMUP, COMPRESSION, FIRED, RANGING, TRENDING = range(5)  # = analysis.squeeze.SQUEEZE_STATES order


@njit
def _trailing_sum(flags: np.ndarray, window: int) -> np.ndarray:
    """Number of True flags in (t - window, t], counting only bars that exist."""
    n = flags.shape[0]
    cs = np.empty(n, np.int64)
    acc = 0
    for t in range(n):
        acc += 1 if flags[t] else 0
        cs[t] = acc
    out = cs.copy()
    for t in range(window, n):
        out[t] -= cs[t - window]
    return out


@njit
def _trailing_all(flags: np.ndarray, window: int) -> np.ndarray:
    """True where the last `window` bars (t - window, t] all exist and are True."""
    s = _trailing_sum(flags, window)
    out = np.empty(flags.shape[0], np.bool_)
    for t in range(flags.shape[0]):
        out[t] = s[t] == window and t >= window - 1
    return out


@njit
def _bands(high, low, close, bb_len, bb_mult, kc_len, kc_mult, use_true_range):
    """Bollinger and Keltner bands, sqz_on / sqz_off, bands_ok and the detrended close the momentum fits."""
    n = close.shape[0]
    basis = ind.sma(close, bb_len)
    std = ind.rolling_std(close, bb_len)
    ma = ind.sma(close, kc_len)
    if use_true_range:
        rng = ind.true_range(high, low, close)
    else:
        rng = np.empty(n)
        for t in range(n):
            rng[t] = high[t] - low[t]
    rangema = ind.sma(rng, kc_len)
    hh = ind.rolling_max(high, kc_len)
    ll = ind.rolling_min(low, kc_len)
    upper_bb = np.empty(n)
    lower_bb = np.empty(n)
    upper_kc = np.empty(n)
    lower_kc = np.empty(n)
    sqz_on = np.empty(n, np.bool_)
    sqz_off = np.empty(n, np.bool_)
    bands_ok = np.empty(n, np.bool_)
    detrended = np.empty(n)
    for t in range(n):
        dev = bb_mult * std[t]
        upper_bb[t] = basis[t] + dev
        lower_bb[t] = basis[t] - dev
        width = rangema[t] * kc_mult
        upper_kc[t] = ma[t] + width
        lower_kc[t] = ma[t] - width
        sqz_on[t] = lower_bb[t] > lower_kc[t] and upper_bb[t] < upper_kc[t]  # NaN compares False
        sqz_off[t] = lower_bb[t] < lower_kc[t] and upper_bb[t] > upper_kc[t]
        bands_ok[t] = (np.isfinite(upper_bb[t]) and np.isfinite(lower_bb[t]) and np.isfinite(upper_kc[t])
                       and np.isfinite(lower_kc[t]))
        mid = (hh[t] + ll[t]) / 2.0
        detrended[t] = close[t] - (mid + ma[t]) / 2.0
    return upper_bb, lower_bb, upper_kc, lower_kc, sqz_on, sqz_off, bands_ok, detrended


@njit
def _fires(sqz_on, bands_ok, min_on_bars):
    """fired (an on-run of >= min_on_bars ending at t - 1, off at t with defined bands), the last fire <= t
    (-1: none) and bars_since_fire."""
    n = sqz_on.shape[0]
    fired = np.zeros(n, np.bool_)
    run = 0  # consecutive on-bars ending at t - 1
    for t in range(n):
        if t >= 1:
            fired[t] = sqz_on[t - 1] and not sqz_on[t] and run >= min_on_bars and bands_ok[t]
        run = run + 1 if sqz_on[t] else 0
    bars_since_fire = np.empty(n, np.int64)
    last_fire_at = np.empty(n, np.int64)
    last = -1
    for t in range(n):
        if fired[t]:
            last = t
        last_fire_at[t] = last
        bars_since_fire[t] = t - last if last >= 0 else -1
    return fired, last_fire_at, bars_since_fire


@njit
def _ranging(mom, range_window, min_crosses, fall_bars):
    """(momentum defined over the state's lookback, ranging) per bar."""
    n = mom.shape[0]
    finite_mom = np.empty(n, np.bool_)
    cross = np.zeros(n, np.bool_)
    fall = np.zeros(n, np.bool_)
    for t in range(n):
        finite_mom[t] = np.isfinite(mom[t])
        if t >= 1:
            cross[t] = np.isfinite(mom[t - 1]) and finite_mom[t] and ((mom[t] >= 0) != (mom[t - 1] >= 0))
            fall[t] = abs(mom[t]) < abs(mom[t - 1])
    mom_ok = _trailing_all(finite_mom, max(range_window, fall_bars) + 1)
    crosses = _trailing_sum(cross, range_window)
    falling = _trailing_all(fall, fall_bars)
    ranging = np.empty(n, np.bool_)
    for t in range(n):
        ranging[t] = crosses[t] >= min_crosses or falling[t]
    return mom_ok, ranging


@njit
def _series(high, low, close, bb_len, bb_mult, kc_len, kc_mult, mom_len, min_on_bars, use_true_range, range_window,
            min_crosses, fall_bars):
    """Every per-bar array the state rule reads (and the bands, for squeeze's output)."""
    upper_bb, lower_bb, upper_kc, lower_kc, sqz_on, sqz_off, bands_ok, detrended = _bands(
        high, low, close, bb_len, bb_mult, kc_len, kc_mult, use_true_range)
    mom = ind.linreg(detrended, mom_len)
    fired, last_fire_at, bars_since_fire = _fires(sqz_on, bands_ok, min_on_bars)
    mom_ok, ranging = _ranging(mom, range_window, min_crosses, fall_bars)
    return (upper_bb, lower_bb, upper_kc, lower_kc, sqz_on, sqz_off, bands_ok, mom, fired, last_fire_at,
            bars_since_fire, mom_ok, ranging)


@njit
def _state(t, fire_window, sqz_on, bands_ok, mom, last_fire_at, bars_since_fire, mom_ok, ranging):
    """(state, fire_dir) of bar t."""
    s = TRENDING
    if ranging[t]:
        s = RANGING
    if 0 <= bars_since_fire[t] < fire_window:
        s = FIRED
    if sqz_on[t]:
        s = COMPRESSION
    if not (bands_ok[t] and mom_ok[t]):
        s = WARMUP
    direction = 0
    if s == FIRED:
        m = mom[max(last_fire_at[t], 0)]
        direction = 1 if m > 0 else (-1 if m < 0 else 0)
    return s, direction


@njit
def squeeze(high, low, close, bb_len, bb_mult, kc_len, kc_mult, mom_len, fire_window, min_on_bars, use_true_range,
            range_window, min_crosses, fall_bars):
    """(floats, flags, codes, bars_since_fire): floats = mom, upper_bb, lower_bb, upper_kc, lower_kc; flags = sqz_on,
    sqz_off, fired; codes = fire_dir, state (int8); as rows of three arrays, since each array returned to Python
    costs a boxing step."""
    (upper_bb, lower_bb, upper_kc, lower_kc, sqz_on, sqz_off, bands_ok, mom, fired, last_fire_at, bars_since_fire,
     mom_ok, ranging) = _series(high, low, close, bb_len, bb_mult, kc_len, kc_mult, mom_len, min_on_bars,
                                use_true_range, range_window, min_crosses, fall_bars)
    n = close.shape[0]
    floats = np.empty((5, n))
    flags = np.empty((3, n), np.bool_)
    codes = np.zeros((2, n), np.int8)
    for t in range(n):
        codes[1, t], codes[0, t] = _state(t, fire_window, sqz_on, bands_ok, mom, last_fire_at, bars_since_fire,
                                          mom_ok, ranging)
    floats[0] = mom
    floats[1] = upper_bb
    floats[2] = lower_bb
    floats[3] = upper_kc
    floats[4] = lower_kc
    flags[0] = sqz_on
    flags[1] = sqz_off
    flags[2] = fired
    return floats, flags, codes, bars_since_fire


@njit
def squeeze_last(high, low, close, bb_len, bb_mult, kc_len, kc_mult, mom_len, fire_window, min_on_bars,
                 use_true_range, range_window, min_crosses, fall_bars):
    """(state, fire_dir, mom, sqz_on) of the last bar (n >= 1) as squeeze computes them, without boxing arrays."""
    (_, _, _, _, sqz_on, _, bands_ok, mom, _, last_fire_at, bars_since_fire, mom_ok, ranging) = _series(
        high, low, close, bb_len, bb_mult, kc_len, kc_mult, mom_len, min_on_bars, use_true_range, range_window,
        min_crosses, fall_bars)
    t = close.shape[0] - 1
    state, direction = _state(t, fire_window, sqz_on, bands_ok, mom, last_fire_at, bars_since_fire, mom_ok, ranging)
    return state, direction, mom[t], sqz_on[t]
