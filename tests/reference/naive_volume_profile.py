"""Slow, obviously-correct references for gridcore.analysis.volume_profile (plain Python loops, price space).

Every bar is checked against every bin. The only shared rule is the documented edge tolerance: a price within
1e-9 * max(h, |price|) of an edge counts as on it, and a price on an edge belongs to the bin above it (the top
edge to the last bin).
"""

from __future__ import annotations

import math

RTOL = 1e-9


def _tol(x: float, h: float) -> float:
    return RTOL * max(h, abs(x))


def layout(lo: float, hi: float, h: float) -> tuple[int, int]:
    """(k0, n): e_0 = k0 * h is the highest multiple of h at or below lo; n >= 1 rows reach hi."""
    k0 = math.floor(lo / h)
    while (k0 + 1) * h <= lo + _tol(lo, h):
        k0 += 1
    while k0 * h > lo + _tol(lo, h):
        k0 -= 1
    n = 1
    while (k0 + n) * h < hi - _tol(hi, h):
        n += 1
    return k0, n


def edges_of(k0: int, n: int, h: float) -> list[float]:
    return [(k0 + j) * h for j in range(n + 1)]


def bin_of(x: float, edges: list[float]) -> int:
    """The highest bin whose lower edge x reaches (within tolerance); bin 0 below the first edge."""
    h = edges[1] - edges[0]
    for j in range(len(edges) - 2, -1, -1):
        if x >= edges[j] - _tol(x, h):
            return j
    return 0


def row_height(lo: float, hi: float, tick: float, rows: int) -> float:
    """Smallest multiple of tick (at least one) with rows * h >= hi - lo, within tolerance."""
    k = 1
    while rows * k * tick < (hi - lo) - RTOL * max(1.0, hi - lo):
        k += 1
    return k * tick


def _overlap(a1: float, b1: float, a2: float, b2: float) -> float:
    return max(0.0, min(b1, b2) - max(a1, a2))


def profile_uniform(high, low, close, volume, edges) -> list[float]:
    n = len(edges) - 1
    out = [0.0] * n
    for H, L, C, V in zip(high, low, close, volume, strict=True):
        if V == 0:
            continue
        if H == L:
            out[bin_of(C, edges)] += V
            continue
        for j in range(n):
            out[j] += V * _overlap(edges[j], edges[j + 1], L, H) / (H - L)
    return out


def _tri_cdf(x: float, L: float, H: float, m: float) -> float:
    if x <= L:
        return 0.0
    if x >= H:
        return 1.0
    if x <= m:
        return (x - L) ** 2 / ((H - L) * (m - L))
    return 1 - (H - x) ** 2 / ((H - L) * (H - m))


def profile_triangular(high, low, close, volume, edges) -> list[float]:
    n = len(edges) - 1
    out = [0.0] * n
    for H, L, C, V in zip(high, low, close, volume, strict=True):
        if V == 0:
            continue
        if H == L:
            out[bin_of(C, edges)] += V
            continue
        m = min(max((H + L + C) / 3, L), H)
        for j in range(n):
            a = min(max(edges[j], L), H)
            b = min(max(edges[j + 1], L), H)
            out[j] += V * (_tri_cdf(b, L, H, m) - _tri_cdf(a, L, H, m))
    return out


def profile_path(open_, high, low, close, volume, edges) -> list[float]:
    n = len(edges) - 1
    out = [0.0] * n
    for o, hi, lo, c, v in zip(open_, high, low, close, volume, strict=True):
        if v == 0:
            continue
        if hi == lo:
            out[bin_of(c, edges)] += v
            continue
        path = [o, lo, hi, c] if c >= o else [o, hi, lo, c]  # §5.2 bar-direction path
        segments = [(min(p, q), max(p, q)) for p, q in zip(path[:-1], path[1:], strict=True)]
        length = sum(b - a for a, b in segments)
        for j in range(n):
            out[j] += v * sum(_overlap(edges[j], edges[j + 1], a, b) for a, b in segments) / length
    return out


def profile_close(close, volume, edges) -> list[float]:
    out = [0.0] * (len(edges) - 1)
    for C, V in zip(close, volume, strict=True):
        out[bin_of(C, edges)] += V
    return out


def point_of_control(v) -> int:
    """Largest volume; ties -> nearest to index (n - 1) / 2, then the lower (exact comparisons)."""
    n = len(v)
    best = 0
    for j in range(1, n):
        if v[j] > v[best] or (v[j] == v[best] and abs(j - (n - 1) / 2) < abs(best - (n - 1) / 2)):
            best = j
    return best


def value_area(v, poc: int, pct: float = 0.70, step: int = 2) -> tuple[int, int, float, list[tuple[str, int]]]:
    """§1.5 literally. Returns (lo, hi, acc, groups) with groups = [(side, rows added), ...] in order."""
    n = len(v)

    def at(i: int) -> float:
        return v[i] if 0 <= i < n else 0.0

    target = pct * sum(v)
    lo = hi = poc
    acc = v[poc]
    groups: list[tuple[str, int]] = []
    while acc < target:
        up = None if hi == n - 1 else sum(at(hi + d) for d in range(1, step + 1))
        dn = None if lo == 0 else sum(at(lo - d) for d in range(1, step + 1))
        if up is None and dn is None:
            break
        if dn is None or (up is not None and up >= dn):
            k = min(step, n - 1 - hi)
            acc += sum(v[hi + 1:hi + 1 + k])
            hi += k
            groups.append(("up", k))
        else:
            k = min(step, lo)
            acc += sum(v[lo - k:lo])
            lo -= k
            groups.append(("down", k))
    return lo, hi, acc, groups
