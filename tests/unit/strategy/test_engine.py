"""GridEngine (algorithms.md §4.4-§4.5, §5, §6.6): one decision path, state in / state out."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcore.domain.fsm import InvalidTransition
from gridcore.domain.orders import FillReason, FundingEvent, Liquidity, OrderKind, OrderSide, money
from gridcore.domain.transitions import OrderStatus, StrategyStatus
from gridcore.errors import InputError
from gridcore.params import StrategyParams, default_params, params_from_dict
from gridcore.sim.ledger import check_identity
from gridcore.sim.path import SimBar
from gridcore.strategy.engine import (
    EngineState,
    FundingPaid,
    GridEngine,
    GridRefused,
    KillSwitch,
    Liquidated,
    OrderCanceled,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    StartSignal,
    StateChanged,
    event_from_dict,
    event_to_dict,
    new_state,
    on_bar,
    plan_with_planner,
    reset,
)
from gridcore.strategy.grid_planner import GridLevel, GridPlan, PlannedOrder
from gridcore.symbols import SymbolRules

RULES = SymbolRules("BTCUSDT", "BTC", D("0.1"), D("0.001"), D("0.001"), D("5"), 8, "test")
MIN = 60_000
SIG = StartSignal("sig-1", "LONG", s1=D(96), s2=D(95), r1=D(104), r2=D(105), atr=D(1))
LEVELS = [96, 97, 98, 99, 100, 101, 102, 103, 104]


def params(**groups) -> StrategyParams:
    return params_from_dict(groups) if groups else default_params()


def bar(i: int, o, h, lo, c, v="100") -> SimBar:
    return SimBar(i * MIN, D(str(o)), D(str(h)), D(str(lo)), D(str(c)), D(v))


def flat(i: int, p) -> SimBar:
    return bar(i, p, p, p, p)


def make_plan(direction: str, prices, e: int, q, *, stop=None, short_stop=None, qty=None) -> GridPlan:
    """A hand-built plan: buys below level e, sells above, initial position per §4.4."""
    levels = tuple(GridLevel(i, D(str(p))) for i, p in enumerate(prices))
    orders = tuple(PlannedOrder(lv.index, "BUY" if lv.index < e else "SELL", lv.price,
                                D(str((qty or {}).get(lv.index, q)))) for lv in levels if lv.index != e)
    q = D(str(q))
    k_long = sum(1 for o in orders if o.side == "SELL")
    k_short = sum(1 for o in orders if o.side == "BUY")
    initial = q * k_long if direction == "LONG" else -q * k_short if direction == "SHORT" else D(0)
    return GridPlan(direction=direction, levels=levels, empty_level=e, orders=orders, initial_qty=initial,
                    qty_per_level=q, spacing=D(0), stop_price=None if stop is None else D(str(stop)),
                    worst_case_loss=D(0), budget=D(0), liquidation_price_full=None, leverage=3, refused=False,
                    reasons=(), price=levels[e].price,
                    stop_price_short=None if short_stop is None else D(str(short_stop)))


def fixed(plan: GridPlan):
    return lambda *args: plan


def run(bars, *, p: StrategyParams | None = None, plan=None, signal=SIG, signal_at: int = 1, state=None,
        funding=None, marks=None, plan_fn=None):
    """Feed bars; returns (state, all events, events per bar). Checks the §5.8 identity after every bar."""
    p = p or params()
    plan_fn = plan_fn or (fixed(plan) if plan is not None else plan_with_planner)
    state = state or new_state("t", p)
    every, per_bar = [], []
    for i, b in enumerate(bars):
        state, events = on_bar(state, b, signal=signal if i == signal_at else None, params=p, rules=RULES,
                               plan_fn=plan_fn, funding_events=(funding or {}).get(i, ()),
                               mark_bar=None if marks is None else marks[i])
        check_identity(state.ledger)
        every += events
        per_bar.append(events)
    return state, every, per_bar


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def fills(events, reason: FillReason | None = None) -> list:
    return [e.fill for e in events if isinstance(e, OrderFilled) and (reason is None or e.fill.reason is reason)]


LONG_PLAN = make_plan("LONG", LEVELS, 4, "1", stop="94")


# --- start, refusal, rules ----------------------------------------------------------------------------------------


def test_long_grid_start_places_the_initial_taker_position_the_limits_and_the_stop():
    state, events, _ = run([flat(0, 100), bar(1, 100, "100.5", "99.5", 100)], plan=LONG_PLAN)
    assert kinds(events)[:3] == ["StateChanged", "OrderPlaced", "OrderFilled"]
    initial = fills(events, FillReason.INITIAL)[0]
    assert initial.liquidity is Liquidity.TAKER and initial.qty == D(4) and initial.price == D(100) * D("1.0005")
    placed = [e.order for e in events if isinstance(e, OrderPlaced)]
    limits = [o for o in placed if o.kind is OrderKind.LIMIT]
    assert [(o.level, o.side) for o in limits] == [(i, OrderSide.BUY if i < 4 else OrderSide.SELL)
                                                   for i in range(9) if i != 4]
    stops = [o for o in placed if o.kind is OrderKind.STOP_MARKET]
    assert len(stops) == 1 and stops[0].price == D(94) and stops[0].close_position
    assert state.status is StrategyStatus.ACTIVE and state.ledger.position == D(4)
    assert len({o.id for o in placed}) == len(placed) and all(o.status is OrderStatus.OPEN for o in state.orders)


def test_real_planner_starts_a_grid_with_every_planned_order():
    captured = []

    def planner(*args):
        captured.append(plan_with_planner(*args))
        return captured[-1]

    signal = StartSignal("z", "NEUTRAL", s1=D(59000), s2=D(58000), r1=D(61000), r2=D(62000), atr=D(800))
    state, events, _ = run([flat(0, 60000), flat(1, 60000)], plan_fn=planner, signal=signal)
    plan = captured[0]
    assert not plan.refused
    limits = [e.order for e in events if isinstance(e, OrderPlaced) and e.order.kind is OrderKind.LIMIT]
    assert [(o.level, o.price, o.qty) for o in limits] == [(o.level, o.price, o.qty) for o in plan.orders]
    assert state.ledger.position == 0  # neutral: no initial position
    assert sum(1 for o in state.orders if o.kind is OrderKind.STOP_MARKET) == 2  # below S2 and above R2


def test_refused_plan_is_reported_and_the_strategy_stays_idle():
    refused = make_plan("LONG", LEVELS, 4, "1")
    refused = GridPlan(**{**refused.__dict__, "refused": True, "reasons": ("expected spacing <= ATR, was larger",)})
    state, events, _ = run([flat(0, 100), flat(1, 100)], plan=refused)
    assert kinds(events) == ["GridRefused"] and events[0].reasons == ("expected spacing <= ATR, was larger",)
    assert state.status is StrategyStatus.IDLE and state.orders == ()


def test_planner_error_is_reported_as_a_refusal():
    signal = StartSignal("bad", "LONG", s1=D(101), s2=D(95), r1=D(104), r2=D(105), atr=D(1))  # price below S1
    state, events, _ = run([flat(0, 100), flat(1, 100)], signal=signal)
    assert kinds(events) == ["GridRefused"] and "expected S2 < S1 < price < R1 < R2" in events[0].reasons[0]


def test_min_notional_orders_refuse_the_grid_with_every_reason():
    rules_p = params()
    plan = make_plan("LONG", LEVELS, 4, "0.04")  # 0.04 x 96..104 = 3.84..4.16 < minNotional 5
    state = new_state("t", rules_p)
    state, _ = on_bar(state, flat(0, 100), params=rules_p, rules=RULES)
    state, events = on_bar(state, flat(1, 100), signal=SIG, params=rules_p, rules=RULES, plan_fn=fixed(plan))
    assert kinds(events) == ["GridRefused"]
    reasons = events[0].reasons
    assert len(reasons) == 8 and all("minNotional 5" in r for r in reasons)  # each limit; the initial 16 passes
    assert state.status is StrategyStatus.IDLE


def test_counter_order_below_min_notional_is_rejected_with_its_reason():
    rules = SymbolRules("BTCUSDT", "BTC", D("0.1"), D("0.001"), D("0.001"), D("100.5"), 8, "test")
    plan = make_plan("NEUTRAL", [99, 100, 101, 102], 1, "1", qty={0: "2"})
    p = params()
    state = new_state("t", p)
    events = []
    for i, b in enumerate([flat(0, 100), flat(1, 100), bar(2, 100, "101.2", 100, "101.2")]):
        state, ev = on_bar(state, b, signal=SIG if i == 1 else None, params=p, rules=rules, plan_fn=fixed(plan))
        events += ev
    rejected = [e.order for e in events if isinstance(e, OrderRejected)]
    assert len(rejected) == 1 and rejected[0].status is OrderStatus.REJECTED
    assert rejected[0].level == 1 and "expected a notional >= minNotional 100.5, was 100" in rejected[0].reason


def test_signal_is_acted_on_once_and_refused_while_a_grid_runs():
    p = params()
    state = new_state("t", p)
    state, _ = on_bar(state, flat(0, 100), signal=SIG, params=p, rules=RULES, plan_fn=fixed(LONG_PLAN))
    state, events = on_bar(state, flat(1, 100), signal=SIG, params=p, rules=RULES, plan_fn=fixed(LONG_PLAN))
    assert events == []
    other = StartSignal("sig-2", "LONG", s1=D(96), s2=D(95), r1=D(104), r2=D(105), atr=D(1))
    state, events = on_bar(state, flat(2, 100), signal=other, params=p, rules=RULES, plan_fn=fixed(LONG_PLAN))
    assert kinds(events) == ["GridRefused"] and "one grid per symbol" in events[0].reasons[0]


# --- priority, refill -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gap", [True, False])
def test_stop_fills_before_any_buy_below_it_and_no_buy_below_it_fills(gap):
    plan = make_plan("LONG", [93, 94, 95, 96, 97, 98, 99, 100, 101], 7, "1", stop="95.5")
    crash = bar(2, 92, 92, 91, 91) if gap else bar(2, 100, 100, 91, 91)
    state, events, per_bar = run([flat(0, 100), flat(1, 100), crash], plan=plan)
    done = fills(per_bar[2])
    stop = next(i for i, f in enumerate(done) if f.reason is FillReason.STOP)
    assert all(f.price > D("95.5") for f in done[:stop] if f.reason is FillReason.GRID)
    assert not any(f.reason is FillReason.GRID for f in done[stop + 1:])
    assert done[stop].reference_price == (D(92) if gap else D("95.5"))
    assert [f.price for f in done if f.reason is FillReason.GRID] == [D(99), D(98), D(97), D(96)]
    assert state.status is StrategyStatus.IDLE and state.orders == () and state.ledger.position == 0
    assert kinds(per_bar[2])[-1] == "StateChanged" and per_bar[2][-1].new is StrategyStatus.IDLE


def refill_params(refill_ok: bool) -> StrategyParams:
    pol = {"path": "high_first", "trade_through_ticks": 1, "same_bar_refill": refill_ok}
    return params(fills={"headline": pol, "optimistic": {**pol, "same_bar_refill": True}})


def test_same_bar_refill_lets_a_level_fill_twice_and_the_headline_policy_never_does():
    plan = make_plan("NEUTRAL", LEVELS, 3, "1")  # buys at 96..98, sells at 100..104, level 99 empty
    wide = bar(2, "99.5", "100.3", "98.5", "100.2")  # high first: up through 100.1, down through 98.9, up again
    grid = {}
    for refill in (False, True):
        _, _, per_bar = run([flat(0, "99.5"), flat(1, "99.5"), wide], p=refill_params(refill), plan=plan)
        grid[refill] = Counter(f.level for f in fills(per_bar[2], FillReason.GRID))
    assert grid[False] == Counter({4: 1})
    assert grid[True] == Counter({4: 2, 3: 1})


@st.composite
def walks(draw, max_range: int = 40, n: int = 12):
    """A continuous walk of bars in ticks around 100 (each bar opens at the previous close)."""
    price = 1000
    out = [flat(0, "100"), flat(1, "100")]
    for i in range(2, n + 2):
        up, down = draw(st.integers(0, max_range)), draw(st.integers(0, max_range))
        lo, hi = price - down, price + up
        c = draw(st.integers(lo, hi))
        out.append(bar(i, D(price) / 10, D(hi) / 10, D(lo) / 10, D(c) / 10))
        price = c
    return out


NEUTRAL_PLAN = make_plan("NEUTRAL", LEVELS, 4, "1", stop="94", short_stop="106")


@settings(max_examples=60)
@given(walks())
def test_headline_policy_fills_each_level_at_most_once_per_bar(bars):
    _, _, per_bar = run(bars, plan=NEUTRAL_PLAN, signal=StartSignal("n", "NEUTRAL", s1=D(96), s2=D(95),
                                                                       r1=D(104), r2=D(105), atr=D(1)))
    for events in per_bar:
        per_level = Counter(f.level for f in fills(events, FillReason.GRID))
        assert all(n == 1 for n in per_level.values())


@settings(max_examples=60)
@given(walks(max_range=4, n=15))
def test_bar_narrower_than_the_spacing_fills_at_most_one_grid_level(bars):
    assert all(b.high - b.low < 1 for b in bars)  # spacing 1: levels 96..104
    _, _, per_bar = run(bars, plan=NEUTRAL_PLAN, signal=StartSignal("n", "NEUTRAL", s1=D(96), s2=D(95),
                                                                       r1=D(104), r2=D(105), atr=D(1)))
    for events in per_bar:
        assert len(fills(events, FillReason.GRID)) <= 1


@st.composite
def gapped_walks(draw, n: int = 15):
    """Bars in ticks around 100 that may open away from the previous close (a gap walk, then the body)."""
    price = 1000
    out = [flat(0, "100"), flat(1, "100")]
    for i in range(2, n + 2):
        o = price + draw(st.integers(-15, 15))
        up, down = draw(st.integers(0, 30)), draw(st.integers(0, 30))
        lo, hi = o - down, o + up
        c = draw(st.integers(lo, hi))
        out.append(bar(i, D(o) / 10, D(hi) / 10, D(lo) / 10, D(c) / 10))
        price = c
    return out


@settings(max_examples=40)
@given(gapped_walks(), st.sampled_from(["headline", "optimistic"]))
def test_a_bar_starts_from_the_previous_bars_trigger_ladders_with_the_same_result(bars, policy):
    """on_bar keeps the sorted triggers of the book it leaves for the next bar, keyed by that orders tuple. Two
    strategies run one after the other reuse them at every bar; run bar by bar in turn they never can, and the
    one's must never reach the other. Both ways give the same events and states."""
    p = params()
    runs = {"neutral": (NEUTRAL_PLAN, StartSignal("n", "NEUTRAL", s1=D(96), s2=D(95), r1=D(104), r2=D(105),
                                                  atr=D(1))),
            "long": (make_plan("LONG", LEVELS, 5, "1", stop="94"), SIG)}
    states = {name: new_state(name, p, policy=policy) for name in runs}

    def step(name: str, i: int) -> tuple:
        plan, sig = runs[name]
        states[name], events = on_bar(states[name], bars[i], signal=sig if i == 1 else None, params=p, rules=RULES,
                                      plan_fn=fixed(plan))
        return states[name], events

    alone = {name: [step(name, i) for i in range(len(bars))] for name in runs}
    states = {name: new_state(name, p, policy=policy) for name in runs}
    in_turn: dict[str, list] = {name: [] for name in runs}
    for i in range(len(bars)):
        for name in runs:
            in_turn[name].append(step(name, i))
    assert in_turn == alone


