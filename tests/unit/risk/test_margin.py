"""Maintenance margin, brackets and liquidation price (algorithms.md §5.7, §5.9)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gridcore.errors import InputError
from gridcore.params import BTCUSDT_TIERS_2021_03_18, LeverageTier
from gridcore.risk import (
    cum_recurrence,
    isolated_margin,
    liquidation_price,
    maintenance_margin,
    max_leverage_for,
    tier_for,
)
from tests.reference.naive_margin import naive_cum, naive_liquidation_price, naive_mm

TIERS = BTCUSDT_TIERS_2021_03_18
D = Decimal


def rel(a, b) -> float:
    a, b = Fraction(a), Fraction(b)
    return float(abs(a - b) / max(abs(b), Fraction(1, 10**30)))


# --- the §5.7 examples ---------------------------------------------------------------------------------------------


def test_long_example_of_5_7():
    lp = liquidation_price(1, D("0.1"), D("60000"), D("600"), TIERS)
    assert lp.quantize(D("0.01")) == D("54216.87")


def test_short_example_of_5_7():
    lp = liquidation_price(-1, D("0.1"), D("60000"), D("600"), TIERS)
    assert lp.quantize(D("0.01")) == D("65737.05")


def test_example_wallet_is_the_10x_isolated_margin():
    assert isolated_margin(D("0.1"), D("60000"), 10) == D("600")
    assert isolated_margin(D("-0.1"), D("60000"), 10) == D("600")


# --- brackets ------------------------------------------------------------------------------------------------------


def test_cum_recurrence_reproduces_the_2021_table():
    assert cum_recurrence(TIERS) == tuple(t.cum for t in TIERS)
    assert cum_recurrence(TIERS)[2] == D("1300")  # 250 000·(1 % − 0.5 %) + 50, the §5.7 worked line
    assert [Fraction(c) for c in cum_recurrence(TIERS)] == naive_cum(TIERS)


def test_tier_for_uses_floor_exclusive_cap_inclusive():
    assert tier_for(D(0), TIERS) is TIERS[0]
    assert tier_for(D("50000"), TIERS) is TIERS[0]
    assert tier_for(D("50000.01"), TIERS) is TIERS[1]
    assert tier_for(D("500000000"), TIERS) is TIERS[-1]
    with pytest.raises(InputError, match="expected a notional <= the last bracket cap"):
        tier_for(D("500000000.1"), TIERS)
    with pytest.raises(InputError, match="expected a notional >= 0"):
        tier_for(D("-1"), TIERS)


def test_max_leverage_for():
    assert max_leverage_for(D("7450"), TIERS) == 125
    assert max_leverage_for(D("250000"), TIERS) == 100
    assert max_leverage_for(D("250001"), TIERS) == 50
    assert max_leverage_for(D("30000000"), TIERS) == 5


@pytest.mark.parametrize("k", range(len(TIERS) - 1))
def test_mm_is_continuous_across_every_boundary(k):
    cap = TIERS[k].cap
    below = cap * TIERS[k].mmr - TIERS[k].cum
    above = cap * TIERS[k + 1].mmr - TIERS[k + 1].cum
    assert below == above == maintenance_margin(cap, TIERS)
    eps = D("0.000001")
    assert abs(maintenance_margin(cap + eps, TIERS) - below) <= eps * TIERS[k + 1].mmr


@settings(max_examples=300)
@given(st.decimals(min_value=0, max_value=500_000_000, places=2))
def test_mm_equals_the_tax_bracket_sum(notional):
    assert Fraction(maintenance_margin(notional, TIERS)) == naive_mm(notional, TIERS)


@given(st.decimals(min_value=0, max_value=499_000_000, places=2), st.decimals(min_value=1, max_value=1_000_000,
                                                                          places=2))
def test_mm_is_increasing(a, b):
    assert maintenance_margin(a + b, TIERS) > maintenance_margin(a, TIERS)


def test_empty_table_is_an_error():
    with pytest.raises(InputError, match="expected at least one leverage bracket"):
        maintenance_margin(D(1), ())


# --- liquidation ---------------------------------------------------------------------------------------------------

qtys = st.decimals(min_value=D("0.001"), max_value=D("2000"), places=3)
entries = st.decimals(min_value=D("1000"), max_value=D("100000"), places=1)
leverages = st.integers(min_value=2, max_value=125)


def allowed(q: Decimal, ep: Decimal, lev: int) -> bool:
    """Binance accepts the position: its notional's bracket allows the leverage."""
    return q * ep <= TIERS[-1].cap and lev <= max_leverage_for(q * ep, TIERS)


def lp_for(side: int, q: Decimal, ep: Decimal, lev: int) -> Decimal:
    return liquidation_price(side, q, ep, isolated_margin(q, ep, lev), TIERS)


def residual(side: int, q: Decimal, ep: Decimal, wb: Decimal, lp: Decimal) -> float:
    """|WB + side·Q·(LP − EP) − MM(Q·LP)| relative to Q·LP, with MM of the bracket holding Q·LP."""
    t = tier_for(q * lp, TIERS)
    lhs = wb + side * q * (lp - ep)
    rhs = q * lp * t.mmr - t.cum
    return float(abs(lhs - rhs) / (q * lp))


