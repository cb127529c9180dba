"""sweep(): many grid configurations over the same bars and the same zones/signals, one kernel run each.

Per configuration the kernel advances bar by bar (gridcore.sweep.kernel) and stops only where the engine would
look at a start signal: bar j opening IDLE with a NEW signal in force. There the driver does what run_backtest's
loop does: moves the signals with bar time <= open into `pending`, picks with inputs.signal_for_bar (expiring the
stale ones), and decides the start with the engine's own checks and planner (gridcore.sweep.planning) — and the
following signal bars too while the decisions refuse (IDLE, the account cannot change), so the kernel is called
again only to start a grid. A signal's fate (CONSUMED / REJECTED) removes it from the kernel's windows.
Everything else — fills, fees, funding, stops, liquidation, kill switch, range break, adverse fire, the drawdown
peak — runs in the kernel. Decisions are a pure function of their inputs and are shared between the
configurations of one sweep (`Decisions`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import numpy as np

from gridcore.backtest import inputs
from gridcore.backtest.runner import BacktestSignal
from gridcore.bars import Bars
from gridcore.domain.transitions import SignalStatus, StrategyStatus
from gridcore.errors import InputError
from gridcore.strategy.replay import ReplayResult
from gridcore.sweep.config import SweepConfig, check_configs, kernel_params
from gridcore.sweep.kernel import RC_END, RC_ERROR, RC_FULL, ConfigState, run_config
from gridcore.sweep.layout import (
    EXITS,
    F_ENTRY,
    F_FEES,
    F_FUNDING,
    F_MARK,
    F_MAXDD,
    F_PEAK,
    F_RGRID,
    F_ROTHER,
    F_SLIP,
    F_WALLET,
    FI_BAR,
    I_GRIDS,
    I_NEXIT,
    I_NFILL,
    I_NLIQ,
    I_NSLOW,
    I_POS,
    I_STATUS,
    M_O,
    MODE_CHECK,
    MODE_NO_START,
    MODE_START,
    NH,
    P_QP,
)
from gridcore.sweep.market import SweepMarket, prepare_market
from gridcore.sweep.planning import Decision, decide, money_decimal, plan_arrays, start_signal
from gridcore.symbols import SymbolRules

DAY_MS = 86_400_000
STATUSES = ("IDLE", "ACTIVE", "CLOSING", "HALTED")
EquityMode = str  # "none" | "bar" | "daily"


class GridStart(NamedTuple):
    bar_ms: int
    signal_id: int
    direction: str
    levels: int
    qty_per_level: Decimal


@dataclass
class SweepResult:
    """One configuration's outcome. Money is float64 USDT; fills are arrays (layout FI_* / FF_*, prices in units)."""

    config: SweepConfig
    bars: int
    initial_equity: float
    final_equity: float
    wallet: float
    realised_grid: float
    realised_other: float
    fees: float
    funding: float
    slippage_cost: float
    peak_equity: float
    max_drawdown: float
    position_steps: int
    status: str
    fill_count: int
    liquidation_count: int
    grids: list[GridStart]
    exits: list[tuple[int, str]]
    fills_i: np.ndarray
    fills_f: np.ndarray
    fill_ms: np.ndarray
    equity_ms: np.ndarray
    equity: np.ndarray
    refused: int = 0
    kernel_seconds: float = 0.0
    walked_bars: int = 0  # bars the kernel walked event by event (the rest took the fast path or were IDLE)
    signal_status: dict[int, str] = field(default_factory=dict)


def _sampling(market: SweepMarket, mode: EquityMode) -> np.ndarray:
    """The bars whose close equity is sampled (ascending): none, every bar, or the last bar of each UTC day."""
    n, ms = market.n, market.open_ms
    if mode == "none":
        return np.zeros(0, np.int64)
    if mode == "bar":
        return np.arange(n, dtype=np.int64)
    if mode != "daily":
        raise InputError(f"expected equity none, bar or daily, was {mode!r}")
    day = ms // DAY_MS
    last = np.ones(n, bool)
    last[:-1] = day[1:] != day[:-1]
    return np.flatnonzero(last).astype(np.int64)


class _Signals:
    """run_backtest's pending list and the signals' fate, for one configuration."""

    def __init__(self, signals: list[BacktestSignal]):
        self.signals = signals
        self.status = {s.id: SignalStatus.NEW for s in signals}
        self.pending: list[BacktestSignal] = []
        self.nxt = 0

    def window(self, s: BacktestSignal) -> tuple[str, int, int]:
        return self.status[s.id], s.bar_ms, s.expires_ms

    def pick(self, open_ms: int) -> BacktestSignal | None:
        while self.nxt < len(self.signals) and self.signals[self.nxt].bar_ms <= open_ms:
            self.pending.append(self.signals[self.nxt])
            self.nxt += 1
        sig, expired = inputs.signal_for_bar(self.pending, open_ms, StrategyStatus.IDLE, window=self.window)
        for s in expired:
            self.status[s.id] = SignalStatus.EXPIRED
        return sig

    def close(self, sig: BacktestSignal, status: SignalStatus) -> None:
        self.status[sig.id] = status
        self.pending = [s for s in self.pending if self.status[s.id] == SignalStatus.NEW]


