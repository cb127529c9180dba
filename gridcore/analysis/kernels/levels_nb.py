"""The numbers of the four-peaks box (algorithms.md §2.3): per side of the price, the exact weighted 2-means of the
non-empty rows and each cluster's level, share, centroid and bounds. analysis/levels.py builds the Box (reasons,
gap rules) around them; the numpy formulation this replaced is tests/reference/slow_analysis.py."""

from __future__ import annotations

import math

import numpy as np

from gridcore.analysis.kernels import kmeans_nb
from gridcore.analysis.kernels._jit import njit


@njit
def finite_weights(c: np.ndarray, v: np.ndarray) -> bool:
    """c and v finite and v >= 0 (equal lengths given)."""
    for i in range(c.shape[0]):
        if not (np.isfinite(c[i]) and np.isfinite(v[i]) and v[i] >= 0.0):
            return False
    return True


@njit
def peak(c: np.ndarray, v: np.ndarray, centroid: float) -> float:
    """The bin of largest volume; ties -> nearest the centroid (distances within 1e-9 of the cluster's width
    tie too), then the lower. c is sorted, non-empty."""
    j = 0
    for i in range(1, v.shape[0]):
        if v[i] > v[j]:
            j = i
    count = 0
    for i in range(v.shape[0]):
        if v[i] == v[j]:
            count += 1
    if count == 1:
        return c[j]
    d_min = math.inf
    for i in range(v.shape[0]):
        if v[i] == v[j]:
            d_min = min(d_min, abs(c[i] - centroid))
    limit = d_min + 1e-9 * (c[c.shape[0] - 1] - c[0])
    for i in range(v.shape[0]):
        if v[i] == v[j] and abs(c[i] - centroid) <= limit:
            return c[i]
    return c[j]  # not reached: the nearest tied bin meets its own limit


@njit
def box_sides(c: np.ndarray, v: np.ndarray, price: float, row_height: float, peak_mode: bool, out: np.ndarray,
              sizes: np.ndarray) -> None:
    """out[slot] = (level, share, centroid, low bound, high bound) for slots s2, s1 (below price - row_height)
    and r1, r2 (above price + row_height) over the bins with v > 0; sizes[side] = the number of such bins. A side
    with fewer than 2 bins leaves its rows of `out` untouched."""
    below = price - row_height
    above = price + row_height
    for side in range(2):
        m = 0
        for i in range(c.shape[0]):
            if v[i] > 0.0 and (c[i] < below if side == 0 else c[i] > above):
                m += 1
        sizes[side] = m
        if m < 2:
            continue
        idx = np.empty(m, np.int64)
        q = 0
        for i in range(c.shape[0]):
            if v[i] > 0.0 and (c[i] < below if side == 0 else c[i] > above):
                idx[q] = i
                q += 1
        x = c[idx]
        w = v[idx]
        ints, floats = np.empty(3 + 2 * m, np.int64), np.empty(5, np.float64)  # = kmeans_nb.out_buffers(m, 2)
        kmeans_nb.kmeans_dp(x, w, 2, ints, floats)  # cannot fail: finite x, m >= 2 positive weights
        n = ints[2]
        order = idx[ints[3:3 + n]]
        cs = c[order]
        vs = v[order]
        total = floats[3] + floats[4]
        for cl in range(2):
            a = ints[cl]
            b = ints[cl + 1]
            centroid = floats[1 + cl]
            row = out[2 * side + cl]
            row[0] = peak(cs[a:b], vs[a:b], centroid) if peak_mode else centroid
            row[1] = floats[3 + cl] / total
            row[2] = centroid
            row[3] = cs[a]
            row[4] = cs[b - 1]
