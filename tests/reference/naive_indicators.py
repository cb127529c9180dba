"""Plain-loop references for gridcore.analysis.indicators and the squeeze state machine (textbook formulas)."""

from __future__ import annotations

import math

NAN = float("nan")


def _windows(x, n):
    x = [float(v) for v in x]
    for t in range(len(x)):
        yield t, (x[t - n + 1 : t + 1] if t >= n - 1 else None)


def sma(x, n):
    return [NAN if win is None else sum(win) / n for _, win in _windows(x, n)]


def rolling_std(x, n):
    out = []
    for _, win in _windows(x, n):
        if win is None:
            out.append(NAN)
            continue
        mean = sum(win) / n
        out.append(math.sqrt(sum((v - mean) ** 2 for v in win) / n))
    return out


def true_range(high, low, close):
    out = []
    for t in range(len(high)):
        if t == 0:
            out.append(high[0] - low[0])
        else:
            out.append(max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1])))
    return out


def rma(x, n):
    """Wilder: SMA of the first n values, then (prev·(n-1) + x) / n (inputs without NaN)."""
    out = [NAN] * len(x)
    if len(x) < n:
        return out
    prev = sum(x[:n]) / n
    out[n - 1] = prev
    for t in range(n, len(x)):
        prev = (prev * (n - 1) + x[t]) / n
        out[t] = prev
    return out


def atr(high, low, close, n):
    return rma(true_range(high, low, close), n)


def linreg(x, n):
    """Ordinary least squares y = a + b·i over i = 0..n-1 (oldest first), value at i = n-1. y is centred by its
    window mean first: the textbook normal equations on raw prices would cancel."""
    out = []
    for _, win in _windows(x, n):
        if win is None:
            out.append(NAN)
            continue
        if n == 1:
            out.append(win[0])
            continue
        ybar = sum(win) / n
        ys = [v - ybar for v in win]
        sx = sum(range(n))
        sy = sum(ys)
        sxx = sum(i * i for i in range(n))
        sxy = sum(i * y for i, y in enumerate(ys))
        b = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        a = (sy - b * sx) / n
        out.append(ybar + a + b * (n - 1))
    return out


def highest(x, n):
    return [NAN if win is None else max(win) for _, win in _windows(x, n)]


def lowest(x, n):
    return [NAN if win is None else min(win) for _, win in _windows(x, n)]


def squeeze_states(sqz_on, mom, *, fire_window=5, min_on_bars=3, range_window=20, min_crosses=2, fall_bars=3,
                   bands_ok=None):
    """The analyzer states of gridcore.analysis.squeeze from per-bar sqz_on and mom, bar by bar with loops.
    Returns (fired, fire_dir, state names)."""
    n = len(mom)
    bands_ok = bands_ok if bands_ok is not None else [True] * n
    fired = [False] * n
    for t in range(1, n):
        if sqz_on[t - 1] and not sqz_on[t] and bands_ok[t]:
            run, u = 0, t - 1
            while u >= 0 and sqz_on[u]:
                run, u = run + 1, u - 1
            fired[t] = run >= min_on_bars
    lookback = max(range_window, fall_bars)
    states, dirs = [], []
    for t in range(n):
        last = max((u for u in range(t + 1) if fired[u]), default=None)
        d = 0
        if t < lookback or not bands_ok[t] or any(math.isnan(mom[u]) for u in range(t - lookback, t + 1)):
            s = "WARMUP"
        elif sqz_on[t]:
            s = "COMPRESSION"
        elif last is not None and t - last < fire_window:
            s = "FIRED"
            m = mom[last]
            d = 1 if m > 0 else -1 if m < 0 else 0
        else:
            crosses = sum(1 for u in range(t - range_window + 1, t + 1) if (mom[u] >= 0) != (mom[u - 1] >= 0))
            falling = all(abs(mom[u]) < abs(mom[u - 1]) for u in range(t - fall_bars + 1, t + 1))
            s = "RANGING" if crosses >= min_crosses or falling else "TRENDING"
        states.append(s)
        dirs.append(d)
    return fired, dirs, states
