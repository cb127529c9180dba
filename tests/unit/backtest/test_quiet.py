"""The backtest's fast path (gridcore.backtest.quiet) changes nothing: a backtest that books quiet runs of bars at
once equals one that hands every bar to the engine — final state, fills, events, exits, signals, grids and every
equity point (value and Decimal form) — on real 1m and 5m data and on random markets with random grids."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridcore.backtest.runner import BacktestResult, replay_for_backtest, run_backtest
from gridcore.bars import SCALE, Bars, resample
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.params import params_from_dict
from gridcore.strategy.replay import ReplayResult
from gridcore.strategy.scanner import ZoneScan
from gridcore.strategy.trigger import TriggerEvaluation
from gridcore.symbols import default_registry
from gridcore.timeframes import DAY_MS, HOUR_MS, MINUTE_MS, parse_utc
from tests.conftest import shared_file

RULES = default_registry().rules("BTC")


def assert_same(fast: BacktestResult, slow: BacktestResult) -> None:
    assert fast.final == slow.final
    assert fast.fills == slow.fills
    assert fast.event_counts == slow.event_counts
    assert fast.exits == slow.exits
    assert [vars(s) for s in fast.signals] == [vars(s) for s in slow.signals]
    assert [vars(g) for g in fast.grids] == [vars(g) for g in slow.grids]
    a, b = list(fast.equity), list(slow.equity)
    assert len(a) == len(b) == fast.bars
    assert a == b
    assert [tuple(map(str, p)) for p in a] == [tuple(map(str, p)) for p in b]  # the Decimal forms too
    fa, fb = fast.equity.floats(), slow.equity.floats()
    assert np.array_equal(fa["bar_ms"], fb["bar_ms"])
    assert np.allclose(fa["equity"], fb["equity"], rtol=1e-12, atol=0)
    assert np.allclose(fa["drawdown"], fb["drawdown"], rtol=0, atol=1e-12)
    assert np.array_equal(fa["position"], fb["position"])
    assert np.array_equal(fb["equity"], [float(p.equity) for p in b])  # bar by bar: the points themselves


def both(**kw) -> tuple[BacktestResult, BacktestResult]:
    return run_backtest(**kw, fast=True), run_backtest(**kw, fast=False)


def _bars(name: str) -> Bars:
    path = shared_file(name)
    return read_klines(path, identify(path)).bars


@pytest.mark.realdata
@pytest.mark.parametrize("policy", ["headline", "optimistic"])
def test_real_1m_spot_fast_equals_bar_by_bar(policy):
    hourly = _bars("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz")
    minute = _bars("BTCUSDT-1m-spot-2022-05-27_2022-06-26.csv.gz")
    params = params_from_dict({})
    start, end = parse_utc("2022-05-29T00:00Z"), parse_utc("2022-06-20T00:00Z")
    kw = dict(profile_bars=hourly, trend_bars=resample(hourly, "4h"), trigger_bars=resample(minute, "15m"),
              exec_bars=minute, start_ms=start, end_ms=end, params=params, rules=RULES, policy=policy)
    kw["replay"] = replay_for_backtest(**{k: kw[k] for k in ("profile_bars", "trend_bars", "trigger_bars")},
                                       start_ms=start, end_ms=end, params=params, rules=RULES)
    fast, slow = both(**kw)
    assert len(fast.fills) > 50 and fast.grids  # the case is not trivial
    assert_same(fast, slow)


@pytest.mark.realdata
def test_real_5m_perp_with_funding_and_crash_slippage_fast_equals_bar_by_bar():
    hourly = _bars("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    five = _bars("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz")
    fpath = shared_file("BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz")
    f = read_funding(fpath, identify(fpath))
    params = params_from_dict({"account": {"leverage": 10}})
    start, end = parse_utc("2023-01-02T00:00Z"), parse_utc("2023-02-15T00:00Z")
    fast, slow = both(profile_bars=hourly, trend_bars=resample(hourly, "4h"), trigger_bars=resample(five, "15m"),
                      exec_bars=five, funding=(f.funding_ms.tolist(), f.rates), start_ms=start, end_ms=end,
                      params=params, rules=RULES, slippage_mode="crash")
    assert fast.event_counts["FundingPaid"] > 0 and len(fast.fills) > 20
    assert_same(fast, slow)


# --- random markets with hand-made zones and signals ---------------------------------------------------------------

def _market(seed: int, n: int, vol: float, crash: bool, gaps: bool) -> Bars:
    rng = np.random.default_rng(seed)
    ret = vol * rng.standard_normal(n)
    if crash:
        ret[n // 2:n // 2 + 40] -= 6 * vol
    close = 20_000 * np.exp(np.cumsum(ret))
    opens = np.r_[20_000, close[:-1]]
    if gaps:  # the open differs from the previous close now and then
        opens = opens * (1 + (rng.random(n) < 0.1) * rng.normal(0, 2 * vol, n))
    wick = np.abs(rng.standard_normal((2, n))) * vol * close
    high, low = np.maximum(opens, close) + wick[0], np.minimum(opens, close) - wick[1]
    cols = [np.rint(np.round(x, 1) * SCALE) for x in (opens, high, low, close)]
    units = np.column_stack(cols + [np.full(n, 5 * SCALE)]).astype(np.int64)
    open_ms = parse_utc("2024-01-01T00:00Z") + np.arange(n, dtype=np.int64) * 5 * MINUTE_MS
    if gaps:
        keep = rng.random(n) > 0.02  # a few missing bars
        open_ms, units = open_ms[keep], units[keep]
    return Bars("BTCUSDT", "perp", "5m", open_ms, units)


def _replay(bars: Bars, rng: np.random.Generator, count: int) -> ReplayResult:
    """Zones around the price at random times, each with one start signal."""
    res = ReplayResult()
    closes = bars.units[:, 3] / SCALE
    for k in sorted(rng.choice(np.arange(10, len(bars) - 10), size=count, replace=False).tolist()):
        t = int(bars.open_ms[k]) // (15 * MINUTE_MS) * (15 * MINUTE_MS)
        p = float(closes[k])
        w = float(rng.uniform(0.004, 0.02))
        s1, r1 = round(p * (1 - w), 1), round(p * (1 + w), 1)
        s2, r2 = round(s1 * (1 - w / 2), 1), round(r1 * (1 + w / 2), 1)
        fire = int(rng.choice([-1, 0, 0, 1]))
        zone = ZoneScan("BTCUSDT", "perp", t, p, s2, s1, r1, r2, p, r1, s1, p, p * w / 3, 0, "FIRED" if fire else
                        "NORMAL", fire, True, (), t + 2 * DAY_MS)
        direction = str(rng.choice(["LONG", "SHORT", "NEUTRAL"]))
        res.zones.append(zone)
        res.evaluations.append((zone, TriggerEvaluation(t, p, True, direction, (), (), ("test",), 1.0, 0.0)))
    return res


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), vol=st.sampled_from([0.0008, 0.002, 0.006]), crash=st.booleans(),
       gaps=st.booleans(), leverage=st.sampled_from([2, 10, 50]), policy=st.sampled_from(["headline", "optimistic"]),
       path=st.sampled_from(["bar_direction", "adaptive", "high_first"]),
       slippage=st.sampled_from(["normal", "crash"]), with_mark=st.booleans(), with_funding=st.booleans())
def test_random_markets_fast_equals_bar_by_bar(seed, vol, crash, gaps, leverage, policy, path, slippage, with_mark,
                                               with_funding):
    rng = np.random.default_rng(seed)
    bars = _market(seed, 1500, vol, crash, gaps)
    mark = None
    if with_mark:  # a mark path near the trade path
        u = bars.units.copy()
        shift = np.rint(rng.normal(0, 3, len(bars)) * SCALE).astype(np.int64)
        u[:, :4] += shift[:, None]
        mark = Bars("BTCUSDT", "mark", "5m", bars.open_ms.copy(), u)
    funding = None
    start, end = int(bars.open_ms[0]), int(bars.close_ms[-1])
    if with_funding:
        times = list(range(start - start % (8 * HOUR_MS) + 8 * HOUR_MS, end, 8 * HOUR_MS))
        funding = (times, [str(D(int(r)) / 100000) for r in rng.integers(-60, 60, len(times))])
    params = params_from_dict({"account": {"leverage": leverage, "capital": "100000"},
                               "fills": {"headline": {"path": path}, "optimistic": {"path": path}},
                               "execution": {"intervals": ["5m"]}})
    replay = _replay(bars, rng, 6)
    fast, slow = both(profile_bars=bars, trend_bars=bars, trigger_bars=bars, exec_bars=bars, mark_bars=mark,
                      funding=funding, start_ms=start, end_ms=end, params=params, rules=RULES, policy=policy,
                      replay=replay, slippage_mode=slippage)
    assert_same(fast, slow)
