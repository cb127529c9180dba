"""Backtest metrics against values computed by hand on a four-bar equity curve."""

from __future__ import annotations

import math

import pytest

from gridcore.backtest import metrics as m
from gridcore.timeframes import HOUR_MS

# 12h bars over two UTC days: 100 (deposit) -> 110 -> 99 | 121 -> 121
MS = [0, 12 * HOUR_MS, 24 * HOUR_MS, 36 * HOUR_MS]
EQ = [110.0, 99.0, 121.0, 121.0]
POS = [1.0, 1.0, 0.0, 0.0]


def test_max_drawdown_from_running_peak():
    assert m.max_drawdown(100.0, EQ) == pytest.approx(0.1)  # 99 / 110
    assert m.max_drawdown(100.0, [100.0, 101.0]) == 0.0


def test_daily_returns_use_the_last_bar_of_each_day():
    assert m.daily_returns(100.0, MS, EQ) == pytest.approx([-0.01, 22 / 99])


def test_ratios_by_hand():
    r1, r2 = -0.01, 22 / 99
    mean = (r1 + r2) / 2
    sd = abs(r2 - r1) / math.sqrt(2)  # sample stdev of two values
    out = m.curve_metrics(initial=100.0, bar_ms=MS, equity=EQ, positions=POS, interval_ms=12 * HOUR_MS)
    assert out["total_return"] == pytest.approx(0.21)
    assert out["days"] == 2.0
    assert out["sharpe"] == pytest.approx(mean / sd * math.sqrt(365))
    assert out["sharpe"] == pytest.approx(12.3461, rel=1e-4)
    downside = math.sqrt((0.01**2 + 0) / 2)
    assert out["sortino"] == pytest.approx(mean / downside * math.sqrt(365))
    ann = 1.21 ** (365 / 2) - 1
    assert out["annualised_return"] == pytest.approx(ann)
    assert out["calmar"] == pytest.approx(ann / 0.1)
    assert out["time_in_market"] == 0.5


def test_undefined_ratios_are_none():
    flat = m.curve_metrics(initial=100.0, bar_ms=MS, equity=[100.0] * 4, positions=[0.0] * 4,
                           interval_ms=12 * HOUR_MS)
    assert (flat["sharpe"], flat["sortino"], flat["calmar"], flat["max_drawdown"]) == (None, None, None, 0.0)
    up = m.curve_metrics(initial=100.0, bar_ms=MS, equity=[101.0, 102.0, 103.0, 104.0], positions=[1.0] * 4,
                         interval_ms=12 * HOUR_MS)
    assert up["sortino"] is None  # no losing day
    assert up["time_in_market"] == 1.0