# --- funding ----------------------------------------------------------------------------------------------------


def test_funding_only_at_funding_times_with_a_position_and_longs_pay_positive_rates():
    bars = [flat(0, 100), flat(1, 100), flat(2, 100), bar(3, 100, 100, 99, 99), flat(4, 99), flat(5, 99)]
    funding = {0: [FundingEvent(0, D("0.0003"))],  # flat: nothing
               2: [FundingEvent(2 * MIN, D("0.0001"))],
               4: [FundingEvent(4 * MIN, None, D("98.5")), FundingEvent(4 * MIN + 1, D("-0.0002"))],
               5: [FundingEvent(4 * MIN + 1, D("0.5"))]}  # already booked: ignored
    state, events, _ = run(bars, plan=LONG_PLAN, funding=funding)
    paid = [e for e in events if isinstance(e, FundingPaid)]
    assert [e.ts_ms for e in paid] == [2 * MIN, 4 * MIN, 4 * MIN + 1]
    assert [e.rate for e in paid] == [D("0.0001"), D("0.0001"), D("-0.0002")]  # missing -> default 0.0001
    assert paid[0].cash < 0 and paid[1].cash < 0 and paid[2].cash > 0
    assert all(e.cash == money(-e.position * e.mark_price * e.rate) for e in paid)
    assert paid[1].mark_price == D("98.5") and paid[0].mark_price == D(100)
    assert sum(e.cash for e in paid) == state.ledger.funding


