"""Isolated margin, bracketed maintenance margin and the liquidation price (algorithms.md §5.7).

Maintenance margin uses Binance's "tax bracket" form `MM = notional·MMR − cum` with `(MMR, cum)` of the bracket
whose `(floor, cap]` holds the notional (a notional of 0 belongs to the first bracket). With `cum` from the
recurrence `cum_n = cum_{n−1} + floor_n·(MMR_n − MMR_{n−1})` this equals the sum of every bracket's rate over the
part of the notional inside it, so MM is continuous and convex in the notional.

The liquidation price of an isolated one-way position solves `WB + side·Q·(LP − EP) = Q·LP·MMR − cum`; it is
evaluated with each bracket and the bracket whose `(floor, cap]` holds `Q·LP` is kept (the FAQ's rule: the bracket
*at* the liquidation price). A position whose liquidation price would be 0 or below has none (`None`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from gridcore.errors import InputError
from gridcore.params import LeverageTier

# Relative slack for a bracket boundary: Q·LP computed in 28 digits can land a hair outside both neighbours.
_BOUNDARY_SLACK = Decimal("1e-20")


def _require_tiers(tiers: Sequence[LeverageTier]) -> None:
    if not tiers:
        raise InputError("expected at least one leverage bracket, was an empty table")


def tier_for(notional: Decimal, tiers: Sequence[LeverageTier]) -> LeverageTier:
    """The bracket whose (floor, cap] holds `notional` (0 belongs to the first); tiers sorted and contiguous."""
    _require_tiers(tiers)
    if notional < 0:
        raise InputError(f"expected a notional >= 0, was {notional}")
    for t in tiers:
        if notional <= t.cap:
            return t
    raise InputError(f"expected a notional <= the last bracket cap {tiers[-1].cap}, was {notional}")


def maintenance_margin(notional: Decimal, tiers: Sequence[LeverageTier]) -> Decimal:
    """MM = notional·MMR − cum of the bracket holding the notional (the "tax bracket" method)."""
    t = tier_for(notional, tiers)
    return notional * t.mmr - t.cum


def cum_recurrence(tiers: Sequence[LeverageTier]) -> tuple[Decimal, ...]:
    """Each bracket's cum recomputed: cum_0 = 0, cum_n = cum_{n−1} + floor_n·(MMR_n − MMR_{n−1})."""
    _require_tiers(tiers)
    out: list[Decimal] = []
    cum, prev_mmr = Decimal(0), Decimal(0)
    for t in tiers:
        cum += t.floor * (t.mmr - prev_mmr)
        out.append(cum)
        prev_mmr = t.mmr
    return tuple(out)


def isolated_margin(qty: Decimal, entry: Decimal, leverage: int) -> Decimal:
    """Initial margin of an isolated position: |qty|·entry/λ."""
    if leverage < 1:
        raise InputError(f"expected leverage >= 1, was {leverage}")
    if entry <= 0:
        raise InputError(f"expected an entry price > 0, was {entry}")
    return abs(qty) * entry / Decimal(leverage)


def max_leverage_for(notional: Decimal, tiers: Sequence[LeverageTier]) -> int:
    """The highest initial leverage Binance allows for a position of this notional."""
    return tier_for(notional, tiers).max_leverage


def _outside(notional: Decimal, t: LeverageTier) -> Decimal:
    """How far (relative to the cap) a notional lies outside the bracket's (floor, cap]; 0 inside."""
    return max(t.floor - notional, notional - t.cap, Decimal(0)) / t.cap


def liquidation_price(side: int, qty: Decimal, entry: Decimal, wallet_balance: Decimal,
                      tiers: Sequence[LeverageTier]) -> Decimal | None:
    """Liquidation (mark) price of an isolated one-way position; None when it would be <= 0.

    side: +1 long, −1 short; qty: position size (its sign is ignored, Q = |qty|); wallet_balance: the isolated
    wallet balance (margin). Beyond the last bracket's cap the last bracket's rates are extrapolated.
    """
    _require_tiers(tiers)
    if side not in (1, -1):
        raise InputError(f"expected side +1 (long) or -1 (short), was {side}")
    q = abs(qty)
    if q == 0:
        raise InputError(f"expected a non-zero quantity, was {qty}")
    if entry <= 0:
        raise InputError(f"expected an entry price > 0, was {entry}")
    if wallet_balance < 0:
        raise InputError(f"expected a wallet balance >= 0, was {wallet_balance}")
    # f(p) = WB + side·Q·(p − EP) − MM(Q·p) is monotone in p (slope Q·(side − MMR)); for a long f(0) >= 0 means the
    # root is at or below 0: the position cannot be liquidated.
    if side == 1 and wallet_balance + tiers[0].cum >= q * entry:
        return None
    candidates: list[tuple[Decimal, Decimal, LeverageTier]] = []
    for t in tiers:
        lp = (wallet_balance + t.cum - side * q * entry) / (q * t.mmr - side * q)
        if lp > 0 and t.floor < q * lp <= t.cap:
            return lp
        candidates.append((lp, q * lp, t))
    last_lp, last_notional, last = candidates[-1]
    if last_notional > last.cap:
        return last_lp
    lp, notional, t = min(candidates, key=lambda c: _outside(c[1], c[2]))
    if lp > 0 and _outside(notional, t) <= _BOUNDARY_SLACK:
        return lp
    raise InputError("expected brackets whose cum follows the §5.7 recurrence (continuous maintenance margin), "
                     f"was a table where no bracket holds the liquidation notional (cum {[c.cum for c in tiers]})")
