"""The account ledger (algorithms.md §4.5, §5.5-§5.8): identity after every event, entry, pairs, funding, margin."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcore.domain.orders import Fill, FillReason, Liquidity, OrderSide, money
from gridcore.params import BTCUSDT_TIERS_2021_03_18
from gridcore.risk.margin import liquidation_price
from gridcore.sim.ledger import IdentityError, Ledger, LedgerState, check_identity
from gridcore.strategy.grid_planner import pair_net

MAKER, TAKER = D("0.0002"), D("0.0005")
TIERS = BTCUSDT_TIERS_2021_03_18


def fill(side: OrderSide, qty: str | D, price: str | D, *, maker: bool = True, pair: str | D | None = None) -> Fill:
    q, p = D(qty), D(price)
    rate = MAKER if maker else TAKER
    return Fill("o", 0, side, q, p, money(q * p * rate), Liquidity.MAKER if maker else Liquidity.TAKER,
                FillReason.GRID, p, D(0), None, None if pair is None else D(pair))


def new(deposit: str = "10000", leverage: int = 3) -> Ledger:
    return Ledger(LedgerState.new(D(deposit), leverage))


events = st.one_of(
    st.tuples(st.just("fill"), st.sampled_from(list(OrderSide)), st.integers(1, 2000), st.integers(50_000, 70_000),
              st.booleans(), st.booleans()),
    st.tuples(st.just("funding"), st.integers(-30, 30), st.integers(50_000, 70_000)),
    st.tuples(st.just("mark"), st.integers(50_000, 70_000)),
)


@settings(max_examples=200)
@given(st.lists(events, max_size=40))
def test_identity_holds_exactly_after_every_event(seq):
    ledger = new()
    ts = 0
    funding_total = D(0)
    for ev in seq:
        if ev[0] == "fill":
            _, side, q, p, maker, paired = ev
            price = D(p) / 10
            before = ledger.realised
            realised, grid = ledger.apply_fill(fill(side, D(q) / 1000, price, maker=maker,
                                                    pair=price - 50 * side.sign if paired else None))
            assert ledger.realised - before == realised
            if not paired:
                assert grid == 0
        elif ev[0] == "funding":
            ts += 1
            pos = ledger.position
            cash = ledger.apply_funding(ts, D(ev[1]) / 100_000, D(ev[2]) / 10)
            if pos == 0:
                assert cash is None
            else:
                assert cash == money(-pos * (D(ev[2]) / 10) * (D(ev[1]) / 100_000))
                funding_total += cash
        else:
            ledger.mark_to(D(ev[1]) / 10)
        ledger.check_identity()
        s = ledger
        assert s.realised_grid + s.realised_other == s.realised
        assert s.funding == funding_total
        assert s.wallet == s.deposit + s.realised - s.fees + s.funding


def test_entry_is_the_vwap_of_opening_fills_and_resets_on_close_and_flip():
    ledger = new()
    ledger.apply_fill(fill(OrderSide.BUY, "1", "100"))
    ledger.apply_fill(fill(OrderSide.BUY, "3", "200"))
    assert ledger.entry == D(175) and ledger.position == D(4)
    realised, _ = ledger.apply_fill(fill(OrderSide.SELL, "1", "195"))
    assert realised == D(20) and ledger.entry == D(175)
    realised, _ = ledger.apply_fill(fill(OrderSide.SELL, "5", "150"))  # closes 3, opens a short of 2
    assert realised == D(-75) and ledger.position == D(-2) and ledger.entry == D(150)
    ledger.apply_fill(fill(OrderSide.BUY, "2", "140"))
    assert ledger.position == 0 and ledger.entry == 0
    ledger.check_identity()


def test_completed_pair_changes_realised_minus_fees_by_exactly_net_i():
    ledger = new()
    q, lo, hi = D("0.016"), D("59089.5"), D("59178.3")
    start = ledger.wallet
    ledger.apply_fill(fill(OrderSide.BUY, q, lo))
    _, grid = ledger.apply_fill(fill(OrderSide.SELL, q, hi, pair=lo))
    assert grid == q * (hi - lo)
    assert ledger.wallet - start == pair_net(q, lo, hi, MAKER, MAKER)
    assert ledger.realised_grid == grid and ledger.realised_other == 0


def test_short_pair_books_grid_profit_from_the_sell_above():
    ledger = new()
    ledger.apply_fill(fill(OrderSide.SELL, "1", "101"))
    _, grid = ledger.apply_fill(fill(OrderSide.BUY, "1", "100", pair="101"))
    assert grid == D(1) and ledger.realised == D(1)


def test_funding_is_paid_only_with_a_position_and_longs_pay_positive_rates():
    ledger = new()
    assert ledger.apply_funding(1, D("0.0001"), D(60000)) is None
    ledger.apply_fill(fill(OrderSide.BUY, "0.5", "60000"))
    before = ledger.wallet
    cash = ledger.apply_funding(2, D("0.0001"), D(61000))
    assert cash == D("-3.05") and ledger.wallet == before + cash
    ledger.apply_fill(fill(OrderSide.SELL, "1", "61000"))  # now short 0.5
    assert ledger.apply_funding(3, D("0.0001"), D(61000)) == D("3.05")
    with pytest.raises(Exception, match="expected a funding time after 3"):
        ledger.apply_funding(3, D("0.0001"), D(61000))
    ledger.check_identity()


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("leverage", [3, 10, 50])
def test_liquidation_loses_exactly_the_isolated_margin_never_more(side, leverage):
    ledger = new(leverage=leverage)
    ledger.apply_fill(fill(OrderSide.BUY if side == 1 else OrderSide.SELL, "0.1", "60000", maker=False))
    margin = ledger.isolated_margin
    lp = ledger.liquidation_price(TIERS)
    assert lp == liquidation_price(side, D("0.1"), D(60000), margin, TIERS)
    assert (lp < 60000) if side == 1 else (lp > 60000)
    wallet = ledger.wallet
    record = ledger.liquidate(5, lp)
    assert record.margin_lost == money(margin) and wallet - ledger.wallet == record.margin_lost
    # at LP the position's own loss is margin minus maintenance margin: losing the margin is the worse case
    assert -side * D("0.1") * (lp - 60000) <= record.margin_lost
    assert ledger.position == 0
    ledger.check_identity()


def test_liquidation_with_a_clearance_fee_still_loses_only_the_margin():
    ledger = new(leverage=10)
    ledger.apply_fill(fill(OrderSide.BUY, "0.1", "60000"))
    wallet = ledger.wallet
    record = ledger.liquidate(1, ledger.liquidation_price(TIERS), D("0.005"))
    assert record.fee > 0 and wallet - ledger.wallet == record.margin_lost == D(600)
    ledger.check_identity()


@pytest.mark.parametrize("side", [OrderSide.BUY, OrderSide.SELL])
def test_kill_price_is_the_first_mark_with_drawdown_at_the_maximum(side):
    ledger = new()
    ledger.apply_fill(fill(side, "1", "60000", maker=False))
    ledger.mark_to(D(60000))
    kill = ledger.kill_price(D("0.10"))
    assert abs(ledger.equity_at(kill) - D(9000)) < D("0.00001")
    assert 1 - ledger.equity_at(kill) / ledger.peak_equity >= D("0.10")
    nearer = kill + D("0.00001") * side.sign
    assert 1 - ledger.equity_at(nearer) / ledger.peak_equity < D("0.10")


def test_peak_follows_new_equity_highs_and_drawdown_is_from_the_peak():
    ledger = new()
    ledger.apply_fill(fill(OrderSide.BUY, "1", "100", maker=False))
    ledger.mark_to(D(1100))
    peak = ledger.peak_equity
    assert ledger.mark_to(D(600)) == 1 - ledger.equity_at(D(600)) / peak
    assert ledger.max_drawdown_seen == ledger.drawdown


def test_identity_check_catches_a_corrupted_wallet():
    ledger = new()
    ledger.apply_fill(fill(OrderSide.BUY, "1", "100"))
    broken = dataclasses.replace(ledger.snapshot(), wallet=ledger.wallet + D("1E-10"))
    with pytest.raises(IdentityError, match="expected wallet = deposit"):
        check_identity(broken)


def test_state_round_trips_exactly_through_json():
    ledger = new()
    ledger.apply_fill(fill(OrderSide.BUY, "0.003", "60000.1"))
    ledger.mark_to(D("59999.9"))
    state = ledger.snapshot()
    again = LedgerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and str(again.entry) == str(state.entry)