# --- kill switch, crash, stop loss budget, liquidation ------------------------------------------------------------


def crash_bars(start, end, step_pct: str, first_ms_index: int = 2) -> list[SimBar]:
    """Monotone falling bars (each opens at the previous close, high = open, low = close)."""
    out, p, i = [], D(str(start)), first_ms_index
    end = D(str(end))
    while p > end:
        nxt = max(end, (p * (1 - D(step_pct))).quantize(D("0.1")))
        out.append(bar(i, p, p, nxt, nxt))
        p, i = nxt, i + 1
    return out


def test_kill_switch_fires_at_the_first_event_with_ten_percent_drawdown_and_halts():
    plan = make_plan("LONG", LEVELS, 4, "25")  # no stop: the kill switch is the only exit
    p = params(risk={"range_break_closes": 1000})
    bars = [flat(0, 100), flat(1, 100)] + crash_bars(100, 80, "0.01")
    state, events, _ = run(bars, p=p, plan=plan)
    k = next(i for i, e in enumerate(events) if isinstance(e, KillSwitch))
    for e in events[:k]:
        if isinstance(e, OrderFilled | FundingPaid | Liquidated):
            assert e.drawdown < D("0.10")
    assert D("0.10") <= events[k].drawdown < D("0.1001")  # at the level, not at the bar's low
    after = events[k + 1:]
    assert set(kinds(after)) <= {"OrderCanceled", "OrderPlaced", "OrderFilled", "StateChanged"}
    assert [f.reason for f in fills(after)] == [FillReason.KILL_SWITCH]
    assert after[-1].new is StrategyStatus.HALTED
    assert state.status is StrategyStatus.HALTED and state.orders == () and state.ledger.position == 0

    engine = GridEngine(p, RULES, fixed(plan))
    again = StartSignal("sig-2", "LONG", s1=D(96), s2=D(95), r1=D(104), r2=D(105), atr=D(1))
    state, ev = engine.on_bar(state, flat(100, 80), signal=again)
    assert kinds(ev) == ["GridRefused"] and "HALTED" in ev[0].reasons[0]
    state, ev = engine.reset(state)
    assert ev[0].new is StrategyStatus.IDLE and state.ledger.peak_equity == state.ledger.equity
    third = StartSignal("sig-3", "LONG", s1=D(96), s2=D(95), r1=D(104), r2=D(105), atr=D(1))
    state, ev = engine.on_bar(state, flat(101, 100), signal=third)
    assert ev[0].new is StrategyStatus.ACTIVE


