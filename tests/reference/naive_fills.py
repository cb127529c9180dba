"""Slow, obviously correct reference for gridcore.sim.path and gridcore.sim.matching.

The path is rebuilt from §5.2 by hand, then walked one tick at a time: at every tick price p, each live order is
tested against p (BUY limit: p <= P − θ, SELL limit: p >= P + θ, SELL stop: p <= K, BUY stop: p >= K); orders
triggered at the same p go stops first, then by id. Limits fill at P; stops against K, or against O on the gap
segment C_{t−1}→O. Every price must lie on the tick grid, and no order may be triggered at the path's first point.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class NaiveOrder:
    id: str
    kind: str  # "LIMIT" | "STOP"
    side: str  # "BUY" | "SELL"
    price: Decimal


def naive_path(o: Decimal, h: Decimal, lo: Decimal, c: Decimal, prev_close: Decimal | None,
               rule: str) -> list[Decimal]:
    if rule == "bar_direction":
        high_first = c < o
    elif rule == "adaptive":
        high_first = (h - o) < (o - lo)
    else:
        high_first = True
    body = [o, h, lo, c] if high_first else [o, lo, h, c]
    if prev_close is not None and prev_close != o:
        return [prev_close] + body
    return body


def _triggered(order: NaiveOrder, p: Decimal, theta: Decimal) -> bool:
    if order.kind == "STOP":
        return p <= order.price if order.side == "SELL" else p >= order.price
    return p <= order.price - theta if order.side == "BUY" else p >= order.price + theta


def naive_fills(points: list[Decimal], orders: list[NaiveOrder], *, tick: Decimal, theta: Decimal,
                gap_first: bool) -> list[tuple[str, Decimal]]:
    """(order id, reference price) in fill order; `gap_first`: the first segment is the gap C_{t−1}→O."""
    live = list(orders)
    out: list[tuple[str, Decimal]] = []
    for k in range(len(points) - 1):
        a, b = points[k], points[k + 1]
        if a == b:
            continue
        step = tick if b > a else -tick
        n = int((b - a) / step)
        is_gap = gap_first and k == 0
        for i in range(1, n + 1):
            p = a + i * step
            hits = [o for o in live if _triggered(o, p, theta)]
            hits.sort(key=lambda o: (0 if o.kind == "STOP" else 1, o.id))
            for o in hits:
                ref = (b if is_gap else o.price) if o.kind == "STOP" else o.price
                out.append((o.id, ref))
                live.remove(o)
    return out
