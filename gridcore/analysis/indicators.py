"""Causal indicators on float arrays: the value at bar t uses bars <= t only.

Every function returns a float64 array as long as its input, NaN during warm-up (the first length-1 bars) and in
any window that contains a NaN. Rolling windows are recomputed per bar, so f(x[:k]) == f(x)[:k] exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from gridcore.analysis.kernels import indicators_nb as _nb
from gridcore.errors import ConfigError, InputError


def _series(x: ArrayLike, name: str) -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise InputError(f"{name}: expected a 1-D series, was shape {a.shape}")
    return a


def _length(n: int, name: str) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ConfigError(f"{name}: expected a window length >= 1, was {n!r}")
    return int(n)


def _hlc(high: ArrayLike, low: ArrayLike, close: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, lo, c = _series(high, name), _series(low, name), _series(close, name)
    if not h.shape == lo.shape == c.shape:
        raise InputError(f"{name}: expected high, low, close of equal length, was {h.size}, {lo.size}, {c.size}")
    return h, lo, c


def sma(x: ArrayLike, n: int) -> np.ndarray:
    """Simple moving average of the last n values."""
    return _nb.sma(_series(x, "sma"), _length(n, "sma"))


def rolling_std(x: ArrayLike, n: int) -> np.ndarray:
    """Population standard deviation (ddof=0, as Pine's ta.stdev) of the last n values."""
    return _nb.rolling_std(_series(x, "rolling_std"), _length(n, "rolling_std"))


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> np.ndarray:
    """max(H-L, |H-C[t-1]|, |L-C[t-1]|); H-L on bar 0. Never NaN for finite input (no warm-up)."""
    return _nb.true_range(*_hlc(high, low, close, "true_range"))


def rma(x: ArrayLike, n: int) -> np.ndarray:
    """Wilder's moving average (Pine's ta.rma): SMA seed over the first n finite values, then
    r[t] = (r[t-1]·(n-1) + x[t]) / n. Recursive, so a value depends on the whole history since the seed."""
    return _nb.rma(_series(x, "rma"), _length(n, "rma"))


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> np.ndarray:
    """Wilder's ATR: rma(true_range, n); first value at bar n-1."""
    return _nb.rma(_nb.true_range(*_hlc(high, low, close, "atr")), _length(n, "atr"))


def linreg(x: ArrayLike, n: int) -> np.ndarray:
    """Value at the last bar of the least-squares line through the last n values (Pine's linreg(src, n, 0))."""
    return _nb.linreg(_series(x, "linreg"), _length(n, "linreg"))


def highest(x: ArrayLike, n: int) -> np.ndarray:
    """Highest value of the last n bars (use with highs)."""
    return _nb.rolling_max(_series(x, "highest"), _length(n, "highest"))


def lowest(x: ArrayLike, n: int) -> np.ndarray:
    """Lowest value of the last n bars (use with lows)."""
    return _nb.rolling_min(_series(x, "lowest"), _length(n, "lowest"))