def test_reset_is_the_only_way_out_of_halted():
    state = new_state("t", params())
    with pytest.raises(InvalidTransition, match="IDLE -> RESET"):
        reset(state)


@pytest.mark.parametrize(("mode", "step"), [("stress", "0.004"), ("crash", "0.02")])
def test_fifty_percent_crash_with_the_stop_loses_no_more_than_budget_plus_stress_slippage(mode, step):
    captured = []

    def planner(*args):
        captured.append(plan_with_planner(*args))
        return captured[-1]

    signal = StartSignal("c", "LONG", s1=D(59000), s2=D(58000), r1=D(61000), r2=D(62000), atr=D(800))
    bars = [flat(0, 60000), flat(1, 60000)] + crash_bars(60000, 30000, step)
    p = params(risk={"range_break_closes": 1000})  # the stop is the exit under test
    state, events, _ = run(bars, p=p, plan_fn=planner, signal=signal, state=new_state("t", p, slippage_mode=mode))
    plan = captured[0]
    assert not plan.refused and state.ledger.position == 0 and state.status is StrategyStatus.IDLE
    stop = fills(events, FillReason.STOP)
    assert len(stop) == 1 and stop[0].reference_price == plan.stop_price
    loss = state.ledger.deposit - state.ledger.wallet
    modelled = sum((f.slippage_cost for f in fills(events)), D(0))
    assert loss <= plan.budget + modelled
    if mode == "stress":
        assert plan.worst_case_loss < loss <= plan.budget  # the initial fill pays stress, the plan modelled normal
    else:
        assert stop[0].price < plan.stop_price * (1 - params().costs.stress_slippage)  # 0.25 x range applied


