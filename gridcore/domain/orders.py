"""Orders, fills, funding and liquidation records of the paper/backtest account (algorithms.md §4.5, §5).

Every record is a frozen dataclass with Decimal money. Orders change status only through
`gridcore.domain.transitions.ORDER_TRANSITIONS` (`Order.apply`). `to_plain` / `from_plain` turn any of these
records (and the engine's state and events) into JSON-able data and back, exactly: Decimals travel as their
`str()` text, which keeps the value and the exponent.

Order ids are deterministic: strategy id, grid number, purpose and level, and the strategy's order sequence number
(`order_id`). The engine is a pure function of its inputs, so a replay or a restart from persisted state produces
the same ids; the persistence layer upserts by id and never holds two orders for one placement.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum, StrEnum
from functools import cache
from typing import Any

from gridcore.domain.fsm import next_state
from gridcore.domain.transitions import ORDER_OPEN, ORDER_TRANSITIONS, OrderStatus, OrderTrigger
from gridcore.errors import InputError

__all__ = [
    "MONEY_QUANTUM", "Fill", "FillReason", "FundingEvent", "Liquidation", "Liquidity", "Order", "OrderKind",
    "OrderSide", "OrderStatus", "OrderTrigger", "from_plain", "money", "order_id", "to_plain",
]

MONEY_QUANTUM = Decimal("1E-10")  # cash amounts (fees, PnL, funding) are booked in 1e-10 USDT, so sums stay exact
ZERO = Decimal(0)


def money(x: Decimal) -> Decimal:
    """A cash amount on the 1e-10 grid (half-even); sums of such amounts are exact in 28 digits."""
    return x.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderKind(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_MARKET = "STOP_MARKET"


class Liquidity(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"


class FillReason(StrEnum):
    """Why an order exists / why a fill happened."""

    GRID = "GRID"
    INITIAL = "INITIAL"
    STOP = "STOP"
    RANGE_BREAK = "RANGE_BREAK"
    KILL_SWITCH = "KILL_SWITCH"
    LIQUIDATION = "LIQUIDATION"
    CLOSE = "CLOSE"


_PURPOSE_CODE = {FillReason.GRID: "G", FillReason.INITIAL: "I", FillReason.STOP: "S", FillReason.RANGE_BREAK: "R",
                 FillReason.KILL_SWITCH: "K", FillReason.LIQUIDATION: "L", FillReason.CLOSE: "C"}


def order_id(strategy_id: str, grid_no: int, purpose: FillReason, level: int | None, seq: int) -> str:
    """`<strategy>-<grid>-<purpose code><level>-<seq>`, e.g. `btc-3-G12-57` (Binance clientOrderId charset)."""
    return f"{strategy_id}-{grid_no}-{_PURPOSE_CODE[purpose]}{'' if level is None else level}-{seq}"


@dataclass(frozen=True)
class Order:
    """One order. `price` is the limit price (LIMIT), the stop price (STOP_MARKET) or None (MARKET).

    `qty` is the ordered quantity, `filled_qty` what has filled so far (partial fills only under the participation
    cap). A `close_position` stop closes whatever position is open when it triggers (its qty is 0).
    Grid attribution (§4.5): `opens` says whether the order adds inventory; a counter-order created by the fill of
    an opening order carries that fill's level price as `pair_price`, and its own fill books the pair's profit.
    """

    id: str
    side: OrderSide
    kind: OrderKind
    price: Decimal | None
    qty: Decimal
    level: int | None = None
    purpose: FillReason = FillReason.GRID
    reduce_only: bool = False
    close_position: bool = False
    active_from_ms: int = 0
    status: OrderStatus = OrderStatus.NEW
    reason: str = ""
    filled_qty: Decimal = ZERO
    pair_price: Decimal | None = None
    opens: bool = True

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in ORDER_OPEN

    def apply(self, trigger: OrderTrigger, **changes: Any) -> Order:
        """The order after `trigger` (raises InvalidTransition when the table does not allow it)."""
        status = ORDER_TRANSITIONS.get((self.status, trigger))
        if status is None:
            next_state(ORDER_TRANSITIONS, f"order {self.id}", self.status, trigger)  # raises InvalidTransition
        return replace_fields(self, status=OrderStatus(status), **changes)

    def accept(self) -> Order:
        return self.apply(OrderTrigger.ACCEPT)

    def reject(self, reason: str) -> Order:
        return self.apply(OrderTrigger.REJECT, reason=reason)

    def cancel(self, reason: str) -> Order:
        return self.apply(OrderTrigger.CANCEL, reason=reason)

    def fill(self, qty: Decimal) -> Order:
        """Book `qty` more filled; FILLED when nothing remains (close-position orders fill whole)."""
        filled = self.filled_qty + qty
        if self.close_position:
            return self.apply(OrderTrigger.FILL, filled_qty=filled)
        if not ZERO < qty <= self.remaining:
            raise InputError(f"order {self.id}: expected a fill in (0, {self.remaining}], was {qty}")
        trigger = OrderTrigger.FILL if filled == self.qty else OrderTrigger.PARTIAL_FILL
        return self.apply(trigger, filled_qty=filled)


_PLAIN: dict[type, bool] = {}  # per class: may replace_fields copy it field by field?


def replace_fields(obj: Any, **changes: Any) -> Any:
    """dataclasses.replace for the hot path: a frozen dataclass without __post_init__ or slots is copied field by
    field (replace re-runs __init__ over every field, ten times slower); anything else goes through replace."""
    cls = type(obj)
    plain = _PLAIN.get(cls)
    if plain is None:
        plain = _PLAIN[cls] = not hasattr(cls, "__post_init__") and hasattr(obj, "__dict__")
    if not plain:
        return dataclasses.replace(obj, **changes)
    fields = obj.__dict__
    if not changes.keys() <= fields.keys():
        raise TypeError(f"{cls.__name__}: expected field names, was {sorted(changes.keys() - fields.keys())}")
    new = object.__new__(cls)
    new.__dict__.update(fields)
    new.__dict__.update(changes)
    return new


@dataclass(frozen=True)
class Fill:
    """One execution. `qty` > 0; `side` of the order; `fee` and `slippage_cost` in USDT (>= 0).

    `reference_price` is the price the fill was measured against: the limit price for a maker fill, the path price
    (or stop price) before slippage for a taker fill; a taker fill is never better than it.
    """

    order_id: str
    ts_ms: int
    side: OrderSide
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    reason: FillReason
    reference_price: Decimal
    slippage_cost: Decimal = ZERO
    level: int | None = None
    pair_price: Decimal | None = None

    @property
    def signed_qty(self) -> Decimal:
        return self.qty * self.side.sign

    @property
    def notional(self) -> Decimal:
        return self.qty * self.price


@dataclass(frozen=True)
class FundingEvent:
    """A funding time from the stored history. `rate` None: the rate is unknown (costs.default_funding_rate);
    `mark_price` None: the engine uses the mark (or trade) open of the bar being processed."""

    ts_ms: int
    rate: Decimal | None = None
    mark_price: Decimal | None = None


@dataclass(frozen=True)
class Liquidation:
    """A simulated liquidation (§5.7, §8.8): the position closes at the liquidation price and the whole isolated
    margin is lost (`margin_lost`, of which `fee` is the clearance fee)."""

    ts_ms: int
    position_qty: Decimal  # signed, before the liquidation
    entry_price: Decimal
    price: Decimal
    margin_lost: Decimal
    fee: Decimal = ZERO


# --- plain-data codec -------------------------------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """JSON-able form of a record (dataclasses by field, Decimals as str, enums as value, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_plain(tp: Any, data: Any) -> Any:
    """Inverse of to_plain for the annotated type `tp` (a record class, Decimal, enum, tuple[X, ...], X | None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return from_plain(args[0], data) if len(args) == 1 else _first_fit(args, data)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(from_plain(item, v) for v in data)
    if origin is typing.Literal or tp is Any:
        return data
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise InputError(f"expected a table for {tp.__name__}, was {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {f.name: from_plain(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data}
        return tp(**kwargs)
    if tp is Decimal:
        return Decimal(data)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    return data


def _first_fit(args: list[Any], data: Any) -> Any:
    for a in args:
        if isinstance(a, type) and isinstance(data, a):
            return data
    return from_plain(args[0], data)
