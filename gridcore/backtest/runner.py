"""run_backtest: the pipeline of paper trading replayed in memory over history, deterministic and look-ahead free.

1. Scanner at every 4h close and Trigger at every 15m close with the commands' pure functions
   (gridcore.strategy.replay.replay_signals). Each start becomes a signal like the trigger service's TradingSignal:
   one per zone and bar, numbered in order, expiring after params.timeframes.signal_expiry_bars trigger bars.
2. Every execution bar with open in [start, end − interval] goes through GridEngine.on_bar exactly as the paper
   executor passes it (gridcore.backtest.inputs: signal selection and expiry, StartSignal from the zone's stored
   numbers and the last settled funding rate, funding events per bar, fire direction, mark bar).

Only bars closed by a decision time are read at that time (the scanner and trigger use tail windows of closed bars;
the executor sees a signal from the bar opening at its trigger close), so the result of a backtest ending at t is
the prefix of the same backtest run to a later end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from gridcore.backtest import inputs
from gridcore.backtest.equity import EquityCurve, EquityPoint
from gridcore.backtest.quiet import MarketArrays, QuietFinder
from gridcore.bars import Bars
from gridcore.domain.transitions import SignalStatus, SignalTrigger, StrategyStatus, StrategyTrigger
from gridcore.errors import InputError
from gridcore.params import StrategyParams
from gridcore.strategy import engine as eng
from gridcore.strategy.engine import EngineState, FillPolicyName
from gridcore.strategy.replay import ReplayResult, replay_signals
from gridcore.strategy.scanner import ZoneScan
from gridcore.symbols import SymbolRules
from gridcore.timeframes import interval_ms, ms_to_iso

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class BacktestSignal:
    """The TradingSignal of a backtest: NEW → CONSUMED | REJECTED | EXPIRED."""

    id: int
    zone: ZoneScan
    bar_ms: int
    expires_ms: int
    direction: str
    price: float
    setup: tuple[str, ...]
    status: str = SignalStatus.NEW
    reason: str = ""
    closed_ms: int | None = None  # the execution bar that consumed / rejected / expired it

    def window(self) -> tuple[str, int, int]:
        return self.status, self.bar_ms, self.expires_ms


@dataclass
class GridRun:
    grid_no: int
    signal_ref: str
    direction: str
    started_ms: int
    levels: tuple[Decimal, ...]
    s1: Decimal
    s2: Decimal
    r1: Decimal
    r2: Decimal
    stop_price: Decimal | None
    ended_ms: int | None = None
    exit: str | None = None  # STOP, RANGE_BREAK, LIQUIDATION, ADVERSE_FIRE, KILL_SWITCH; None: still running


class Exit(NamedTuple):
    bar_ms: int
    kind: str
    reason: str


@dataclass
class BacktestResult:
    symbol: str
    market: str
    exec_interval: str
    policy: FillPolicyName
    start_ms: int
    end_ms: int
    initial_equity: Decimal
    zones: list[ZoneScan]
    signals: list[BacktestSignal]
    fills: list[tuple[int, eng.OrderFilled]]  # (bar open ms, the engine's fill event)
    event_counts: Counter
    exits: list[Exit]
    grids: list[GridRun]
    equity: EquityCurve
    final: EngineState
    bars: int
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ledger(self):
        return self.final.ledger


def exit_kind(change: eng.StateChanged) -> str | None:
    """The exit a state change records (None: not an exit)."""
    if change.trigger is StrategyTrigger.KILL:
        return "KILL_SWITCH"
    if change.trigger is not StrategyTrigger.CLOSE:
        return None
    r = change.reason
    if r.startswith("stop "):
        return "STOP"
    if r.startswith("range break"):
        return "RANGE_BREAK"
    if r.startswith("liquidated"):
        return "LIQUIDATION"
    if r.startswith("squeeze fired"):
        return "ADVERSE_FIRE"
    return "CLOSE"


def signals_from_replay(replay: ReplayResult, params: StrategyParams) -> list[BacktestSignal]:
    """The trigger service's records of the replayed starts: one per zone and bar, ids in bar order."""
    step = interval_ms(params.timeframes.trigger_interval)
    out: list[BacktestSignal] = []
    seen: set[tuple[int, int]] = set()
    for zone, ev in replay.evaluations:
        if not ev.start or (zone.bar_ms, ev.bar_ms) in seen:
            continue
        seen.add((zone.bar_ms, ev.bar_ms))
        out.append(BacktestSignal(id=len(out) + 1, zone=zone, bar_ms=ev.bar_ms,
                                  expires_ms=ev.bar_ms + params.timeframes.signal_expiry_bars * step,
                                  direction=str(ev.direction), price=ev.price, setup=tuple(ev.setup)))
    return out


