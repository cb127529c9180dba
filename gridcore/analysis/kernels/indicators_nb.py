"""Causal rolling-window indicator kernels. Reference: tests/reference/naive_indicators.py.

Each window is recomputed from its own bars (O(n·length)) instead of updating running sums: the value at t is then
a function of bars t-length+1..t only, bit-for-bit, however long the series and wherever it starts. NaN inside a
window makes that window's value NaN; output is NaN during warm-up (t < length - 1).
"""

from __future__ import annotations

import numpy as np

from gridcore.analysis.kernels._jit import njit


@njit
def sma(x, n):
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        s = 0.0
        for i in range(t - n + 1, t + 1):
            s += x[i]
        out[t] = s / n
    return out


@njit
def rolling_std(x, n):
    """Population stdev (ddof=0), two-pass on values shifted by x[t]: a constant window gives exactly 0."""
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        ref = x[t]
        s = 0.0
        for i in range(t - n + 1, t + 1):
            s += x[i] - ref
        mean = s / n
        ss = 0.0
        for i in range(t - n + 1, t + 1):
            d = x[i] - ref - mean
            ss += d * d
        out[t] = np.sqrt(ss / n)
    return out


@njit
def true_range(high, low, close):
    """max(H-L, |H-C[t-1]|, |L-C[t-1]|); bar 0 has no previous close and gets H-L (Pine's ta.tr(true))."""
    n = high.shape[0]
    out = np.empty(n)
    for t in range(n):
        r = high[t] - low[t]
        if t > 0:
            r = _nanmax3(r, abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        out[t] = r
    return out


@njit
def _nanmax3(a, b, c):
    if np.isnan(a) or np.isnan(b) or np.isnan(c):
        return np.nan
    return max(a, max(b, c))


@njit
def rma(x, n):
    """Wilder's smoothing: seeded with the SMA of the first n consecutive finite values, then
    r[t] = (r[t-1]·(n-1) + x[t]) / n. Leading NaNs are skipped; a later NaN propagates to every later value."""
    m = x.shape[0]
    out = np.full(m, np.nan)
    run = 0
    t0 = -1
    for t in range(m):
        run = run + 1 if np.isfinite(x[t]) else 0
        if run == n:
            t0 = t
            break
    if t0 < 0:
        return out
    s = 0.0
    for i in range(t0 - n + 1, t0 + 1):
        s += x[i]
    r = s / n
    out[t0] = r
    for t in range(t0 + 1, m):
        r = (r * (n - 1) + x[t]) / n
        out[t] = r
    return out


@njit
def linreg(x, n):
    """Least-squares line through the last n bars (x = 0..n-1, oldest first), evaluated at the last bar; Pine's
    ta.linreg(src, n, 0). Values are shifted by x[t] before the sums so that slow trends on large prices do not
    cancel."""
    m = x.shape[0]
    out = np.full(m, np.nan)
    if n == 1:
        for t in range(m):
            out[t] = x[t]
        return out
    xbar = (n - 1) / 2.0
    sxx = n * (n * n - 1) / 12.0
    for t in range(n - 1, m):
        ref = x[t]
        sd = 0.0
        sxd = 0.0
        for i in range(n):
            d = x[t - n + 1 + i] - ref
            sd += d
            sxd += (i - xbar) * d
        out[t] = ref + sd / n + (sxd / sxx) * xbar
    return out


@njit
def rolling_max(x, n):
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        best = x[t - n + 1]
        for i in range(t - n + 1, t + 1):
            v = x[i]
            if np.isnan(v):
                best = np.nan
                break
            if v > best:
                best = v
        out[t] = best
    return out


@njit
def rolling_min(x, n):
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        best = x[t - n + 1]
        for i in range(t - n + 1, t + 1):
            v = x[i]
            if np.isnan(v):
                best = np.nan
                break
            if v < best:
                best = v
        out[t] = best
    return out
