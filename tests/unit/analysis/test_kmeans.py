"""Exact weighted 1-D k-means: brute force, sklearn, invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcore.analysis.kmeans import weighted_kmeans_1d
from gridcore.errors import ConfigError, InputError
from tests.reference.naive_kmeans import brute_force_kmeans, naive_dp_kmeans, partition_sse

MAX_N = {1: 12, 2: 12, 3: 10, 4: 8}  # brute force enumerates k**(n-1) labellings


def _tol(x, w) -> float:
    x, w = np.asarray(x), np.asarray(w)
    keep = w > 0
    total = partition_sse(x[keep], w[keep], np.zeros(int(keep.sum()), dtype=int))
    return 1e-9 * total + 1e-12


@st.composite
def points(draw, max_n=40, min_n=1, k=None):
    k = k if k is not None else draw(st.integers(1, 4))
    n = draw(st.integers(max(k, min_n), max_n if max_n else MAX_N[k]))
    x = draw(st.lists(st.floats(-1e3, 1e3, allow_subnormal=False), min_size=n, max_size=n))
    w = draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e3)), min_size=n, max_size=n))
    if sum(v > 0 for v in w) < k:  # make k of them positive
        w = [v if i >= k else max(v, 1.0) for i, v in enumerate(w)]
    return np.array(x), np.array(w), k


@st.composite
def small_points(draw):
    k = draw(st.integers(1, 4))
    return draw(points(max_n=None, k=k))


def test_known_answer_and_zero_weights():
    res = weighted_kmeans_1d([12.0, 1.0, 2.0, 7.0, 10.0, 11.0], [1, 1, 1, 0, 1, 1], 2)
    assert res.labels.tolist() == [1, 0, 0, -1, 1, 1]
    np.testing.assert_allclose(res.centroids, [1.5, 11.0])
    assert res.sse == pytest.approx(0.5 + 2.0)
    assert res.ranges == [(0, 2), (2, 5)]
    assert res.order.tolist() == [1, 2, 4, 5, 0]
    np.testing.assert_allclose(res.weights, [2.0, 3.0])
    assert res.members(1).tolist() == [4, 5, 0]
    assert res.k == 2


def test_weights_move_the_split():
    x = [0.0, 4.0, 5.0, 10.0]
    assert weighted_kmeans_1d(x, [1, 1, 1, 1], 2).labels.tolist() == [0, 0, 0, 1]
    assert weighted_kmeans_1d(x, [100, 1, 1, 1], 2).labels.tolist() == [0, 1, 1, 1]


def test_k1_and_k_equals_n():
    x, w = np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 1.0])
    one = weighted_kmeans_1d(x, w, 1)
    assert one.labels.tolist() == [0, 0, 0]
    assert one.centroids[0] == pytest.approx(7.0 / 4.0)
    full = weighted_kmeans_1d(x, w, 3)
    assert full.sse == 0.0
    assert full.labels.tolist() == [2, 0, 1]
    np.testing.assert_array_equal(full.centroids, [1.0, 2.0, 3.0])


def test_errors():
    with pytest.raises(InputError, match="finite x"):
        weighted_kmeans_1d([1.0, np.nan], [1.0, 1.0], 1)
    with pytest.raises(InputError, match="weights >= 0"):
        weighted_kmeans_1d([1.0, 2.0], [1.0, -1.0], 1)
    with pytest.raises(InputError, match="weights >= 0"):
        weighted_kmeans_1d([1.0, 2.0], [np.inf, 1.0], 1)
    with pytest.raises(InputError, match="at least k=2 points with positive weight, was 1"):
        weighted_kmeans_1d([1.0, 2.0], [1.0, 0.0], 2)
    with pytest.raises(InputError, match="equal 1-D shape"):
        weighted_kmeans_1d([1.0, 2.0], [1.0], 1)
    with pytest.raises(ConfigError):
        weighted_kmeans_1d([1.0, 2.0], [1.0, 1.0], 0)


@settings(max_examples=150)
@given(small_points())
def test_equals_brute_force_over_every_partition(data):
    x, w, k = data
    res = weighted_kmeans_1d(x, w, k)
    bf_sse, _ = brute_force_kmeans(x, w, k)
    tol = _tol(x, w)
    assert res.sse <= bf_sse + tol
    assert bf_sse <= res.sse + tol  # the DP's partition is one of those enumerated


@pytest.mark.parametrize(("n", "k"), [(12, 2), (12, 3), (10, 4)])
def test_brute_force_at_the_size_limit(n, k):
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(m, 1.0, n) for m in (0, 4, 9, 15)])[rng.permutation(4 * n)[:n]]
    w = rng.uniform(0.1, 5.0, n)
    res = weighted_kmeans_1d(x, w, k)
    bf_sse, _ = brute_force_kmeans(x, w, k)
    assert res.sse == pytest.approx(bf_sse, rel=1e-12)


@settings(max_examples=60)
@given(points(max_n=60), st.integers(1, 5))
def test_matches_naive_dp(data, k):
    x, w, _ = data
    if int(np.sum(w > 0)) < k:
        return
    res = weighted_kmeans_1d(x, w, k)
    ref_sse, _ = naive_dp_kmeans(x, w, k)
    assert res.sse == pytest.approx(ref_sse, rel=1e-9, abs=_tol(x, w))


@settings(max_examples=12)
@given(points(max_n=40, min_n=6), st.integers(0, 2**16))
def test_never_worse_than_sklearn(data, seed):
    from sklearn.cluster import KMeans

    x, w, k = data
    keep = w > 0
    xk, wk = x[keep], w[keep]
    if np.unique(xk).size < k:
        return
    res = weighted_kmeans_1d(x, w, k)
    for n_init, rs in ((1, seed), (1, seed + 1), (4, seed + 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on duplicate points
            km = KMeans(n_clusters=k, n_init=n_init, random_state=rs).fit(xk[:, None], sample_weight=wk)
        assert res.sse <= partition_sse(xk, wk, km.labels_) + _tol(x, w)


@settings(max_examples=100)
@given(points(max_n=50))
def test_structure_invariants(data):
    x, w, k = data
    res = weighted_kmeans_1d(x, w, k)
    keep = w > 0
    assert res.labels.dtype == np.int64 and res.labels.shape == x.shape
    assert np.all(res.labels[~keep] == -1) and np.all(res.labels[keep] >= 0)
    assert sorted(res.order.tolist()) == np.flatnonzero(keep).tolist()
    xs = x[res.order]
    assert np.all(np.diff(xs) >= 0)
    assert res.ranges[0][0] == 0 and res.ranges[-1][1] == keep.sum()
    assert all(a < b for a, b in res.ranges)  # non-empty
    assert all(b == a2 for (_, b), (a2, _) in zip(res.ranges, res.ranges[1:], strict=False))  # contiguous
    assert np.all(np.diff(res.centroids) >= 0)
    for c, (a, b) in enumerate(res.ranges):
        assert np.all(res.labels[res.order[a:b]] == c)
        assert xs[a] <= res.centroids[c] <= xs[b - 1]
        assert res.weights[c] == pytest.approx(w[res.order[a:b]].sum(), rel=1e-12)
    assert res.sse == pytest.approx(partition_sse(x, w, res.labels), rel=1e-9, abs=_tol(x, w))


@given(points(max_n=50))
def test_deterministic(data):
    x, w, k = data
    a, b = weighted_kmeans_1d(x, w, k), weighted_kmeans_1d(x.copy(), w.copy(), k)
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa, fb)


@given(points(max_n=50), st.integers(-20, 20))
def test_weight_scaling_by_power_of_two_is_exact(data, e):
    x, w, k = data
    a, b = weighted_kmeans_1d(x, w, k), weighted_kmeans_1d(x, w * 2.0**e, k)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)


@given(st.integers(0, 2**32 - 1), st.integers(2, 60), st.integers(1, 5), st.floats(1e-3, 1e3))
def test_weight_scaling_leaves_clusters_unchanged(seed, n, k, c):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(0, 10, n), rng.uniform(0, 5, n)
    k = min(k, n)
    a, b = weighted_kmeans_1d(x, w, k), weighted_kmeans_1d(x, w * c, k)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.centroids, b.centroids, rtol=1e-12)
    assert b.sse == pytest.approx(a.sse * c, rel=1e-9)


@given(st.integers(0, 2**32 - 1), st.integers(2, 60), st.integers(1, 5), st.floats(1e-3, 1e3))
def test_price_scaling_scales_centroids(seed, n, k, c):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(0, 10, n), rng.uniform(0, 5, n)
    k = min(k, n)
    a, b = weighted_kmeans_1d(x, w, k), weighted_kmeans_1d(x * c, w, k)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(b.centroids, a.centroids * c, rtol=1e-9, atol=1e-12 * c)


@given(st.integers(0, 2**32 - 1), st.integers(2, 40), st.integers(1, 4))
def test_input_order_does_not_matter(seed, n, k):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(0, 10, n), rng.uniform(0.1, 5, n)
    k = min(k, n)
    perm = rng.permutation(n)
    a, b = weighted_kmeans_1d(x, w, k), weighted_kmeans_1d(x[perm], w[perm], k)
    np.testing.assert_array_equal(a.labels[perm], b.labels)
    np.testing.assert_allclose(a.centroids, b.centroids, rtol=1e-12)


def test_large_prices_keep_precision():
    # BTC-sized bin centres: the prefix-sum formula would lose the small within-cluster spread
    x = 96_000.0 + np.array([0.0, 0.1, 0.2, 500.0, 500.1, 500.2])
    res = weighted_kmeans_1d(x, np.ones(6), 2)
    assert res.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert res.sse == pytest.approx(4 * 0.01, rel=1e-6)
