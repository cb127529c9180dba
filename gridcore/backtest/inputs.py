"""The executor's per-bar inputs, as pure functions shared by paper trading and backtests (one decision path).

For each execution bar (open time `open_ms`) the executor passes the engine:

- the start signal: the newest NEW signal with bar_time <= open_ms < expires_at (`pick_signal`), only while the
  strategy is IDLE or HALTED (`signal_for_bar`: a running grid leaves later signals to expire); a NEW signal whose
  expiry is at or before open_ms expires at this bar;
- the StartSignal built from the zone's stored numbers (`zone_decimal` is the stored form of a scan's float level)
  and, on the perpetual, the last funding rate settled at or before open_ms (`funding_rate_at`);
- the funding events inside the bar (`group_funding`: each event goes to the bar containing it, or to the next
  bar when that one is missing);
- the squeeze fire direction of the newest scan at or before open_ms while that scan is in force (`FireLookup`).

After the bar, `signal_outcome(events, ref)` says whether the passed signal was consumed (a grid started) or
rejected (the engine refused it).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TypeVar

from gridcore.domain.orders import FundingEvent
from gridcore.domain.transitions import SignalStatus, SignalTrigger, StrategyStatus, StrategyTrigger
from gridcore.strategy import engine as eng
from gridcore.strategy.engine import StartSignal
from gridcore.strategy.scanner import zone_atr_decimal, zone_decimal  # noqa: F401  (re-exported: inputs.zone_decimal)

S = TypeVar("S")
# A signal's (status, bar_ms, expires_ms): lets one selection work on TradingSignal rows and backtest records.
Window = Callable[[S], tuple[str, int, int]]
_TAKES_SIGNAL = (StrategyStatus.IDLE, StrategyStatus.HALTED)


def pick_signal(pending: Iterable[S], open_ms: int, *, window: Window) -> tuple[S | None, list[S]]:
    """(the newest NEW signal in force at open_ms, the NEW signals that expired by then). `pending` is ordered by
    bar time (then id): the last one in force wins."""
    current, expired = None, []
    for sig in pending:
        status, b, e = window(sig)
        if status != SignalStatus.NEW:
            continue
        if e <= open_ms:
            expired.append(sig)
        elif b <= open_ms:
            current = sig
    return current, expired


def signal_for_bar(pending: Iterable[S], open_ms: int, status: StrategyStatus | str, *,
                   window: Window) -> tuple[S | None, list[S]]:
    """pick_signal, passing the signal only while IDLE or HALTED (one grid per symbol: it waits, and expires)."""
    sig, expired = pick_signal(pending, open_ms, window=window)
    if sig is not None and status not in _TAKES_SIGNAL:
        sig = None
    return sig, expired


def signal_outcome(events: Sequence[eng.Event], ref: str | None) -> SignalTrigger | None:
    """What the bar did with the signal passed as `ref`: CONSUME (a grid started), REJECT (refused) or None."""
    if ref is None:
        return None
    for ev in events:
        if isinstance(ev, eng.StateChanged) and ev.trigger is StrategyTrigger.START:
            return SignalTrigger.CONSUME
        if isinstance(ev, eng.GridRefused) and ev.signal_ref == ref:
            return SignalTrigger.REJECT
    return None


def start_signal(*, ref: str, direction: str, s1, s2, r1, r2, atr, funding_rate=None) -> StartSignal:
    """The engine's StartSignal from a zone's stored numbers (Decimal, or the string / Decimal a column returns)."""
    return StartSignal(ref=ref, direction=direction, s1=Decimal(s1), s2=Decimal(s2), r1=Decimal(r1),
                       r2=Decimal(r2), atr=Decimal(atr),
                       funding_rate=None if funding_rate is None else Decimal(funding_rate))


def funding_rate_at(times_ms: Sequence[int], rates: Sequence[Decimal], open_ms: int) -> Decimal | None:
    """The last rate settled at or before open_ms (times ascending), None before the first."""
    i = bisect.bisect_right(times_ms, open_ms) - 1
    return None if i < 0 else rates[i]


def group_funding(times_ms: Iterable[int], rates: Iterable[Decimal], *, first_ms: int, step: int,
                  bar_open_ms: Sequence[int] | None = None) -> dict[int, list[FundingEvent]]:
    """Funding events keyed by the open time of the bar containing them (bars on the grid first_ms + k·step);
    events before first_ms are left out. With `bar_open_ms` (the bars that will be applied, ascending), an event
    that falls in a missing bar goes to the next bar that exists, so a gap in the data never loses a payment; one
    after the last bar waits (for a later batch)."""
    out: dict[int, list[FundingEvent]] = {}
    for ms, rate in zip(times_ms, rates, strict=True):
        ms = int(ms)
        if ms < first_ms:
            continue
        key = ms - (ms - first_ms) % step
        if bar_open_ms is not None:
            k = bisect.bisect_left(bar_open_ms, key)
            if k == len(bar_open_ms):
                continue
            key = int(bar_open_ms[k])
        out.setdefault(key, []).append(FundingEvent(ms, Decimal(rate)))
    return out


class FireLookup:
    """fire_dir at a bar's open: that of the newest scan at or before it, while that scan is in force (so the answer
    never depends on how far back the scans were loaded). `fires`: (scan ms, valid-until ms, fire_dir)."""

    def __init__(self, fires: Iterable[tuple[int, int, int]]):
        self.fires = sorted((int(a), int(b), int(d)) for a, b, d in fires)

    def at(self, open_ms: int) -> int:
        i = bisect.bisect_right(self.fires, (open_ms, 2**62, 2)) - 1
        return self.fires[i][2] if i >= 0 and open_ms < self.fires[i][1] else 0
