"""The sweep kernel equals run_backtest configuration by configuration on real data: the 1m spot window of
2021-10-30 .. 2021-12-11 (zones from the 1h spot bars) and two months of the 5m perpetual in 2023 with funding.
Identical fills, exits and grids; equity at every bar and the final account within 1e-9 of the initial equity
(gridcore.sweep.parity)."""

from __future__ import annotations

import pytest

from gridcore.backtest.runner import replay_for_backtest
from gridcore.bars import resample
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.params import default_params
from gridcore.sweep.config import SweepConfig, config_grid
from gridcore.sweep.driver import sweep_market
from gridcore.sweep.market import prepare_market
from gridcore.sweep.parity import differences, reference
from gridcore.symbols import default_registry
from gridcore.timeframes import HOUR_MS, parse_utc
from tests.conftest import shared_file

pytestmark = pytest.mark.realdata
RULES = default_registry().rules("BTC")


def _bars(name: str):
    path = shared_file(name)
    return read_klines(path, identify(path)).bars


def _configs(extra: list[SweepConfig]) -> list[SweepConfig]:
    base = default_params()
    grid = config_grid(base, {"grid.min_spacing_pct": ["0.0015", "0.004"], "grid.range_mode": ["s1_r1", "s2_r2"],
                              "policy": ["headline", "optimistic"]})
    return grid[::2] + grid[1:2] + extra


def _check(inputs: dict, configs: list[SweepConfig]) -> None:
    market = prepare_market(**inputs)
    results = sweep_market(configs, market, RULES, equity="bar")
    total = 0
    for cfg, res in zip(configs, results, strict=True):
        ref = reference(cfg, exec_bars=inputs["exec_bars"], funding=inputs.get("funding"), replay=inputs["replay"],
                        start_ms=inputs["start_ms"], end_ms=inputs["end_ms"], rules=RULES)
        assert differences(res, ref, RULES) == [], cfg.label
        total += res.fill_count
    assert total > 500  # not a trivial comparison


@pytest.fixture(scope="module")
def spot_1m():
    hourly = _bars("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz")
    minute = _bars("BTCUSDT-1m-spot-2021-10-30_2021-12-11.csv.gz")
    start = (int(minute.open_ms[0]) + 24 * HOUR_MS) // (4 * HOUR_MS) * (4 * HOUR_MS) + 4 * HOUR_MS
    end = int(minute.close_ms[-1]) // HOUR_MS * HOUR_MS
    params = default_params()
    replay = replay_for_backtest(profile_bars=hourly, trend_bars=resample(hourly, "4h"),
                                 trigger_bars=resample(minute, "15m"), start_ms=start, end_ms=end, params=params,
                                 rules=RULES)
    return dict(exec_bars=minute, start_ms=start, end_ms=end, replay=replay)


@pytest.fixture(scope="module")
def perp_5m():
    hourly = _bars("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    five = _bars("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz")
    fpath = shared_file("BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz")
    f = read_funding(fpath, identify(fpath))
    start, end = parse_utc("2023-02-01"), parse_utc("2023-04-01")
    replay = replay_for_backtest(profile_bars=hourly, trend_bars=resample(hourly, "4h"),
                                 trigger_bars=resample(five, "15m"), start_ms=start, end_ms=end,
                                 params=default_params(), rules=RULES)
    return dict(exec_bars=five, funding=(f.funding_ms.tolist(), f.rates), start_ms=start, end_ms=end, replay=replay)


def test_1m_spot_window(spot_1m):
    extra = config_grid(default_params(), {"grid.grid_type": ["arithmetic"], "account.leverage": [10],
                                           "risk.max_drawdown": ["0.03"], "slippage_mode": ["crash"]})
    _check(spot_1m, _configs(extra))


def test_5m_perp_with_funding(perp_5m):
    extra = config_grid(default_params(), {"account.leverage": [10, 20], "grid.range_mode": ["s2_r2"],
                                           "risk.liq_buffer": ["0"], "slippage_mode": ["stress"]})
    _check(perp_5m, _configs(extra))