@settings(max_examples=150)
@given(qtys, entries, leverages)
def test_long_lp_below_entry_below_short_lp_and_solves_the_equation(q, ep, lev):
    assume(allowed(q, ep, lev))
    wb = isolated_margin(q, ep, lev)
    long_lp = liquidation_price(1, q, ep, wb, TIERS)
    short_lp = liquidation_price(-1, q, ep, wb, TIERS)
    assert long_lp is not None and short_lp is not None  # lev >= 2: WB < Q·EP
    assert long_lp < ep < short_lp
    assert residual(1, q, ep, wb, long_lp) < 1e-9
    assert residual(-1, q, ep, wb, short_lp) < 1e-9
    assert rel(long_lp, naive_liquidation_price(1, q, ep, wb, TIERS)) < 1e-12
    assert rel(short_lp, naive_liquidation_price(-1, q, ep, wb, TIERS)) < 1e-12


@settings(max_examples=100)
@given(qtys, entries, st.integers(min_value=2, max_value=124), st.sampled_from([1, -1]))
def test_higher_leverage_moves_lp_towards_entry(q, ep, lev, side):
    assume(allowed(q, ep, lev + 1))
    low, high = lp_for(side, q, ep, lev), lp_for(side, q, ep, lev + 1)
    assert abs(high - ep) < abs(low - ep)


@settings(max_examples=100)
@given(qtys, entries, leverages, st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2),
       st.sampled_from([1, -1]))
def test_adding_margin_moves_lp_away(q, ep, lev, extra, side):
    assume(allowed(q, ep, lev))
    wb = isolated_margin(q, ep, lev)
    before = liquidation_price(side, q, ep, wb, TIERS)
    after = liquidation_price(side, q, ep, wb + extra, TIERS)
    if side == 1:
        assert after is None or after < before
    else:
        assert after > before


def test_lp_in_a_higher_bracket_matches_the_bisection():
    # 10 BTC @ 60 000 at 20x: 600 000 notional, liquidation notional in bracket 3 (250 000, 1 000 000]
    q, ep = D("10"), D("60000")
    wb = isolated_margin(q, ep, 20)
    for side in (1, -1):
        lp = liquidation_price(side, q, ep, wb, TIERS)
        assert tier_for(q * lp, TIERS) is TIERS[2]
        assert residual(side, q, ep, wb, lp) < 1e-20
        assert rel(lp, naive_liquidation_price(side, q, ep, wb, TIERS, iterations=120)) < 1e-20


def test_lp_exactly_at_a_bracket_boundary():
    # choose WB so that the long's liquidation notional is exactly the first cap (50 000) at Q = 1
    q, ep, cap = D(1), D("60000"), D("50000")
    wb = q * ep - cap + cap * TIERS[0].mmr  # solves WB + Q·(LP − EP) = Q·LP·MMR with Q·LP = 50 000
    assert liquidation_price(1, q, ep, wb, TIERS) == cap


def test_no_liquidation_price_when_the_margin_covers_the_notional():
    assert liquidation_price(1, D(1), D("60000"), D("60000"), TIERS) is None  # 1x long
    assert liquidation_price(1, D(1), D("60000"), D("70000"), TIERS) is None
    assert naive_liquidation_price(1, D(1), D("60000"), D("60000"), TIERS) is None
    assert liquidation_price(-1, D(1), D("60000"), D("60000"), TIERS) > D("60000")  # a 1x short still has one


def test_short_beyond_the_last_cap_extrapolates_the_last_bracket():
    q, ep = D("4000"), D("100000")  # 400 M notional, huge margin: LP notional beyond 500 M
    wb = D("300000000")
    lp = liquidation_price(-1, q, ep, wb, TIERS)
    last = TIERS[-1]
    assert q * lp > last.cap
    assert wb - q * (lp - ep) == q * lp * last.mmr - last.cum


def test_inconsistent_cum_is_reported():
    bad = (LeverageTier(D(0), D("50000"), 125, D("0.004"), D(0)),
           LeverageTier(D("50000"), D("250000"), 100, D("0.005"), D("10000")))  # cum should be 50
    # root of bracket 1 lies above its cap, root of bracket 2 below its floor: no bracket holds it
    with pytest.raises(InputError, match="expected brackets whose cum follows"):
        liquidation_price(1, D(1), D("60000"), D("4000"), bad)


@pytest.mark.parametrize(("args", "message"), [
    ((0, D(1), D(1), D(0)), "expected side"),
    ((1, D(0), D(1), D(0)), "expected a non-zero quantity"),
    ((1, D(1), D(0), D(0)), "expected an entry price > 0"),
    ((1, D(1), D(1), D(-1)), "expected a wallet balance >= 0"),
])
def test_bad_liquidation_inputs(args, message):
    with pytest.raises(InputError, match=message):
        liquidation_price(*args, TIERS)


def test_bad_isolated_margin_inputs():
    with pytest.raises(InputError, match="expected leverage >= 1, was 0"):
        isolated_margin(D(1), D(1), 0)
    with pytest.raises(InputError, match="expected an entry price > 0"):
        isolated_margin(D(1), D(0), 1)
