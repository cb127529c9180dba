"""Slow, obviously correct references for gridcore.risk.margin and the §6.2 worst-case loss (exact Fractions)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from gridcore.params import LeverageTier


def naive_mm(notional: Decimal | Fraction, tiers: Sequence[LeverageTier]) -> Fraction:
    """Tax-bracket maintenance margin: each bracket's rate on the part of the notional inside it (the last
    bracket's rate continues beyond its cap)."""
    n = Fraction(notional)
    total = Fraction(0)
    for j, t in enumerate(tiers):
        lo, hi = Fraction(t.floor), Fraction(t.cap)
        top = n if j == len(tiers) - 1 else min(n, hi)
        if top > lo:
            total += Fraction(t.mmr) * (top - lo)
    return total


def naive_cum(tiers: Sequence[LeverageTier]) -> list[Fraction]:
    """cum_n as the value that makes floor_n·MMR_n − cum_n equal the tax-bracket MM at floor_n."""
    return [Fraction(t.floor) * Fraction(t.mmr) - naive_mm(t.floor, tiers) for t in tiers]


def naive_liquidation_price(side: int, qty: Decimal, entry: Decimal, wallet_balance: Decimal,
                            tiers: Sequence[LeverageTier], iterations: int = 60) -> Fraction | None:
    """Root of WB + side·Q·(p − EP) − MM(Q·p) by bisection (the function is monotone in p)."""
    q, ep, wb = Fraction(abs(qty)), Fraction(entry), Fraction(wallet_balance)

    def f(p: Fraction) -> Fraction:
        return wb + side * q * (p - ep) - naive_mm(q * p, tiers)

    if side == 1 and f(Fraction(0)) >= 0:
        return None
    lo, hi = Fraction(0), ep
    # a long has f(0) < 0 and f increasing; a short has f(0) > 0 and f decreasing: grow hi past the sign change
    while (f(hi) < 0) if side == 1 else (f(hi) > 0):
        hi *= 2
    for _ in range(iterations):
        mid = (lo + hi) / 2
        below = f(mid) < 0 if side == 1 else f(mid) > 0
        lo, hi = (mid, hi) if below else (lo, mid)
    return (lo + hi) / 2


def naive_worst_case_loss(q: Decimal, prices: Sequence[Decimal], stop: Decimal, *, initial_price: Decimal,
                          initial_qty_levels: int, f_maker: Decimal, f_taker: Decimal, stress_slippage: Decimal,
                          side: int = 1) -> Fraction:
    """Book every fill as cash (price·qty and fee), then close everything at the slipped stop; loss = −cash."""
    fq = Fraction(q)
    fills: list[tuple[Fraction, Fraction, Fraction]] = []  # (signed qty, price, fee rate)
    for p in prices:
        fills.append((side * fq, Fraction(p), Fraction(f_maker)))
    for _ in range(initial_qty_levels):
        fills.append((side * fq, Fraction(initial_price), Fraction(f_taker)))
    held = sum(qty for qty, _, _ in fills)
    exit_price = Fraction(stop) * (1 - side * Fraction(stress_slippage))
    fills.append((-held, exit_price, Fraction(f_taker)))
    cash = Fraction(0)
    for qty, price, rate in fills:
        cash -= qty * price
        cash -= abs(qty) * price * rate
    return -cash
