"""GridEngine: the one decision path of a grid for backtests and paper trading (algorithms.md §4.4-§4.5, §5, §6).

`on_bar(state, bar, ...) -> (state, events)` is pure and deterministic: it reads no clock and no global state, and
the same state and inputs always give the same result. Per bar, in this order:

1. a bar at or before `state.last_bar_ms` is a no-op (idempotent per bar);
2. the gap segment C_{t−1}→O is walked with the resting orders;
3. at O: funding events (only with a position open), then a NEW start signal (IDLE only): plan via the injected
   `plan_fn`; a refused plan (or one breaking the exchange rules) is reported as GridRefused and nothing is
   placed; otherwise ACTIVE, the initial taker position (LONG/SHORT), the grid limits and the stop(s);
4. the body O→extreme→extreme→C is walked (gridcore.sim.matching): fills, §4.5 counter-orders (active from the
   next bar, or at the fill point with same_bar_refill), the stop, liquidation on the mark path, and the
   drawdown kill level, all in path order. Without same_bar_refill each level fills at most once per bar: a
   level that filled keeps its other order (a waiting counter-order) for the next bar, where it executes as a
   taker if the price has already passed it;
5. at C: the range break (`risk.range_break_closes` consecutive closes beyond S2 for long/neutral, beyond R2 for
   short/neutral) closes the grid at market.

Exits: a stop, range break or liquidation goes ACTIVE → CLOSING (cancel all, close) → IDLE. The kill switch fires
at the first event where the mark-to-market drawdown reaches `risk.max_drawdown` (a mark threshold on the path, and
a check after every fill, funding and liquidation): cancel all, close at market, HALTED. HALTED places nothing
until `reset(state)`. Every ledger change is followed by the §5.8 identity check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from gridcore.domain.fsm import next_state
from gridcore.domain.orders import (
    Fill,
    FillReason,
    FundingEvent,
    Liquidation,
    Order,
    OrderKind,
    OrderSide,
    from_plain,
    order_id,
    replace_fields,
    to_plain,
)
from gridcore.domain.transitions import STRATEGY_TRANSITIONS, StrategyStatus, StrategyTrigger
from gridcore.errors import InputError
from gridcore.params import StrategyParams
from gridcore.sim.ledger import Ledger, LedgerState
from gridcore.sim.matching import (
    RANK_LIQUIDATION,
    Hit,
    HitKind,
    Ladders,
    MarkThreshold,
    SlippageMode,
    Walk,
    slippage_for,
)
from gridcore.sim.path import SimBar, bar_body, bar_path
from gridcore.strategy.grid_planner import GridPlan, plan_grid
from gridcore.symbols import SymbolRules

LONG, SHORT, NEUTRAL = "LONG", "SHORT", "NEUTRAL"
FillPolicyName = Literal["headline", "optimistic"]
ZERO = Decimal(0)


@dataclass(frozen=True)
class StartSignal:
    """A start decision known at the bar's open (made on bars closed at or before it). `ref` identifies it: a
    signal is acted on once, however many bars it is passed with."""

    ref: str
    direction: str
    s1: Decimal
    s2: Decimal
    r1: Decimal
    r2: Decimal
    atr: Decimal
    stop: Decimal | None = None
    exec_atr: Decimal | None = None
    funding_rate: Decimal | None = None  # the last settled funding rate at the bar's open (None: spot, unknown)


PlanFn = Callable[[StartSignal, Decimal, Decimal, Decimal, StrategyParams, SymbolRules], GridPlan]


def plan_with_planner(signal: StartSignal, price: Decimal, equity: Decimal, peak_equity: Decimal,
                      params: StrategyParams, rules: SymbolRules) -> GridPlan:
    """The default plan_fn: gridcore.strategy.grid_planner.plan_grid at price p0 = the bar's open."""
    return plan_grid(direction=signal.direction, price=price, s1=signal.s1, s2=signal.s2, r1=signal.r1,
                     r2=signal.r2, atr=float(signal.atr), equity=equity, peak_equity=peak_equity, rules=rules,
                     params=params, exec_atr=None if signal.exec_atr is None else float(signal.exec_atr))


@dataclass(frozen=True)
class GridRef:
    """The running grid: its levels (for §4.5 re-placement), zone and stops."""

    grid_no: int
    signal_ref: str
    direction: str
    levels: tuple[Decimal, ...]
    s1: Decimal
    s2: Decimal
    r1: Decimal
    r2: Decimal
    stop_price: Decimal | None
    stop_price_short: Decimal | None
    started_ms: int


# --- events (records the persistence layer writes) ----------------------------------------------------------------


@dataclass(frozen=True)
class OrderPlaced:
    ts_ms: int
    order: Order


@dataclass(frozen=True)
class OrderRejected:
    ts_ms: int
    order: Order  # status REJECTED, reason says why


