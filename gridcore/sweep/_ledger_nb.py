"""The account of one configuration in float64 (mirrors gridcore.sim.ledger.Ledger and gridcore.risk.margin).

Same formulas as the Decimal ledger: VWAP entry (reset when flat, the fill price on a flip), realised PnL split into
grid pair profit and the rest, wallet = deposit + realised − fees + funding, equity = wallet + position·(mark −
entry), the peak raised at every booking (`mark_to`), the isolated liquidation price with brackets, the drawdown
kill level. Money is not rounded to the 1e-10 grid (float64 cannot hold it exactly), so cash figures agree with
the engine to about 1e-12 relative, not bit for bit.
"""

from __future__ import annotations

import math

from gridcore.sweep._jit import njit
from gridcore.sweep.layout import (
    F_ENTRY,
    F_FEES,
    F_LP,
    F_MARK,
    F_MAXDD,
    F_PEAK,
    F_RGRID,
    F_ROTHER,
    F_SLIP,
    F_WALLET,
    I_ERR,
    I_NLIQ,
    I_POS,
    P_LEV,
    P_LIQFEE,
    P_MAXDD,
    P_QP,
    P_STEP,
    SELL,
)

UNITS = 1e8  # gridcore.bars.SCALE
BOUNDARY_SLACK = 1e-9  # float form of margin._BOUNDARY_SLACK (28-digit Decimal there: 1e-20)
KILL_QUANTUM_UNITS = 1e-4  # ledger.KILL_QUANTUM (1e-12 USDT) in units: one step on the adverse side


@njit
def equity_at(fs, ns, P, mark):
    """Ledger.equity_at: wallet + position·(mark − entry)."""
    pos = ns[I_POS]
    if pos == 0:
        return fs[F_WALLET]
    return fs[F_WALLET] + pos * (mark - fs[F_ENTRY]) * P[P_QP]


@njit
def drawdown(fs, ns, P):
    """Ledger.drawdown at the ledger's last mark."""
    return 1.0 - equity_at(fs, ns, P, fs[F_MARK]) / fs[F_PEAK]


@njit
def mark_to(fs, ns, P, mark):
    """Ledger.mark_to: mark the position, raise the peak on a new high; returns the drawdown."""
    eq = equity_at(fs, ns, P, mark)
    if eq > fs[F_PEAK]:
        fs[F_PEAK] = eq
    dd = 1.0 - eq / fs[F_PEAK]
    fs[F_MARK] = mark
    if dd > fs[F_MAXDD]:
        fs[F_MAXDD] = dd
    return dd


@njit
def _new_position(pos, entry, signed, qty, price):
    """(new position, new entry) of Ledger.apply_fill, and the quantity it closed."""
    if pos == 0 or (pos > 0) == (signed > 0):
        new_pos = pos + signed
        return new_pos, (abs(pos) * entry + qty * price) / abs(new_pos), 0
    closing = min(abs(signed), abs(pos))
    new_pos = pos + signed
    if new_pos == 0:
        return new_pos, 0.0, closing
    if (new_pos > 0) == (pos > 0):
        return new_pos, entry, closing
    return new_pos, price, closing


@njit
def apply_fill(fs, ns, P, side, qty, price, fee, slipcost, pair):
    """Ledger.apply_fill; `pair` < 0: no pair price. Returns (realised, of which grid profit)."""
    pos, entry = ns[I_POS], fs[F_ENTRY]
    new_pos, new_entry, closing = _new_position(pos, entry, side * qty, qty, price)
    realised = 0.0
    if closing:
        realised = closing * (price - entry) * (1.0 if pos > 0 else -1.0) * P[P_QP]
    grid = 0.0
    if pair >= 0:
        grid = qty * (price - pair) * (1.0 if side == SELL else -1.0) * P[P_QP]
    ns[I_POS] = new_pos
    fs[F_ENTRY] = new_entry
    fs[F_RGRID] += grid
    fs[F_ROTHER] += realised - grid
    fs[F_FEES] += fee
    fs[F_SLIP] += slipcost
    fs[F_WALLET] += realised - fee
    return realised, grid


@njit
def liquidate(fs, ns, P, price):
    """Ledger.liquidate at `price` (units): close and lose the isolated margin (the fee is part of it)."""
    q = abs(ns[I_POS])
    margin = q * fs[F_ENTRY] * P[P_QP] / P[P_LEV]
    fee = min(q * price * P[P_QP] * P[P_LIQFEE], margin)
    ns[I_POS] = 0
    fs[F_ENTRY] = 0.0
    fs[F_ROTHER] -= margin - fee
    fs[F_FEES] += fee
    fs[F_WALLET] -= margin
    ns[I_NLIQ] += 1


@njit
def _outside(notional, floor, cap):
    return max(floor - notional, notional - cap, 0.0) / cap


@njit
def liquidation_price_usdt(side, q, entry, wb, tiers, ns):
    """margin.liquidation_price (USDT; NaN for None). tiers: [floor, cap, mmr, cum] rows."""
    if side == 1 and wb + tiers[0, 3] >= q * entry:
        return math.nan
    n = tiers.shape[0]
    best, best_out = math.nan, math.inf
    lp = notional = 0.0
    for k in range(n):
        lp = (wb + tiers[k, 3] - side * q * entry) / (q * tiers[k, 2] - side * q)
        notional = q * lp
        if lp > 0 and tiers[k, 0] < notional <= tiers[k, 1]:
            return lp
        out = _outside(notional, tiers[k, 0], tiers[k, 1])
        if out < best_out:
            best, best_out = lp, out
    if notional > tiers[n - 1, 1]:
        return lp
    if best > 0 and best_out <= BOUNDARY_SLACK:
        return best
    ns[I_ERR] = 1
    return math.nan


@njit
def update_liquidation_price(fs, ns, P, tiers):
    """The cached liquidation price (units) of the current position (engine._Run.thresholds' cache)."""
    pos = ns[I_POS]
    if pos == 0:
        fs[F_LP] = math.nan
        return
    q = abs(pos) * P[P_STEP]
    entry = fs[F_ENTRY] / UNITS
    wb = q * entry / P[P_LEV]
    lp = liquidation_price_usdt(1 if pos > 0 else -1, q, entry, wb, tiers, ns)
    fs[F_LP] = lp * UNITS


@njit
def kill_price(fs, ns, P):
    """Ledger.kill_price (units; NaN for None): the mark at which DD reaches max_drawdown, one quantum adverse."""
    pos = ns[I_POS]
    if pos == 0:
        return math.nan
    floor = (1.0 - P[P_MAXDD]) * fs[F_PEAK]
    m = fs[F_ENTRY] + (floor - fs[F_WALLET]) / (pos * P[P_QP])
    if pos > 0:
        m -= KILL_QUANTUM_UNITS
        return m if m > 0 else math.nan
    return m + KILL_QUANTUM_UNITS
