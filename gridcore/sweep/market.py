"""The inputs every configuration of a sweep shares, prepared exactly as gridcore.backtest.runner.run_backtest does.

* the execution bars with open in [start, end − interval] (`Bars.slice_ms`), in int64 units;
* the mark bar of each bar, where one exists (looked up by open time, as `marks.get(open_ms)`);
* funding events grouped by the bar containing them (`inputs.group_funding`: an event in a missing bar goes to
  the next bar), sorted by time, a repeated time kept once (the engine skips a time at or before the last one booked);
* the squeeze fire direction in force at each bar (`inputs.FireLookup`);
* the start signals (`signals_from_replay`) and each one's window as bar indices: bar j can receive signal s iff
  s.bar_ms <= open_ms(j) < s.expires_ms (inputs.pick_signal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from gridcore.backtest import inputs
from gridcore.backtest.runner import BacktestSignal, signals_from_replay
from gridcore.bars import Bars
from gridcore.errors import InputError
from gridcore.params import StrategyParams, TimeframeParams
from gridcore.strategy.replay import ReplayResult
from gridcore.sweep.layout import (
    FL_FIRE_SHIFT,
    FL_FUNDING,
    FL_MARK,
    M_C,
    M_FIRE,
    M_H,
    M_HASM,
    M_L,
    M_MC,
    M_MH,
    M_ML,
    M_MO,
    M_MS,
    M_O,
    NM,
)


@dataclass
class SweepMarket:
    """Bars, marks, funding, fires and signals of one sweep (see the module docstring)."""

    symbol: str
    market: str
    interval_ms: int
    start_ms: int
    end_ms: int
    mk: np.ndarray  # int64 [bars, NM]
    volume: np.ndarray  # int64 units per bar
    f_ptr: np.ndarray
    f_ts: np.ndarray
    f_rate: np.ndarray
    f_ms: list[int]  # the settled funding history (times, Decimal rates) for the start signals' funding rate
    f_rates: list[Decimal]
    replay: ReplayResult
    _signals: dict[TimeframeParams, tuple[list[BacktestSignal], np.ndarray, np.ndarray]] = field(default_factory=dict)
    cache: dict = field(default_factory=dict)  # per-bar arrays derived for configurations (slippage, caps)

    @property
    def ohlc(self) -> np.ndarray:
        """O, H, L, C of every bar, contiguous (what the kernel's fast path streams through)."""
        if "ohlc" not in self.cache:
            self.cache["ohlc"] = np.ascontiguousarray(self.mk[:, [M_O, M_H, M_L, M_C]])
        return self.cache["ohlc"]

    @property
    def flags(self) -> np.ndarray:
        """Per bar: funding events inside it, a mark bar, the fire direction (layout FL_*)."""
        if "flags" not in self.cache:
            fl = (np.diff(self.f_ptr) > 0).astype(np.int8) * FL_FUNDING
            fl |= (self.mk[:, M_HASM] != 0).astype(np.int8) * FL_MARK
            fl |= ((self.mk[:, M_FIRE] + 1) << FL_FIRE_SHIFT).astype(np.int8)
            self.cache["flags"] = fl.astype(np.int8)
        return self.cache["flags"]

    @property
    def n(self) -> int:
        return int(self.mk.shape[0])

    @property
    def open_ms(self) -> np.ndarray:
        return self.mk[:, M_MS]

    def signals(self, params: StrategyParams) -> tuple[list[BacktestSignal], np.ndarray, np.ndarray]:
        """(signals, window starts, window ends) for the configuration's timeframes (signal expiry)."""
        key = params.timeframes
        if key not in self._signals:
            sigs = signals_from_replay(self.replay, params)
            ms = self.open_ms
            lo = np.searchsorted(ms, np.array([s.bar_ms for s in sigs], np.int64), "left").astype(np.int64)
            hi = np.searchsorted(ms, np.array([s.expires_ms for s in sigs], np.int64), "left").astype(np.int64)
            if np.any(np.diff(lo) < 0) or np.any(np.diff(hi) < 0):
                raise InputError("expected start signals ordered by bar time with one expiry, were not")
            self._signals[key] = (sigs, lo, hi)
        return self._signals[key]


def _rows(bars: Bars) -> tuple[np.ndarray, np.ndarray]:
    return bars.open_ms.astype(np.int64), bars.units.astype(np.int64)


def _mark_columns(mk: np.ndarray, mark_bars: Bars | None, first: int, end_ms: int, step: int) -> None:
    if mark_bars is None or mk.shape[0] == 0:
        return
    mb = mark_bars.slice_ms(first, end_ms - step + 1)
    m_ms, m_units = _rows(mb)
    pos = np.searchsorted(m_ms, mk[:, M_MS])
    ok = pos < m_ms.size
    ok[ok] = m_ms[pos[ok]] == mk[ok, M_MS]
    mk[ok, M_HASM] = 1
    for col, k in ((M_MO, 0), (M_MH, 1), (M_ML, 2), (M_MC, 3)):
        mk[ok, col] = m_units[pos[ok], k]


def _funding_csr(open_ms: np.ndarray, f_ms: list[int], f_rates: list[Decimal], first: int,
                 step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    by_bar = inputs.group_funding(f_ms, f_rates, first_ms=first, step=step, bar_open_ms=open_ms.tolist())
    ptr = np.zeros(open_ms.size + 1, np.int64)
    ts: list[int] = []
    rates: list[float] = []
    index = {int(ms): j for j, ms in enumerate(open_ms.tolist())}
    per_bar: dict[int, list] = {}
    for key, events in by_bar.items():
        j = index.get(key)
        if j is not None:
            per_bar[j] = sorted(events, key=lambda e: e.ts_ms)
    for j in range(open_ms.size):
        last = None
        for ev in per_bar.get(j, ()):
            if last is not None and ev.ts_ms <= last:
                continue
            last = ev.ts_ms
            ts.append(ev.ts_ms)
            rates.append(float("nan") if ev.rate is None else float(ev.rate))
        ptr[j + 1] = len(ts)
    return ptr, np.array(ts, np.int64), np.array(rates, np.float64)


def prepare_market(*, exec_bars: Bars, mark_bars: Bars | None = None, funding: tuple | None = None, start_ms: int,
                   end_ms: int, replay: ReplayResult) -> SweepMarket:
    """The shared inputs of [start_ms, end_ms), as run_backtest builds them."""
    if end_ms <= start_ms:
        raise InputError(f"expected end after start, was {start_ms} .. {end_ms}")
    market = exec_bars.market
    step = exec_bars.interval_ms
    first = -(-start_ms // step) * step
    bars = exec_bars.slice_ms(first, end_ms - step + 1)
    open_ms, units = _rows(bars)
    mk = np.zeros((open_ms.size, NM), np.int64)
    mk[:, M_MS] = open_ms
    for col, k in ((M_O, 0), (M_H, 1), (M_L, 2), (M_C, 3)):
        mk[:, col] = units[:, k]
    _mark_columns(mk, mark_bars, first, end_ms, step)
    fires = inputs.FireLookup((z.bar_ms, z.valid_until_ms, z.fire_dir) for z in replay.zones)
    mk[:, M_FIRE] = [fires.at(ms) for ms in open_ms.tolist()]
    f_ms: list[int] = []
    f_rates: list[Decimal] = []
    if funding is not None and market == "perp":
        f_ms = [int(t) for t in funding[0]]
        f_rates = [Decimal(r) for r in funding[1]]
    f_ptr, f_ts, f_rate = _funding_csr(open_ms, f_ms, f_rates, first, step)
    return SweepMarket(symbol=exec_bars.symbol, market=market, interval_ms=step, start_ms=start_ms, end_ms=end_ms,
                       mk=mk, volume=units[:, 4].copy(), f_ptr=f_ptr, f_ts=f_ts, f_rate=f_rate, f_ms=f_ms,
                       f_rates=f_rates, replay=replay)
