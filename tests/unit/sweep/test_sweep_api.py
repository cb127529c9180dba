"""The sweep driver's API: configuration grids, their checks, equity sampling, shared decisions."""

from __future__ import annotations

import numpy as np
import pytest

from gridcore.errors import InputError
from gridcore.params import default_params, params_from_dict
from gridcore.sweep import SweepConfig, config_grid, prepare_market, sweep, sweep_market
from gridcore.sweep.driver import Decisions, run_one
from gridcore.symbols import default_registry
from tests.unit.sweep import random_markets as rm

RULES = default_registry().rules("BTC")


@pytest.fixture(scope="module")
def case():
    return rm.case(7, n=400, vol=0.003, kind="spot", signals=10)


def _market(case):
    return prepare_market(exec_bars=case.bars, start_ms=case.start_ms, end_ms=case.end_ms, replay=case.replay)


def test_config_grid_is_the_product_with_policy_and_slippage_pseudo_keys():
    cfgs = config_grid(default_params(), {"grid.min_spacing_pct": ["0.002", "0.004"], "account.leverage": [2, 5],
                                          "policy": ["headline", "optimistic"], "slippage_mode": ["crash"]})
    assert len(cfgs) == 8
    assert {(str(c.params.grid.min_spacing_pct), c.params.account.leverage, c.policy, c.slippage_mode)
            for c in cfgs} == {(s, lv, p, "crash") for s in ("0.002", "0.004") for lv in (2, 5)
                               for p in ("headline", "optimistic")}
    assert cfgs[0].label == ("grid.min_spacing_pct=0.002 account.leverage=2 policy=headline "
                             "slippage_mode=crash")


def test_configurations_must_share_the_replay_parameters(case):
    other = SweepConfig(params_from_dict({"vsa": {"wide": 1.6}}))
    with pytest.raises(InputError, match="vsa"):
        sweep_market([SweepConfig(default_params()), other], _market(case), RULES)
    with pytest.raises(InputError, match="policy"):
        run_one(SweepConfig(default_params(), policy="lucky"), _market(case), RULES)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="slippage"):
        run_one(SweepConfig(default_params(), slippage_mode="calm"), _market(case), RULES)


def test_equity_samples_daily_and_per_bar_agree(case):
    market = _market(case)
    cfg = rm.config(spacing="0.003")
    every = run_one(cfg, market, RULES, equity="bar")
    daily = run_one(cfg, market, RULES, equity="daily")
    none = run_one(cfg, market, RULES, equity="none")
    assert every.fill_count > 0 and every.equity_ms.size == market.n
    day = market.open_ms // 86_400_000
    last = np.r_[day[1:] != day[:-1], True]
    assert np.array_equal(daily.equity_ms, market.open_ms[last])
    assert np.array_equal(daily.equity, every.equity[last])
    assert none.equity.size == 0 and none.final_equity == every.final_equity
    with pytest.raises(InputError, match="equity"):
        run_one(cfg, market, RULES, equity="hourly")


def test_shared_decisions_change_nothing(case):
    market = _market(case)
    cfgs = [rm.config(spacing=s, policy=p) for s in ("0.0015", "0.003") for p in ("headline", "optimistic")]
    shared = sweep_market(cfgs, market, RULES, equity="bar")
    alone = [run_one(c, market, RULES, equity="bar") for c in cfgs]
    for a, b in zip(shared, alone, strict=True):
        assert np.array_equal(a.fills_i, b.fills_i) and np.array_equal(a.fills_f, b.fills_f)
        assert np.array_equal(a.equity, b.equity) and a.exits == b.exits and a.grids == b.grids
    with pytest.raises(InputError, match="one market"):
        decisions = Decisions()
        run_one(cfgs[0], market, RULES, decisions=decisions)
        run_one(cfgs[0], _market(case), RULES, decisions=decisions)
    via_sweep = sweep(cfgs[:1], exec_bars=case.bars, replay=case.replay, start_ms=case.start_ms, end_ms=case.end_ms,
                      rules=RULES, equity="bar")
    assert np.array_equal(via_sweep[0].equity, shared[0].equity)
