"""Random markets for the sweep kernel's parity tests: OHLCV walks with gaps, missing bars and crashes, mark bars
that wick further than the trades (so the mark path can liquidate a position the trade path never stops out),
funding at the 8h times (and at odd ones, repeated), zones with start signals around the price, and random grid
configurations (levels via the spacing knobs, geometric / arithmetic, both ranges, leverage up to 100x, both fill
policies with their knobs, all slippage modes, the participation cap, the risk knobs)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from gridcore.bars import SCALE, Bars
from gridcore.params import default_params, params_from_dict, params_to_dict
from gridcore.strategy.replay import ReplayResult
from gridcore.strategy.scanner import ZoneScan
from gridcore.strategy.trigger import TriggerEvaluation
from gridcore.sweep.config import SweepConfig
from gridcore.timeframes import DAY_MS, HOUR_MS, MINUTE_MS, parse_utc

T0 = parse_utc("2024-01-01T00:00Z")
STEP = 5 * MINUTE_MS


@dataclass
class Case:
    bars: Bars
    marks: Bars | None
    funding: tuple | None
    replay: ReplayResult
    start_ms: int
    end_ms: int


def _ticks(x: np.ndarray) -> np.ndarray:
    return np.rint(np.round(x, 1) * SCALE).astype(np.int64)


def market(rng: np.random.Generator, n: int, *, vol: float, crash: int, gaps: bool, kind: str) -> Bars:
    """A 5m walk from 20,000: crash > 0 a leg up, < 0 a leg down; gaps: opens off the last close, missing bars."""
    ret = vol * rng.standard_normal(n)
    if crash:
        at = int(rng.integers(n // 4, 3 * n // 4))
        ret[at:at + 12] += np.sign(crash) * 5 * vol
        ret[at] += np.sign(crash) * 0.08  # one bar of 8 %
    close = 20_000 * np.exp(np.cumsum(ret))
    opens = np.r_[20_000, close[:-1]]
    if gaps:
        jump = rng.random(n) < 0.15
        opens = opens * (1 + jump * rng.normal(0, 3 * vol, n))
    wick = np.abs(rng.standard_normal((2, n))) * vol * close * rng.uniform(0.2, 1.5)
    high, low = np.maximum(opens, close) + wick[0], np.minimum(opens, close) - wick[1]
    cols = [_ticks(x) for x in (opens, high, low, close)]
    cols[1] = np.maximum.reduce(cols[:4])  # rounding keeps low <= open, close <= high
    cols[2] = np.minimum.reduce(cols[:4])
    volume = _ticks(rng.gamma(2.0, 3.0, n)) // 1_000_000 * 100_000  # 0.001 BTC multiples
    units = np.column_stack(cols + [volume]).astype(np.int64)
    open_ms = T0 + np.arange(n, dtype=np.int64) * STEP
    if gaps:
        keep = rng.random(n) > 0.03
        keep[:2] = True
        open_ms, units = open_ms[keep], units[keep]
        if rng.random() < 0.5:  # a stale stretch
            at = int(rng.integers(n // 5, 4 * n // 5))
            cut = (open_ms < T0 + at * STEP) | (open_ms >= T0 + (at + int(rng.integers(2, 8))) * STEP)
            open_ms, units = open_ms[cut], units[cut]
    return Bars("BTCUSDT", kind, "5m", open_ms, units)


def mark_bars(rng: np.random.Generator, bars: Bars, mode: str) -> Bars | None:
    """None, marks close to the trades, or marks that wick further (some bars without a mark bar)."""
    if mode == "none":
        return None
    u = bars.units[:, :4].astype(np.float64) / SCALE
    scale = 0.0005 if mode == "close" else 0.01
    off = rng.normal(0, scale, (len(bars), 1)) * u[:, :1]
    m = u + off
    if mode == "wild":  # a fifth of the bars wick 2 % further on the mark
        extra = np.abs(rng.normal(0, 0.02, (2, len(bars)))) * u[:, 0] * (rng.random((2, len(bars))) < 0.2)
        m[:, 1] += extra[0]
        m[:, 2] -= extra[1]
    cols = [_ticks(m[:, k]) for k in range(4)]
    cols[1] = np.maximum.reduce(cols)
    cols[2] = np.minimum.reduce(cols)
    units = np.column_stack(cols + [bars.units[:, 4]]).astype(np.int64)
    keep = rng.random(len(bars)) > 0.05
    return Bars("BTCUSDT", "perp", "5m", bars.open_ms[keep], units[keep])


def funding(rng: np.random.Generator, bars: Bars, mode: str) -> tuple | None:
    if mode == "none":
        return None
    first, last = int(bars.open_ms[0]), int(bars.open_ms[-1]) + STEP
    times = list(range(first - first % (8 * HOUR_MS), last, 8 * HOUR_MS))
    if mode == "odd":  # extra times inside bars, one of them twice
        times += [int(t) for t in rng.integers(first, last, 4)]
        times.append(times[-1])
        times.sort()
    rates = [Decimal(str(round(float(rng.normal(0.0001, 0.0008)), 6))) for _ in times]
    return times, rates


def replay(rng: np.random.Generator, bars: Bars, count: int) -> ReplayResult:
    """Zones around the price at random times, each with a start signal (some repeated at the next trigger bar)."""
    res = ReplayResult()
    closes = bars.units[:, 3] / SCALE
    picks = sorted(rng.choice(np.arange(5, len(bars) - 5), size=min(count, len(bars) - 10), replace=False).tolist())
    for k in picks:
        t = int(bars.open_ms[k]) // (15 * MINUTE_MS) * (15 * MINUTE_MS)
        p = float(closes[k]) * float(rng.uniform(0.995, 1.005))
        w = float(rng.uniform(0.003, 0.03))
        s1, r1 = round(p * (1 - w), 2), round(p * (1 + w * rng.uniform(0.5, 1.5)), 2)
        s2, r2 = round(s1 * (1 - w * rng.uniform(0.2, 1.0)), 2), round(r1 * (1 + w * rng.uniform(0.2, 1.0)), 2)
        fire = int(rng.choice([-1, 0, 0, 1]))
        atr = p * float(rng.uniform(0.002, 0.02))
        zone = ZoneScan("BTCUSDT", bars.market, t, p, s2, s1, r1, r2, p, r1, s1, p, atr, 0,
                        "FIRED" if fire else "NORMAL", fire, True, (), t + int(rng.choice([8, 48])) * HOUR_MS)
        direction = str(rng.choice(["LONG", "SHORT", "NEUTRAL"]))
        res.zones.append(zone)
        for dt in (0, 15 * MINUTE_MS)[: int(rng.integers(1, 3))]:
            res.evaluations.append((zone, TriggerEvaluation(t + dt, p, True, direction, (), (), ("test",), 1.0,
                                                            0.0)))
    return res


def case(seed: int, *, n: int = 400, vol: float = 0.003, crash: int = 0, gaps: bool = True, kind: str = "perp",
         marks: str = "none", fund: str = "grid", signals: int = 8) -> Case:
    rng = np.random.default_rng(seed)
    bars = market(rng, n, vol=vol, crash=crash, gaps=gaps, kind=kind)
    mb = mark_bars(rng, bars, marks) if kind == "perp" else None
    f = funding(rng, bars, fund) if kind == "perp" else None
    rep = replay(rng, bars, signals)
    start = int(bars.open_ms[0])
    end = int(bars.open_ms[-1]) + STEP - int(rng.choice([0, STEP, DAY_MS // 4]))
    return Case(bars, mb, f, rep, start, max(end, start + 20 * STEP))


def config(*, grid_type: str = "geometric", range_mode: str = "s1_r1", spacing: str = "0.0015", leverage: int = 3,
           policy: str = "headline", slippage: str = "normal", max_dd: str = "0.1", liq_buffer: str = "0.02",
           rbc: int = 2, adverse: bool = True, theta: int = 1, same_bar: bool = False, path: str = "bar_direction",
           cap: bool = False, funding_source: str = "history", stop_pct: str = "0.005",
           spacing_atr: float = 1.0, beyond: bool = True) -> SweepConfig:
    d = params_to_dict(default_params())
    d["grid"].update(grid_type=grid_type, range_mode=range_mode, min_spacing_pct=spacing, max_spacing_atr=spacing_atr)
    d["account"]["leverage"] = leverage
    d["risk"].update(max_drawdown=max_dd, liq_buffer=liq_buffer, range_break_closes=rbc,
                     exit_on_adverse_fire=adverse, stop_buffer_pct=stop_pct, exit_beyond_range=beyond)
    d["fills"]["headline"] = {"path": path, "trade_through_ticks": theta, "same_bar_refill": same_bar}
    d["fills"]["optimistic"] = {"path": path, "trade_through_ticks": 0, "same_bar_refill": True}
    d["fills"].update(participation_cap=cap, participation_rate=0.05)
    d["costs"]["funding_source"] = funding_source
    label = (f"{grid_type} {range_mode} s={spacing} {leverage}x {policy} {slippage} dd={max_dd} liqbuf={liq_buffer} "
             f"rbc={rbc} beyond={beyond} adverse={adverse} theta={theta} refill={same_bar} {path} cap={cap} "
             f"{funding_source}")
    return SweepConfig(params_from_dict(d), policy, slippage, label)  # type: ignore[arg-type]