def test_crash_without_a_stop_loses_exactly_the_levels_minus_the_end_price_plus_fees():
    plan = make_plan("LONG", LEVELS, 4, "1")
    p = params(risk={"range_break_closes": 1000, "max_drawdown": "0.99"}, account={"leverage": 1})
    bars = [flat(0, 100), flat(1, 100)] + crash_bars(100, 50, "0.02")
    state, events, _ = run(bars, p=p, plan=plan)
    end = bars[-1].close
    done = fills(events)
    assert {f.price for f in done if f.reason is FillReason.GRID} == {D(96), D(97), D(98), D(99)}
    expected = sum((f.qty * (f.price - end) for f in done), D(0)) + sum((f.fee for f in done), D(0))
    loss = state.ledger.deposit - state.ledger.equity
    assert abs(loss - expected) < D("1E-18")


def test_liquidation_on_the_mark_loses_the_isolated_margin_and_never_more():
    plan = make_plan("LONG", LEVELS, 4, "20")
    p = params(risk={"range_break_closes": 1000, "max_drawdown": "0.99"}, account={"leverage": 20})
    bars = [flat(0, 100), flat(1, 100)] + crash_bars(100, 80, "0.01")
    state, events, _ = run(bars, p=p, plan=plan)
    liq = [e for e in events if isinstance(e, Liquidated)]
    assert len(liq) == 1
    rec = liq[0].liquidation
    assert rec.margin_lost == money(rec.position_qty * rec.entry_price / 20)
    assert rec.price < rec.entry_price
    # the position's own loss at the liquidation price is within the margin it loses
    assert rec.position_qty * (rec.entry_price - rec.price) <= rec.margin_lost
    assert state.ledger.position == 0 and state.orders == () and state.status is StrategyStatus.IDLE