def _start_signal(sig: BacktestSignal, open_ms: int, market: str, f_ms: list[int],
                  f_rates: list[Decimal]) -> eng.StartSignal:
    z = sig.zone
    rate = inputs.funding_rate_at(f_ms, f_rates, open_ms) if market == "perp" else None
    return inputs.start_signal(ref=str(sig.id), direction=sig.direction, s1=inputs.zone_decimal(z.s1),
                               s2=inputs.zone_decimal(z.s2), r1=inputs.zone_decimal(z.r1),
                               r2=inputs.zone_decimal(z.r2), atr=inputs.zone_atr_decimal(z.atr), funding_rate=rate)


class _Book:
    """What a backtest keeps of each bar's events: fills, counts, exits, grids, the passed signal's fate."""

    def __init__(self) -> None:
        self.fills: list[tuple[int, eng.OrderFilled]] = []
        self.counts: Counter = Counter()
        self.exits: list[Exit] = []
        self.grids: list[GridRun] = []

    def record(self, state: EngineState, new: EngineState, events: list, open_ms: int, sig: BacktestSignal | None,
               outcome: SignalTrigger | None) -> None:
        if new.grids_started != state.grids_started:  # a grid started in this bar (it may also have ended in it)
            g = new.grid
            if g is not None:
                self.grids.append(GridRun(g.grid_no, g.signal_ref, g.direction, g.started_ms, g.levels, g.s1, g.s2,
                                          g.r1, g.r2, g.stop_price))
            else:
                self.grids.append(GridRun(new.grids_started, str(sig.id) if sig else "",
                                          sig.direction if sig else "", open_ms, (), *(Decimal(0),) * 4, None))
        for ev in events:
            self.counts[type(ev).__name__] += 1
            if isinstance(ev, eng.OrderFilled):
                self.fills.append((open_ms, ev))
            elif isinstance(ev, eng.StateChanged):
                kind = exit_kind(ev)
                if kind is not None:
                    self.exits.append(Exit(open_ms, kind, ev.reason))
                    if self.grids and self.grids[-1].exit is None:
                        self.grids[-1].exit = kind
                if ev.trigger is StrategyTrigger.START and outcome is SignalTrigger.CONSUME and sig is not None:
                    sig.status, sig.reason, sig.closed_ms = SignalStatus.CONSUMED, ev.reason, open_ms
            elif isinstance(ev, eng.GridRefused) and outcome is SignalTrigger.REJECT and sig is not None:
                sig.status, sig.reason, sig.closed_ms = SignalStatus.REJECTED, "; ".join(ev.reasons), open_ms
        if self.grids and self.grids[-1].ended_ms is None and new.status in (StrategyStatus.IDLE,
                                                                               StrategyStatus.HALTED):
            self.grids[-1].ended_ms = open_ms


class _SignalQueue:
    """The backtest's signals in bar order; `pending` holds the NEW ones that have arrived (bar_ms <= the bar's
    open: later ones cannot matter yet)."""

    def __init__(self, signals: list[BacktestSignal]):
        self.signals, self.next, self.pending = signals, 0, []

    def arrive(self, open_ms: int) -> None:
        while self.next < len(self.signals) and self.signals[self.next].bar_ms <= open_ms:
            self.pending.append(self.signals[self.next])
            self.next += 1

    def drop_closed(self) -> None:
        self.pending = [s for s in self.pending if s.status == SignalStatus.NEW]

    def expire_by(self, last_open: int, expiry_bar: Callable[[int], int], status: StrategyStatus) -> None:
        """Expire the NEW signals whose expiry came by `last_open`, each at the bar expiry_bar(expires_ms)."""
        for s in self.pending:
            if s.status == SignalStatus.NEW and s.expires_ms <= last_open:
                _expire(s, expiry_bar(s.expires_ms), status)
        self.drop_closed()


def _expire(sig: BacktestSignal, bar_ms: int, status: StrategyStatus) -> None:
    sig.status, sig.closed_ms = SignalStatus.EXPIRED, bar_ms
    sig.reason = f"expired at {ms_to_iso(sig.expires_ms)} before a grid could start (strategy {status})"


def replay_for_backtest(*, profile_bars: Bars, trend_bars: Bars, trigger_bars: Bars, start_ms: int, end_ms: int,
                        params: StrategyParams, rules: SymbolRules, progress: Progress | None = None) -> ReplayResult:
    """The scanner/trigger replay of a backtest (shared by both fill policies of one run)."""
    cb = None if progress is None else (lambda done, total: progress("signals", done, total))
    return replay_signals(profile_bars=profile_bars, trend_bars=trend_bars, trigger_bars=trigger_bars,
                          start_ms=start_ms, end_ms=end_ms, params=params, tick=rules.tick_size, progress=cb)


