"""The executor's per-bar funding input: each event goes to the bar containing it, or to the next bar that exists
when that one is missing (a gap in the data must not lose a payment)."""

from __future__ import annotations

from decimal import Decimal as D

from gridcore.backtest.inputs import group_funding
from gridcore.params import params_from_dict
from gridcore.strategy.engine import FundingPaid, StartSignal, new_state, on_bar
from gridcore.symbols import default_registry
from gridcore.timeframes import HOUR_MS

H = HOUR_MS


def test_events_go_to_their_bar_or_the_next_existing_one():
    times, rates = [2 * H + 5, 5 * H, 6 * H + 1, 9 * H], [D("0.0001"), D("0.0002"), D("0.0003"), D("0.0004")]
    plain = group_funding(times, rates, first_ms=0, step=H)
    assert sorted(plain) == [2 * H, 5 * H, 6 * H, 9 * H]
    bars = [0, H, 2 * H, 3 * H, 7 * H, 8 * H]  # 4h, 5h and 6h are missing; nothing after 8h yet
    got = group_funding(times, rates, first_ms=0, step=H, bar_open_ms=bars)
    assert {k: [e.ts_ms for e in v] for k, v in got.items()} == {2 * H: [2 * H + 5], 7 * H: [5 * H, 6 * H + 1]}


def test_a_funding_time_inside_a_data_gap_is_still_paid_by_the_open_position():
    rules = default_registry().rules("BTC")
    p = params_from_dict({"account": {"capital": "100000"}})
    u = 10**8
    bars = [(k * H, 100 * u, 101 * u, 99 * u, 100 * u, u) for k in (0, 1, 2, 5, 6)]  # 3h and 4h missing
    funding = group_funding([4 * H], [D("0.001")], first_ms=0, step=H, bar_open_ms=[b[0] for b in bars])
    sig = StartSignal("s", "LONG", s1=D(99), s2=D(98), r1=D(101), r2=D(102), atr=D(1))
    state = new_state("t", p)
    paid = []
    for k, b in enumerate(bars):
        state, events = on_bar(state, b, signal=sig if k == 1 else None, params=p, rules=rules,
                               funding_events=funding.get(b[0], ()), interval_ms=H)
        paid += [e for e in events if isinstance(e, FundingPaid)]
    assert state.ledger.position > 0 and len(paid) == 1 and paid[0].ts_ms == 4 * H and paid[0].cash < 0
