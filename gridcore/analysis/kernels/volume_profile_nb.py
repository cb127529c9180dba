"""Numba kernels for the volume profile (algorithms.md §1.3). Validated wrappers live in analysis/volume_profile.py.

Row coordinates: a price x maps to u = snap(x / h) - k0, so bin j of the profile is [j, j + 1) and the profile
has rows 0..n-1 (k0 = e_0 / h). `snap` moves a value within SNAP_RTOL * max(1, |x / h|) of an integer onto that
integer, so a price on an edge up to float noise (100.2 / 0.30000000000000004 = 333.99999999999994) counts as
exactly on the edge. Edge rule: a price on an interior edge e_j belongs to bin j (the bin above); the top edge
e_n belongs to the last bin. Shifting every price by m * h therefore moves every bar by exactly m rows.
"""

import math

import numpy as np

from gridcore.analysis.kernels._jit import njit

# Far below one tick for any real price/tick ratio (BTC: 1e5 / 0.1 = 1e6 ticks -> 1e-3 tick), far above the
# error of one float division.
SNAP_RTOL = 1e-9


@njit
def snap(u: float) -> float:
    """u moved onto the nearest integer when it is within SNAP_RTOL * max(1, |u|) of it, else u unchanged."""
    r = math.floor(u + 0.5)
    if abs(u - r) <= SNAP_RTOL * max(1.0, abs(u)):
        return float(r)
    return u


@njit
def _row(x: float, h: float, k0: float, n: int) -> float:
    """Row coordinate of price x, clamped to [0, n] (only tolerance-sized excess is ever clamped)."""
    u = snap(x / h) - k0
    return min(max(u, 0.0), float(n))


@njit
def _bin(u: float, n: int) -> int:
    """Bin holding row coordinate u: floor(u), with the top edge u == n folded into bin n - 1."""
    return min(max(int(math.floor(u)), 0), n - 1)


@njit
def _spread(out: np.ndarray, a: float, b: float, weight: float) -> None:
    """out[j] += weight * overlap([a, b], [j, j + 1]) over the rows the segment a < b touches."""
    j1 = min(int(math.ceil(b)) - 1, out.shape[0] - 1)
    for j in range(int(math.floor(a)), j1 + 1):
        overlap = min(b, j + 1.0) - max(a, float(j))
        if overlap > 0.0:
            out[j] += weight * overlap


@njit
def profile_uniform(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                    k0: float, n: int, h: float) -> np.ndarray:
    """Uniform density on [L, H] per bar; an H == L bar puts V into the bin of C."""
    out = np.zeros(n)
    for i in range(high.shape[0]):
        v = volume[i]
        if v == 0.0:
            continue
        a = _row(low[i], h, k0, n)
        b = _row(high[i], h, k0, n)
        if b > a:
            _spread(out, a, b, v / (b - a))
        else:
            out[_bin(_row(close[i], h, k0, n), n)] += v
    return out


@njit
def _tri_cdf(x: float, a: float, b: float, m: float) -> float:
    """CDF of the triangular density on [a, b] with mode m (a < b)."""
    if x <= a:
        return 0.0
    if x >= b:
        return 1.0
    if x <= m:  # here a < x <= m, so m > a
        return (x - a) * (x - a) / ((b - a) * (m - a))
    return 1.0 - (b - x) * (b - x) / ((b - a) * (b - m))  # here m < x < b, so b > m


@njit
def profile_triangular(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                       k0: float, n: int, h: float) -> np.ndarray:
    """Triangular density on [L, H] with mode clip((H + L + C) / 3, L, H) per bar."""
    out = np.zeros(n)
    for i in range(high.shape[0]):
        v = volume[i]
        if v == 0.0:
            continue
        a = _row(low[i], h, k0, n)
        b = _row(high[i], h, k0, n)
        c = _row(close[i], h, k0, n)
        if b <= a:
            out[_bin(c, n)] += v
            continue
        m = min(max((a + b + c) / 3.0, a), b)
        j1 = min(int(math.ceil(b)) - 1, n - 1)
        for j in range(int(math.floor(a)), j1 + 1):
            lo_e = max(a, float(j))
            hi_e = min(b, j + 1.0)
            if hi_e > lo_e:
                # max(0, .): the two CDF branches can disagree by an ulp at the mode
                out[j] += v * max(0.0, _tri_cdf(hi_e, a, b, m) - _tri_cdf(lo_e, a, b, m))
    return out


