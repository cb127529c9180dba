"""Exact weighted 1-D k-means by dynamic programming (algorithms.md §2.2).

Reference: tests/reference/naive_kmeans.py.
"""

from __future__ import annotations

import numpy as np

from gridcore.analysis.kernels._jit import njit

OK = 0
BAD_X = 1  # a non-finite coordinate
BAD_W = 2  # a negative, NaN or infinite weight
TOO_FEW = 3  # fewer points with positive weight than clusters


def out_buffers(n_all: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The output arrays kmeans_dp fills (passing them in is ~1.5 µs cheaper than returning new arrays)."""
    return np.empty(k + 1 + 2 * n_all, np.int64), np.empty(1 + 2 * k, np.float64)


@njit
def _welford_add(cw, mean, ss, xi, wi):
    """Add point (xi, wi > 0) to a group of weight cw, mean and weighted sum of squares ss."""
    if cw == 0.0:
        return wi, xi, 0.0  # exact: xi * wi / wi need not equal xi
    cw_new = cw + wi
    delta = xi - mean
    mean_new = mean + delta * wi / cw_new
    return cw_new, mean_new, ss + wi * delta * (xi - mean_new)


@njit
def kmeans_dp(x, w, k, ints, floats):
    """Cluster the points with w > 0 into k contiguous groups of minimal weighted SSE; returns a status code.

    Fills ints = [bounds (k+1) | order (n) | labels (len(x)) | unused] and floats = [sse | centroids (k) |
    weights (k)], where n = bounds[k] is the number of kept points, `order` their input indices sorted by x
    (stable), cluster c = order[bounds[c]:bounds[c+1]], and labels are per input point (-1 for w == 0).
    """
    n_all = x.shape[0]
    n = 0
    for p in range(n_all):
        if not np.isfinite(x[p]):
            return BAD_X
        if not (w[p] >= 0.0 and w[p] < np.inf):
            return BAD_W
        if w[p] > 0.0:
            n += 1
    if n < k:
        return TOO_FEW
    bounds = ints[: k + 1]
    order = ints[k + 1 : k + 1 + n]
    labels = ints[k + 1 + n : k + 1 + n + n_all]
    if _sort_positive(x, w, order) and n == n_all:
        xs, ws = x, w  # already sorted, nothing dropped: no copies
    else:
        xs, ws = x[order], w[order]
    _dp_bounds(xs, ws, k, bounds)
    labels[:] = -1
    floats[0] = 0.0
    for c in range(k):
        a, b = bounds[c], bounds[c + 1]
        sw = 0.0
        swx = 0.0
        for p in range(a, b):
            sw += ws[p]
            swx += ws[p] * xs[p]
        mu = min(max(swx / sw, xs[a]), xs[b - 1])  # rounding can put a weighted mean one ulp outside its cluster
        part = 0.0
        for p in range(a, b):
            part += ws[p] * (xs[p] - mu) ** 2
            labels[order[p]] = c
        floats[1 + c] = mu
        floats[1 + k + c] = sw
        floats[0] += part
    return OK


@njit
def _sort_positive(x, w, order):
    """Fill order with the indices of w > 0 sorted by x (stable); True if they were sorted already."""
    q = 0
    presorted = True
    for p in range(x.shape[0]):
        if w[p] > 0.0:
            if q > 0 and x[p] < x[order[q - 1]]:
                presorted = False
            order[q] = p
            q += 1
    if not presorted:
        order[:] = order[np.argsort(x[order], kind="mergesort")]
    return presorted


@njit
def _dp_bounds(xs, ws, k, bounds):
    """The DP over sorted points: writes the k+1 cluster boundaries (half-open ranges) into bounds."""
    n = xs.shape[0]
    # D[m, j]: least SSE of the sorted points 0..j in m+1 clusters; B[m, j]: first index of the last cluster.
    D = np.empty((k, n), np.float64)
    B = np.zeros((k, n), np.int64)
    cw = 0.0
    mean = 0.0
    ss = 0.0
    for j in range(n):  # weighted Welford: stable where the prefix-sum formula of §2.2 cancels
        cw, mean, ss = _welford_add(cw, mean, ss, xs[j], ws[j])
        D[0, j] = ss
    for m in range(1, k):
        j_lo = n - 1 if m == k - 1 else m  # the last row only needs all n points
        for j in range(j_lo, n):
            best = np.inf
            best_i = j
            cw = 0.0
            mean = 0.0
            ss = 0.0
            for i in range(j, m - 1, -1):  # last cluster = i..j, grown leftwards
                cw, mean, ss = _welford_add(cw, mean, ss, xs[i], ws[i])
                cost = D[m - 1, i - 1] + ss
                if cost < best:
                    best = cost
                    best_i = i
            D[m, j] = best
            B[m, j] = best_i
    bounds[k] = n
    j = n - 1
    for m in range(k - 1, -1, -1):
        bounds[m] = B[m, j]
        j = bounds[m] - 1
