"""Volume profile (VPVR) of a window of bars: bins, POC, value area, HVN/LVN (algorithms.md §1).

Bin layout (§1.2): h = ceil_to_tick((hi - lo) / rows) (at least one tick) or a given multiple of tick,
e_0 = floor(lo / h) * h, n = ceil((hi - e_0) / h) (at least 1), e_j = (e_0 / h + j) * h.
Edge rule: prices are compared with the edges in row units with a relative tolerance of SNAP_RTOL (1e-9), so a
price on an edge up to float noise counts as on it; a price on an interior edge e_j belongs to bin j (the bin
above it), a price on the top edge e_n to the last bin. A uniform bar from e_a to e_b therefore touches exactly
the bins a..b-1, and shifting every price by m * h shifts the profile by exactly m bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d

from gridcore.analysis.kernels import peaks_nb
from gridcore.analysis.kernels import volume_profile_nb as nb
from gridcore.errors import InputError

METHODS = ("uniform", "triangular", "path", "close")
MAX_BINS = 1_000_000
# Volumes within this relative distance of the maximum tie for the POC, so float noise from the spreading
# arithmetic (0.1 + 0.2 vs 0.3) does not decide it.
POC_TIE_RTOL = 1e-12


@dataclass(frozen=True, eq=False)
class Profile:
    """Bin edges (n + 1, multiples of row_height), bin volumes (n) and the row height h; arrays are read-only."""

    edges: np.ndarray
    volumes: np.ndarray
    row_height: float

    @cached_property
    def centres(self) -> np.ndarray:
        """Bin centres e_j + h / 2."""
        out = self.edges[:-1] + self.row_height / 2
        out.setflags(write=False)
        return out

    @property
    def total(self) -> float:
        return float(self.volumes.sum())


@dataclass(frozen=True)
class ValueArea:
    """Rows lo..hi (inclusive); volume = their sum, share = volume / total (0 for an empty profile).

    As prices: VAL = edges[lo], VAH = edges[hi + 1] (bin edges, not centres), see `prices`.
    """

    lo: int
    hi: int
    volume: float
    share: float

    def prices(self, edges: np.ndarray) -> tuple[float, float]:
        """(VAL, VAH) = (edges[lo], edges[hi + 1])."""
        return float(edges[self.lo]), float(edges[self.hi + 1])


@dataclass(frozen=True, eq=False)
class Nodes:
    """HVN and LVN row indices (int64, ascending), the smoothed profile y and each HVN's prominence / max(y)."""

    hvn: np.ndarray
    lvn: np.ndarray
    smoothed: np.ndarray
    hvn_prominence: np.ndarray


# ---------------------------------------------------------------------------------------------------- validation


def _scalar(name: str, x: object, *, positive: bool = False) -> float:
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"expected {name} to be a number, was {x!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise InputError(f"expected a finite{' positive' if positive else ''} {name}, was {x!r}")
    return value