@njit
def profile_path(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                 k0: float, n: int, h: float) -> np.ndarray:
    """Path-length weights: the §5.2 bar-direction path (C >= O: O-L-H-C, else O-H-L-C), V spread per unit length.

    Both paths give wicks twice the density of the body.
    """
    out = np.zeros(n)
    for i in range(high.shape[0]):
        v = volume[i]
        if v == 0.0:
            continue
        o = _row(open_[i], h, k0, n)
        hi = _row(high[i], h, k0, n)
        lo = _row(low[i], h, k0, n)
        c = _row(close[i], h, k0, n)
        if hi <= lo:
            out[_bin(c, n)] += v
            continue
        if close[i] >= open_[i]:
            s1a, s1b, s3a, s3b = lo, o, c, hi  # O -> L, (L -> H), H -> C
        else:
            s1a, s1b, s3a, s3b = o, hi, lo, c  # O -> H, (H -> L), L -> C
        w = v / ((s1b - s1a) + (hi - lo) + (s3b - s3a))
        if s1b > s1a:
            _spread(out, s1a, s1b, w)
        _spread(out, lo, hi, w)
        if s3b > s3a:
            _spread(out, s3a, s3b, w)
    return out


@njit
def profile_close(close: np.ndarray, volume: np.ndarray, k0: float, n: int, h: float) -> np.ndarray:
    """All of V into the bin of C."""
    out = np.zeros(n)
    for i in range(close.shape[0]):
        if volume[i] != 0.0:
            out[_bin(_row(close[i], h, k0, n), n)] += volume[i]
    return out


# ---------------------------------------------------------------------------------------------------- checks, POC, VA
# The wrappers call these on the hot path and fall back to their numpy checks (which raise the precise message) only
# when a check fails, so a valid input costs one pass instead of a dozen numpy calls.


@njit
def bars_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, open_: np.ndarray,
               has_open: bool):
    """(ok, min(low), max(high)); ok: all finite, low <= high, low <= close <= high, (low <= open <= high,)
    volume >= 0 and arrays of equal length (the range is meaningless when not ok)."""
    n = high.shape[0]
    lo_min = np.inf
    hi_max = -np.inf
    if low.shape[0] != n or close.shape[0] != n or volume.shape[0] != n or (has_open and open_.shape[0] != n):
        return False, lo_min, hi_max
    for i in range(n):
        h = high[i]
        lo = low[i]
        c = close[i]
        v = volume[i]
        if not (np.isfinite(h) and np.isfinite(lo) and np.isfinite(c) and np.isfinite(v)):
            return False, lo_min, hi_max
        if h < lo or c < lo or c > h or v < 0.0:
            return False, lo_min, hi_max
        if has_open:
            o = open_[i]
            if not np.isfinite(o) or o < lo or o > h:
                return False, lo_min, hi_max
        lo_min = min(lo_min, lo)
        hi_max = max(hi_max, h)
    return True, lo_min, hi_max


@njit
def volumes_ok(v: np.ndarray) -> bool:
    """All finite and >= 0."""
    for i in range(v.shape[0]):
        if not (np.isfinite(v[i]) and v[i] >= 0.0):
            return False
    return True


@njit
def point_of_control(v: np.ndarray, rtol: float) -> int:
    """The bin of largest volume, volumes within rtol of the maximum tied; among ties the one closest to the middle
    index (n - 1) / 2, then the lower. v: finite, non-empty."""
    n = v.shape[0]
    top = v[0]
    for j in range(1, n):
        if v[j] > top:
            top = v[j]
    floor = top - rtol * top
    best = -1
    best_d = n + 1
    for j in range(n):
        if v[j] >= floor:
            d = abs(2 * j - (n - 1))
            if d < best_d:
                best = j
                best_d = d
    return best


@njit
def _sum_rows(v: np.ndarray, a: int, b: int) -> float:
    """v[a:b].sum() for the 1 or 2 rows a value-area step adds (numpy sums so few values left to right)."""
    s = v[a]
    for j in range(a + 1, b):
        s += v[j]
    return s


@njit
def value_area(v: np.ndarray, poc: int, step: int, target: float):
    """§1.5 from the POC until the rows hold >= target (the wrapper's pct * numpy sum): (lo, hi, volume)."""
    n = v.shape[0]
    lo = poc
    hi = poc
    acc = v[poc]
    while acc < target:
        if hi == n - 1 and lo == 0:
            break
        has_up = hi < n - 1
        has_dn = lo > 0
        up = _sum_rows(v, hi + 1, min(hi + 1 + step, n)) if has_up else 0.0
        dn = _sum_rows(v, max(lo - step, 0), lo) if has_dn else 0.0
        if not has_dn or (has_up and up >= dn):
            k = min(step, n - 1 - hi)
            acc += _sum_rows(v, hi + 1, hi + 1 + k)
            hi += k
        else:
            k = min(step, lo)
            acc += _sum_rows(v, lo - k, lo)
            lo -= k
    return lo, hi, acc