@dataclass(frozen=True)
class OrderFilled:
    ts_ms: int
    fill: Fill
    position: Decimal
    entry: Decimal
    realised: Decimal
    grid_profit: Decimal
    equity: Decimal
    drawdown: Decimal


@dataclass(frozen=True)
class OrderCanceled:
    ts_ms: int
    order_id: str
    reason: str


@dataclass(frozen=True)
class FundingPaid:
    ts_ms: int
    rate: Decimal
    mark_price: Decimal
    position: Decimal
    cash: Decimal
    equity: Decimal
    drawdown: Decimal


@dataclass(frozen=True)
class Liquidated:
    ts_ms: int
    liquidation: Liquidation
    equity: Decimal
    drawdown: Decimal


@dataclass(frozen=True)
class StateChanged:
    ts_ms: int
    old: StrategyStatus
    new: StrategyStatus
    trigger: StrategyTrigger
    reason: str


@dataclass(frozen=True)
class KillSwitch:
    ts_ms: int
    drawdown: Decimal
    equity: Decimal
    peak_equity: Decimal
    reason: str


@dataclass(frozen=True)
class GridRefused:
    ts_ms: int
    signal_ref: str
    reasons: tuple[str, ...]


Event = (OrderPlaced | OrderRejected | OrderFilled | OrderCanceled | FundingPaid | Liquidated | StateChanged
         | KillSwitch | GridRefused)
EVENT_TYPES: dict[str, type] = {c.__name__: c for c in (OrderPlaced, OrderRejected, OrderFilled, OrderCanceled,
                                                         FundingPaid, Liquidated, StateChanged, KillSwitch,
                                                         GridRefused)}


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"type": type(event).__name__, **to_plain(event)}


