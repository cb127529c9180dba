"""The March 2020 crash through a long grid on the real BTCUSDT perpetual 1h bars and funding, in crash stress.

The grid is the one the planner builds at the zone scanned on 2020-03-10 20:00 (S2 7,784.3 < S1 7,900.7 < price
< R1 8,744.6 < R2 9,646.7), forced LONG so it holds inventory into the fall (the trigger itself had no 15m bars in
2020 and the zone's bias was -1). Three ways from 10 March 20:00 to 14 March: with the stop, without it, and at 20x.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from gridcore.bars import SCALE, resample
from gridcore.domain.orders import FillReason, FundingEvent
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.params import params_from_dict
from gridcore.strategy.engine import Liquidated, OrderFilled, StartSignal, new_state, on_bar, plan_with_planner
from gridcore.strategy.scanner import scan_zone
from gridcore.symbols import default_registry
from gridcore.timeframes import HOUR_MS, parse_utc
from tests.conftest import shared_file

pytestmark = pytest.mark.realdata
RULES = default_registry().rules("BTC")
START, END = parse_utc("2020-03-10T20:00Z"), parse_utc("2020-03-14T00:00Z")


@pytest.fixture(scope="module")
def market():
    path = shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    bars = read_klines(path, identify(path)).bars
    fpath = shared_file("BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz")
    funding = read_funding(fpath, identify(fpath))
    return bars, funding


def run(market, overrides: dict, *, keep_stop: bool = True):
    bars, funding = market
    p = params_from_dict(overrides)
    zone = scan_zone(profile_bars=bars, trend_bars=resample(bars, "4h"), at_ms=parse_utc("2020-03-10T20:00Z"),
                     params=p, tick=RULES.tick_size)
    assert zone.valid
    sig = StartSignal("march-2020", "LONG", *(D(repr(x)) for x in (zone.s1, zone.s2, zone.r1, zone.r2)),
                      atr=D(repr(zone.atr)))
    plans = []

    def plan_fn(*args):
        plan = plan_with_planner(*args)
        plan = plan if keep_stop else dataclasses.replace(plan, stop_price=None)
        plans.append(plan)
        return plan

    window = bars.slice_ms(START, END)
    rates = {int(t): r for t, r in zip(funding.funding_ms.tolist(), funding.rates, strict=True)}
    state = new_state("march", p, slippage_mode="crash")
    events = []
    for i, (ms, u) in enumerate(zip(window.open_ms.tolist(), window.units.tolist(), strict=True)):
        fund = [FundingEvent(t, rates[t]) for t in rates if ms <= t < ms + HOUR_MS]
        state, ev = on_bar(state, (ms, *u), funding_events=fund, signal=sig if i == 0 else None, params=p,
                           rules=RULES, plan_fn=plan_fn, interval_ms=HOUR_MS)
        events += ev
    assert plans and not plans[0].refused, plans[0].reasons if plans else "no plan"
    return state, events, plans[0], window


def test_with_the_stop_the_loss_stays_within_the_risk_budget_plus_the_crash_slippage(market):
    state, events, plan, _ = run(market, {})
    fills = [e.fill for e in events if isinstance(e, OrderFilled)]
    stops = [f for f in fills if f.reason is FillReason.STOP]
    assert len(stops) == 1 and state.ledger.position == 0
    loss = state.ledger.deposit - state.ledger.equity
    # The budget is sized with stress slippage (0.10 %) at the stop; in crash stress every taker fill slips by
    # max(0.10 %, 0.25 (H - L) / O) and pays the taker fee, and funding is paid on top (not part of the budget).
    maker = D("0.0002")  # costs.maker_fee
    extra_fees = sum((f.fee - f.qty * f.price * maker for f in fills if f.liquidity.value == "TAKER"), D(0))
    modelled = sum((f.slippage_cost for f in fills), D(0)) + extra_fees - min(state.ledger.funding, D(0))
    assert D(0) < loss <= plan.budget + modelled, (loss, plan.budget, modelled)
    assert loss / state.ledger.deposit < D("0.10")  # still inside the 10 % maximum drawdown


def test_without_the_stop_the_loss_equals_the_inventory_marked_at_the_end(market):
    no_exits = {"risk": {"range_break_closes": 10_000, "exit_on_adverse_fire": False, "max_drawdown": "0.99"},
                "account": {"leverage": 1}}
    state, events, plan, window = run(market, no_exits, keep_stop=False)
    fills = [e.fill for e in events if isinstance(e, OrderFilled)]
    assert not any(f.reason is FillReason.STOP for f in fills)
    end_price = D(int(window.units[-1, 3])) / SCALE
    bought = sum((f.qty * f.price for f in fills if f.side.value == "BUY"), D(0))
    sold = sum((f.qty * f.price for f in fills if f.side.value == "SELL"), D(0))
    fees = sum((f.fee for f in fills), D(0))
    analytic = bought - sold - state.ledger.position * end_price + fees - state.ledger.funding
    loss = state.ledger.deposit - state.ledger.equity
    assert abs(loss - analytic) < D("1e-6")
    default_budget = D("0.8") * D("0.10") * state.ledger.deposit  # what the stop would have held the loss to
    assert state.ledger.position > 0 and loss > 2 * default_budget


def test_at_high_leverage_without_the_stop_the_position_is_liquidated(market):
    no_exits = {"risk": {"range_break_closes": 10_000, "exit_on_adverse_fire": False, "max_drawdown": "0.99",
                         "liq_buffer": "0"}, "account": {"leverage": 20}}
    state, events, _, _ = run(market, no_exits, keep_stop=False)
    liq = [e for e in events if isinstance(e, Liquidated)]
    assert liq and liq[0].liquidation.margin_lost > 0
