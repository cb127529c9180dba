"""Every status column's transition table, in one place. The Django models' CheckConstraints and the transition
service (grid_trading.services.transitions) are generated from / go through these tables."""

from __future__ import annotations

from enum import StrEnum


class ZoneStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUPERSEDED = "SUPERSEDED"
    EXPIRED = "EXPIRED"
    INVALID = "INVALID"


class ZoneTrigger(StrEnum):
    SUPERSEDE = "SUPERSEDE"  # a newer scan produced a zone for the same symbol/market/config
    EXPIRE = "EXPIRE"  # valid_until passed without a newer scan


# A zone is born ACTIVE (valid box) or INVALID (the box failed its rules; kept for the record and the reasons),
# or SUPERSEDED when it is a scan of a past bar older than the zone already active (`scanner --at` back-fill).
ZONE_INITIAL = frozenset({ZoneStatus.ACTIVE, ZoneStatus.INVALID, ZoneStatus.SUPERSEDED})
ZONE_TRANSITIONS: dict[tuple[str, str], str] = {
    (ZoneStatus.ACTIVE, ZoneTrigger.SUPERSEDE): ZoneStatus.SUPERSEDED,
    (ZoneStatus.ACTIVE, ZoneTrigger.EXPIRE): ZoneStatus.EXPIRED,
}
ZONE_TERMINAL = frozenset({ZoneStatus.SUPERSEDED, ZoneStatus.EXPIRED, ZoneStatus.INVALID})


class SignalStatus(StrEnum):
    NEW = "NEW"
    CONSUMED = "CONSUMED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class SignalTrigger(StrEnum):
    CONSUME = "CONSUME"  # the executor started a grid from it
    EXPIRE = "EXPIRE"  # expires_at passed before the executor used it
    REJECT = "REJECT"  # the executor / risk manager refused it (the reason is recorded)


SIGNAL_INITIAL = frozenset({SignalStatus.NEW})
SIGNAL_TRANSITIONS: dict[tuple[str, str], str] = {
    (SignalStatus.NEW, SignalTrigger.CONSUME): SignalStatus.CONSUMED,
    (SignalStatus.NEW, SignalTrigger.EXPIRE): SignalStatus.EXPIRED,
    (SignalStatus.NEW, SignalTrigger.REJECT): SignalStatus.REJECTED,
}
SIGNAL_TERMINAL = frozenset({SignalStatus.CONSUMED, SignalStatus.EXPIRED, SignalStatus.REJECTED})


def _terminal(table: dict[tuple[str, str], str], states: type[StrEnum]) -> frozenset:
    """States with no outgoing edge in `table`."""
    leaving = {s for s, _ in table}
    return frozenset(s for s in states if s not in leaving)


# --- orders (gridcore.domain.orders) ----------------------------------------------------------------------------


class OrderStatus(StrEnum):
    NEW = "NEW"
    OPEN = "OPEN"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"


class OrderTrigger(StrEnum):
    ACCEPT = "ACCEPT"  # passed the exchange rules; resting (limit, stop) or about to execute (market)
    REJECT = "REJECT"  # refused by the exchange rules (tick, step, minQty, minNotional); the reason is kept
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"
    CANCEL = "CANCEL"


ORDER_INITIAL = frozenset({OrderStatus.NEW})
ORDER_TRANSITIONS: dict[tuple[str, str], str] = {
    (OrderStatus.NEW, OrderTrigger.ACCEPT): OrderStatus.OPEN,
    (OrderStatus.NEW, OrderTrigger.REJECT): OrderStatus.REJECTED,
    # The participation cap fills part of a level per bar; the rest keeps resting with the same id.
    (OrderStatus.OPEN, OrderTrigger.PARTIAL_FILL): OrderStatus.OPEN,
    (OrderStatus.OPEN, OrderTrigger.FILL): OrderStatus.FILLED,
    (OrderStatus.OPEN, OrderTrigger.CANCEL): OrderStatus.CANCELED,
}
ORDER_TERMINAL = _terminal(ORDER_TRANSITIONS, OrderStatus)
ORDER_OPEN = frozenset(OrderStatus) - ORDER_TERMINAL


# --- the grid strategy (gridcore.strategy.engine) ---------------------------------------------------------------


class StrategyStatus(StrEnum):
    IDLE = "IDLE"  # no grid; a new start signal may start one
    ACTIVE = "ACTIVE"  # a grid is running (orders and/or a position)
    CLOSING = "CLOSING"  # an exit (stop, range break, liquidation) is cancelling and closing
    HALTED = "HALTED"  # the drawdown kill switch fired; nothing happens until an explicit reset


class StrategyTrigger(StrEnum):
    START = "START"
    CLOSE = "CLOSE"
    CLOSED = "CLOSED"
    KILL = "KILL"
    RESET = "RESET"


STRATEGY_INITIAL = frozenset({StrategyStatus.IDLE})
STRATEGY_TRANSITIONS: dict[tuple[str, str], str] = {
    (StrategyStatus.IDLE, StrategyTrigger.START): StrategyStatus.ACTIVE,
    (StrategyStatus.ACTIVE, StrategyTrigger.CLOSE): StrategyStatus.CLOSING,
    (StrategyStatus.CLOSING, StrategyTrigger.CLOSED): StrategyStatus.IDLE,
    # The kill switch may fire from any state: in IDLE through funding or a reset that left the account low.
    (StrategyStatus.IDLE, StrategyTrigger.KILL): StrategyStatus.HALTED,
    (StrategyStatus.ACTIVE, StrategyTrigger.KILL): StrategyStatus.HALTED,
    (StrategyStatus.CLOSING, StrategyTrigger.KILL): StrategyStatus.HALTED,
    # The only way out of HALTED: an explicit operator reset.
    (StrategyStatus.HALTED, StrategyTrigger.RESET): StrategyStatus.IDLE,
}
STRATEGY_TERMINAL = _terminal(STRATEGY_TRANSITIONS, StrategyStatus)  # empty: HALTED is left by RESET
STRATEGY_RUNNING = frozenset({StrategyStatus.ACTIVE, StrategyStatus.CLOSING})  # may hold orders or a position
STRATEGY_OPEN = frozenset(StrategyStatus) - STRATEGY_TERMINAL
