"""The four-peaks box (algorithms.md §2.3) and the MA25 adjustment (§2.4): S2 < S1 < price < R1 < R2.

Reasons are stable strings built from the templates below (numbers printed with 10 significant digits):

- "not enough structure below price: {n} non-empty bin(s), need 2" (and "... above price ...")
- "levels out of order: need S2 < S1 < price < R1 < R2, got S2={s2} S1={s1} price={p} R1={r1} R2={r2}"
- "S1 - S2 = {d} < gap {gap}" and "R2 - R1 = {d} < gap {gap}"
- "{S2|S1|R1|R2} cluster share {share} < min_share {min_share}"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from math import isnan

import numpy as np
from numpy.typing import ArrayLike

from gridcore.analysis.kernels import levels_nb as _nb
from gridcore.errors import ConfigError, InputError

LEVEL_NAMES = ("s2", "s1", "r1", "r2")
LEVEL_MODES = ("peak", "centroid")
_NAN4 = (math.nan, math.nan, math.nan, math.nan)
_SNAP_PRIORITY = ("s1", "r1", "s2", "r2")  # on equal distance to the MA, the inner (grid-range) level snaps


@dataclass(frozen=True)
class Box:
    """Four levels from the volume profile, ordered S2 < S1 < price < R1 < R2 when valid.

    An invalid box keeps the levels it found (NaN where a side had no structure) and says why in `reasons`.
    shares: each cluster's fraction of the volume on its side of price. centroids: the clusters' weighted means.
    bounds: (lowest, highest) bin centre of each cluster. confluent: the level the MA25 snap touched, or None.
    gap: max(gap_atr·atr, gap_pct·price), the minimum S1-S2 and R2-R1. Tuples are ordered s2, s1, r1, r2.
    """

    s2: float
    s1: float
    r1: float
    r2: float
    valid: bool
    reasons: tuple[str, ...]
    shares: tuple[float, float, float, float] = _NAN4
    confluent: str | None = None
    price: float = math.nan
    atr: float = math.nan
    gap: float = math.nan
    level_mode: str = "peak"
    centroids: tuple[float, float, float, float] = _NAN4
    bounds: tuple[tuple[float, float], ...] = ((math.nan, math.nan),) * 4

    @property
    def levels(self) -> tuple[float, float, float, float]:
        return (self.s2, self.s1, self.r1, self.r2)

    def level(self, name: str) -> float:
        """The level called name ("s2", "s1", "r1" or "r2")."""
        if name not in LEVEL_NAMES:
            raise ConfigError(f"Box.level: expected one of {LEVEL_NAMES}, was {name!r}")
        return getattr(self, name)

    def as_dict(self) -> dict:
        """JSON-ready: NaN becomes None, tuples become lists."""
        return {
            **_by_level(self.levels),
            "valid": self.valid,
            "reasons": list(self.reasons),
            "shares": _by_level(self.shares),
            "confluent": self.confluent,
            "price": _json(self.price),
            "atr": _json(self.atr),
            "gap": _json(self.gap),
            "level_mode": self.level_mode,
            "centroids": _by_level(self.centroids),
            "bounds": {n: [_json(a), _json(b)] for n, (a, b) in zip(LEVEL_NAMES, self.bounds, strict=True)},
        }


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
    out, sizes = np.empty((4, 5)), np.zeros(2, np.int64)
    _nb.box_sides(np.ascontiguousarray(c), np.ascontiguousarray(v), price, float(row_height), level_mode == "peak",
                  out, sizes)
    rows = out.tolist()
    for side, slot, size in zip(("below", "above"), (0, 2), sizes.tolist(), strict=True):
        if size < 2:
            plural = "" if size == 1 else "s"
            reasons.append(f"not enough structure {side} price: {size} non-empty bin{plural}, need 2")
            continue
        for k in (slot, slot + 1):
            level, share, centroid, low, high = rows[k]
            levels[k], shares[k], cents[k], bounds[k] = level, share, centroid, (low, high)
    reasons += _structure_reasons(levels, price, gap)
    reasons += _share_reasons(shares, min_share)
    return Box(
        *levels, valid=not reasons, reasons=tuple(reasons), shares=tuple(shares), price=price, atr=atr, gap=gap,
        level_mode=level_mode, centroids=tuple(cents), bounds=tuple(bounds),
    )


def ma25_snap(box: Box, *, ma: float, tick: float, tol_atr: float = 0.25, tol_pct: float = 0.002) -> Box:
    """Confluence snap of §2.4: the level nearest the MA moves to round_to_tick(ma) if it is within
    tol = max(tol_atr·atr, tol_pct·price) and the moved box still passes the order and gap rules.

    Uses the box's own price, atr and gap. Only a valid box is adjusted; at most one level moves; a box that has
    already snapped (confluent set) is returned as is, so the function is idempotent. When the rounded MA equals
    the level, nothing moves but the level is still marked confluent.
    """
    if not (tick > 0 and math.isfinite(tick)):
        raise InputError(f"ma25_snap: expected a tick > 0, was {tick!r}")
    if not box.valid or box.confluent is not None or not math.isfinite(ma):
        return box
    tol = max(tol_atr * box.atr, tol_pct * box.price)
    name = min(_SNAP_PRIORITY, key=lambda n: abs(getattr(box, n) - ma))  # min keeps the first of equals
    if abs(getattr(box, name) - ma) > tol:
        return box
    snapped = math.floor(ma / tick + 0.5) * tick
    levels = dict(zip(LEVEL_NAMES, box.levels, strict=True))
    levels[name] = snapped
    if _structure_reasons(list(levels.values()), box.price, box.gap):
        return box
    return replace(box, **{name: snapped}, confluent=name)


def ma_slope(ma: ArrayLike, atr: float, *, slope_bars: int = 5) -> float:
    """(m_t - m_{t-slope_bars}) / atr from an SMA series ending at bar t; NaN when not computable."""
    m = np.asarray(ma, dtype=np.float64)
    if m.ndim != 1 or m.size <= slope_bars or not (atr > 0 and math.isfinite(atr)):
        return math.nan
    return float((m[-1] - m[-1 - slope_bars]) / atr)


def ma_bias(ma: ArrayLike, atr: float, price: float, *, slope_bars: int = 5, s_min: float = 0.5) -> int:
    """Trend bias of §2.4: +1 if price > m_t and slope >= s_min, -1 if price < m_t and slope <= -s_min, else 0
    (also 0 when the MA, its slope or the ATR is not available)."""
    slope = ma_slope(ma, atr, slope_bars=slope_bars)
    if math.isnan(slope):
        return 0
    m_t = float(np.asarray(ma, dtype=np.float64)[-1])
    if price > m_t and slope >= s_min:
        return 1
    if price < m_t and slope <= -s_min:
        return -1
    return 0


def _structure_reasons(levels: list[float], price: float, gap: float) -> list[str]:
    s2, s1, r1, r2 = levels
    reasons = []
    chain = [x for x in (s2, s1, price, r1, r2) if not math.isnan(x)]
    if any(a >= b for a, b in zip(chain, chain[1:], strict=False)):
        reasons.append(
            f"levels out of order: need S2 < S1 < price < R1 < R2, got S2={_num(s2)} S1={_num(s1)} "
            f"price={_num(price)} R1={_num(r1)} R2={_num(r2)}"
        )
    if not math.isnan(s1 - s2) and s1 - s2 < gap:
        reasons.append(f"S1 - S2 = {_num(s1 - s2)} < gap {_num(gap)}")
    if not math.isnan(r2 - r1) and r2 - r1 < gap:
        reasons.append(f"R2 - R1 = {_num(r2 - r1)} < gap {_num(gap)}")
    return reasons


def _share_reasons(shares: list[float], min_share: float) -> list[str]:
    return [
        f"{name.upper()} cluster share {_num(s)} < min_share {_num(min_share)}"
        for name, s in zip(LEVEL_NAMES, shares, strict=True)
        if s < min_share  # False for NaN: a missing cluster is already reported as missing structure
    ]


def _check_inputs(c: np.ndarray, v: np.ndarray, price: float, atr: float, row_height: float, level_mode: str) -> None:
    if c.ndim != 1 or c.shape != v.shape:
        raise InputError(f"four_peaks_box: expected centres and volumes of equal 1-D shape, was {c.shape}, {v.shape}")
    if not _nb.finite_weights(np.ascontiguousarray(c), np.ascontiguousarray(v)):
        raise InputError("four_peaks_box: expected finite centres and finite volumes >= 0")
    for name, x in (("price", price), ("row_height", row_height)):
        if not (x > 0 and math.isfinite(x)):
            raise InputError(f"four_peaks_box: expected {name} > 0, was {x!r}")
    if not (atr >= 0 and math.isfinite(atr)):
        raise InputError(f"four_peaks_box: expected a finite atr >= 0, was {atr!r}")
    if level_mode not in LEVEL_MODES:
        raise ConfigError(f"four_peaks_box: expected level_mode in {LEVEL_MODES}, was {level_mode!r}")


def _num(x: float) -> str:
    return f"{x:.10g}"


def _json(x: float) -> float | None:
    return None if isnan(x) else x


def _by_level(values: tuple[float, float, float, float]) -> dict[str, float | None]:
    s2, s1, r1, r2 = values
    return {"s2": _json(s2), "s1": _json(s1), "r1": _json(r1), "r2": _json(r2)}