def test_liquidation_follows_the_mark_path_not_the_trade_path():
    plan = make_plan("LONG", LEVELS, 4, "20")
    p = params(risk={"range_break_closes": 1000, "max_drawdown": "0.99"}, account={"leverage": 20})
    trade = [flat(0, 100), flat(1, 100), bar(2, 100, 100, "99.5", "99.5")]
    marks = [flat(0, 100), flat(1, 100), bar(2, 100, 100, 90, "99.5")]  # only the mark wicks down to 90
    _, events, _ = run(trade, p=p, plan=plan, marks=marks)
    assert any(isinstance(e, Liquidated) for e in events)
    _, events, _ = run(trade, p=p, plan=plan)
    assert not any(isinstance(e, Liquidated) for e in events)


def test_spot_history_has_no_liquidation():
    plan = make_plan("LONG", LEVELS, 4, "20")
    p = params(risk={"range_break_closes": 1000, "max_drawdown": "0.99"}, account={"leverage": 20})
    bars = [flat(0, 100), flat(1, 100)] + crash_bars(100, 80, "0.01")
    state, events, _ = run(bars, p=p, plan=plan, state=new_state("spot", p, liquidation=False))
    assert not any(isinstance(e, Liquidated) for e in events)
    assert state.ledger.position > 0 and EngineState.from_dict(state.to_dict()).liquidation is False


@pytest.mark.parametrize(("direction", "rate", "refused"), [
    ("LONG", "0.0006", True), ("LONG", "-0.0006", False), ("SHORT", "-0.0006", True), ("SHORT", "0.0006", False),
    ("NEUTRAL", "-0.0006", True), ("NEUTRAL", "0.0005", False), ("LONG", None, False)])
def test_funding_guard_refuses_a_start_against_the_inventory_side(direction, rate, refused):
    sig = dataclasses.replace(SIG, direction=direction, funding_rate=None if rate is None else D(rate))
    plan = make_plan(direction, LEVELS, 4, "1", stop="106" if direction == "SHORT" else "94", short_stop="106")
    state, events, _ = run([flat(0, 100), flat(1, 100), flat(2, 100)], plan=plan, signal=sig)
    refusals = [e for e in events if isinstance(e, GridRefused)]
    assert bool(refusals) is refused and state.grids_started == (0 if refused else 1)
    assert state.status is (StrategyStatus.IDLE if refused else StrategyStatus.ACTIVE)
    if refused:
        assert "funding guard" in refusals[0].reasons[0] and rate in refusals[0].reasons[0]