def run_backtest(*, profile_bars: Bars, trend_bars: Bars, trigger_bars: Bars, exec_bars: Bars,
                 mark_bars: Bars | None = None, funding: tuple | None = None, start_ms: int, end_ms: int,
                 params: StrategyParams, rules: SymbolRules, policy: FillPolicyName = "headline",
                 progress: Progress | None = None, replay: ReplayResult | None = None,
                 slippage_mode: str = "normal", fast: bool = True) -> BacktestResult:
    """Replay [start_ms, end_ms) in memory. `funding` is (times ms, rates) of the settled funding (perp only);
    `replay` reuses a replay_for_backtest of the same inputs (both policies of one run); `slippage_mode` is the
    engine's normal / stress / crash slippage of §5.4. `fast` books provably quiet runs of bars without calling
    the engine bar by bar (gridcore.backtest.quiet); fast=False calls it for every bar (same result, slower)."""
    if end_ms <= start_ms:
        raise InputError(f"expected end after start, was {ms_to_iso(start_ms)} .. {ms_to_iso(end_ms)}")
    market = exec_bars.market
    if replay is None:
        replay = replay_for_backtest(profile_bars=profile_bars, trend_bars=trend_bars, trigger_bars=trigger_bars,
                                     start_ms=start_ms, end_ms=end_ms, params=params, rules=rules,
                                     progress=progress)
    signals = signals_from_replay(replay, params)
    step = exec_bars.interval_ms
    first = -(-start_ms // step) * step
    market_bars = MarketArrays(exec_bars.slice_ms(first, end_ms - step + 1), mark_bars, first, end_ms, step)
    f_ms: list[int] = []
    f_rates: list[Decimal] = []
    if funding is not None and market == "perp":
        f_ms = [int(t) for t in funding[0]]
        f_rates = [Decimal(r) for r in funding[1]]
    by_bar = inputs.group_funding(f_ms, f_rates, first_ms=first, step=step,
                                  bar_open_ms=market_bars.open_ms.tolist())
    fires = inputs.FireLookup((z.bar_ms, z.valid_until_ms, z.fire_dir) for z in replay.zones)

    state = eng.new_state(f"backtest.{exec_bars.symbol}.{market}", params, policy=policy,
                          slippage_mode=slippage_mode, liquidation=market == "perp")
    initial = state.ledger.equity
    book = _Book()
    mk = market_bars
    curve = EquityCurve(mk.open_ms, mk.m_c, mk.m_h, mk.m_l)
    quiet = QuietFinder(mk, signals, by_bar, fires, params, rules) if fast else None
    queue = _SignalQueue(signals)
    total = len(mk)
    reported = 0
    i = 0
    while i < total:
        open_ms = int(mk.open_ms[i])
        queue.arrive(open_ms)
        if quiet is not None:
            status = state.status
            j, state = quiet.skip(i, state, queue.pending, curve)
            if j > i:  # the signals that arrived and expired during the run (only a running grid lets them pass)
                last_open = int(mk.open_ms[j - 1])
                queue.arrive(last_open)
                queue.expire_by(last_open, lambda ms: int(mk.open_ms[mk.first_at_or_after(ms)]), status)
                i = j
                continue
        sig, expired = inputs.signal_for_bar(queue.pending, open_ms, state.status, window=BacktestSignal.window)
        new, events = eng.on_bar(state, mk.row(i), mark_bar=mk.mark_row(i), funding_events=by_bar.get(open_ms, ()),
                                 signal=None if sig is None else _start_signal(sig, open_ms, market, f_ms, f_rates),
                                 params=params, rules=rules, interval_ms=step, fire_dir=fires.at(open_ms))
        outcome = inputs.signal_outcome(events, None if sig is None else str(sig.id))
        book.record(state, new, events, open_ms, sig, outcome)
        for s in expired:
            _expire(s, open_ms, state.status)
        if sig is not None or expired:
            queue.drop_closed()
        state = new
        led = state.ledger
        curve.append(EquityPoint(open_ms, led.equity, led.drawdown, led.position, led.mark))
        i += 1
        if progress is not None and (i - reported >= 5000 or i == total):
            reported = i
            progress(f"execution {policy}", i, total)
    if progress is not None and reported != total and total:
        progress(f"execution {policy}", total, total)
    return BacktestResult(symbol=exec_bars.symbol, market=market, exec_interval=exec_bars.interval, policy=policy,
                          start_ms=start_ms, end_ms=end_ms, initial_equity=initial, zones=list(replay.zones),
                          signals=signals, fills=book.fills, event_counts=book.counts, exits=book.exits,
                          grids=book.grids, equity=curve, final=state, bars=total, skipped=list(replay.skipped))