def _summary(cfg: SweepConfig, st: ConfigState, market: SweepMarket, capital: float, P: np.ndarray) -> dict:
    fs, ns = st.F, st.I
    pos = int(ns[I_POS])
    equity = float(fs[F_WALLET] + (pos * (fs[F_MARK] - fs[F_ENTRY]) * P[P_QP] if pos else 0.0))
    nf, ne = int(ns[I_NFILL]), int(ns[I_NEXIT])
    fills_i, fills_f = st.fo_i[:nf].copy(), st.fo_f[:nf].copy()
    ms = market.open_ms
    return dict(config=cfg, bars=market.n, initial_equity=capital, final_equity=equity, wallet=float(fs[F_WALLET]),
                realised_grid=float(fs[F_RGRID]), realised_other=float(fs[F_ROTHER]), fees=float(fs[F_FEES]),
                funding=float(fs[F_FUNDING]), slippage_cost=float(fs[F_SLIP]), peak_equity=float(fs[F_PEAK]),
                max_drawdown=float(fs[F_MAXDD]), position_steps=pos, status=STATUSES[int(ns[I_STATUS])],
                fill_count=nf, liquidation_count=int(ns[I_NLIQ]),
                exits=[(int(ms[b]), EXITS[k]) for b, k in st.ex[:ne].tolist()], fills_i=fills_i, fills_f=fills_f,
                fill_ms=ms[fills_i[:, FI_BAR]] if nf else np.zeros(0, np.int64))


class Decisions:
    """Start decisions shared by the configurations of one sweep. A decision is a pure function of the signal,
    the bar, the equity and peak at that moment and the parameters the guards and the planner read (grid, costs,
    risk, account, execution), so configurations that differ elsewhere (the fill policy, say) reuse it."""

    def __init__(self) -> None:
        self._groups: dict[tuple, int] = {}
        self.cache: dict[tuple, tuple[Decision, tuple | None]] = {}
        self._market: SweepMarket | None = None

    def group(self, cfg: SweepConfig, market: SweepMarket, rules: SymbolRules) -> int:
        """The decision group of a configuration (decisions are shared within one market only)."""
        if self._market is None:
            self._market = market
        elif self._market is not market:
            raise InputError("expected the decisions of one sweep to be shared over one market, were not")
        p = cfg.params
        key = (p.grid, p.costs, p.risk, p.account, p.execution, p.timeframes, rules)
        return self._groups.setdefault(key, len(self._groups))


