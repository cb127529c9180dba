"""The numbers of the grid-start rule (strategy/start_rule.py documents it, algorithms.md §3.3): per side, the veto
bars and the strength bar closest to a complete setup. start_rule.py turns them into the decision and its texts.
tests/reference/slow_signals.py keeps the plain-Python rule this follows step for step.

Windows hold bars lo..t: index x - lo. Levels are (own 1, own 2) / (other 1, other 2), NaN = unknown.
Per side, ints = [n_veto, u, level of u, retest, intact, has_extreme, bits at u, bits at retest,
(x, bits, level) per veto ...] (-1 = none) and floats = [extreme after u, low (support) or high at u].
"""

from __future__ import annotations

import math

import numpy as np

from gridcore.analysis.kernels import vsa_nb
from gridcore.analysis.kernels._jit import njit

N_HEAD = 8  # ints before the veto triples


@njit
def _near(resistance: bool, levels: np.ndarray, high: float, low: float, close: float, tol: float) -> int:
    """The first level the bar is near (support: L <= S + tol and C >= S - tol; resistance: H >= R - tol and
    C <= R + tol), else -1."""
    for q in range(levels.shape[0]):
        level = levels[q]
        if math.isnan(level):
            continue
        if resistance and high >= level - tol and close <= level + tol:
            return q
        if not resistance and low <= level + tol and close >= level - tol:
            return q
    return -1


@njit
def _vetoes(mask, high, low, close, lo, t, other, tol, mirror, veto_bits, weak_window, ints):
    """Veto signals near the opposite levels in the last weak_window bars -> ints[0] and the triples."""
    nv = 0
    for x in range(max(lo, t - weak_window + 1), t + 1):
        i = x - lo
        bits = mask[i] & veto_bits
        if bits:
            q = _near(not mirror, other, high[i], low[i], close[i], tol)
            if q >= 0:
                ints[N_HEAD + 3 * nv] = x
                ints[N_HEAD + 3 * nv + 1] = bits
                ints[N_HEAD + 3 * nv + 2] = q
                nv += 1
    ints[0] = nv


@njit
def _extreme_after(high, low, i, last, mirror) -> float:
    """max(high[i+1..last]) (mirror) or min(low[i+1..last]) as Python's max / min give it: the first extreme wins,
    replaced only by a strictly larger / smaller value."""
    extreme = high[i + 1] if mirror else low[i + 1]
    for j in range(i + 2, last + 1):
        if mirror and high[j] > extreme:
            extreme = high[j]
        elif not mirror and low[j] < extreme:
            extreme = low[j]
    return extreme


@njit
def side(mask, high, low, close, lo, t, own, other, tol, mirror, strength_bits, retest_bits, veto_bits,
         strength_window, retest_window, weak_window, ints, floats):
    """One side of the rule at bar t (see the module docstring for the output layout)."""
    _vetoes(mask, high, low, close, lo, t, other, tol, mirror, veto_bits, weak_window, ints)
    ints[1] = -1
    best_rank = -1
    for u in range(t, max(lo, t - strength_window + 1) - 1, -1):
        i = u - lo
        if not mask[i] & strength_bits:
            continue
        q = _near(mirror, own, high[i], low[i], close[i], tol)
        if q < 0:
            continue
        retest = -1
        for x in range(t, max(u, t - retest_window), -1):
            if mask[x - lo] & retest_bits:
                retest = x
                break
        extreme = math.nan
        intact = True
        if u < t:
            extreme = _extreme_after(high, low, i, t - lo, mirror)
            intact = extreme <= high[i] + tol if mirror else extreme >= low[i] - tol
        rank = (1 if retest >= 0 else 0) + (1 if intact else 0)
        if rank > best_rank:
            best_rank = rank
            ints[1] = u
            ints[2] = q
            ints[3] = retest
            ints[4] = 1 if intact else 0
            ints[5] = 1 if u < t else 0
            ints[6] = mask[i]
            ints[7] = mask[retest - lo] if retest >= 0 else 0
            floats[0] = extreme
            floats[1] = high[i] if mirror else low[i]
        if rank == 2:
            break


@njit
def both_sides(mask, high, low, close, lo, t, levels, tol, rule_bits, windows, ints, floats):
    """Support side (ints[0], floats[0]) and resistance side (ints[1], floats[1]); levels = (s1, s2, r1, r2),
    rule_bits = (support strength, retest, veto, resistance strength, retest, veto), windows = (strength, retest,
    weak)."""
    supports = levels[0:2]
    resistances = levels[2:4]
    side(mask, high, low, close, lo, t, supports, resistances, tol, False, rule_bits[0], rule_bits[1], rule_bits[2],
         windows[0], windows[1], windows[2], ints[0], floats[0])
    side(mask, high, low, close, lo, t, resistances, supports, tol, True, rule_bits[3], rule_bits[4], rule_bits[5],
         windows[0], windows[1], windows[2], ints[1], floats[1])


@njit
def last_bars(o, h, l, c, v, los, his, levels, tols, p, delta, span, rule_bits, windows,  # noqa: E741
              now_bits, ints, floats):
    """For each window k (bars los[k]..his[k]-1 of the arrays, evaluated at its last bar t): the VSA signals of
    bars t-span+1..t (vsa_nb.signals over the window, as evaluate_last_bar computes them), the bits of bar t in
    now_bits[k] and both sides of the rule in ints[k], floats[k]. Bar numbers are window indices (0 = los[k])."""
    for k in range(los.shape[0]):
        lo = los[k]
        hi = his[k]
        t = hi - lo - 1
        start = max(0, t - span + 1)
        lv = levels[k]
        mask = vsa_nb.signals(o[lo:hi], h[lo:hi], l[lo:hi], c[lo:hi], v[lo:hi], p, lv[0], lv[1], lv[2], start,
                              tols[k], delta)[0]
        now_bits[k] = mask[t - start]
        a = lo + start
        both_sides(mask, h[a:hi], l[a:hi], c[a:hi], start, t, lv, tols[k], rule_bits, windows, ints[k], floats[k])
