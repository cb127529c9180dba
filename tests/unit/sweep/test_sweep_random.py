"""The sweep kernel equals the reference engine (run_backtest) configuration by configuration on random markets.

Random 5m walks (gaps, missing bars, stale stretches, crashes up and down), mark bars that wick further than the
trades, funding at the 8h times and at odd repeated ones, zones with start signals, and random configurations
(tests/unit/sweep/random_markets.py). Per configuration: identical fills (bar, side, quantity, reason, liquidity,
level; maker prices exact, taker prices within 1e-9 relative), identical exits and grids, every bar's equity and
the final account within 1e-9 of the initial equity (gridcore.sweep.parity). The kernel's fast path is checked
bit for bit against walking every bar.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridcore.sweep.driver import run_one
from gridcore.sweep.market import prepare_market
from gridcore.sweep.parity import differences, reference
from gridcore.symbols import default_registry
from tests.unit.sweep import random_markets as rm

RULES = default_registry().rules("BTC")

configs = st.builds(
    rm.config,
    grid_type=st.sampled_from(["geometric", "arithmetic"]),
    range_mode=st.sampled_from(["s1_r1", "s2_r2"]),
    spacing=st.sampled_from(["0.0015", "0.003", "0.006"]),
    leverage=st.sampled_from([1, 2, 3, 5, 10, 15, 20, 25, 50, 100]),
    policy=st.sampled_from(["headline", "optimistic"]),
    slippage=st.sampled_from(["normal", "stress", "crash"]),
    max_dd=st.sampled_from(["0.02", "0.05", "0.1", "0.3", "0.9"]),
    liq_buffer=st.sampled_from(["0", "0.02"]),
    rbc=st.sampled_from([1, 2, 3]),
    adverse=st.booleans(),
    beyond=st.booleans(),
    theta=st.sampled_from([0, 1, 3]),
    same_bar=st.booleans(),
    path=st.sampled_from(["bar_direction", "adaptive", "high_first"]),
    cap=st.sampled_from([False, False, False, True]),
    funding_source=st.sampled_from(["history", "constant"]),
    stop_pct=st.sampled_from(["0.005", "0.02", "0.05"]),
    spacing_atr=st.sampled_from([1.0, 3.0]),
)


def check(case: rm.Case, cfgs, *, reference_fast: bool = False) -> list:
    """Every configuration through the kernel (fast path on and off) and through run_backtest; returns the
    kernel's results."""
    market = prepare_market(exec_bars=case.bars, mark_bars=case.marks, funding=case.funding, start_ms=case.start_ms,
                            end_ms=case.end_ms, replay=case.replay)
    out = []
    for cfg in cfgs:
        ref = reference(cfg, exec_bars=case.bars, mark_bars=case.marks, funding=case.funding, replay=case.replay,
                        start_ms=case.start_ms, end_ms=case.end_ms, rules=RULES, fast=reference_fast)
        res = run_one(cfg, market, RULES, equity="bar")
        assert differences(res, ref, RULES) == [], cfg.label
        walked = run_one(cfg, market, RULES, equity="bar", fast=False)
        assert np.array_equal(res.fills_i, walked.fills_i) and np.array_equal(res.fills_f, walked.fills_f)
        assert np.array_equal(res.equity, walked.equity), cfg.label
        assert (res.final_equity, res.peak_equity, res.max_drawdown) == (walked.final_equity, walked.peak_equity,
                                                                           walked.max_drawdown)
        out.append(res)
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([120, 300, 500]), vol=st.sampled_from([0.001, 0.003, 0.008]),
       crash=st.sampled_from([-1, 0, 1]), gaps=st.booleans(), kind=st.sampled_from(["perp", "perp", "spot"]),
       marks=st.sampled_from(["none", "close", "wild"]), fund=st.sampled_from(["none", "grid", "odd"]),
       signals=st.sampled_from([2, 6, 12]), cfgs=st.lists(configs, min_size=1, max_size=3),
       reference_fast=st.booleans())
def test_kernel_equals_run_backtest_on_random_markets(seed, n, vol, crash, gaps, kind, marks, fund, signals, cfgs,
                                                     reference_fast):
    case = rm.case(seed, n=n, vol=vol, crash=crash, gaps=gaps, kind=kind, marks=marks, fund=fund, signals=signals)
    check(case, cfgs, reference_fast=reference_fast)


def test_fixed_random_markets_reach_every_exit_and_liquidation():
    """Fixed cases chosen so that, together, they stop, break the range, fire adversely, liquidate (the mark
    path wicking through the liquidation price above the stop) and kill at max drawdown, with funding booked."""
    kinds: Counter = Counter()
    funding = fills = liquidations = 0
    cases = [
        (rm.case(4, n=500, vol=0.003, crash=-1, marks="wild", fund="odd", signals=12),
         [rm.config(leverage=15, liq_buffer="0", max_dd="0.9", stop_pct="0.05"),
          rm.config(leverage=20, liq_buffer="0", max_dd="0.9", stop_pct="0.05", range_mode="s2_r2",
                    policy="optimistic", slippage="crash")]),
        (rm.case(0, n=500, vol=0.008, crash=1, marks="close", fund="grid", signals=12),
         [rm.config(max_dd="0.02", rbc=1), rm.config(grid_type="arithmetic", spacing="0.003", same_bar=True,
                                                      theta=0, cap=True, path="adaptive")]),
        (rm.case(7, n=500, vol=0.003, gaps=False, kind="spot", signals=12),
         [rm.config(adverse=True, rbc=3, path="high_first"), rm.config(spacing_atr=3.0, stop_pct="0.02")]),
    ]
    for case, cfgs in cases:
        for res in check(case, cfgs):
            kinds.update(kind for _, kind in res.exits)
            funding += res.funding != 0
            fills += res.fill_count
            liquidations += res.liquidation_count
    assert fills > 100 and funding > 0
    assert liquidations > 0 and set(kinds) == {"STOP", "RANGE_BREAK", "ADVERSE_FIRE", "LIQUIDATION", "KILL_SWITCH"}, \
        kinds