class _Run:
    """One configuration: the kernel's state, the signals' fate, the grids started."""

    def __init__(self, cfg: SweepConfig, market: SweepMarket, rules: SymbolRules, equity: EquityMode, fast: bool,
                 decisions: Decisions):
        self.cfg, self.market, self.rules, self.decisions = cfg, market, rules, decisions
        self.P, Q, tiers, slip, capv = kernel_params(cfg, rules, market, fast=fast)
        sigs, wlo, whi = market.signals(cfg.params)
        self.samp = _sampling(market, equity)
        self.capital = float(cfg.params.account.capital)
        self.st = ConfigState(self.capital, len(sigs), self.samp.size)
        self.C = (self.P, Q, tiers, slip, capv)
        self.Mk = (market.mk, market.f_ptr, market.f_ts, market.f_rate, wlo, whi, self.samp, market.ohlc,
                   market.flags)
        self.book = _Signals(sigs)
        self.group = decisions.group(cfg, market, rules)
        self.grids: list[GridStart] = []
        self.refused, self.seconds = 0, 0.0

    def decide(self, j: int, sig: BacktestSignal) -> tuple[Decision, tuple | None]:
        """The engine's start decision at bar j (shared through `decisions`), and the kernel's plan arrays."""
        m, st = self.market, self.st
        wallet, peak = float(st.F[F_WALLET]), float(st.F[F_PEAK])
        key = (self.group, sig.id, j, wallet, peak)
        hit = self.decisions.cache.get(key)
        if hit is None:
            open_ms = int(m.open_ms[j])
            gap = max(0, (open_ms - int(m.open_ms[j - 1])) // m.interval_ms - 1) if j > 0 else 0
            dec = decide(start_signal(sig, open_ms, m.market, m.f_ms, m.f_rates), open_units=int(m.mk[j, M_O]),
                         gap_bars=gap, equity=money_decimal(wallet), peak=money_decimal(peak),
                         params=self.cfg.params, rules=self.rules)
            hit = self.decisions.cache[key] = (dec, None if dec.plan is None else plan_arrays(dec, self.rules))
        return hit

    def signal(self, j: int) -> tuple[int, tuple]:
        """run_backtest's loop at an IDLE bar with a signal in force: (kernel mode, plan arrays)."""
        sig = self.book.pick(int(self.market.open_ms[j]))
        if sig is None:
            return MODE_NO_START, _NO_PLAN
        self.st.alive[sig.id - 1] = 0
        dec, arrays = self.decide(j, sig)
        if dec.plan is None or arrays is None:
            self.book.close(sig, SignalStatus.REJECTED)
            self.refused += 1
            return MODE_NO_START, _NO_PLAN
        self.book.close(sig, SignalStatus.CONSUMED)
        levels = arrays[2].size
        self.st.ensure_levels(levels)
        self.st.ensure_room(levels)
        self.grids.append(GridStart(int(self.market.open_ms[j]), sig.id, dec.plan.direction, levels,
                                    dec.plan.qty_per_level))
        return MODE_START, arrays

    def next_signal_bar(self, j: int) -> int:
        """The kernel's _next_signal_bar: the first bar >= j inside the window of a signal still NEW (n: none)."""
        _, wlo, whi = self.market.signals(self.cfg.params)
        alive = self.st.alive
        for k in range(int(np.searchsorted(whi, j, "right")), wlo.size):
            if alive[k] and wlo[k] < whi[k]:
                return max(int(wlo[k]), j)
        return self.market.n

    def chain(self, j: int) -> tuple[int, int, tuple]:
        """Decisions from bar j on while they refuse (see the kernel's RC_SIGNAL): (mode, bar, plan arrays)."""
        while True:
            mode, plan = self.signal(j)
            nxt = self.next_signal_bar(j + 1) if mode != MODE_START else j
            if mode == MODE_START or nxt >= self.market.n:
                return mode, j, plan
            j = nxt

    def run(self) -> SweepResult:
        j, mode, js, plan = 0, MODE_CHECK, 0, _NO_PLAN
        while True:
            t0 = time.perf_counter()
            code, j = run_config(self.st.tuple(), self.C, self.Mk, j, js, self.market.n, mode, *plan)
            self.seconds += time.perf_counter() - t0
            mode = MODE_CHECK
            if code == RC_END:
                break
            if code == RC_ERROR:
                raise InputError(f"{self.cfg.label}: no leverage bracket holds the liquidation notional at bar "
                                 f"{self.market.open_ms[j - 1]}")
            if code == RC_FULL:
                self.st.ensure_room(0)
                continue
            mode, js, plan = self.chain(j)
        st = self.st
        st.I[I_GRIDS] = len(self.grids)
        return SweepResult(**_summary(self.cfg, st, self.market, self.capital, self.P), grids=self.grids,
                           equity_ms=self.market.open_ms[self.samp], equity=st.eq[:self.samp.size].copy(),
                           refused=self.refused, kernel_seconds=self.seconds, walked_bars=int(st.I[I_NSLOW]),
                           signal_status={k: str(v) for k, v in self.book.status.items()})


_NO_PLAN = (np.zeros(NH, np.int64), np.zeros((0, 4), np.int64), np.zeros(0, np.int64))


def run_one(cfg: SweepConfig, market: SweepMarket, rules: SymbolRules, *, equity: EquityMode = "daily",
            fast: bool = True, decisions: Decisions | None = None) -> SweepResult:
    """One configuration through the kernel, with the start decisions in Python (`decisions`: shared with other
    configurations of the same sweep)."""
    check_configs([cfg])
    return _Run(cfg, market, rules, equity, fast, decisions if decisions is not None else Decisions()).run()


def sweep_market(configs: Sequence[SweepConfig], market: SweepMarket, rules: SymbolRules, *,
                 equity: EquityMode = "daily", fast: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> list[SweepResult]:
    """Every configuration over one prepared market (prepare_market)."""
    check_configs(configs)
    out = []
    decisions = Decisions()
    for i, cfg in enumerate(configs):
        out.append(run_one(cfg, market, rules, equity=equity, fast=fast, decisions=decisions))
        if progress is not None:
            progress(i + 1, len(configs))
    return out


def sweep(configs: Sequence[SweepConfig], *, exec_bars: Bars, mark_bars: Bars | None = None,
          funding: tuple | None = None, replay: ReplayResult, start_ms: int, end_ms: int, rules: SymbolRules,
          equity: EquityMode = "daily", fast: bool = True) -> list[SweepResult]:
    """run_backtest's inputs (replay required: it is shared) for many configurations; one SweepResult each."""
    market = prepare_market(exec_bars=exec_bars, mark_bars=mark_bars, funding=funding, start_ms=start_ms,
                            end_ms=end_ms, replay=replay)
    return sweep_market(configs, market, rules, equity=equity, fast=fast)


__all__ = ["Decisions", "GridStart", "SweepResult", "run_one", "sweep", "sweep_market"]
