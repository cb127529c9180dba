"""The analysis functions as they were before their numba kernels (squeeze, POC / value area / nodes, the
four-peaks box): numpy and scipy, kept verbatim as the bit-for-bit references of the kernels that replaced them
(gridcore/analysis/kernels/squeeze_nb.py, volume_profile_nb.py, peaks_nb.py, levels_nb.py)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from gridcore.analysis import indicators as ind
from gridcore.analysis.kmeans import weighted_kmeans_1d
from gridcore.analysis.levels import _NAN4, LEVEL_MODES, Box, _share_reasons, _structure_reasons
from gridcore.analysis.squeeze import SqueezeSeries, _check_params
from gridcore.analysis.volume_profile import POC_TIE_RTOL, Nodes, ValueArea, _int, _scalar, _volumes
from gridcore.errors import ConfigError, InputError

_WARMUP, _COMPRESSION, _FIRED, _RANGING, _TRENDING = range(5)  # the codes, in SQUEEZE_STATES order


def squeeze_series(
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    *,
    bb_len: int = 20,
    bb_mult: float = 2.0,
    kc_len: int = 20,
    kc_mult: float = 1.5,
    mom_len: int = 20,
    fire_window: int = 5,
    min_on_bars: int = 3,
    use_true_range: bool = True,
    range_window: int = 20,
    min_crosses: int = 2,
    fall_bars: int = 3,
) -> SqueezeSeries:
    """Squeeze bands, momentum, fires and the analyzer state for every bar; bar t uses bars <= t only.

    open_ is not used by the formulas; it is accepted (and length-checked) so callers pass whole bars.
    """
    _check_params(bb_len, kc_len, mom_len, fire_window, min_on_bars, range_window, min_crosses, fall_bars,
                  bb_mult, kc_mult)
    o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close))
    if o.ndim != 1 or not o.shape == h.shape == lo.shape == c.shape:
        raise InputError(f"squeeze_series: expected 1-D open, high, low, close of equal length, was "
                         f"{o.shape}, {h.shape}, {lo.shape}, {c.shape}")
    n = c.shape[0]
    idx = np.arange(n)

    basis = ind.sma(c, bb_len)
    dev = bb_mult * ind.rolling_std(c, bb_len)
    upper_bb, lower_bb = basis + dev, basis - dev
    ma = ind.sma(c, kc_len)
    rangema = ind.sma(ind.true_range(h, lo, c) if use_true_range else h - lo, kc_len)
    upper_kc, lower_kc = ma + rangema * kc_mult, ma - rangema * kc_mult
    sqz_on = (lower_bb > lower_kc) & (upper_bb < upper_kc)  # NaN compares False: off during warm-up
    sqz_off = (lower_bb < lower_kc) & (upper_bb > upper_kc)
    bands_ok = np.isfinite(upper_bb) & np.isfinite(lower_bb) & np.isfinite(upper_kc) & np.isfinite(lower_kc)

    mid = (ind.highest(h, kc_len) + ind.lowest(lo, kc_len)) / 2.0
    mom = ind.linreg(c - (mid + ma) / 2.0, mom_len)

    # fires: length of the on-run ending at each bar, from the last bar that was not on
    run = idx - np.maximum.accumulate(np.where(sqz_on, -1, idx))
    fired = np.zeros(n, dtype=bool)
    fired[1:] = sqz_on[:-1] & ~sqz_on[1:] & (run[:-1] >= min_on_bars) & bands_ok[1:]
    dir_at = np.where(mom > 0, 1, np.where(mom < 0, -1, 0)).astype(np.int8)
    last_fire = np.maximum.accumulate(np.where(fired, idx, -1))
    bars_since_fire = np.where(last_fire >= 0, idx - last_fire, -1)

    lookback = max(range_window, fall_bars)
    mom_ok = _trailing_all(np.isfinite(mom), lookback + 1)
    prev_nonneg = np.concatenate(([False], mom[:-1] >= 0))
    cross = np.concatenate(([False], np.isfinite(mom[:-1]))) & np.isfinite(mom) & ((mom >= 0) != prev_nonneg)
    absm = np.abs(mom)
    fall = np.concatenate(([False], absm[1:] < absm[:-1]))
    ranging = (_trailing_sum(cross, range_window) >= min_crosses) | _trailing_all(fall, fall_bars)

    state = np.full(n, _TRENDING, dtype=np.int8)
    state[ranging] = _RANGING
    in_fire = (bars_since_fire >= 0) & (bars_since_fire < fire_window)
    state[in_fire] = _FIRED
    state[sqz_on] = _COMPRESSION
    state[~(bands_ok & mom_ok)] = _WARMUP
    fire_dir = np.where(state == _FIRED, dir_at[np.maximum(last_fire, 0)], 0).astype(np.int8)
    return SqueezeSeries(sqz_on, sqz_off, mom, fired, fire_dir, bars_since_fire, state, upper_bb, lower_bb,
                         upper_kc, lower_kc)


def _trailing_sum(flags: np.ndarray, window: int) -> np.ndarray:
    """Number of True flags in (t - window, t], counting only bars that exist."""
    cs = np.cumsum(flags, dtype=np.int64)
    out = cs.copy()
    out[window:] -= cs[:-window]
    return out


def _trailing_all(flags: np.ndarray, window: int) -> np.ndarray:
    """True where the last `window` bars (t - window, t] all exist and are True."""
    out = _trailing_sum(flags, window) == window
    out[: window - 1] = False
    return out


def point_of_control(volumes: np.ndarray) -> int:
    """argmax of the volumes; a tie goes to the tied bin closest to mid-range (index (n - 1) / 2), then the lower.

    Volumes within POC_TIE_RTOL (1e-12) of the maximum count as tied.
    """
    v = _volumes(volumes)
    top = float(v.max())
    tied = np.flatnonzero(v >= top - POC_TIE_RTOL * top)
    n = v.shape[0]
    # |2j - (n - 1)| is twice the distance to the mid index, in integers; argmin keeps the lower on a tie.
    return int(tied[np.argmin(np.abs(2 * tied - (n - 1)))])


def value_area(volumes: np.ndarray, poc: int, *, pct: float = 0.70, step: int = 2) -> ValueArea:
    """Value area by the §1.5 pseudo-code: from the POC add `step` rows at a time (1 or 2) to the side whose next
    rows hold more volume (tie -> above; rows beyond the profile count 0) until the rows hold >= pct of the total.

    VAL = edges[lo], VAH = edges[hi + 1] (edges, not centres; `ValueArea.prices`).
    """
    v = _volumes(volumes)
    n = v.shape[0]
    poc = _int("poc", poc, 0)
    if poc >= n:
        raise InputError(f"expected poc < {n} (the number of rows), was {poc}")
    pct = _scalar("pct", pct)
    if not 0 < pct <= 1:
        raise InputError(f"expected 0 < pct <= 1, was {pct!r}")
    if step not in (1, 2) or isinstance(step, bool):
        raise InputError(f"expected step 1 or 2, was {step!r}")
    total = float(v.sum())
    target = pct * total
    lo = hi = poc
    acc = float(v[poc])
    while acc < target:
        if hi == n - 1 and lo == 0:
            break
        up = float(v[hi + 1:hi + 1 + step].sum()) if hi < n - 1 else None
        dn = float(v[max(lo - step, 0):lo].sum()) if lo > 0 else None
        if dn is None or (up is not None and up >= dn):
            k = min(step, n - 1 - hi)
            acc += float(v[hi + 1:hi + 1 + k].sum())
            hi += k
        else:
            k = min(step, lo)
            acc += float(v[lo - k:lo].sum())
            lo -= k
    return ValueArea(lo, hi, acc, acc / total if total > 0 else 0.0)


def volume_nodes(volumes: np.ndarray, *, sigma: float = 1.5, prominence: float = 0.10, distance: int = 3) -> Nodes:
    """HVN / LVN by §1.6 on y = gaussian_filter1d(v, sigma, mode="constant") (sigma = 0: y = v, no smoothing).

    mode="constant" pads with zero volume: nothing traded outside the profile's range, and a volume shelf at the
    range edge can still show up as a peak (with "nearest" the edge bin would be the maximum, which find_peaks
    never reports). HVN = find_peaks(y, prominence=prominence * max(y), distance=distance). LVN = argmin of y
    between each pair of adjacent HVNs (the lowest index on a flat bottom), plus the minima of y with the same
    prominence outside the outermost HVNs (anywhere, when there is no HVN).
    """
    v = _volumes(volumes)
    sigma = _scalar("sigma", sigma)
    if sigma < 0:
        raise InputError(f"expected sigma >= 0, was {sigma!r}")
    alpha = _scalar("prominence", prominence)
    if alpha < 0:
        raise InputError(f"expected prominence >= 0, was {alpha!r}")
    distance = _int("distance", distance, 1)
    y = gaussian_filter1d(v, sigma, mode="constant") if sigma > 0 else v.copy()
    y.setflags(write=False)
    empty = np.empty(0, np.int64)
    top = float(y.max())
    if top <= 0:
        return Nodes(empty, empty.copy(), y, np.empty(0))
    hvn, props = find_peaks(y, prominence=alpha * top, distance=distance)
    hvn = hvn.astype(np.int64)
    between = [i + int(np.argmin(y[i:j + 1])) for i, j in zip(hvn[:-1], hvn[1:], strict=True)]
    troughs, _ = find_peaks(-y, prominence=alpha * top)
    if hvn.size:
        troughs = troughs[(troughs < hvn[0]) | (troughs > hvn[-1])]
    lvn = np.unique(np.concatenate([np.asarray(between, np.int64), troughs.astype(np.int64)]))
    return Nodes(hvn, lvn, y, props["prominences"] / top)


def four_peaks_box(
    centres: ArrayLike,
    volumes: ArrayLike,
    *,
    price: float,
    atr: float,
    row_height: float,
    gap_atr: float = 0.5,
    gap_pct: float = 0.003,
    min_share: float = 0.05,
    level_mode: str = "peak",
) -> Box:
    """Split the profile at price (bins within one row of it are ignored), cluster each side into 2 with exact
    weighted k-means, and take each cluster's peak bin (its own POC; ties -> the bin nearest the centroid, then
    the lower) or its centroid as the level. Levels are bin centres (or centroids), not rounded to the tick."""
    c = np.asarray(centres, dtype=np.float64)
    v = np.asarray(volumes, dtype=np.float64)
    _check_inputs(c, v, price, atr, row_height, level_mode)
    price, atr = float(price), float(atr)
    gap = max(gap_atr * atr, gap_pct * price)
    levels, shares, cents = list(_NAN4), list(_NAN4), list(_NAN4)
    bounds = [(math.nan, math.nan)] * 4
    reasons: list[str] = []
    pos = v > 0
    sides = (("below", pos & (c < price - row_height), 0), ("above", pos & (c > price + row_height), 2))
    for side, mask, slot in sides:
        idx = np.flatnonzero(mask)
        if idx.size < 2:
            plural = "" if idx.size == 1 else "s"
            reasons.append(f"not enough structure {side} price: {idx.size} non-empty bin{plural}, need 2")
            continue
        res = weighted_kmeans_1d(c[idx], v[idx], 2)
        total = float(res.weights[0] + res.weights[1])
        cs, vs = c[idx[res.order]], v[idx[res.order]]  # the side's bins sorted by price
        for cl, (a, b) in enumerate(res.ranges):
            centroid = float(res.centroids[cl])
            levels[slot + cl] = _peak(cs[a:b], vs[a:b], centroid) if level_mode == "peak" else centroid
            shares[slot + cl] = float(res.weights[cl]) / total
            cents[slot + cl] = centroid
            bounds[slot + cl] = (float(cs[a]), float(cs[b - 1]))
    reasons += _structure_reasons(levels, price, gap)
    reasons += _share_reasons(shares, min_share)
    return Box(
        *levels, valid=not reasons, reasons=tuple(reasons), shares=tuple(shares), price=price, atr=atr, gap=gap,
        level_mode=level_mode, centroids=tuple(cents), bounds=tuple(bounds),
    )


def _peak(c: np.ndarray, v: np.ndarray, centroid: float) -> float:
    """The bin of largest volume; ties -> nearest the centroid, then the lower. c is sorted."""
    j = int(v.argmax())
    top = v == v[j]
    if top.sum() == 1:
        return float(c[j])
    ct = c[top]
    d = np.abs(ct - centroid)
    # distances equal to 1e-9 of the cluster's width count as a tie (-> the lower bin): symmetric clusters would
    # otherwise be decided by rounding, and differently after a change of price scale
    return float(ct[np.flatnonzero(d <= d.min() + 1e-9 * (c[-1] - c[0]))[0]])


def _check_inputs(c: np.ndarray, v: np.ndarray, price: float, atr: float, row_height: float, level_mode: str) -> None:
    if c.ndim != 1 or c.shape != v.shape:
        raise InputError(f"four_peaks_box: expected centres and volumes of equal 1-D shape, was {c.shape}, {v.shape}")
    if not (np.isfinite(c).all() and np.isfinite(v).all() and (v.size == 0 or v.min() >= 0)):
        raise InputError("four_peaks_box: expected finite centres and finite volumes >= 0")
    for name, x in (("price", price), ("row_height", row_height)):
        if not (x > 0 and math.isfinite(x)):
            raise InputError(f"four_peaks_box: expected {name} > 0, was {x!r}")
    if not (atr >= 0 and math.isfinite(atr)):
        raise InputError(f"four_peaks_box: expected a finite atr >= 0, was {atr!r}")
    if level_mode not in LEVEL_MODES:
        raise ConfigError(f"four_peaks_box: expected level_mode in {LEVEL_MODES}, was {level_mode!r}")
