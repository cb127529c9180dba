"""The one matching engine (algorithms.md §5.2-§5.5): backtests and paper trading both walk prices through it.

A `Walk` moves along a price path (one bar's legs, or live trade prices) segment by segment and reports, one at a
time and in path order, every event on it: an order that triggers (`Hit.kind == ORDER`), a mark-price threshold
crossed (liquidation price, drawdown kill level: `THRESHOLD`), and the arrival at each vertex (`VERTEX`). The
caller books each event and may add or cancel orders before asking for the next one, so counter-orders, exits and
the kill switch act at the exact point where they happen.

Rules, for a segment a → b walked from the current point x:

* resting BUY limit at P triggers at y = P − θ when the segment falls through it (b <= y <= x); resting SELL at
  y = P + θ when it rises through it (x <= y <= b); θ = trade_through_ticks·tick (0 = touch). It fills at exactly
  P, as maker, for its remaining quantity (or the participation cap).
* STOP_MARKET SELL at K triggers when the segment falls to K (BUY: rises to K); a taker fill against the
  reference K, or against the segment end when the segment is the gap C_{t−1}→O (nothing trades inside a gap), or
  against x when the price is already beyond K.
* An order that is marketable where it becomes active (BUY limit P >= x, SELL P <= x; checked for every order
  added to the walk, and for the `fresh` ids given at the start) fills at once as taker at x plus slippage, capped
  at its limit.
* Market orders (`taker_fill`) fill at the reference x·(1 + s) (BUY) or x·(1 − s) (SELL): never better than x.
* Events at one point are ordered liquidation, stop, drawdown kill, limit; limits hit on one segment fill nearest
  to a first, ties by order id. A stop therefore always precedes any buy below it on a falling segment (the
  buy's trigger lies further along the path), and a buy at the stop price (P − θ == K) as well.
* Mark thresholds are checked on the mark path, which is walked in step with the trade path: leg k of one maps to
  leg k of the other, and the position t in [0, 1] along the leg is common. Positions are exact Fractions.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Literal, NamedTuple

from gridcore.domain.orders import Fill, FillReason, Liquidity, Order, OrderKind, OrderSide, money
from gridcore.errors import InputError
from gridcore.params import CostParams, FillPolicyParams
from gridcore.sim.path import SimBar, bar_path

SlippageMode = Literal["normal", "stress", "crash"]
ZERO = Decimal(0)
T_START, T_END = Fraction(0), Fraction(1)  # positions along a segment: its start and its end


class HitKind(StrEnum):
    ORDER = "ORDER"
    THRESHOLD = "THRESHOLD"
    VERTEX = "VERTEX"


RANK_LIQUIDATION, RANK_STOP, RANK_KILL, RANK_LIMIT = 0, 1, 2, 3


@dataclass(frozen=True)
class MarkThreshold:
    """A mark price that ends something when crossed: `falling` ones fire at mark <= price, others at >=."""

    name: str
    price: Decimal
    falling: bool
    rank: int = RANK_KILL


class Ladders(NamedTuple):
    """A walk's triggers of its book (Walk.ladders): with trade-through `theta`, per order id (falls, price, rank),
    and sorted as a falling (rising) price reaches them."""

    theta: Decimal
    triggers: dict[str, tuple[bool, Decimal, int]]
    falls: list[tuple[Decimal, int, str]]
    rises: list[tuple[Decimal, int, str]]


class Hit(NamedTuple):
    """One event of the walk. `price`/`mark` are the trade and mark prices there; `reference` the taker reference
    (None for a maker fill at the order's own price). A NamedTuple: a walk makes one per path vertex."""

    kind: HitKind
    segment: int
    t: Fraction
    price: Decimal
    mark: Decimal
    order: Order | None = None
    threshold: MarkThreshold | None = None
    reference: Decimal | None = None

    @property
    def maker(self) -> bool:
        return self.kind is HitKind.ORDER and self.reference is None


def slippage_for(costs: CostParams, mode: SlippageMode, bar: SimBar | None = None) -> Decimal:
    """Market/stop slippage: normal, stress, or crash stress max(stress, crash_range_factor·(H − L)/O) (§5.4)."""
    if mode == "normal":
        return costs.slippage
    if mode == "stress":
        return costs.stress_slippage
    if mode == "crash":
        if bar is None:
            return costs.stress_slippage
        return max(costs.stress_slippage, costs.crash_range_factor * (bar.high - bar.low) / bar.open)
    raise InputError(f"expected a slippage mode normal, stress or crash, was {mode!r}")


def _lerp(a: Decimal, b: Decimal, t: Fraction) -> Decimal:
    if t == 0 or a == b:
        return a
    if t == 1:
        return b
    return a + Decimal((b - a) * t.numerator) / Decimal(t.denominator)


def _at(a: Decimal, b: Decimal, y: Decimal) -> Fraction:
    """Position of y on the segment a → b (a != b), exact: (a − y)/(a − b) from the two exact integer ratios."""
    (n1, d1), (n2, d2) = (a - y).as_integer_ratio(), (a - b).as_integer_ratio()
    return Fraction(n1 * d2, d1 * n2)


def _falls_to_fill(order: Order) -> bool:
    """True for orders triggered by a falling price (BUY limits, SELL stops)."""
    return (order.side is OrderSide.BUY) == (order.kind is OrderKind.LIMIT)


class Walk:
    """One walk along `trade` (and `mark`, same length; defaults to the trade path) at time `ts_ms`.

    `orders`: the open orders; only those with active_from_ms <= ts_ms can trigger. `gap`: the path is the gap
    segment C_{t−1}→O. `fresh`: ids checked for marketability at the start. `volume_cap` (with `step`): the most
    one order may fill in this bar; `bar_filled` carries what each order filled earlier in the bar.
    `filled_levels` (the conservative policy, same_bar_refill=False): grid levels that already filled in this bar;
    no other order of such a level may fill before the next bar, so each level fills at most once per bar.
    """

    def __init__(self, trade: Sequence[Decimal], mark: Sequence[Decimal] | None = None, *, ts_ms: int,
                 orders: Iterable[Order], theta: Decimal, costs: CostParams, slippage: Decimal, gap: bool = False,
                 fresh: Iterable[str] = (), volume_cap: Decimal | None = None, step: Decimal | None = None,
                 bar_filled: dict[str, Decimal] | None = None, filled_levels: set[int] | None = None,
                 ladders: Ladders | None = None):
        self.trade = tuple(trade)
        self.marks = tuple(mark) if mark is not None else self.trade
        if len(self.trade) < 1 or len(self.marks) != len(self.trade):
            raise InputError(f"expected a trade path and a mark path of one length >= 1, was {len(self.trade)} and "
                             f"{len(self.marks)}")
        if theta < 0:
            raise InputError(f"expected a trade-through distance >= 0, was {theta}")
        if volume_cap is not None and (step is None or step <= 0):
            raise InputError(f"expected a step size > 0 with a volume cap, was {step}")
        self.ts_ms, self.theta, self.costs, self.slippage, self.gap = ts_ms, theta, costs, slippage, gap
        self.volume_cap, self.step = volume_cap, step
        self.bar_filled = bar_filled if bar_filled is not None else {}
        self.filled_levels = filled_levels
        self.book: dict[str, Order] = {o.id: o for o in orders}
        self._triggers: dict[str, tuple[bool, Decimal, int]] = {}
        # Triggers sorted in the order a falling (rising) price reaches them: (−y | y, rank, id), built lazily.
        self._ladders: tuple[list[tuple[Decimal, int, str]], list[tuple[Decimal, int, str]]] | None = None
        if ladders is not None and ladders.theta == theta:  # another walk's, over this same book: copied
            self._triggers = dict(ladders.triggers)
            self._ladders = (list(ladders.falls), list(ladders.rises))
        self._fresh = [i for i in fresh if i in self.book]
        self._k, self._t = 0, T_START
        self.price, self.mark = self.trade[0], self.marks[0]

    def next_leg(self, trade: Sequence[Decimal], mark: Sequence[Decimal] | None = None, *, gap: bool) -> None:
        """Walk on along a new path of the same bar (its body after its gap) from the book as it is now: the
        orders, their triggers and ladders carry over. Anything still fresh is checked at the new path's start."""
        if not self.done:
            raise InputError(f"expected the walk at the end of its path before the next leg, was at segment "
                             f"{self._k} of {len(self.trade) - 1}")
        trade = tuple(trade)
        marks = tuple(mark) if mark is not None else trade
        if len(trade) < 1 or len(marks) != len(trade):
            raise InputError(f"expected a trade path and a mark path of one length >= 1, was {len(trade)} and "
                             f"{len(marks)}")
        self.trade, self.marks, self.gap = trade, marks, gap
        self._k, self._t = 0, T_START
        self.price, self.mark = trade[0], marks[0]

    def ladders(self) -> Ladders | None:
        """The trigger ladders of the book as it is now (None when never built), for a later walk over the same
        book: Walk(..., ladders=) starts from them instead of sorting the book again. The walk must not be used
        after this (they are handed over, not copied)."""
        if self._ladders is None:
            return None
        return Ladders(self.theta, self._triggers, *self._ladders)

    # --- book ---------------------------------------------------------------------------------------------------

    def add(self, order: Order) -> None:
        """Place an order at the current point; it is checked for marketability at the next `next()`."""
        self.book[order.id] = order
        self._fresh.append(order.id)
        if self._ladders is not None:
            entry = self._ladder_entry(order)
            if entry is not None:
                bisect.insort(self._ladders[0 if entry[0] else 1], entry[1])

    def update(self, order: Order) -> None:
        """Replace an order after a partial fill (it keeps its place and its trigger)."""
        self.book[order.id] = order

    def remove(self, order_id: str) -> None:
        order = self.book.pop(order_id, None)
        if order is not None and self._ladders is not None:
            entry = self._ladder_entry(order)
            if entry is not None:
                self._ladders[0 if entry[0] else 1].remove(entry[1])

    @property
    def done(self) -> bool:
        return self._k >= len(self.trade) - 1

    def fillable_qty(self, order: Order) -> Decimal:
        """What the order may fill now: its remaining quantity, or less under the participation cap."""
        if self.volume_cap is None or self.step is None:
            return order.remaining
        room = self.volume_cap - self.bar_filled.get(order.id, ZERO)
        room = (room / self.step).to_integral_value(rounding=ROUND_FLOOR) * self.step
        return max(ZERO, min(order.remaining, room))

    def _eligible(self, order: Order) -> bool:
        if order.active_from_ms > self.ts_ms:
            return False
        if self.filled_levels is not None and order.level is not None and order.level in self.filled_levels:
            return False
        return self.volume_cap is None or order.kind is not OrderKind.LIMIT or self.fillable_qty(order) > 0

    def _trigger(self, order: Order) -> tuple[bool, Decimal, int] | None:
        """(falls to trigger, trigger price, rank) of a limit or stop; cached per order."""
        cached = self._triggers.get(order.id)
        if cached is None:
            if order.kind not in (OrderKind.LIMIT, OrderKind.STOP_MARKET) or order.price is None:
                return None
            stop = order.kind is OrderKind.STOP_MARKET
            falling = _falls_to_fill(order)
            theta = ZERO if stop else self.theta
            cached = (falling, order.price - theta if falling else order.price + theta,
                      RANK_STOP if stop else RANK_LIMIT)
            self._triggers[order.id] = cached
        return cached

    # --- walking ------------------------------------------------------------------------------------------------

    def next(self, thresholds: Sequence[MarkThreshold] = ()) -> Hit | None:
        """The next event from the current point (and move there); None at the end of the path."""
        if self._fresh:
            fresh = self._fresh_hit()
            if fresh is not None:
                return fresh
        if self.done:
            return None
        hit = self._segment_hit(thresholds)
        if hit is not None:
            self._k, self._t, self.price, self.mark = hit.segment, hit.t, hit.price, hit.mark
            return hit
        k = self._k
        self._k, self._t = k + 1, T_START
        self.price, self.mark = self.trade[k + 1], self.marks[k + 1]
        return Hit(HitKind.VERTEX, k, T_END, self.price, self.mark)

    def _fresh_hit(self) -> Hit | None:
        while self._fresh:
            order = self.book.get(self._fresh.pop(0))
            if order is None or order.kind is not OrderKind.LIMIT or not self._eligible(order):
                continue
            x = self.price
            marketable = order.price >= x if order.side is OrderSide.BUY else order.price <= x
            if marketable:
                return Hit(HitKind.ORDER, self._k, self._t, x, self.mark, order, reference=x)
        return None

    def _ladder_entry(self, order: Order) -> tuple[bool, tuple[Decimal, int, str]] | None:
        trigger = self._trigger(order)
        if trigger is None:
            return None
        falling, y, rank = trigger
        return falling, (-y if falling else y, rank, order.id)

    def _ladder(self) -> tuple[list[tuple[Decimal, int, str]], list[tuple[Decimal, int, str]]]:
        if self._ladders is None:  # _trigger inlined: this runs over the whole book once per walk
            falls, rises = [], []
            theta, triggers = self.theta, self._triggers
            for oid, order in self.book.items():
                if order.price is None:
                    continue
                if order.kind is OrderKind.LIMIT:
                    falling, rank = order.side is OrderSide.BUY, RANK_LIMIT
                    y = order.price - theta if falling else order.price + theta
                elif order.kind is OrderKind.STOP_MARKET:
                    falling, rank, y = order.side is OrderSide.SELL, RANK_STOP, order.price - ZERO
                else:
                    continue
                triggers[oid] = (falling, y, rank)
                if falling:
                    falls.append((-y, rank, oid))
                else:
                    rises.append((y, rank, oid))
            falls.sort()
            rises.sort()
            self._ladders = (falls, rises)
        return self._ladders

    def _segment_hit(self, thresholds: Sequence[MarkThreshold]) -> Hit | None:
        """The first event on the current segment: the minimum of (t, rank, id) over every eligible order (those
        already beyond their trigger act at the current point) and every threshold. The ladders give the same
        minimum as a scan of the whole book: on one ladder, reach order is t order, and equal triggers are sorted by
        (rank, id)."""
        k = self._k
        a, b = self.trade[k], self.trade[k + 1]
        x = self.price
        best: tuple[tuple, Hit] | None = None
        for ladder, falling in zip(self._ladder(), (True, False), strict=True):
            moving = (b < a) if falling else (b > a)
            for key_y, _, oid in ladder:
                y = -key_y if falling else key_y
                beyond = y > x if falling else y < x
                if not beyond and not (moving and ((b <= y) if falling else (b >= y))):
                    break  # this trigger and every later one lie beyond the segment's end
                order = self.book[oid]
                if not self._eligible(order):
                    continue
                cand = self._order_candidate(order, a, b)
                if cand is not None and (best is None or cand[0] < best[0]):
                    best = cand
                if not beyond:
                    break  # the first eligible trigger along the segment: later ones are reached later
        for th in thresholds:
            cand = self._threshold_candidate(th)
            if cand is not None and (best is None or cand[0] < best[0]):
                best = cand
        return None if best is None else best[1]

    def _order_candidate(self, order: Order, a: Decimal, b: Decimal) -> tuple[tuple, Hit] | None:
        trigger = self._trigger(order)
        if trigger is None:
            return None
        falling, y, rank = trigger
        x = self.price
        if (y > x) if falling else (y < x):  # already beyond the trigger: act here, against the current price
            hit = Hit(HitKind.ORDER, self._k, self._t, x, self.mark, order, reference=x)
            return (self._t, rank, order.id), hit
        if not ((b <= y) if falling else (b >= y)) or a == b:
            return None
        t = _at(a, b, y)
        reference = (b if self.gap else y) if rank == RANK_STOP else None
        hit = Hit(HitKind.ORDER, self._k, t, y, _lerp(self.marks[self._k], self.marks[self._k + 1], t), order,
                  reference=reference)
        return (t, rank, order.id), hit

    def _threshold_candidate(self, th: MarkThreshold) -> tuple[tuple, Hit] | None:
        k = self._k
        ma, mb = self.marks[k], self.marks[k + 1]
        a, b = self.trade[k], self.trade[k + 1]
        beyond = self.mark <= th.price if th.falling else self.mark >= th.price
        if beyond:
            t, mark, price = self._t, self.mark, self.price
        elif ((mb <= th.price) if th.falling else (mb >= th.price)) and ma != mb:
            t = _at(ma, mb, th.price)
            mark, price = th.price, _lerp(a, b, t)
        else:
            return None
        reference = b if self.gap else price
        hit = Hit(HitKind.THRESHOLD, k, t, price, mark, threshold=th, reference=reference)
        return (t, th.rank, th.name), hit

    # --- fills --------------------------------------------------------------------------------------------------

    def _fee(self, qty: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        rate = self.costs.maker_fee if liquidity is Liquidity.MAKER else self.costs.taker_fee
        return money(qty * price * rate)

    def _book_filled(self, order_id: str, qty: Decimal, level: int | None) -> None:
        self.bar_filled[order_id] = self.bar_filled.get(order_id, ZERO) + qty
        if self.filled_levels is not None and level is not None:
            self.filled_levels.add(level)

    def maker_fill(self, order: Order, qty: Decimal) -> Fill:
        """A resting limit hit at its own price."""
        if order.price is None:
            raise InputError(f"order {order.id}: expected a limit price for a maker fill, was None")
        self._book_filled(order.id, qty, order.level)
        return Fill(order.id, self.ts_ms, order.side, qty, order.price, self._fee(qty, order.price, Liquidity.MAKER),
                    Liquidity.MAKER, order.purpose, order.price, ZERO, order.level, order.pair_price)

    def taker_fill(self, *, order_id: str, side: OrderSide, qty: Decimal, reference: Decimal, reason: FillReason,
                   limit: Decimal | None = None, level: int | None = None,
                   pair_price: Decimal | None = None) -> Fill:
        """A market fill against `reference` with the walk's slippage (capped at `limit` for a marketable limit)."""
        if qty <= 0:
            raise InputError(f"order {order_id}: expected a fill quantity > 0, was {qty}")
        price = reference * (1 + self.slippage) if side is OrderSide.BUY else reference * (1 - self.slippage)
        if limit is not None:
            price = min(price, limit) if side is OrderSide.BUY else max(price, limit)
        self._book_filled(order_id, qty, level)
        return Fill(order_id, self.ts_ms, side, qty, price, self._fee(qty, price, Liquidity.TAKER), Liquidity.TAKER,
                    reason, reference, money(qty * abs(price - reference)), level, pair_price)

    def fill_order_hit(self, hit: Hit, qty: Decimal | None = None) -> Fill:
        """The fill of an ORDER hit for `qty` (default: what the order may fill now)."""
        order = hit.order
        if order is None:
            raise InputError(f"expected an order hit, was {hit.kind}")
        qty = self.fillable_qty(order) if qty is None else qty
        if hit.maker:
            return self.maker_fill(order, qty)
        assert hit.reference is not None
        limit = order.price if order.kind is OrderKind.LIMIT else None
        return self.taker_fill(order_id=order.id, side=order.side, qty=qty, reference=hit.reference,
                               reason=order.purpose, limit=limit, level=order.level, pair_price=order.pair_price)


def simulate_bar(orders: Iterable[Order], bar: SimBar, *, policy: FillPolicyParams, costs: CostParams, tick: Decimal,
                 prev_close: Decimal | None = None, slippage: Decimal | None = None) -> list[Fill]:
    """Walk one bar with no strategy on top: every order that triggers fills its remaining quantity (a stop its
    qty, as taker) and nothing is re-placed. For tests and what-ifs; the engine drives `Walk` itself."""
    points = bar_path(bar, policy.path, prev_close)
    theta = policy.trade_through_ticks * tick
    s = costs.slippage if slippage is None else slippage
    book = list(orders)
    fills: list[Fill] = []
    legs = [(points[:2], True), (points[1:], False)] if len(points) == 5 else [(points, False)]
    for leg, gap in legs:
        walk = Walk(leg, ts_ms=bar.ms, orders=book, theta=theta, costs=costs, slippage=s, gap=gap)
        while (hit := walk.next()) is not None:
            if hit.kind is HitKind.ORDER and hit.order is not None:
                fills.append(walk.fill_order_hit(hit, hit.order.remaining))
                walk.remove(hit.order.id)
        book = list(walk.book.values())
    return fills