def test_no_grid_starts_on_the_first_bar_after_a_data_gap():
    p = params()
    state = new_state("t", p)
    state, _ = on_bar(state, flat(0, 100), params=p, rules=RULES, interval_ms=60_000)
    gap = p.execution.stale_data_intervals + 1  # bars 1.. missing
    state, events = on_bar(state, flat(gap, 100), signal=SIG, params=p, rules=RULES, plan_fn=fixed(LONG_PLAN),
                           interval_ms=60_000)
    assert [e.reasons[0][:10] for e in events if isinstance(e, GridRefused)] == ["stale data"]
    state, events = on_bar(state, flat(gap + 1, 100), signal=dataclasses.replace(SIG, ref="sig-2"), params=p,
                           rules=RULES, plan_fn=fixed(LONG_PLAN), interval_ms=60_000)
    assert state.status is StrategyStatus.ACTIVE  # data flows again: the next signal starts the grid


@pytest.mark.parametrize(("fire", "close", "closes"), [(-1, "95.5", True), (-1, "96.5", False), (1, "95.5", False),
                                                       (0, "95.5", False)])
def test_a_squeeze_fire_against_the_long_inventory_ends_the_grid(fire, close, closes):
    p = params(risk={"range_break_closes": 1000})
    state = new_state("t", p)
    for i, b in enumerate([flat(0, 100), flat(1, 100), bar(2, 100, 100, close, close)]):
        state, events = on_bar(state, b, signal=SIG if i == 1 else None, params=p, rules=RULES,
                               plan_fn=fixed(LONG_PLAN), fire_dir=fire if i == 2 else 0)
    exits = [e for e in events if isinstance(e, StateChanged) and "squeeze fired" in e.reason]
    assert bool(exits) is closes
    assert (state.status is StrategyStatus.IDLE and state.ledger.position == 0) is closes


# --- range break, short -------------------------------------------------------------------------------------------


def test_range_break_after_two_closes_below_s2_closes_the_grid():
    bars = [flat(0, 100), flat(1, 100), bar(2, 100, 100, "94.8", "94.8"), flat(3, "96"), flat(4, "94.8"),
            flat(5, "94.7")]
    state, events, per_bar = run(bars, plan=LONG_PLAN)
    assert not fills(per_bar[4], FillReason.RANGE_BREAK)  # bar 3 closed back above S2: the count restarted
    closing = fills(per_bar[5], FillReason.RANGE_BREAK)
    assert len(closing) == 1 and closing[0].reference_price == D("94.7")
    assert [e.new for e in per_bar[5] if isinstance(e, StateChanged)] == [StrategyStatus.CLOSING,
                                                                          StrategyStatus.IDLE]
    assert state.status is StrategyStatus.IDLE and state.ledger.position == 0


@pytest.mark.parametrize("beyond", [True, False])
def test_a_long_grid_left_above_r2_ends_after_two_closes_there_unless_told_otherwise(beyond):
    p = params(risk={"exit_beyond_range": beyond})
    bars = [flat(0, 100), flat(1, 100), bar(2, 100, "105.5", 100, "105.5"), flat(3, "105.6"), flat(4, "105.7")]
    state, events, per_bar = run(bars, p=p, plan=LONG_PLAN)
    changes = [e for e in events if isinstance(e, StateChanged)]
    if beyond:
        assert state.status is StrategyStatus.IDLE and state.ledger.position == 0 and not state.orders
        assert "range break: 2 closes above R2" in changes[-2].reason and changes[-1].new is StrategyStatus.IDLE
        assert [e.new for e in per_bar[3] if isinstance(e, StateChanged)] == [StrategyStatus.CLOSING,
                                                                              StrategyStatus.IDLE]
    else:
        assert state.status is StrategyStatus.ACTIVE and state.orders


def test_short_grid_sells_initially_and_its_stop_above_exits():
    plan = make_plan("SHORT", LEVELS, 4, "1", stop="106")
    signal = StartSignal("s", "SHORT", s1=D(96), s2=D(95), r1=D(104), r2=D(105), atr=D(1))
    bars = [flat(0, 100), flat(1, 100), bar(2, 100, 107, 100, 107)]
    state, events, _ = run(bars, plan=plan, signal=signal)
    assert fills(events, FillReason.INITIAL)[0].side is OrderSide.SELL
    stop = fills(events, FillReason.STOP)
    assert len(stop) == 1 and stop[0].side is OrderSide.BUY and stop[0].price >= D(106)
    assert state.ledger.position == 0 and state.status is StrategyStatus.IDLE


