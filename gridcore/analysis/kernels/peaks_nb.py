"""HVN / LVN peak finding (algorithms.md §1.6): scipy.signal.find_peaks' local maxima, distance and prominence rules,
ported loop for loop so the nodes equal those of `find_peaks` exactly (tests/reference/slow_analysis.py keeps the
scipy version; the parity test compares them). The one piece left to numpy is the argsort that orders peaks by
height for the distance rule: scipy uses numpy's (unstable) sort, so ties must resolve the same way."""

from __future__ import annotations

import numpy as np

from gridcore.analysis.kernels._jit import njit


@njit
def local_maxima(x: np.ndarray) -> np.ndarray:
    """Midpoints (rounded down) of the plateaus that have a smaller sample on both sides (scipy's
    _local_maxima_1d)."""
    out = np.empty(x.shape[0] // 2, np.int64)
    m = 0
    i = 1
    i_max = x.shape[0] - 1
    while i < i_max:
        if x[i - 1] < x[i]:
            i_ahead = i + 1
            while i_ahead < i_max and x[i_ahead] == x[i]:
                i_ahead += 1
            if x[i_ahead] < x[i]:
                out[m] = (i + i_ahead - 1) // 2
                m += 1
                i = i_ahead
        i += 1
    return out[:m]


@njit
def top_and_maxima(x: np.ndarray):
    """(max(x), local_maxima(x)) of a finite, non-empty x in one call."""
    top = x[0]
    for i in range(1, x.shape[0]):
        if x[i] > top:
            top = x[i]
    return top, local_maxima(x)


@njit
def _keep_by_distance(peaks: np.ndarray, order: np.ndarray, distance: int) -> np.ndarray:
    """scipy's _select_by_peak_distance: highest first (order = argsort of the heights), neighbours closer than
    `distance` are dropped."""
    size = peaks.shape[0]
    keep = np.ones(size, np.bool_)
    for i in range(size - 1, -1, -1):
        j = order[i]
        if not keep[j]:
            continue
        k = j - 1
        while 0 <= k and peaks[j] - peaks[k] < distance:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < size and peaks[k] - peaks[j] < distance:
            keep[k] = False
            k += 1
    return peaks[keep]


@njit
def _prominences(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """scipy's _peak_prominences over the whole signal (wlen unset)."""
    out = np.empty(peaks.shape[0])
    i_max = x.shape[0] - 1
    for p in range(peaks.shape[0]):
        peak = peaks[p]
        left_min = x[peak]
        i = peak
        while 0 <= i and x[i] <= x[peak]:
            if x[i] < left_min:
                left_min = x[i]
            i -= 1
        right_min = x[peak]
        i = peak
        while i <= i_max and x[i] <= x[peak]:
            if x[i] < right_min:
                right_min = x[i]
            i += 1
        out[p] = x[peak] - max(left_min, right_min)
    return out


@njit
def nodes(y: np.ndarray, peaks: np.ndarray, order: np.ndarray, distance: int, min_prominence: float):
    """HVN, their prominences and LVN from the smoothed profile y, its local maxima `peaks` and order =
    np.argsort(y[peaks]) (volume_nodes' rule: HVN = find_peaks(y, prominence, distance); LVN = the first argmin of
    y between adjacent HVNs plus the prominent minima of y outside the outermost HVNs, sorted and unique)."""
    kept = _keep_by_distance(peaks, order, distance)
    prom = _prominences(y, kept)
    sel = prom >= min_prominence
    hvn = kept[sel]
    hvn_prom = prom[sel]
    neg = -y
    troughs = local_maxima(neg)
    troughs = troughs[_prominences(neg, troughs) >= min_prominence]
    lvn = np.empty(max(hvn.shape[0] - 1, 0) + troughs.shape[0], np.int64)
    m = 0
    for q in range(hvn.shape[0] - 1):
        a = hvn[q]
        best = a
        for i in range(a + 1, hvn[q + 1] + 1):
            if y[i] < y[best]:
                best = i
        lvn[m] = best
        m += 1
    for q in range(troughs.shape[0]):
        tq = troughs[q]
        if hvn.shape[0] == 0 or tq < hvn[0] or tq > hvn[hvn.shape[0] - 1]:
            lvn[m] = tq
            m += 1
    lvn = np.sort(lvn[:m])
    out = np.empty(m, np.int64)
    u = 0
    for i in range(m):
        if u == 0 or lvn[i] != out[u - 1]:
            out[u] = lvn[i]
            u += 1
    return hvn, hvn_prom, out[:u]


@njit
def smooth(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Correlation with the symmetric kernel w[0], w[1..r] (w[d] weighs x[i - d] and x[i + d]), zero outside the
    profile: scipy.ndimage.correlate1d's symmetric branch, summed in its order (outermost pair first), which is
    what gaussian_filter1d(x, sigma, mode="constant") computes."""
    n = x.shape[0]
    r = w.shape[0] - 1
    out = np.empty(n)
    for i in range(n):
        acc = x[i] * w[0]
        for d in range(r, 0, -1):
            left = x[i - d] if i - d >= 0 else 0.0
            right = x[i + d] if i + d < n else 0.0
            acc += (left + right) * w[d]
        out[i] = acc
    return out