def _int(name: str, x: object, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < minimum:
        raise InputError(f"expected {name} to be an integer >= {minimum}, was {x!r}")
    return int(x)


def _array(name: str, x: object) -> np.ndarray:
    try:
        arr = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"expected {name} to be an array of numbers, was {type(x).__name__}") from None
    if arr.ndim != 1:
        raise InputError(f"expected {name} to be 1-D, was shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(f"expected finite {name}, was {arr[bad[0]]!r} at index {int(bad[0])}")
    return arr


def _arrays(**named: object) -> list[np.ndarray]:
    arrays = [_array(name, x) for name, x in named.items()]
    lengths = {name: a.shape[0] for name, a in zip(named, arrays, strict=True)}
    if len(set(lengths.values())) > 1:
        raise InputError(f"expected arrays of equal length, was {lengths}")
    if arrays[0].shape[0] == 0:
        raise InputError("expected at least one bar, was 0")
    return arrays


def _first_bad(mask: np.ndarray, text: str) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        raise InputError(f"expected {text}, was violated at index {int(bad[0])} ({bad.size} bars)")


def _check_bars(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                open_: np.ndarray | None = None) -> None:
    _first_bad(high < low, "high >= low")
    _first_bad((close < low) | (close > high), "low <= close <= high")
    if open_ is not None:
        _first_bad((open_ < low) | (open_ > high), "low <= open <= high")
    _first_bad(volume < 0, "volume >= 0")


def _checked_bars(named: dict[str, object], has_open: bool) -> tuple[list[np.ndarray], float, float]:
    """_arrays + _check_bars, and (min(low), max(high)): one kernel pass for valid bars; the numpy checks (and
    their messages) otherwise."""
    try:
        arrays = [np.ascontiguousarray(x, dtype=np.float64) for x in named.values()]
    except (TypeError, ValueError):
        arrays = None
    if arrays is not None and all(a.ndim == 1 for a in arrays) and arrays[0].shape[0] > 0:
        ok, lo, hi = nb.bars_range(arrays[0], arrays[1], arrays[2], arrays[3],
                                   arrays[4] if has_open else arrays[0], has_open)
        if ok:
            return arrays, lo, hi
    arrays = _arrays(**named)
    _check_bars(*arrays[:4], arrays[4] if has_open else None)
    return arrays, float(arrays[1].min()), float(arrays[0].max())


def _volumes(volumes: object) -> np.ndarray:
    if isinstance(volumes, np.ndarray) and volumes.dtype == np.float64 and volumes.ndim == 1 and volumes.shape[0] \
            and volumes.flags.c_contiguous and nb.volumes_ok(volumes):
        return volumes
    v = _array("volumes", volumes)
    if v.shape[0] == 0:
        raise InputError("expected at least one bin, was 0")
    _first_bad(v < 0, "volumes >= 0")
    return v


# ---------------------------------------------------------------------------------------------------- bins


def row_height_for(low: float, high: float, *, tick: float, rows: int) -> float:
    """h = ceil_to_tick((high - low) / rows), at least one tick (so a flat window still has one row)."""
    lo, hi = _scalar("low", low), _scalar("high", high)
    tick = _scalar("tick", tick, positive=True)
    rows = _int("rows", rows, 1)
    if hi < lo:
        raise InputError(f"expected high >= low, was high={hi!r} < low={lo!r}")
    return _rows_height(lo, hi, tick, rows)


def _rows_height(lo: float, hi: float, tick: float, rows: int) -> float:
    ticks = math.ceil(nb.snap((hi - lo) / rows / tick))
    return max(ticks, 1) * tick


def _checked_row_height(row_height: object, tick: float) -> float:
    h = _scalar("row_height", row_height, positive=True)
    k = h / tick
    if abs(k - round(k)) > nb.SNAP_RTOL * max(1.0, k) or round(k) < 1:
        raise InputError(f"expected row_height to be a positive multiple of tick {tick!r}, was {h!r}")
    return round(k) * tick


def _layout(lo: float, hi: float, h: float) -> tuple[float, int]:
    """(k0, n): e_0 = k0 * h, n rows, by the module's edge rule."""
    k0 = math.floor(nb.snap(lo / h))
    n = max(math.ceil(nb.snap(hi / h)) - k0, 1)
    if n > MAX_BINS:
        raise InputError(f"expected at most {MAX_BINS} rows, was {n} (row height {h!r} for range {lo!r}..{hi!r})")
    return float(k0), n


def _profile(k0: float, n: int, h: float, volumes: np.ndarray) -> Profile:
    edges = (k0 + np.arange(n + 1, dtype=np.float64)) * h
    edges.setflags(write=False)
    volumes.setflags(write=False)
    return Profile(edges, volumes, h)


def _window_height(lo: float, hi: float, tick: object, rows: object, row_height: object) -> float:
    """h from `rows` (ceil_to_tick of the range / rows), or the explicit `row_height` when given; lo <= hi are
    finite (the window's checked range)."""
    try:
        tick, rows, h = _height_params(tick, rows, row_height)
    except TypeError:  # unhashable arguments: check them uncached
        tick, rows, h = _height_params.__wrapped__(tick, rows, row_height)
    return _rows_height(lo, hi, tick, rows) if h is None else h


@lru_cache(maxsize=64, typed=True)  # typed: True and 1 (equal, same hash) are different answers
def _height_params(tick: object, rows: object, row_height: object) -> tuple[float, int, float | None]:
    """The checked (tick, rows, row_height) of a layout, in row_height_for's order of checks."""
    tick = _scalar("tick", tick, positive=True)
    rows = _int("rows", rows, 1)
    return tick, rows, None if row_height is None else _checked_row_height(row_height, tick)


def volume_profile(high, low, close, volume, *, tick: float, rows: int = 100, method: str = "uniform",
                   open_=None, row_height: float | None = None) -> Profile:
    """Volume profile of the bars by `method` (§1.3): "uniform", "triangular", "path" (needs open_) or "close".

    The layout comes from min(low)..max(high) and `rows`, or from `row_height` (a multiple of tick) when given.
    An H == L bar puts all its volume into the bin of its close; zero-volume bars contribute nothing.
    """
    if method not in METHODS:
        raise InputError(f"expected method out of {', '.join(METHODS)}, was {method!r}")
    if method == "path" and open_ is None:
        raise InputError("expected open_ for method 'path', was None")
    named = {"high": high, "low": low, "close": close, "volume": volume}
    if open_ is not None:
        named["open_"] = open_
    arrays, lo, hi = _checked_bars(named, open_ is not None)
    h_, l_, c_, v_ = arrays[:4]
    o_ = arrays[4] if open_ is not None else None
    h = _window_height(lo, hi, tick, rows, row_height)
    k0, n = _layout(lo, hi, h)
    if method == "uniform":
        out = nb.profile_uniform(h_, l_, c_, v_, k0, n, h)
    elif method == "triangular":
        out = nb.profile_triangular(h_, l_, c_, v_, k0, n, h)
    elif method == "path":
        out = nb.profile_path(o_, h_, l_, c_, v_, k0, n, h)
    else:
        out = nb.profile_close(c_, v_, k0, n, h)
    return _profile(k0, n, h, out)


def volume_profile_ltf(window_high, window_low, ltf_high, ltf_low, ltf_close, ltf_volume, *, tick: float,
                       rows: int = 100, row_height: float | None = None) -> Profile:
    """Lower-timeframe profile (§1.3 method 4): layout from the window's bars, volume from the finer bars.

    Each finer bar is spread uniformly; the finer bars must lie inside min(window_low)..max(window_high).
    """
    w_h, w_l = _arrays(window_high=window_high, window_low=window_low)
    _first_bad(w_h < w_l, "window_high >= window_low")
    f_h, f_l, f_c, f_v = _arrays(ltf_high=ltf_high, ltf_low=ltf_low, ltf_close=ltf_close, ltf_volume=ltf_volume)
    _check_bars(f_h, f_l, f_c, f_v)
    lo, hi = float(w_l.min()), float(w_h.max())
    slack = nb.SNAP_RTOL * max(1.0, abs(lo), abs(hi))
    if f_l.min() < lo - slack or f_h.max() > hi + slack:
        raise InputError(f"expected the lower-timeframe bars inside the window range {lo!r}..{hi!r}, "
                         f"was {float(f_l.min())!r}..{float(f_h.max())!r}")
    h = _window_height(lo, hi, tick, rows, row_height)
    k0, n = _layout(lo, hi, h)
    return _profile(k0, n, h, nb.profile_uniform(f_h, f_l, f_c, f_v, k0, n, h))


# ---------------------------------------------------------------------------------------------------- POC, VA


def point_of_control(volumes: np.ndarray) -> int:
    """argmax of the volumes; a tie goes to the tied bin closest to mid-range (index (n - 1) / 2), then the lower.

    Volumes within POC_TIE_RTOL (1e-12) of the maximum count as tied.
    """
    return int(nb.point_of_control(_volumes(volumes), POC_TIE_RTOL))


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
    try:
        pct = _va_params(pct, step)
    except TypeError:  # unhashable arguments: check them uncached
        pct = _va_params.__wrapped__(pct, step)
    total = float(v.sum())
    lo, hi, acc = nb.value_area(v, poc, int(step), pct * total)
    return ValueArea(int(lo), int(hi), float(acc), acc / total if total > 0 else 0.0)


@lru_cache(maxsize=64, typed=True)  # typed: True and 1 (equal, same hash) are different answers
def _va_params(pct: object, step: object) -> float:
    """The checked pct of value_area (step is checked, and used as given)."""
    pct = _scalar("pct", pct)
    if not 0 < pct <= 1:
        raise InputError(f"expected 0 < pct <= 1, was {pct!r}")
    if step not in (1, 2) or isinstance(step, bool):
        raise InputError(f"expected step 1 or 2, was {step!r}")
    return pct


# ---------------------------------------------------------------------------------------------------- HVN, LVN


@lru_cache(maxsize=32)
def _gaussian_weights(sigma: float) -> np.ndarray | None:
    """gaussian_filter1d's own weights w[0..r] for sigma (its response to a unit impulse, exact: every other term
    is a zero), or None when peaks_nb.smooth does not reproduce gaussian_filter1d bit for bit (checked here once
    per sigma, so another scipy release can only make it slower, never different)."""
    r = int(4.0 * sigma + 0.5)  # gaussian_filter1d's radius for truncate = 4
    impulse = np.zeros(4 * r + 1)
    impulse[2 * r] = 1.0
    response = gaussian_filter1d(impulse, sigma, mode="constant")
    w = np.ascontiguousarray(response[2 * r: 3 * r + 1])
    if np.any(response[3 * r + 1:] != 0) or np.any(response[: 2 * r + 1] != response[::-1][: 2 * r + 1]):
        return None
    rng = np.random.default_rng(20211030)
    for n in (1, 2, 3, r + 1, 2 * r + 1, 2 * r + 2, 100, 257):
        x = rng.random(n) * 10.0 ** rng.integers(-3, 6)
        x[rng.random(n) < 0.3] = 0.0
        if gaussian_filter1d(x, sigma, mode="constant").tobytes() != peaks_nb.smooth(x, w).tobytes():
            return None
    w.setflags(write=False)
    return w


def _gaussian(v: np.ndarray, sigma: float) -> np.ndarray:
    """gaussian_filter1d(v, sigma, mode="constant"), without scipy's per-call set-up when it is reproduced."""
    w = _gaussian_weights(sigma)
    return gaussian_filter1d(v, sigma, mode="constant") if w is None else peaks_nb.smooth(v, w)


def volume_nodes(volumes: np.ndarray, *, sigma: float = 1.5, prominence: float = 0.10, distance: int = 3) -> Nodes:
    """HVN / LVN by §1.6 on y = gaussian_filter1d(v, sigma, mode="constant") (sigma = 0: y = v, no smoothing).

    mode="constant" pads with zero volume: nothing traded outside the profile's range, and a volume shelf at the
    range edge can still show up as a peak (with "nearest" the edge bin would be the maximum, which find_peaks
    never reports). HVN = find_peaks(y, prominence=prominence * max(y), distance=distance). LVN = argmin of y
    between each pair of adjacent HVNs (the lowest index on a flat bottom), plus the minima of y with the same
    prominence outside the outermost HVNs (anywhere, when there is no HVN).
    """
    v = _volumes(volumes)
    try:
        sigma, alpha, distance = _node_params(sigma, prominence, distance)
    except TypeError:  # unhashable arguments: check them uncached
        sigma, alpha, distance = _node_params.__wrapped__(sigma, prominence, distance)
    y = _gaussian(v, sigma) if sigma > 0 else v.copy()
    y.setflags(write=False)
    top, peaks = peaks_nb.top_and_maxima(y)
    if top <= 0:
        empty = np.empty(0, np.int64)
        return Nodes(empty, empty.copy(), y, np.empty(0))
    # = find_peaks(y, prominence=alpha * top, distance=distance) and find_peaks(-y, prominence=alpha * top)
    hvn, prominences, lvn = peaks_nb.nodes(y, peaks, np.argsort(y[peaks]), distance, alpha * top)
    return Nodes(hvn, lvn, y, prominences / top)


@lru_cache(maxsize=64, typed=True)  # typed: True and 1 (equal, same hash) are different answers
def _node_params(sigma: object, prominence: object, distance: object) -> tuple[float, float, int]:
    """The checked (sigma, prominence, distance) of volume_nodes."""
    sigma = _scalar("sigma", sigma)
    if sigma < 0:
        raise InputError(f"expected sigma >= 0, was {sigma!r}")
    alpha = _scalar("prominence", prominence)
    if alpha < 0:
        raise InputError(f"expected prominence >= 0, was {alpha!r}")
    return sigma, alpha, _int("distance", distance, 1)
