"""Exact weighted 1-D k-means (algorithms.md §2.1–2.2): optimal, deterministic, no random restarts."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from gridcore.analysis.kernels import kmeans_nb
from gridcore.errors import ConfigError, InputError


class KMeansResult(NamedTuple):
    """An optimal clustering of the points with positive weight (a NamedTuple: cheap to build, immutable).

    labels: int64 cluster per input point in input order (0 = lowest cluster), -1 for zero-weight points.
    centroids: weighted means, ascending. weights: total weight per cluster.
    order: input indices of the clustered points sorted by x (stable); ranges[c] = (start, stop) is the half-open
    slice of `order` holding cluster c. sse: the minimal weighted within-cluster sum of squares.
    """

    labels: np.ndarray
    centroids: np.ndarray
    sse: float
    ranges: list[tuple[int, int]]
    weights: np.ndarray
    order: np.ndarray

    @property
    def k(self) -> int:
        return len(self.ranges)

    def members(self, c: int) -> np.ndarray:
        """Input indices of cluster c, sorted by x."""
        a, b = self.ranges[c]
        return self.order[a:b]


def weighted_kmeans_1d(x: ArrayLike, w: ArrayLike, k: int) -> KMeansResult:
    """Partition the points (x, w) with w > 0 into k clusters of least weighted SSE, O(k·n²).

    Zero-weight points are dropped first (label -1). Ties between equally good partitions resolve the same way
    on every run. Raises InputError for non-finite x, negative/non-finite w or fewer than k positive weights.
    """
    xa = np.asarray(x, dtype=np.float64)
    wa = np.asarray(w, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != wa.shape:
        raise InputError(f"weighted_kmeans_1d: expected x and w of equal 1-D shape, was {xa.shape} and {wa.shape}")
    k = int(k)
    if k < 1:
        raise ConfigError(f"weighted_kmeans_1d: expected k >= 1, was {k}")
    ints, floats = kmeans_nb.out_buffers(xa.shape[0], k)
    status = kmeans_nb.kmeans_dp(xa, wa, k, ints, floats)
    if status != kmeans_nb.OK:
        raise InputError(_status_message(status, xa, wa, k))
    b = ints[: k + 1].tolist()
    n = b[k]
    # positional: keyword construction of the NamedTuple costs twice as much, and this runs in hot loops
    return KMeansResult(
        ints[k + 1 + n : k + 1 + n + xa.shape[0]], floats[1 : 1 + k], float(floats[0]),
        [(b[c], b[c + 1]) for c in range(k)], floats[1 + k :], ints[k + 1 : k + 1 + n],
    )


def _status_message(status: int, x: np.ndarray, w: np.ndarray, k: int) -> str:
    if status == kmeans_nb.BAD_X:
        return f"weighted_kmeans_1d: expected finite x, was {x[~np.isfinite(x)][0]!r}"
    if status == kmeans_nb.BAD_W:
        bad = w[~((w >= 0) & np.isfinite(w))][0]
        return f"weighted_kmeans_1d: expected finite weights >= 0, was {bad!r}"
    return f"weighted_kmeans_1d: expected at least k={k} points with positive weight, was {int(np.sum(w > 0))}"
