"""Grid levels, spacing, stops and sizing (algorithms.md §4.6, §6.6, the §6.4 worked example)."""

from __future__ import annotations

import dataclasses
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from gridcore.errors import InputError
from gridcore.params import BracketTable, LeverageTier, StrategyParams, default_params
from gridcore.risk import isolated_margin, liquidation_price, max_leverage_for, tier_for
from gridcore.strategy.grid_planner import (
    BUY,
    SELL,
    GridPlan,
    breakeven_ratio,
    cycle_return,
    grid_levels,
    intervals_for_spacing,
    min_spacing,
    orders_after_path,
    pair_net,
    plan_grid,
    position_after_path,
    raw_grid_levels,
    risk_budget,
    stop_price,
    worst_case_loss,
)
from gridcore.symbols import default_registry
from tests.reference.naive_margin import naive_worst_case_loss

D = Decimal
P = default_params()
BTC = default_registry().rules("BTCUSDT")
TIERS = P.account.brackets.tiers
F_M, F_T, S_X = P.costs.maker_fee, P.costs.taker_fee, P.costs.stress_slippage


def with_params(p: StrategyParams = P, **groups: dict) -> StrategyParams:
    """p with some fields of some groups replaced: with_params(account={"leverage": 20})."""
    return dataclasses.replace(p, **{g: dataclasses.replace(getattr(p, g), **kv) for g, kv in groups.items()})


def rel(a, b) -> Fraction:
    a, b = Fraction(a), Fraction(b)
    return abs(a - b) / abs(b)


EQUITY = D("10000")
BOX = dict(price=D("60000"), s1=D("57000"), s2=D("55000"), r1=D("63000"), r2=D("65000"), atr=900.0)


def plan(direction: str = "LONG", *, params: StrategyParams = P, equity: D = EQUITY, peak: D | None = None,
         rules=BTC, **box) -> GridPlan:
    args = BOX | box
    return plan_grid(direction=direction, **args, equity=equity, peak_equity=equity if peak is None else peak,
                     rules=rules, params=params)


# --- §4.1 levels ---------------------------------------------------------------------------------------------------

ranges = st.tuples(st.decimals(min_value=D("1"), max_value=D("100000"), places=2),
                   st.decimals(min_value=D("0.01"), max_value=D("2"), places=3), st.integers(1, 300))


@given(ranges)
def test_arithmetic_raw_levels_have_a_constant_step(r):
    lo, width, n = r
    up = lo * (1 + width)
    levels = raw_grid_levels(lo, up, n, kind="arithmetic")
    assert len(levels) == n + 1 and levels[0] == lo and levels[-1] == up
    d = (up - lo) / n
    assert all(rel(b - a, d) < D("1e-18") for a, b in zip(levels, levels[1:], strict=False))


@given(ranges)
def test_geometric_raw_levels_have_a_constant_ratio(r):
    lo, width, n = r
    up = lo * (1 + width)
    levels = raw_grid_levels(lo, up, n, kind="geometric")
    assert len(levels) == n + 1 and levels[0] == lo and levels[-1] == up
    ratio = levels[1] / levels[0]
    assert all(rel(b / a, ratio) < D("1e-24") for a, b in zip(levels, levels[1:], strict=False))
    assert rel(ratio**n, up / lo) < D("1e-24")


