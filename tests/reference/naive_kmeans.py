"""Slow, obviously-correct references for gridcore.analysis.kmeans."""

from __future__ import annotations

import numpy as np


def partition_sse(x, w, labels) -> float:
    """Weighted within-cluster sum of squares of a labelling (two-pass per cluster; label -1 ignored)."""
    x, w, labels = np.asarray(x, float), np.asarray(w, float), np.asarray(labels)
    total = 0.0
    for c in sorted(set(labels.tolist()) - {-1}):
        xs, ws = x[labels == c], w[labels == c]
        mu = float(np.sum(ws * xs) / np.sum(ws))
        total += float(np.sum(ws * (xs - mu) ** 2))
    return total


def brute_force_kmeans(x, w, k: int, chunk: int = 1 << 15) -> tuple[float, np.ndarray]:
    """Least weighted SSE over every partition of the positive-weight points into exactly k non-empty clusters,
    contiguous or not: all k**(n-1) labellings with point 0 in cluster 0. Returns (sse, labels of the kept
    points in input order). Meant for n <= 12."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    keep = w > 0
    x, w = x[keep], w[keep]
    n = x.size
    if n < k:
        raise ValueError("fewer points than clusters")
    xc = x - np.sum(w * x) / np.sum(w)  # centring keeps Q - S²/W accurate
    wx, wxx = w * xc, w * xc * xc
    powers = k ** np.arange(n - 1, dtype=np.int64)
    best, best_labels = np.inf, None
    total = k ** (n - 1)
    for start in range(0, total, chunk):
        codes = np.arange(start, min(start + chunk, total), dtype=np.int64)
        labels = np.zeros((codes.size, n), dtype=np.int64)
        labels[:, 1:] = (codes[:, None] // powers[None, :]) % k
        sse = np.zeros(codes.size)
        nonempty = np.ones(codes.size, dtype=bool)
        for c in range(k):
            m = (labels == c).astype(float)
            cw, cs, cq = m @ w, m @ wx, m @ wxx
            nonempty &= cw > 0
            sse += np.where(cw > 0, cq - cs * cs / np.where(cw > 0, cw, 1.0), 0.0)
        sse[~nonempty] = np.inf
        i = int(np.argmin(sse))
        if sse[i] < best:
            best, best_labels = float(sse[i]), labels[i].copy()
    return partition_sse(x, w, best_labels), best_labels


def naive_dp_kmeans(x, w, k: int) -> tuple[float, list[tuple[int, int]]]:
    """The DP of algorithms.md §2.2 in plain loops, O(k·n³): cost(i, j) recomputed two-pass for every range.
    Returns (sse, half-open index ranges into the positive-weight points sorted by x)."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    keep = w > 0
    order = np.argsort(x[keep], kind="mergesort")
    xs, ws = x[keep][order].tolist(), w[keep][order].tolist()
    n = len(xs)

    def cost(i: int, j: int) -> float:  # points i..j inclusive
        sw = sum(ws[i : j + 1])
        mu = sum(a * b for a, b in zip(xs[i : j + 1], ws[i : j + 1], strict=True)) / sw
        return sum(b * (a - mu) ** 2 for a, b in zip(xs[i : j + 1], ws[i : j + 1], strict=True))

    inf = float("inf")
    D = [[inf] * (n + 1) for _ in range(k + 1)]
    B = [[0] * (n + 1) for _ in range(k + 1)]
    D[0][0] = 0.0
    for m in range(1, k + 1):
        for j in range(m, n + 1):
            for i in range(m - 1, j):
                c = D[m - 1][i] + cost(i, j - 1)
                if c < D[m][j]:
                    D[m][j], B[m][j] = c, i
    ranges, j = [], n
    for m in range(k, 0, -1):
        i = B[m][j]
        ranges.append((i, j))
        j = i
    return D[k][n], ranges[::-1]