def test_participation_cap_fills_part_of_a_level_and_the_rest_later():
    p = params(fills={"participation_cap": True, "participation_rate": 0.1})
    bars = [flat(0, 100), flat(1, 100), bar(2, 100, 100, "98.8", "98.8", v="5"), bar(3, "98.8", 99, "98.8", 99)]
    state, events, per_bar = run(bars, p=p, plan=LONG_PLAN)
    first = [f for f in fills(per_bar[2], FillReason.GRID) if f.level == 3]
    assert [f.qty for f in first] == [D("0.5")]
    rest = [f for f in fills(per_bar[3], FillReason.GRID) if f.level == 3]
    assert [f.qty for f in rest] == [D("0.5")]
    assert any(o.level == 4 and o.side is OrderSide.SELL for o in state.orders)  # counter after the full fill


# --- idempotency, determinism, persistence ----------------------------------------------------------------------


def test_processing_a_bar_twice_changes_nothing():
    bars = [flat(0, 100), flat(1, 100), bar(2, 100, 101, "97.5", 98)]
    state, _, _ = run(bars, plan=LONG_PLAN)
    p = params()
    for b in (bars[-1], bars[0]):
        again, events = on_bar(state, b, params=p, rules=RULES, plan_fn=fixed(LONG_PLAN), signal=SIG)
        assert again == state and events == []


@settings(max_examples=40)
@given(walks(n=20))
def test_restart_from_persisted_state_continues_identically(bars):
    signal = StartSignal("n", "NEUTRAL", s1=D(96), s2=D(95), r1=D(104), r2=D(105), atr=D(1))
    funding = {i: [FundingEvent(i * MIN, D("0.0001"))] for i in range(0, len(bars), 4)}
    straight, events, _ = run(bars, plan=NEUTRAL_PLAN, signal=signal, funding=funding)
    p = params()
    state = new_state("t", p)
    replayed = []
    for i, b in enumerate(bars):
        state = EngineState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, ev = on_bar(state, b, signal=signal if i == 1 else None, params=p, rules=RULES,
                           plan_fn=fixed(NEUTRAL_PLAN), funding_events=funding.get(i, ()))
        replayed += ev
        assert on_bar(state, b, params=p, rules=RULES)[1] == []  # a restart re-feeding the bar does nothing
    assert state == straight
    assert [event_to_dict(e) for e in replayed] == [event_to_dict(e) for e in events]
    assert all(event_from_dict(json.loads(json.dumps(event_to_dict(e)))) == e for e in events)
    placed = [e.order.id for e in events if isinstance(e, OrderPlaced)]
    assert len(placed) == len(set(placed))  # never a second order for one placement


def test_two_runs_give_identical_full_event_lists():
    bars = [flat(0, 100), flat(1, 100)] + crash_bars(100, 90, "0.005") + [bar(40, 90, 99, 90, 98)]
    first = run(bars, plan=LONG_PLAN)
    second = run(bars, plan=LONG_PLAN)
    assert first[0] == second[0] and first[1] == second[1]


def test_fees_and_cancels_add_up_with_the_ledger():
    bars = [flat(0, 100), flat(1, 100), bar(2, 100, 103, 97, 102), bar(3, 102, 102, "93", 93)]
    state, events, _ = run(bars, plan=LONG_PLAN)
    assert sum((f.fee for f in fills(events)), D(0)) == state.ledger.fees
    assert sum((f.slippage_cost for f in fills(events)), D(0)) == state.ledger.slippage_cost
    canceled = {e.order_id for e in events if isinstance(e, OrderCanceled)}
    assert canceled and not canceled & {o.id for o in state.orders}


def test_bad_inputs_are_refused_with_expected_was_messages():
    p = params()
    state = new_state("t", p)
    with pytest.raises(InputError, match="expected the mark bar of 0, was the mark bar of 60000"):
        on_bar(state, flat(0, 100), mark_bar=flat(1, 100), params=p, rules=RULES)
    with pytest.raises(InputError, match="expected a bar"):
        on_bar(state, (0, 1, 2), params=p, rules=RULES)
    with pytest.raises(InputError, match="expected a strategy id"):
        new_state("has space", p)
    units = (0, 100 * 10**8, 100 * 10**8, 100 * 10**8, 100 * 10**8, 0)
    assert on_bar(state, units, params=p, rules=RULES)[0].last_close == D(100)
    _ = GridRefused  # exported event type