def event_from_dict(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise InputError(f"expected an event type in {sorted(EVENT_TYPES)}, was {kind!r}")
    return from_plain(EVENT_TYPES[kind], {k: v for k, v in data.items() if k != "type"})


# --- state ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineState:
    """Everything the engine needs to continue: persist `to_dict()`, restart with `from_dict()`."""

    strategy_id: str
    ledger: LedgerState
    status: StrategyStatus = StrategyStatus.IDLE
    orders: tuple[Order, ...] = ()
    grid: GridRef | None = None
    policy: FillPolicyName = "headline"
    slippage_mode: SlippageMode = "normal"
    last_bar_ms: int | None = None
    last_close: Decimal | None = None
    last_mark_close: Decimal | None = None
    seq: int = 0
    grids_started: int = 0
    break_count: int = 0
    break_side: int = 0  # -1: consecutive closes below S2, +1: above R2
    last_signal_ref: str | None = None
    liquidation: bool = True  # False on spot history: no margin, so no liquidation (funding comes only if given)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineState:
        return from_plain(cls, data)


def new_state(strategy_id: str, params: StrategyParams, *, policy: FillPolicyName = "headline",
              slippage_mode: SlippageMode = "normal", liquidation: bool = True) -> EngineState:
    """A fresh IDLE strategy with params.account.capital in the wallet; liquidation=False for spot history."""
    if not strategy_id or any(not (c.isalnum() or c in "._:/") for c in strategy_id):
        raise InputError(f"expected a strategy id of letters, digits and . _ : /, was {strategy_id!r}")
    if policy not in ("headline", "optimistic"):
        raise InputError(f"expected fill policy headline or optimistic, was {policy!r}")
    slippage_for(params.costs, slippage_mode)  # validates the mode
    ledger = LedgerState.new(params.account.capital, params.account.leverage)
    return EngineState(strategy_id=strategy_id, ledger=ledger, policy=policy, slippage_mode=slippage_mode,
                       liquidation=liquidation)


BarLike = SimBar | tuple[int, int, int, int, int, int] | Sequence[int]


def as_sim_bar(bar: BarLike) -> SimBar:
    """A SimBar, or (ms, o, h, l, c, v) in gridcore.bars int 1e-8 units."""
    if isinstance(bar, SimBar):
        return bar
    if len(bar) != 6:
        raise InputError(f"expected a bar (ms, o, h, l, c, v) in 1e-8 units, was {bar!r}")
    return SimBar.from_units(*bar)  # which takes each as an int


# --- one bar ---------------------------------------------------------------------------------------------------------


class _LadderMemo:
    """The trigger ladders of the book the last on_bar left, keyed by that state's orders tuple itself (held, so
    its identity cannot be reused): the next bar's walk starts from them instead of sorting the book again. A cache
    of a pure function of the orders, so it never changes a result."""

    def __init__(self) -> None:
        self._entry: tuple[tuple[Order, ...], Ladders | None] = ((), None)

    def get(self, orders: tuple[Order, ...]) -> Ladders | None:
        held, ladders = self._entry
        return ladders if held is orders and orders else None

    def put(self, orders: tuple[Order, ...], ladders: Ladders | None) -> None:
        self._entry = (orders, ladders)


_LAST_LADDERS = _LadderMemo()


def trigger_reach(state: EngineState, theta: Decimal) -> tuple[Decimal | None, Decimal | None] | None:
    """Bounds on where the state's book can trigger: (no order fills while a falling price stays above the first,
    none while a rising one stays below the second; None: no such orders), read off the trigger ladders the last
    on_bar left for this very book (resting limits trigger theta through their price, fresh ones and stops at it,
    so the bounds are theta wide of the ladders). None when those ladders are not at hand."""
    ladders = _LAST_LADDERS.get(state.orders)
    if ladders is None or ladders.theta != theta:
        return None
    return (-ladders.falls[0][0] + theta if ladders.falls else None,
            ladders.rises[0][0] - theta if ladders.rises else None)


class _Run:
    """The mutable working copy of one on_bar call."""

    def __init__(self, state: EngineState, bar: SimBar, mark_bar: SimBar | None, params: StrategyParams,
                 rules: SymbolRules):
        self.state, self.bar, self.mark_bar, self.params, self.rules = state, bar, mark_bar, params, rules
        self.ts = bar.ms
        self.status = state.status
        self.ledger = Ledger(state.ledger)
        self.orders: dict[str, Order] = {o.id: o for o in state.orders}
        self.grid = state.grid
        self.seq, self.grids_started = state.seq, state.grids_started
        self.break_count, self.break_side = state.break_count, state.break_side
        self.last_signal_ref = state.last_signal_ref
        self.policy = params.fills.headline if state.policy == "headline" else params.fills.optimistic
        self.slippage = slippage_for(params.costs, state.slippage_mode, bar)
        self.events: list[Event] = []
        self.walk: Walk | None = None
        self.bar_filled: dict[str, Decimal] = {}
        self.filled_levels: set[int] | None = None if self.policy.same_bar_refill else set()
        self._killing = False
        self._lp_key: tuple[Decimal, Decimal] | None = None
        self._lp: Decimal | None = None
        self._thresholds_key: tuple | None = None
        self._thresholds: tuple[MarkThreshold, ...] = ()
        self.gap_bars = 0  # bars missing between the previous bar and this one (set by on_bar)
        self.fire_dir = 0  # the squeeze fire direction of the zone in force at this bar (set by on_bar)

    # --- plumbing -----------------------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def transition(self, trigger: StrategyTrigger, reason: str) -> None:
        new = StrategyStatus(next_state(STRATEGY_TRANSITIONS, f"strategy {self.state.strategy_id}", self.status,
                                        trigger))
        self.emit(StateChanged(self.ts, self.status, new, trigger, reason))
        self.status = new

    def make_walk(self, trade: Sequence[Decimal], marks: Sequence[Decimal] | None, *, gap: bool,
                  fresh: Iterable[str]) -> Walk:
        fills = self.params.fills
        cap = None
        if fills.participation_cap:
            cap = Decimal(repr(fills.participation_rate)) * self.bar.volume
        return Walk(trade, marks, ts_ms=self.ts, orders=self.orders.values(),
                    theta=self.policy.trade_through_ticks * self.rules.tick_size, costs=self.params.costs,
                    slippage=self.slippage, gap=gap, fresh=fresh, volume_cap=cap, step=self.rules.step_size,
                    bar_filled=self.bar_filled, filled_levels=self.filled_levels,
                    ladders=_LAST_LADDERS.get(self.state.orders))

    @property
    def reference(self) -> Decimal:
        """Where a market order placed now would execute against (a gap trades only at its end, O)."""
        assert self.walk is not None
        return self.walk.trade[-1] if self.walk.gap else self.walk.price

    def after_booking(self, mark: Decimal) -> Decimal:
        """Mark after money moved (a fill, funding, a liquidation) and check the §5.8 identity. A plain mark moves
        no money, so it calls ledger.mark_to alone."""
        dd = self.ledger.mark_to(mark)
        self.ledger.check_identity()
        return dd

    # --- orders -------------------------------------------------------------------------------------------------

    def new_order(self, *, side: OrderSide, kind: OrderKind, price: Decimal | None, qty: Decimal, level: int | None,
                  purpose: FillReason, reduce_only: bool = False, close_position: bool = False, opens: bool = True,
                  pair_price: Decimal | None = None, active_from_ms: int | None = None) -> Order:
        self.seq += 1
        grid_no = self.grid.grid_no if self.grid is not None else self.grids_started
        oid = order_id(self.state.strategy_id, grid_no, purpose, level, self.seq)
        return Order(oid, side, kind, price, qty, level, purpose, reduce_only, close_position,
                     self.ts if active_from_ms is None else active_from_ms, pair_price=pair_price, opens=opens)

    def rule_problem(self, order: Order, ref_price: Decimal) -> str | None:
        """Why the exchange would refuse the order (tick, step, minQty, minNotional), or None."""
        r = self.rules

        def what() -> str:
            return f"{order.side} {order.kind} {order.qty} @ {order.price} (level {order.level})"

        if order.price is not None and not (order.price > 0 and r.on_tick(order.price)):
            return f"{what()}: expected a price > 0 on the tick {r.tick_size}, was {order.price}"
        if order.close_position or order.reduce_only:  # closes what is open: never refused for its size
            return None
        if not (order.qty > 0 and r.on_step(order.qty)):
            return f"{what()}: expected a quantity > 0 on the step {r.step_size}, was {order.qty}"
        if order.qty < r.min_qty:
            return f"{what()}: expected a quantity >= minQty {r.min_qty}, was {order.qty}"
        notional = order.qty * (order.price if order.price is not None else ref_price)
        if notional < r.min_notional:
            return f"{what()}: expected a notional >= minNotional {r.min_notional}, was {notional}"
        return None

    def submit(self, order: Order) -> Order | None:
        """Validate and place; a refused order is reported (OrderRejected), never dropped."""
        problem = self.rule_problem(order, self.reference)
        if problem is not None:
            self.emit(OrderRejected(self.ts, order.reject(problem)))
            return None
        placed = order.accept()
        self.emit(OrderPlaced(self.ts, placed))
        if placed.kind is not OrderKind.MARKET:
            self.orders[placed.id] = placed
            assert self.walk is not None
            self.walk.add(placed)
        return placed

    def drop(self, oid: str) -> None:
        self.orders.pop(oid, None)
        if self.walk is not None:
            self.walk.remove(oid)

    def cancel_all(self, reason: str, keep: str | None = None) -> None:
        for oid in [i for i in self.orders if i != keep]:
            self.orders[oid].cancel(reason)
            self.emit(OrderCanceled(self.ts, oid, reason))
            self.drop(oid)

    def book_fill(self, order: Order, fill: Fill) -> Order:
        realised, grid = self.ledger.apply_fill(fill)
        assert self.walk is not None
        dd = self.after_booking(self.walk.mark)
        updated = order.fill(fill.qty)
        if updated.is_open:
            self.orders[updated.id] = updated
            self.walk.update(updated)
        else:
            self.drop(updated.id)
        s = self.ledger
        self.emit(OrderFilled(self.ts, fill, s.position, s.entry, realised, grid, s.equity, dd))
        return updated

    def market(self, side: OrderSide, qty: Decimal, purpose: FillReason, reference: Decimal, *,
               reduce_only: bool) -> bool:
        """Place and fill a market order now; False when the exchange rules refuse it."""
        placed = self.submit(self.new_order(side=side, kind=OrderKind.MARKET, price=None, qty=qty, level=None,
                                            purpose=purpose, reduce_only=reduce_only))
        if placed is None:
            return False
        assert self.walk is not None
        self.book_fill(placed, self.walk.taker_fill(order_id=placed.id, side=side, qty=qty, reference=reference,
                                                    reason=purpose))
        return True

    def close_position(self, purpose: FillReason, reference: Decimal) -> None:
        pos = self.ledger.position
        if pos != 0:
            self.market(OrderSide.SELL if pos > 0 else OrderSide.BUY, abs(pos), purpose, reference, reduce_only=True)

    # --- risk -----------------------------------------------------------------------------------------------------

    def thresholds(self) -> tuple[MarkThreshold, ...]:
        """The liquidation and kill levels of the position now (asked before every walk step, so cached on what
        they depend on: the position, its entry, the wallet, the peak and whether the strategy is halted)."""
        led = self.ledger
        pos = led.position
        if pos == 0:
            return ()
        halted = self.status is StrategyStatus.HALTED
        key = (pos, led.entry, led.wallet, led.peak_equity, halted)
        if key == self._thresholds_key:
            return self._thresholds
        out = []
        if self.state.liquidation:
            if key[:2] != self._lp_key:
                self._lp_key, self._lp = key[:2], led.liquidation_price(self.params.account.brackets.tiers)
            if self._lp is not None:
                out.append(MarkThreshold("LIQUIDATION", self._lp, falling=pos > 0, rank=RANK_LIQUIDATION))
        if not halted:
            kill = led.kill_price(self.params.risk.max_drawdown)
            if kill is not None:
                out.append(MarkThreshold("KILL", kill, falling=pos > 0))
        self._thresholds_key, self._thresholds = key, tuple(out)
        return self._thresholds

    def check_kill(self, reference: Decimal, marked_dd: Decimal | None = None) -> bool:
        """Fire the kill switch when the drawdown has reached the maximum; True when it fired. `marked_dd`: the
        drawdown ledger.mark_to just returned (the same value, so it decides; the event reports the ledger's)."""
        if self._killing or self.status is StrategyStatus.HALTED:
            return False
        if (self.ledger.drawdown if marked_dd is None else marked_dd) < self.params.risk.max_drawdown:
            return False
        self.kill(self.ledger.drawdown, reference)
        return True

    def kill(self, dd: Decimal, reference: Decimal) -> None:
        self._killing = True
        s = self.ledger
        reason = f"drawdown {dd:.6f} >= max_drawdown {self.params.risk.max_drawdown}"
        self.emit(KillSwitch(self.ts, dd, s.equity, s.peak_equity, reason))
        self.cancel_all("kill switch")
        self.close_position(FillReason.KILL_SWITCH, reference)
        self.transition(StrategyTrigger.KILL, reason)
        self.grid = None
        self.break_count = self.break_side = 0
        self._killing = False

    def finish_exit(self) -> None:
        if self.status is StrategyStatus.CLOSING:
            self.transition(StrategyTrigger.CLOSED, "grid closed")
        self.grid = None
        self.break_count = self.break_side = 0

    # --- walk events --------------------------------------------------------------------------------------------

    def run_walk(self, walk: Walk) -> None:
        self.walk = walk
        while (hit := walk.next(self.thresholds())) is not None:
            if hit.kind is HitKind.VERTEX:
                self.check_kill(self.reference, self.ledger.mark_to(hit.mark))
            elif hit.kind is HitKind.THRESHOLD:
                self.on_threshold(hit)
            elif hit.order is not None and hit.order.id in self.orders:
                self.on_order_hit(self.orders[hit.order.id], hit)

    def on_threshold(self, hit: Hit) -> None:
        assert hit.threshold is not None and hit.reference is not None
        if hit.threshold.name == "LIQUIDATION":
            self.liquidate(hit)
            return
        self.ledger.mark_to(hit.mark)
        if not self.check_kill(hit.reference):  # rounding kept DD a hair short: fire on the level itself
            self.kill(self.ledger.drawdown, hit.reference)

    def liquidate(self, hit: Hit) -> None:
        assert hit.threshold is not None
        if self.status is StrategyStatus.ACTIVE:
            self.transition(StrategyTrigger.CLOSE, f"liquidated at mark {hit.threshold.price}")
        self.cancel_all("liquidated")
        record = self.ledger.liquidate(self.ts, hit.threshold.price, self.params.costs.liquidation_fee)
        dd = self.after_booking(hit.mark)
        s = self.ledger
        self.emit(Liquidated(self.ts, record, s.equity, dd))
        if not self.check_kill(self.reference):
            self.finish_exit()

    def on_order_hit(self, order: Order, hit: Hit) -> None:
        if order.kind is OrderKind.STOP_MARKET:
            self.stop(order, hit)
            return
        assert self.walk is not None
        fill = self.walk.fill_order_hit(hit, self.walk.fillable_qty(order))
        updated = self.book_fill(order, fill)
        if self.check_kill(self.reference):
            return
        if not updated.is_open and order.purpose is FillReason.GRID:
            self.counter_order(updated)

    def stop(self, order: Order, hit: Hit) -> None:
        """The stop exits the grid: cancel the rest, close the position against the stop's reference."""
        assert hit.reference is not None and self.walk is not None
        if self.status is StrategyStatus.ACTIVE:
            self.transition(StrategyTrigger.CLOSE, f"stop {order.price} hit")
        self.cancel_all(f"stop {order.id} triggered", keep=order.id)
        pos = self.ledger.position
        if pos != 0 and (pos > 0) == (order.side is OrderSide.SELL):
            self.book_fill(order, self.walk.taker_fill(order_id=order.id, side=order.side, qty=abs(pos),
                                                       reference=hit.reference, reason=FillReason.STOP))
        else:
            self.cancel_all(f"stop {order.id} triggered with no position on its side")
            self.close_position(FillReason.STOP, hit.reference)
        if not self.check_kill(hit.reference):
            self.finish_exit()

    def counter_order(self, filled: Order) -> None:
        """§4.5: a filled buy at level i places a sell at i+1, a filled sell a buy at i−1 (same quantity)."""
        grid = self.grid
        if grid is None or filled.level is None:
            return
        j = filled.level + (1 if filled.side is OrderSide.BUY else -1)
        if not 0 <= j < len(grid.levels):
            return
        active = self.ts if self.policy.same_bar_refill else self.ts + 1
        order = self.new_order(side=filled.side.opposite, kind=OrderKind.LIMIT, price=grid.levels[j], qty=filled.qty,
                               level=j, purpose=FillReason.GRID, opens=not filled.opens,
                               pair_price=filled.price if filled.opens else None, active_from_ms=active)
        # Without same-bar refill a counter-order can wait (inactive) at the level an opposite fill now wants: both
        # stay, and the waiting one executes when it activates, which is the classic grid's state. Two orders of
        # one side at one level would double the level's inventory.
        taken = [o.id for o in self.orders.values()
                 if o.level == j and o.purpose is FillReason.GRID and o.side is order.side]
        if taken:
            self.emit(OrderRejected(self.ts, order.reject(f"expected no open {order.side} at level {j}, was "
                                                          f"{taken[0]}")))
            return
        self.submit(order)

    # --- bar phases ---------------------------------------------------------------------------------------------

    def funding(self, events: Iterable[FundingEvent]) -> None:
        costs = self.params.costs
        for ev in sorted(events, key=lambda e: e.ts_ms):
            last = self.ledger.last_funding_ms
            if last is not None and ev.ts_ms <= last:
                continue
            use_history = ev.rate is not None and costs.funding_source == "history"
            rate = ev.rate if use_history and ev.rate is not None else costs.default_funding_rate
            mark = ev.mark_price or (self.mark_bar.open if self.mark_bar is not None else self.bar.open)
            position = self.ledger.position
            cash = self.ledger.apply_funding(ev.ts_ms, rate, mark)
            if cash is None:
                continue
            dd = self.after_booking(mark)
            self.emit(FundingPaid(ev.ts_ms, rate, mark, position, cash, self.ledger.equity, dd))
            if self.check_kill(self.reference):
                return

    def refuse(self, signal: StartSignal, reasons: Sequence[str]) -> None:
        self.emit(GridRefused(self.ts, signal.ref, tuple(reasons) or ("refused without a reason",)))

    def maybe_start(self, signal: StartSignal | None, plan_fn: PlanFn) -> None:
        if signal is None or signal.ref == self.last_signal_ref:
            return
        self.last_signal_ref = signal.ref
        if self.status is StrategyStatus.HALTED:
            self.refuse(signal, ["expected reset(state) after the kill switch, was HALTED"])
            return
        if self.status is not StrategyStatus.IDLE or self.orders or self.ledger.position != 0:
            self.refuse(signal, [f"expected no running grid (one grid per symbol), was {self.status} with "
                                 f"{len(self.orders)} open orders and position {self.ledger.position}"])
            return
        guarded = self.guard_problems(signal)
        if guarded:
            self.refuse(signal, guarded)
            return
        price, s = self.reference, self.ledger
        try:
            plan = plan_fn(signal, price, s.equity, s.peak_equity, self.params, self.rules)
        except InputError as e:
            self.refuse(signal, [str(e)])
            return
        problems = list(plan.reasons) if plan.refused else self.plan_problems(plan, price)
        if plan.refused or problems:
            self.refuse(signal, problems)
            return
        self.start(signal, plan)

    def guard_problems(self, signal: StartSignal) -> list[str]:
        """§6.5 start guards: funding against the inventory side, and stale data (a gap just before this bar)."""
        out = []
        rate, limit = signal.funding_rate, self.params.risk.funding_guard
        if rate is not None:
            against = {LONG: rate > limit, SHORT: rate < -limit, NEUTRAL: abs(rate) > limit}.get(signal.direction)
            if against:
                out.append(f"funding guard: expected a funding rate within {limit} against a {signal.direction} "
                           f"grid, was {rate}")
        if self.gap_bars >= self.params.execution.stale_data_intervals:
            out.append(f"stale data: expected at most {self.params.execution.stale_data_intervals - 1} missing "
                       f"bars before this one, was {self.gap_bars}")
        return out

    def plan_problems(self, plan: GridPlan, price: Decimal) -> list[str]:
        """Every way the plan breaks the exchange rules or its own shape (all reported at once)."""
        out: list[str] = []
        if plan.direction not in (LONG, SHORT, NEUTRAL):
            out.append(f"expected direction LONG, SHORT or NEUTRAL, was {plan.direction!r}")
        levels = [lv.price for lv in plan.levels]
        if any(a >= b for a, b in zip(levels, levels[1:], strict=False)):
            out.append(f"expected strictly increasing levels, was {levels}")
        for po in plan.orders:
            if not 0 <= po.level < len(levels) or levels[po.level] != po.price:
                out.append(f"order {po.side} @ {po.price}: expected the price of level {po.level}, was not")
            probe = Order("plan", OrderSide(po.side), OrderKind.LIMIT, po.price, po.qty, po.level)
            problem = self.rule_problem(probe, price)
            if problem is not None:
                out.append(problem)
        if plan.initial_qty != 0:
            side = OrderSide.BUY if plan.initial_qty > 0 else OrderSide.SELL
            probe = Order("plan", side, OrderKind.MARKET, None, abs(plan.initial_qty), None, FillReason.INITIAL)
            problem = self.rule_problem(probe, price)
            if problem is not None:
                out.append(f"initial position: {problem}")
        return out

    def start(self, signal: StartSignal, plan: GridPlan) -> None:
        self.grids_started += 1
        levels = tuple(lv.price for lv in plan.levels)
        stop = plan.stop_price if plan.stop_price is not None else signal.stop
        short_stop = plan.stop_price_short if plan.direction == NEUTRAL else None
        self.grid = GridRef(self.grids_started, signal.ref, plan.direction, levels, signal.s1, signal.s2, signal.r1,
                            signal.r2, stop, short_stop, self.ts)
        self.break_count = self.break_side = 0
        self.transition(StrategyTrigger.START, f"signal {signal.ref}: {plan.direction} grid, {len(levels)} levels")
        if plan.initial_qty != 0:
            side = OrderSide.BUY if plan.initial_qty > 0 else OrderSide.SELL
            self.market(side, abs(plan.initial_qty), FillReason.INITIAL, self.reference, reduce_only=False)
            if self.check_kill(self.reference):
                return
        for po in plan.orders:
            side = OrderSide(po.side)
            opens = plan.direction == NEUTRAL or (side is OrderSide.BUY) == (plan.direction == LONG)
            self.submit(self.new_order(side=side, kind=OrderKind.LIMIT, price=po.price, qty=po.qty, level=po.level,
                                       purpose=FillReason.GRID, opens=opens))
        stops = [(stop, OrderSide.BUY if plan.direction == SHORT else OrderSide.SELL), (short_stop, OrderSide.BUY)]
        for price, side in stops:
            if price is not None:
                self.submit(self.new_order(side=side, kind=OrderKind.STOP_MARKET, price=price, qty=ZERO,
                                           level=None, purpose=FillReason.STOP, reduce_only=True,
                                           close_position=True))

    def range_break(self) -> None:
        grid = self.grid
        if self.status is not StrategyStatus.ACTIVE or grid is None:
            return
        c = self.bar.close
        beyond = self.params.risk.exit_beyond_range  # either side ends any grid, not only its inventory side
        side = 0
        if c < grid.s2 and (beyond or grid.direction in (LONG, NEUTRAL)):
            side = -1
        elif c > grid.r2 and (beyond or grid.direction in (SHORT, NEUTRAL)):
            side = 1
        self.break_count = 0 if side == 0 else (self.break_count + 1 if side == self.break_side else 1)
        self.break_side = side
        if self.break_count < self.params.risk.range_break_closes:
            return
        where = f"below S2 {grid.s2}" if side < 0 else f"above R2 {grid.r2}"
        self.transition(StrategyTrigger.CLOSE, f"range break: {self.break_count} closes {where}")
        self.cancel_all("range break")
        self.close_position(FillReason.RANGE_BREAK, c)
        if not self.check_kill(c):
            self.finish_exit()

    def adverse_fire(self) -> None:
        """§2.5/§6.1: a squeeze fire against the inventory ends the grid (long: fire -1 and close < S1)."""
        grid, fire, pos, c = self.grid, self.fire_dir, self.ledger.position, self.bar.close
        if not self.params.risk.exit_on_adverse_fire or self.status is not StrategyStatus.ACTIVE or grid is None:
            return
        if pos > 0 and fire < 0 and c < grid.s1:
            why = f"squeeze fired down against the long inventory, close {c} below S1 {grid.s1}"
        elif pos < 0 and fire > 0 and c > grid.r1:
            why = f"squeeze fired up against the short inventory, close {c} above R1 {grid.r1}"
        else:
            return
        self.transition(StrategyTrigger.CLOSE, why)
        self.cancel_all("adverse squeeze fire")
        self.close_position(FillReason.CLOSE, c)
        if not self.check_kill(c):
            self.finish_exit()

    # --- driver ---------------------------------------------------------------------------------------------------

    def process(self, funding_events: Sequence[FundingEvent], signal: StartSignal | None, plan_fn: PlanFn) -> None:
        prev = self.state.last_bar_ms
        fresh = [o.id for o in self.orders.values() if prev is None or o.active_from_ms > prev]
        trade = bar_path(self.bar, self.policy.path, self.state.last_close)
        mb = self.mark_bar
        if len(trade) == 5:
            marks = None
            if mb is not None:
                prev_mark = self.state.last_mark_close
                marks = (mb.open if prev_mark is None else prev_mark, mb.open)
            self.run_walk(self.make_walk(trade[:2], marks, gap=True, fresh=fresh))
        body_marks = bar_body(mb, self.policy.path) if mb is not None else None
        if self.walk is not None:  # on from the gap with the book as the gap left it
            self.walk.next_leg(trade[-4:], body_marks, gap=False)
        else:
            self.walk = self.make_walk(trade[-4:], body_marks, gap=False, fresh=fresh)
        self.funding(funding_events)
        self.maybe_start(signal, plan_fn)
        self.run_walk(self.walk)
        self.range_break()
        self.adverse_fire()

    def result(self) -> tuple[EngineState, list[Event]]:
        mb = self.mark_bar
        self.ledger.mark_to(mb.close if mb is not None else self.bar.close)
        orders = tuple(self.orders.values())
        if self.walk is not None:  # every change to self.orders went to the walk's book too
            _LAST_LADDERS.put(orders, self.walk.ladders())
        state = replace_fields(
            self.state, status=self.status, ledger=self.ledger.snapshot(), orders=orders,
            grid=self.grid, seq=self.seq, grids_started=self.grids_started, break_count=self.break_count,
            break_side=self.break_side, last_signal_ref=self.last_signal_ref, last_bar_ms=self.bar.ms,
            last_close=self.bar.close, last_mark_close=mb.close if mb is not None else None)
        return state, self.events


def _quiet(state: EngineState, funding_events: Sequence[FundingEvent], signal: StartSignal | None) -> bool:
    """Nothing can happen in this bar: flat, no orders, no funding to book, no new signal."""
    if state.orders or state.ledger.position != 0:
        return False
    if signal is not None and signal.ref != state.last_signal_ref:
        return False
    last = state.ledger.last_funding_ms
    return all(last is not None and e.ts_ms <= last for e in funding_events)


def on_bar(state: EngineState, bar: BarLike, *, mark_bar: BarLike | None = None,
           funding_events: Sequence[FundingEvent] = (), signal: StartSignal | None = None,
           params: StrategyParams, rules: SymbolRules,
           plan_fn: PlanFn = plan_with_planner, interval_ms: int | None = None,
           fire_dir: int = 0) -> tuple[EngineState, list[Event]]:
    """Process one closed bar (and its mark-price bar, funding times and start signal): (new state, events).

    interval_ms (the bars' interval) enables the stale-data guard: no grid starts on the first bar after a gap of
    execution.stale_data_intervals or more missing bars. fire_dir is the squeeze fire direction of the zone in force
    (+1, -1, 0): a fire against the inventory ends the grid (risk.exit_on_adverse_fire)."""
    b = as_sim_bar(bar)
    mb = None if mark_bar is None else as_sim_bar(mark_bar)
    if mb is not None and mb.ms != b.ms:
        raise InputError(f"expected the mark bar of {b.ms}, was the mark bar of {mb.ms}")
    if state.last_bar_ms is not None and b.ms <= state.last_bar_ms:
        return state, []
    if _quiet(state, funding_events, signal) and state.status is not StrategyStatus.ACTIVE:  # nothing to do
        last_funding = max([e.ts_ms for e in funding_events] + [state.ledger.last_funding_ms or -1])
        ledger = replace_fields(state.ledger, mark=mb.close if mb else b.close,
                                last_funding_ms=None if last_funding < 0 else last_funding)
        return replace_fields(state, ledger=ledger, last_bar_ms=b.ms, last_close=b.close,
                              last_mark_close=mb.close if mb else None), []
    run = _Run(state, b, mb, params, rules)
    if interval_ms and state.last_bar_ms is not None:
        run.gap_bars = max(0, (b.ms - state.last_bar_ms) // interval_ms - 1)
    run.fire_dir = fire_dir
    run.process(funding_events, signal, plan_fn)
    return run.result()


def reset(state: EngineState, reason: str = "operator reset") -> tuple[EngineState, list[Event]]:
    """Leave HALTED (the only way out): IDLE, and the current equity becomes the new peak."""
    new = StrategyStatus(next_state(STRATEGY_TRANSITIONS, f"strategy {state.strategy_id}", state.status,
                                    StrategyTrigger.RESET))
    ledger = Ledger(state.ledger)
    ledger.reset_peak()
    ts = state.last_bar_ms if state.last_bar_ms is not None else 0
    event = StateChanged(ts, state.status, new, StrategyTrigger.RESET, reason)
    return dataclasses.replace(state, status=new, ledger=ledger.snapshot(), break_count=0, break_side=0), [event]


class GridEngine:
    """on_bar / reset with the parameters, symbol rules and planner bound once."""

    def __init__(self, params: StrategyParams, rules: SymbolRules, plan_fn: PlanFn = plan_with_planner):
        self.params, self.rules, self.plan_fn = params, rules, plan_fn

    def new_state(self, strategy_id: str, *, policy: FillPolicyName = "headline",
                  slippage_mode: SlippageMode = "normal") -> EngineState:
        return new_state(strategy_id, self.params, policy=policy, slippage_mode=slippage_mode)

    def on_bar(self, state: EngineState, bar: BarLike, *, mark_bar: BarLike | None = None,
               funding_events: Sequence[FundingEvent] = (), signal: StartSignal | None = None,
               interval_ms: int | None = None, fire_dir: int = 0) -> tuple[EngineState, list[Event]]:
        return on_bar(state, bar, mark_bar=mark_bar, funding_events=funding_events, signal=signal,
                      params=self.params, rules=self.rules, plan_fn=self.plan_fn, interval_ms=interval_ms,
                      fire_dir=fire_dir)

    def reset(self, state: EngineState, reason: str = "operator reset") -> tuple[EngineState, list[Event]]:
        return reset(state, reason)
