"""The Trigger's decision: at a 15m close, do the VSA signals confirm a grid start at the active zone?

A pure function of the closed trigger bars up to the evaluation time (a fixed tail window, so later bars never
change the answer) and the zone's levels, bias and squeeze state. Used by the `trigger` command and the backtest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gridcore.bars import Bars
from gridcore.errors import DataError, InputError
from gridcore.params import StrategyParams
from gridcore.strategy.start_rule import evaluate_last_bar
from gridcore.timeframes import interval_ms, ms_to_iso

TRIGGER_WINDOW_BARS = 200  # 15m bars read per evaluation (50 h): the VSA averages, windows and the ATR seed


@dataclass(frozen=True)
class ZoneContext:
    """What the trigger needs of a zone (a GridZone row or a ZoneScan)."""

    s2: float
    s1: float
    r1: float
    r2: float
    atr: float  # of the analysis interval (4h): sets the near-level tolerance
    bias: int
    squeeze_state: str
    fire_dir: int


@dataclass(frozen=True)
class TriggerEvaluation:
    bar_ms: int
    price: float
    start: bool
    direction: str | None
    reasons: tuple[str, ...]
    signals: tuple[str, ...]  # VSA signals seen on the evaluated bar
    setup: tuple[str, ...]  # the signals behind the decision ("SELLING_CLIMAX@-3 near S1": bar offset from t)
    strength: float
    tol: float
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"bar_time": ms_to_iso(self.bar_ms), "price": self.price, "start": self.start,
                "direction": self.direction, "reasons": list(self.reasons), "signals": list(self.signals),
                "setup": list(self.setup), "strength": self.strength, "tol": self.tol}


def near_tolerance(*, atr: float, price: float, params: StrategyParams) -> float:
    """tol of §2.4: max(tol_atr·ATR, tol_pct·price)."""
    return max(params.ma.tol_atr * atr, params.ma.tol_pct * price)


def evaluate_trigger(*, bars: Bars, at_ms: int, zone: ZoneContext, params: StrategyParams,
                     tick: float) -> TriggerEvaluation:
    """Evaluate the trigger bar closing at `at_ms` against the zone."""
    step = interval_ms(params.timeframes.trigger_interval)
    if bars.interval != params.timeframes.trigger_interval:
        raise InputError(f"expected {params.timeframes.trigger_interval} trigger bars, was {bars.interval}")
    if at_ms % step:
        raise InputError(f"expected a {params.timeframes.trigger_interval} close (UTC), was {ms_to_iso(at_ms)}")
    seen = bars.closed_by(at_ms).slice_ms(at_ms - TRIGGER_WINDOW_BARS * step, None)
    if len(seen) == 0 or int(seen.close_ms[-1]) != at_ms:
        last = ms_to_iso(int(seen.close_ms[-1])) if len(seen) else "none in the window"
        raise DataError(f"no {bars.symbol} {bars.market} {bars.interval} bar closes at {ms_to_iso(at_ms)} "
                        f"(last closed bar: {last})")
    min_bars = params.vsa.lookback + max(params.vsa.strength_window, params.vsa.weak_window) + 1
    if len(seen) < min_bars:
        raise DataError(f"expected at least {min_bars} {bars.interval} bars before {ms_to_iso(at_ms)} for VSA, "
                        f"was {len(seen)} ({bars.symbol} {bars.market})")
    price = float(seen.close[-1])
    tol = near_tolerance(atr=zone.atr, price=price, params=params)
    ev = evaluate_last_bar(seen.open, seen.high, seen.low, seen.close, seen.volume, s1=zone.s1, s2=zone.s2,
                           r1=zone.r1, r2=zone.r2, tol=tol, tick=tick, bias=zone.bias,
                           squeeze_state=zone.squeeze_state, fire_dir=zone.fire_dir, params=params.vsa)
    t = len(seen) - 1
    d = ev.decision
    seen_now = tuple(str(s) for s in ev.signals.signals_at(t))
    return TriggerEvaluation(
        bar_ms=at_ms, price=price, start=d.start, direction=d.direction, reasons=tuple(d.reasons),
        signals=seen_now, setup=tuple(_relative(s, t) for s in d.signals), strength=float(d.strength),
        tol=tol if math.isfinite(tol) else 0.0,
        details={"window_bars": len(seen), "source_interval": seen.source_interval},
    )


def _relative(signal: str, t: int) -> str:
    """'SPRING@187 near S1' -> 'SPRING@-3 near S1': bar numbers inside a window mean nothing outside it."""
    head, _, rest = signal.partition(" ")
    name, _, bar = head.partition("@")
    if bar.lstrip("-").isdigit():
        head = f"{name}@{int(bar) - t}"
    return f"{head} {rest}".strip()
