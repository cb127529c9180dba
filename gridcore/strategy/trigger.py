"""The Trigger's decision: at a 15m close, do the VSA signals confirm a grid start at the active zone?

A pure function of the closed trigger bars up to the evaluation time (a fixed tail window, so later bars never
change the answer) and the zone's levels, bias and squeeze state. Used by the `trigger` command and the backtest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gridcore.analysis.vsa import signal_names
from gridcore.bars import Bars
from gridcore.errors import DataError, InputError
from gridcore.params import StrategyParams
from gridcore.strategy.start_rule import StartDecision, WindowZone, check_window_zone, decide_windows
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
    out = TriggerEvaluator(bars=bars, params=params, tick=tick).evaluate([at_ms], [zone])[0]
    if isinstance(out, DataError):
        raise out
    return out


class TriggerEvaluator:
    """evaluate_trigger for many (time, zone) pairs over the same bars: the one implementation (evaluate_trigger is
    a batch of one), with the VSA signals and the start rule of every window in one kernel call. Call
    `bars.warm()` first when evaluating many times over long bars."""

    def __init__(self, *, bars: Bars, params: StrategyParams, tick: float):
        self.bars, self.params, self.tick = bars, params, tick
        self.step = interval_ms(params.timeframes.trigger_interval)
        self.min_bars = params.vsa.lookback + max(params.vsa.strength_window, params.vsa.weak_window) + 1

    def evaluate(self, times: Sequence[int], zones: Sequence[ZoneContext]) -> list[TriggerEvaluation | DataError]:
        """Per (time, zone): the evaluation, or the DataError evaluate_trigger raises for it (no bar closing then,
        too few bars). Any other error is raised, for the first pair that has one, as evaluate_trigger would."""
        bars, params, step = self.bars, self.params, self.step
        if len(times) != len(zones):
            raise InputError(f"expected one zone per time, were {len(zones)} zones for {len(times)} times")
        if not len(times):
            return []
        if bars.interval != params.timeframes.trigger_interval:  # every pair's first check
            raise InputError(f"expected {params.timeframes.trigger_interval} trigger bars, was {bars.interval}")
        at = np.asarray(times, np.int64)
        off_grid = np.flatnonzero(at % step)
        usable = int(off_grid[0]) if off_grid.size else at.size  # pairs before the first time off the grid
        iv = bars.interval_ms
        open_ms = bars.open_ms
        his = open_ms.searchsorted(at - iv + 1, side="left")  # = len(bars.closed_by(t))
        los = np.minimum(open_ms.searchsorted(at - TRIGGER_WINDOW_BARS * step, side="left"), his)
        closes = np.where(his > los, open_ms[np.maximum(his - 1, 0)] + iv, -1) if open_ms.size else his - 1
        ok = (his > los) & (closes == at) & (his - los >= self.min_bars)
        a, b = int(los.min()), int(his.max())
        o, h, lo_, c, v = bars.float_rows(a, b)
        prices_all = c[np.where(ok, his - 1 - a, 0)].tolist() if c.size else [0.0] * at.size
        out: list[TriggerEvaluation | DataError | None] = []
        kept, wzones, tols = [], [], []  # the pairs evaluated: index, zone, tolerance
        as_window_zone: dict[int, WindowZone] = {}  # one per distinct zone object
        for k, (t_ms, lo, hi, good, zone) in enumerate(zip(at.tolist(), los.tolist(), his.tolist(), ok.tolist(),
                                                          zones, strict=True)):
            try:
                if k == usable:
                    raise InputError(f"expected a {params.timeframes.trigger_interval} close (UTC), was "
                                     f"{ms_to_iso(t_ms)}")
                if not good:
                    out.append(self._window_error(t_ms, lo, hi))
                    continue
                tol = near_tolerance(atr=zone.atr, price=prices_all[k], params=params)
            except Exception:
                checked: dict = {}
                for wz, wtol in zip(wzones, tols, strict=True):  # an earlier pair's error comes first
                    check_window_zone(wz, wtol, self.tick, params.vsa, checked)
                raise
            wz = as_window_zone.get(id(zone))
            if wz is None:
                wz = as_window_zone[id(zone)] = WindowZone(zone.s1, zone.s2, zone.r1, zone.r2, zone.bias,
                                                           zone.squeeze_state, zone.fire_dir)
            kept.append(k)
            wzones.append(wz)
            tols.append(tol)
            out.append(None)
        windows = np.stack([los[kept], his[kept]], axis=1) - a
        decisions, bits = decide_windows(o, h, lo_, c, v, windows, wzones, tols, tick=self.tick, params=params.vsa)
        source_interval = bars.source_interval
        setups: dict[tuple[int, int], tuple[str, ...]] = {}  # per (shared decision, window length)
        for k, n_bars, d, now_bits, tol in zip(kept, (his[kept] - los[kept]).tolist(), decisions, bits, tols,
                                               strict=True):
            setup = setups.get((id(d), n_bars))
            if setup is None:
                setup = setups[id(d), n_bars] = _setup(d, n_bars - 1)
            out[k] = TriggerEvaluation(
                bar_ms=times[k], price=prices_all[k], start=d.start, direction=d.direction, reasons=d.reasons,
                signals=signal_names(now_bits), setup=setup, strength=float(d.strength),
                tol=tol if math.isfinite(tol) else 0.0,
                details={"window_bars": n_bars, "source_interval": source_interval},
            )
        return out  # type: ignore[return-value]

    def _window_error(self, at_ms: int, lo: int, hi: int) -> DataError | None:
        bars = self.bars
        last_close = int(bars.open_ms[hi - 1]) + bars.interval_ms if hi > lo else None
        if last_close is None or last_close != at_ms:
            last = ms_to_iso(last_close) if last_close is not None else "none in the window"
            return DataError(f"no {bars.symbol} {bars.market} {bars.interval} bar closes at {ms_to_iso(at_ms)} "
                             f"(last closed bar: {last})")
        if hi - lo < self.min_bars:
            return DataError(f"expected at least {self.min_bars} {bars.interval} bars before {ms_to_iso(at_ms)} for "
                             f"VSA, was {hi - lo} ({bars.symbol} {bars.market})")
        return None


def _setup(decision: StartDecision, t: int) -> tuple[str, ...]:
    """The decision's signals with bar numbers relative to the evaluated bar t."""
    return tuple(_relative(s, t) for s in decision.signals) if decision.signals else ()


def _relative(signal: str, t: int) -> str:
    """'SPRING@187 near S1' -> 'SPRING@-3 near S1': bar numbers inside a window mean nothing outside it."""
    head, _, rest = signal.partition(" ")
    name, _, bar = head.partition("@")
    if bar.lstrip("-").isdigit():
        head = f"{name}@{int(bar) - t}"
    return f"{head} {rest}".strip()