@given(ranges, st.sampled_from(["geometric", "arithmetic"]), st.sampled_from([D("0.1"), D("0.01"), D("1")]))
def test_rounded_levels_are_strictly_increasing_on_the_tick_grid(r, kind, tick):
    lo, width, n = r
    up = lo * (1 + width)
    lo_t = (lo / tick).to_integral_value(rounding="ROUND_CEILING") * tick
    up_t = (up / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    assume(up_t > lo_t)
    levels = grid_levels(lo, up, n, kind=kind, tick=tick)
    assert 2 <= len(levels) <= n + 1
    assert levels[0] == lo_t and levels[-1] == up_t  # range ends snapped inward
    assert all(a < b for a, b in zip(levels, levels[1:], strict=False))
    assert all(p % tick == 0 for p in levels)


def test_ticks_on_the_range_ends_are_kept_and_collisions_reduce_n():
    assert grid_levels(D("100"), D("100.5"), 10, kind="arithmetic", tick=D("0.1")) == [
        D("100.0"), D("100.1"), D("100.2"), D("100.3"), D("100.4"), D("100.5")]
    assert len(grid_levels(D("100"), D("100.5"), 10, kind="geometric", tick=D("0.1"))) == 6
    assert grid_levels(D("100"), D("200"), 4, kind="arithmetic", tick=D("0.1")) == [
        D("100"), D("125"), D("150"), D("175"), D("200")]


def test_bad_ranges_are_errors():
    with pytest.raises(InputError, match="expected Up > Lo"):
        grid_levels(D("10"), D("10"), 2, kind="geometric", tick=D("0.1"))
    with pytest.raises(InputError, match="expected a range holding at least two ticks"):
        grid_levels(D("10.01"), D("10.09"), 2, kind="geometric", tick=D("0.1"))
    with pytest.raises(InputError, match="expected kind"):
        grid_levels(D("10"), D("20"), 2, kind="log", tick=D("0.1"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="expected at least 1 interval"):
        raw_grid_levels(D("10"), D("20"), 0, kind="geometric")


@given(st.decimals(min_value=D("1"), max_value=D("100000"), places=2),
       st.decimals(min_value=D("0.001"), max_value=D("1"), places=3),
       st.decimals(min_value=D("0.0005"), max_value=D("0.05"), places=4))
def test_intervals_for_spacing_is_the_largest_n_keeping_the_spacing(lo, width, s):
    up = lo * (1 + width)
    n = intervals_for_spacing(lo, up, s, "geometric")
    assert (1 + s) ** n <= up / lo < (1 + s) ** (n + 1)
    m = intervals_for_spacing(lo, up, s, "arithmetic")
    assert m * s * up <= up - lo < (m + 1) * s * up  # the top interval has the smallest relative step


def test_intervals_for_spacing_exact_cases():
    assert intervals_for_spacing(D("100"), D("121"), D("0.1"), "geometric") == 2
    assert intervals_for_spacing(D("100"), D("200"), D("0.1"), "arithmetic") == 5


# --- §4.2 fees, break-even, profit per cycle -----------------------------------------------------------------------


def test_breakeven_spacings_of_4_2():
    assert (breakeven_ratio(D("0.0002"), D("0.0002")) - 1).quantize(D("1e-8")) == D("0.00040008")
    assert (breakeven_ratio(D("0.0002"), D("0.0005")) - 1).quantize(D("1e-6")) == D("0.000700")
    assert (breakeven_ratio(D("0.0005"), D("0.0005")) - 1).quantize(D("1e-6")) == D("0.001001")


fees = st.decimals(min_value=D(0), max_value=D("0.005"), places=5)


@given(st.decimals(min_value=D("1.00001"), max_value=D("1.05"), places=6), fees, fees)
def test_rho_positive_iff_ratio_above_breakeven(r, f_b, f_s):
    rho = cycle_return(D(1), r, f_b, f_s)
    r_star = breakeven_ratio(f_b, f_s)
    assume(r != r_star)
    assert (rho > 0) == (r > r_star)


@given(ranges, fees, fees)
def test_geometric_rho_is_the_same_at_every_level_and_arithmetic_rho_falls(r, f_b, f_s):
    lo, width, n = r
    up = lo * (1 + width)
    geo = raw_grid_levels(lo, up, n, kind="geometric")
    rhos = [cycle_return(a, b, f_b, f_s) for a, b in zip(geo, geo[1:], strict=False)]
    assert max(rhos) - min(rhos) < D("1e-22")
    ari = raw_grid_levels(lo, up, n, kind="arithmetic")
    rhos = [cycle_return(a, b, f_b, f_s) for a, b in zip(ari, ari[1:], strict=False)]
    assert all(x > y for x, y in zip(rhos, rhos[1:], strict=False))


@given(st.decimals(min_value=D("0.001"), max_value=D("100"), places=3),
       st.decimals(min_value=D("100"), max_value=D("100000"), places=1),
       st.decimals(min_value=D("0.1"), max_value=D("1000"), places=1), fees, fees)
def test_pair_net_is_the_ledger_change_of_one_completed_pair(q, p_lo, step, f_b, f_s):
    p_hi = p_lo + step
    cash = D(0)
    cash += -q * p_lo - q * p_lo * f_b  # buy fill at P_i, fee q·P_i·f_b
    cash += q * p_hi - q * p_hi * f_s  # sell fill at P_{i+1}
    assert pair_net(q, p_lo, p_hi, f_b, f_s) == cash
    # ρ = (P_hi/P_lo)(1 − f_s) − (1 + f_b) cancels digits, so compare absolutely (28-digit Decimals)
    assert abs(cash / (q * p_lo) - cycle_return(p_lo, p_hi, f_b, f_s)) < D("1e-24")


def test_min_spacing_of_the_proposal():
    assert min_spacing(D("60000"), params=P, tick=D("0.1")) == D("0.0015")  # 0.15 % beats 3 x 0.040008 %
    assert min_spacing(D("100"), params=P, tick=D("1")) == D("0.02")  # 2 ticks / price
    taker = with_params(grid={"breakeven_fees": "taker_taker"})
    assert min_spacing(D("60000"), params=taker, tick=D("0.1")) == 3 * (D("1.0005") / D("0.9995") - 1)


# --- §6.1 stops ---------------------------------------------------------------------------------------------------


def test_stop_price_long_and_short():
    assert stop_price("LONG", s2=D("6900"), r2=D("8000"), atr=50.0, params=P, tick=D("0.1")) == D("6865.5")
    assert stop_price("NEUTRAL", s2=D("6900"), r2=D("8000"), atr=100.0, params=P, tick=D("0.1")) == D("6850.0")
    assert stop_price("SHORT", s2=D("6900"), r2=D("8000"), atr=50.0, params=P, tick=D("0.1")) == D("8040.0")
    # rounded away from the box: down for the long stop, up for the short stop
    assert stop_price("LONG", s2=D("6900.03"), r2=D("8000"), atr=50.0, params=P, tick=D("0.1")) == D("6865.5")
    assert stop_price("SHORT", s2=D("6900"), r2=D("8000.03"), atr=50.0, params=P, tick=D("0.1")) == D("8040.1")
    with pytest.raises(InputError, match="expected direction LONG, SHORT or NEUTRAL, was 'UP'"):
        stop_price("UP", s2=D("1"), r2=D("2"), atr=1.0, params=P, tick=D("0.1"))
    with pytest.raises(InputError, match="expected atr to be a finite number > 0"):
        stop_price("LONG", s2=D("6900"), r2=D("8000"), atr=float("nan"), params=P, tick=D("0.1"))


# --- §6.2 loss ----------------------------------------------------------------------------------------------------

levels_st = st.lists(st.decimals(min_value=D("5000"), max_value=D("8000"), places=1), min_size=1, max_size=30)


@given(levels_st, st.integers(0, 20), st.decimals(min_value=D("0.001"), max_value=D("5"), places=3),
       st.decimals(min_value=D("0.001"), max_value=D("5"), places=3), st.sampled_from([1, -1]))
def test_loss_is_linear_increasing_and_matches_the_fill_ledger(prices, k, a, b, side):
    stop = D("4000") if side == 1 else D("9000")
    kw = dict(initial_price=D("7500"), initial_qty_levels=k, f_maker=F_M, f_taker=F_T, stress_slippage=S_X, side=side)
    la, lb, lab = (worst_case_loss(x, prices, stop, **kw) for x in (a, b, a + b))
    assert 0 < la and 0 < lb
    assert rel(lab, la + lb) < D("1e-24")
    assert (la < lb) == (a < b)
    assert rel(la, naive_worst_case_loss(a, prices, stop, **kw)) < D("1e-24")


# The §6.4 worked example. Conventions that give its numbers: the 10 buy levels fill as maker (0.02 % of each
# fill); the stop fills as taker (0.05 % of the fill price); "fees + 0.1 % slippage" = the stop fills at
# stop·(1 − 0.001); "gapped 5 %" = the stop fills at 0.95·stop, no further slippage; "no stop" = marked at 3 800
# with no exit fill (the maker fees on the buys only); LP on the tier-1 bracket (MMR 0.4 %, cum 0).
EX_PRICES = [D(7000 + 100 * i) for i in range(10)]
EX_Q = D("0.1")


def ex_loss(stop: D, *, slippage: D, taker: D = F_T) -> D:
    return worst_case_loss(EX_Q, EX_PRICES, stop, initial_price=D(0), initial_qty_levels=0, f_maker=F_M,
                           f_taker=taker, stress_slippage=slippage)


def test_worked_example_6_4_inventory_and_stop():
    assert EX_Q * len(EX_PRICES) == D(1) and sum(EX_PRICES) / len(EX_PRICES) == D("7450")
    assert stop_price("LONG", s2=D("6900"), r2=D("9000"), atr=50.0, params=P, tick=BTC.tick_size) == D("6865.5")


def test_worked_example_6_4_losses():
    at_stop = ex_loss(D("6865.5"), slippage=D("0.001"))
    assert abs(at_stop - 596) < 1 and f"{at_stop / 10000:.1%}" == "6.0%"  # 596.29
    gapped = ex_loss(D("6865.5") * D("0.95"), slippage=D(0))
    assert abs(D("6865.5") * D("0.95") - 6522) < 1
    assert abs(gapped - 933) < 1 and f"{gapped / 10000:.1%}" == "9.3%"  # 932.53
    no_stop = ex_loss(D("3800"), slippage=D(0), taker=D(0))
    assert abs(no_stop - 3651) < 1 and f"{no_stop / 10000:.1%}" == "36.5%"  # 3 651.49
    assert no_stop == sum(EX_Q * (p - 3800) for p in EX_PRICES) + F_M * EX_Q * sum(EX_PRICES)  # §6.6 no-stop form


def test_worked_example_6_4_liquidation():
    wb10 = isolated_margin(D(1), D("7450"), 10)
    assert wb10 == D("745")
    lp10 = liquidation_price(1, D(1), D("7450"), wb10, TIERS)
    assert abs(lp10 - D("6731.9")) < 1  # 6 731.93
    assert lp10 / D("6865.5") - 1 > D("-0.02")  # "only 2 % under the stop": inside the 2 % liquidation buffer
    wb3 = isolated_margin(D(1), D("7450"), 3)
    assert abs(wb3 - 2483) < 1
    assert abs(liquidation_price(1, D(1), D("7450"), wb3, TIERS) - 4987) < 1  # 4 986.61


# --- plan_grid: structure ------------------------------------------------------------------------------------------


def full_inventory(p: GridPlan, side: int) -> tuple[list[D], int, D | None]:
    """(grid prices of the side, initial levels, initial price) rebuilt from the plan's orders."""
    buys = [o.price for o in p.orders if o.side == BUY]
    sells = [o.price for o in p.orders if o.side == SELL]
    if p.direction == "LONG":
        return buys, len(sells), p.initial_price
    if p.direction == "SHORT":
        return sells, len(buys), p.initial_price
    return (buys, 0, D(0)) if side == 1 else (sells, 0, D(0))


def side_views(p: GridPlan) -> list[tuple[int, D]]:
    if p.direction == "LONG":
        return [(1, p.stop_price)]
    if p.direction == "SHORT":
        return [(-1, p.stop_price)]
    return [(1, p.stop_price), (-1, p.stop_price_short)]


def side_loss(p: GridPlan, side: int, stop: D, q: D) -> D:
    prices, k, p_init = full_inventory(p, side)
    return worst_case_loss(q, prices, stop, initial_price=p_init or D(0), initial_qty_levels=k, f_maker=F_M,
                           f_taker=F_T, stress_slippage=S_X, side=side)


def side_notional(p: GridPlan, side: int) -> D:
    prices, k, p_init = full_inventory(p, side)
    return sum(prices, D(0)) + k * (p_init or D(0))


def side_lp(p: GridPlan, side: int, q: D, params: StrategyParams) -> D | None:
    prices, k, _ = full_inventory(p, side)
    count = len(prices) + k
    if count == 0:
        return None
    notional = q * side_notional(p, side)
    return liquidation_price(side, q * count, notional / (q * count), notional / params.account.leverage,
                             params.account.brackets.tiers)


def lp_keeps_buffer(lp: D | None, side: int, stop: D, buf: D) -> bool:
    """Long: no LP or LP <= stop·(1 − buf); short: LP >= stop·(1 + buf) (None only for a side without orders)."""
    return (lp is None or lp <= stop * (1 - buf)) if side == 1 else (lp is None or lp >= stop * (1 + buf))


def check_started(p: GridPlan, box: dict, params: StrategyParams, equity: D) -> None:
    """Every §4.6 / §6.6 property of a started plan, recomputed from its public fields."""
    assert not p.refused and p.reasons == () and p.below_min_notional == ()
    prices = [lv.price for lv in p.levels]
    n = len(prices) - 1
    assert n >= 2 and [lv.index for lv in p.levels] == list(range(n + 1))
    assert all(a < b for a, b in zip(prices, prices[1:], strict=False))
    assert all(BTC.on_tick(x) for x in prices)
    s = min_spacing(prices[0], params=params, tick=BTC.tick_size)
    assert all(b / a - 1 >= s for a, b in zip(prices, prices[1:], strict=False))  # rounding kept the spacing
    # exactly N orders, one per level except the empty one, every buy below every sell
    assert len(p.orders) == n and len({o.level for o in p.orders}) == n and p.empty_level not in {o.level for o in
                                                                                                 p.orders}
    assert p.empty_level == min(range(n + 1), key=lambda i: (abs(prices[i] - box["price"]), i))
    buys = [o.price for o in p.orders if o.side == BUY]
    sells = [o.price for o in p.orders if o.side == SELL]
    assert all(b < box["price"] for b in buys) and all(x > box["price"] for x in sells)
    assert all(o.price == prices[o.level] and o.qty == p.qty_per_level for o in p.orders)
    q = p.qty_per_level
    assert BTC.on_step(q) and q >= BTC.min_qty and q * prices[0] >= BTC.min_notional
    want_initial = {"LONG": q * len(sells), "SHORT": -q * len(buys), "NEUTRAL": D(0)}[p.direction]
    assert p.initial_qty == want_initial
    # stops (§6.6)
    if p.direction in ("LONG", "NEUTRAL"):
        assert p.stop_price < box["s2"]
    if p.direction == "SHORT":
        assert p.stop_price > box["r2"]
    if p.direction == "NEUTRAL":
        assert p.stop_price_short > box["r2"]
    else:
        assert p.stop_price_short is None and p.worst_case_loss_short is None
    # budget, loss and liquidation with the full inventory, per side
    assert p.budget == risk_budget(equity, equity, params)
    buf = params.risk.liq_buffer
    for side, stop in side_views(p):
        loss = side_loss(p, side, stop, q)
        assert loss <= p.budget
        assert loss == (p.worst_case_loss if side == 1 or p.direction == "SHORT" else p.worst_case_loss_short)
        lp = side_lp(p, side, q, params)
        assert lp_keeps_buffer(lp, side, stop, buf)
        assert lp == (p.liquidation_price_full if side == 1 or p.direction == "SHORT"
                      else p.liquidation_price_short_full)
    assert p.max_worst_case_loss <= p.budget
    check_binding_cap(p, params, equity)


def check_binding_cap(p: GridPlan, params: StrategyParams, equity: D) -> None:
    """q + step breaks the binding cap; every cap holds at q."""
    q, up = p.qty_per_level, p.qty_per_level + BTC.step_size
    acc = params.account
    widest = max(side_notional(p, side) for side, _ in side_views(p))
    margin_ok = lambda x: x * widest / acc.leverage <= acc.margin_fraction * equity
    risk_ok = lambda x: all(side_loss(p, side, stop, x) <= p.budget for side, stop in side_views(p))
    liq_ok = lambda x: all(lp_keeps_buffer(side_lp(p, side, x, params), side, stop, params.risk.liq_buffer)
                           for side, stop in side_views(p))
    bracket_ok = lambda x: (x * widest <= acc.brackets.tiers[-1].cap
                            and max_leverage_for(x * widest, acc.brackets.tiers) >= acc.leverage)
    checks = {"margin": margin_ok, "risk": risk_ok, "liquidation": liq_ok, "bracket": bracket_ok}
    assert all(ok(q) for ok in checks.values())
    assert not checks[p.binding_cap](up), f"q + step still satisfies the binding cap {p.binding_cap}"


@pytest.mark.parametrize("direction", ["LONG", "SHORT", "NEUTRAL"])
def test_btc_box_plans(direction):
    p = plan(direction)
    check_started(p, BOX, P, D("10000"))
    assert p.binding_cap == "risk" and len(p.levels) == 67 and p.leverage == 3
    if direction == "LONG":
        assert p.stop_price == D("54550.0") and p.initial_price == D("60000") * D("1.0005")
        assert p.qty_per_level == D("0.002") and p.initial_qty == D("0.064")
    if direction == "NEUTRAL":
        assert p.stop_price_short == D("65450.0") and p.initial_qty == 0 and p.initial_price is None


def test_grid_range_mode_s2_r2_widens_the_range():
    params = with_params(grid={"range_mode": "s2_r2"})
    p = plan(params=params, equity=D("20000"))
    assert p.levels[0].price == BOX["s2"] and p.levels[-1].price == BOX["r2"]
    check_started(p, BOX, params, D("20000"))


def test_arithmetic_plan():
    params = with_params(grid={"grid_type": "arithmetic"})
    p = plan(params=params)
    check_started(p, BOX, params, D("10000"))
    steps = {b.price - a.price for a, b in zip(p.levels, p.levels[1:], strict=False)}
    assert max(steps) - min(steps) <= BTC.tick_size  # constant step up to one tick of rounding
    assert p.spacing == (p.levels[-1].price - p.levels[0].price) / (len(p.levels) - 1) / p.levels[-1].price


def test_price_at_the_range_edge_leaves_one_side_without_orders():
    box = BOX | dict(price=D("62995"))  # nearest level is P_N = R1: no sell orders
    p = plan("NEUTRAL", equity=D("20000"), **box)
    check_started(p, box, P, D("20000"))
    assert p.empty_level == len(p.levels) - 1 and {o.side for o in p.orders} == {BUY}
    assert p.worst_case_loss_short == 0 and p.liquidation_price_short_full is None
    box = BOX | dict(price=D("57005"))  # a long grid at its bottom: everything is the initial position
    p = plan("LONG", equity=D("20000"), **box)
    check_started(p, box, P, D("20000"))
    assert p.empty_level == 0 and p.initial_qty == p.qty_per_level * (len(p.levels) - 1)


# --- plan_grid: binding caps ----------------------------------------------------------------------------------------


def test_margin_cap_binds_at_1x():
    params = with_params(account={"leverage": 1})
    p = plan(params=params, equity=D("100000"))
    check_started(p, BOX, params, D("100000"))
    assert p.binding_cap == "margin"


def test_liquidation_cap_binds_for_a_large_20x_grid():
    box = dict(price=D("60000"), s1=D("59000"), s2=D("58900"), r1=D("61000"), r2=D("62000"), atr=100.0)
    params = with_params(account={"leverage": 20})
    p = plan(params=params, equity=D("1000000"), **box)
    check_started(p, box, params, D("1000000"))
    assert p.binding_cap == "liquidation" and p.qty_per_level == D("0.981")
    # in the first bracket the same grid keeps the buffer at any size: the cap comes from the higher brackets
    assert tiers_of(p.liquidation_price_full, p) != TIERS[0]


def tiers_of(lp: D, p: GridPlan) -> LeverageTier:
    return tier_for(lp * p.qty_per_level * (len(p.levels) - 1), TIERS)


def test_bracket_cap_binds_with_a_small_first_bracket():
    # 3x is allowed up to 15 000 USDT of notional only
    table = BracketTable(symbol="BTCUSDT", tiers=(LeverageTier(D(0), D("15000"), 20, D("0.004"), D(0)),
                                                  LeverageTier(D("15000"), D("1000000"), 2, D("0.01"), D("90"))))
    params = with_params(account={"brackets": table})
    p = plan(params=params, equity=D("20000"))
    check_started(p, BOX, params, D("20000"))
    assert p.binding_cap == "bracket"


# --- plan_grid: refusals --------------------------------------------------------------------------------------------


def refused(p: GridPlan, *fragments: str) -> None:
    assert p.refused and p.orders == () and p.initial_qty == 0
    text = " | ".join(p.reasons)
    for f in fragments:
        assert f in text, text


def test_refused_when_the_spacing_exceeds_the_atr_bound():
    refused(plan(atr=30.0), "levels would not fill", "analysis ATR 30.0")
    p = plan_grid(direction="LONG", **BOX, equity=D("10000"), peak_equity=D("10000"), rules=BTC, params=P,
                  exec_atr=60.0)
    refused(p, "execution ATR 60.0")
    assert not plan_grid(direction="LONG", **BOX, equity=D("10000"), peak_equity=D("10000"), rules=BTC, params=P,
                         exec_atr=120.0).refused


def test_refused_when_the_range_holds_fewer_than_two_intervals():
    refused(plan(s1=D("59950"), r1=D("60100")), "expected at least 2 intervals")


def test_refused_below_min_notional_names_the_orders():
    p = plan(equity=D("5000"))
    refused(p, "minNotional 100", "binding cap: risk")
    assert p.below_min_notional and all(o.qty * o.price < BTC.min_notional for o in p.below_min_notional)
    assert p.qty_per_level > 0


def test_refused_below_min_qty():
    p = plan(equity=D("200"))
    refused(p, "expected q >= minQty 0.001, was 0.000")
    assert len(p.below_min_notional) == len(p.levels) - 1


def test_refused_at_max_drawdown():
    refused(plan(equity=D("9000"), peak=D("10000")), "below max_drawdown 0.10")
    assert plan(equity=D("9500"), peak=D("10000")).budget == D("0.8") * D("0.05") * D("10000")


def test_refused_when_leverage_exceeds_the_first_bracket():
    refused(plan(params=with_params(account={"leverage": 126})), "expected leverage <= the first bracket's max "
                                                                  "leverage 125x, was 126x")


def test_refused_when_liquidation_cannot_keep_the_buffer():
    p = plan(params=with_params(account={"leverage": 25}))
    refused(p, "binding cap: liquidation", "expected the full-inventory liquidation price <= stop 54550.0 x (1 - 0.02)"
            " = 53459.00 at 25x, was", "(lower the leverage)")


def test_refused_for_a_symbol_without_brackets():
    refused(plan(rules=default_registry().rules("ETHUSDT")), "expected leverage brackets for ETHUSDT")


def test_bad_inputs_are_errors():
    with pytest.raises(InputError, match="expected S2 < S1 < price < R1 < R2"):
        plan(s1=D("61000"))
    with pytest.raises(InputError, match="expected peak_equity >= equity"):
        plan(equity=D("10000"), peak=D("9000"))
    with pytest.raises(InputError, match="expected direction"):
        plan("long")


# --- plan_grid: hypothesis ----------------------------------------------------------------------------------------

frac = lambda lo, hi: st.floats(min_value=lo, max_value=hi, allow_nan=False)


@st.composite
def scenarios(draw):
    price = draw(st.decimals(min_value=D("2000"), max_value=D("100000"), places=1))
    cent = D("0.01")
    s1 = (price * (1 - D(repr(draw(frac(0.004, 0.15)))))).quantize(cent)
    s2 = (s1 * (1 - D(repr(draw(frac(0.002, 0.1)))))).quantize(cent)
    r1 = (price * (1 + D(repr(draw(frac(0.004, 0.15)))))).quantize(cent)
    r2 = (r1 * (1 + D(repr(draw(frac(0.002, 0.1)))))).quantize(cent)
    atr = float(price) * draw(frac(0.0014, 0.03))
    assume(s2 < s1 < price < r1 < r2)
    equity = D(10 ** draw(frac(3.5, 6.5))).quantize(cent)  # log-uniform 3 000 .. 3 000 000
    params = with_params(account={"leverage": draw(st.sampled_from([1, 2, 3, 3, 5, 10, 20]))},
                         grid={"grid_type": draw(st.sampled_from(["geometric", "arithmetic"])),
                               "range_mode": draw(st.sampled_from(["s1_r1", "s2_r2"]))})
    box = dict(price=price, s1=s1, s2=s2, r1=r1, r2=r2, atr=atr)
    return draw(st.sampled_from(["LONG", "SHORT", "NEUTRAL"])), box, equity, params


@settings(max_examples=200)
@given(scenarios())
def test_every_plan_is_consistent(scenario):
    direction, box, equity, params = scenario
    p = plan(direction, params=params, equity=equity, **box)
    note(f"refused={p.refused} reasons={p.reasons} binding={p.binding_cap} q={p.qty_per_level}")
    event("refused" if p.refused else f"started, binding {p.binding_cap}")
    if p.refused:
        refused(p)
        assert p.reasons
    else:
        check_started(p, box, params, equity)


# --- §4.4 / §4.5 reference walk -------------------------------------------------------------------------------------


def formula_position(p: GridPlan, x: D) -> D:
    """§4.4: q·(n_above(x) − n_above(p_ref)), p_ref = Up (long), p0 (neutral), Lo (short)."""
    prices = [lv.price for lv in p.levels]
    above = lambda y: sum(1 for v in prices if v > y)
    ref = {"LONG": prices[-1], "NEUTRAL": p.price, "SHORT": prices[0]}[p.direction]
    return p.qty_per_level * (above(x) - above(ref))


@settings(max_examples=60)
@given(st.sampled_from(["LONG", "SHORT", "NEUTRAL"]), st.lists(frac(0.8, 1.2), min_size=1, max_size=25))
def test_position_after_a_monotone_path_matches_4_4(direction, xs):
    p = plan(direction, equity=D("50000"))
    assert not p.refused
    path = sorted(D(repr(x)) * p.price for x in xs)
    positions = [position_after_path(p, x) for x in path]
    for x, pos in zip(path, positions, strict=True):
        assert abs(pos - formula_position(p, x)) <= p.qty_per_level
        if direction == "LONG":
            assert pos >= 0
        if direction == "SHORT":
            assert pos <= 0
    assert all(a >= b for a, b in zip(positions, positions[1:], strict=False))  # non-increasing in p


@pytest.mark.parametrize("direction", ["LONG", "SHORT", "NEUTRAL"])
def test_open_orders_after_a_path(direction):
    p = plan(direction, equity=D("50000"))
    n = len(p.levels) - 1
    assert orders_after_path(p, p.price) == {o.level: o.side for o in p.orders}
    below = orders_after_path(p, p.levels[0].price - 1)
    assert len(below) == n and set(below.values()) == {SELL}
    above = orders_after_path(p, p.levels[-1].price + 1)
    assert len(above) == n and set(above.values()) == {BUY}
    for lv in p.levels[1:-1]:
        for x in (lv.price, lv.price + D("0.05")):
            book = orders_after_path(p, x)
            assert len(book) == n
            buys = [p.levels[i].price for i, s in book.items() if s == BUY]
            sells = [p.levels[i].price for i, s in book.items() if s == SELL]
            assert max(buys, default=D(0)) < min(sells, default=D("Infinity"))
            empty = ({lv.index for lv in p.levels} - set(book)).pop()
            filled_down = [i for i in range(n + 1) if p.levels[i].price >= x and i < p.empty_level]
            filled_up = [i for i in range(n + 1) if p.levels[i].price <= x and i > p.empty_level]
            last = min(filled_down) if x < p.price and filled_down else max(filled_up) if filled_up else None
            assert empty == (p.empty_level if last is None else last)  # the empty level is the last filled one
    long_pos = position_after_path(p, p.levels[0].price - 1)
    assert long_pos == p.initial_qty + p.qty_per_level * sum(1 for o in p.orders if o.side == BUY)


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=40, unique=True), st.integers(0, 10_500))
def test_nearest_level_is_the_closest_and_the_lower_one_on_a_tie(levels, p):
    from gridcore.strategy.grid_planner import _nearest

    prices = sorted(Decimal(x) for x in levels)
    price = Decimal(p)
    assert _nearest(prices, price) == min(range(len(prices)), key=lambda i: (abs(prices[i] - price), i))
