"""The grid-start rule: VSA setup at a box level (algorithms.md §3.3) gated by squeeze state and MA25 bias (§2.4,
§2.5, §8.5). A pure function of closed bars <= t.

Support setup (LONG and NEUTRAL grids), with near(S) = L <= S + tol and C >= S - tol:
    strength: SC, SV, SO or SP at a bar u in (t-strength_window, t] with near(S1) or near(S2) at u
    retest:   NS or TEST at a bar w with u < w <= t and w > t-retest_window
    intact:   min(L[u+1..t]) >= L[u] - tol
    veto:     UT or ND at a bar x in (t-weak_window, t] with nearR(R1) or nearR(R2) at x
Resistance setup (SHORT grids), the mirror, with nearR(R) = H >= R - tol and C <= R + tol:
    strength: UT or ND ("supply") at u with nearR(R1) or nearR(R2) at u
    retest:   ND or UPTHRUST_CONFIRMED at w (u < w <= t, w > t-retest_window): ND mirrors NS; there is no
              "test of demand" signal, so the down bar confirming an upthrust stands in for the mirror of TEST
    intact:   max(H[u+1..t]) <= H[u] + tol
    veto:     SP, SO or NS at x in (t-weak_window, t] with near(S1) or near(S2) at x (the mirrors of UT, ND)
Windows are gridcore.params.VsaParams.strength_window / retest_window / weak_window (20 / 5 / 5).
A setup holds when some strength bar u has its retest and is intact, and there is no veto.

Gating (the VSA setup is always required, on the side of the grid):
    WARMUP      -> no start (the squeeze has too few bars)
    COMPRESSION -> no start
    FIRED       -> only fire_dir (+1 LONG, -1 SHORT); no start when fire_dir == 0 or bias == -fire_dir
    RANGING     -> per bias: +1 LONG, -1 SHORT, 0 NEUTRAL
    TRENDING    -> per bias: +1 LONG, -1 SHORT; bias 0 has no bias side, so no start
Bias -1 therefore never yields a LONG grid and bias +1 never a SHORT one.

StartDecision.strength is the completeness of the setup for the grid's side, in [0, 1]: 0 without a strength bar,
else (1 + retest + intact + no veto) / 4 for the strength bar closest to complete (the latest on ties); when the
gate allows no side it is the larger value of the two setups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gridcore.analysis.vsa import (
    DEFAULT_PARAMS,
    SIGNAL_ORDER,
    SignalEvent,
    VsaParams,
    VsaSignal,
    VsaSignalArrays,
    ZoneLevels,
    vsa_signal_arrays,
)
from gridcore.errors import InputError

SQUEEZE_STATES = ("WARMUP", "COMPRESSION", "FIRED", "RANGING", "TRENDING")  # = analysis.squeeze.SqueezeState
LONG, SHORT, NEUTRAL = "LONG", "SHORT", "NEUTRAL"


def _bits(*signals: VsaSignal) -> int:
    out = 0
    for s in signals:
        out |= s.bit
    return out


V = VsaSignal
SUPPORT_STRENGTH = _bits(V.SELLING_CLIMAX, V.STOPPING_VOLUME, V.SHAKEOUT, V.SPRING)
SUPPORT_RETEST = _bits(V.NO_SUPPLY, V.TEST)
SUPPORT_VETO = _bits(V.UPTHRUST, V.NO_DEMAND)
RESISTANCE_STRENGTH = _bits(V.UPTHRUST, V.NO_DEMAND)
RESISTANCE_RETEST = _bits(V.NO_DEMAND, V.UPTHRUST_CONFIRMED)
RESISTANCE_VETO = _bits(V.SPRING, V.SHAKEOUT, V.NO_SUPPLY)


@dataclass(frozen=True)
class StartDecision:
    """start: may a grid start at bar t; direction: LONG / SHORT / NEUTRAL when it may, else None.

    reasons: readable, stable strings (always at least one); signals: the VSA signals behind the decision as
    "SIGNAL@bar" (with " near LEVEL" for located ones); strength: setup completeness in [0, 1].
    """

    start: bool
    direction: str | None
    reasons: tuple[str, ...]
    signals: tuple[str, ...]
    strength: float


@dataclass(frozen=True, eq=False)
class LastBarEvaluation:
    """evaluate_last_bar's answer: the decision at the last bar and the VSA signals of the bars it looked at."""

    decision: StartDecision
    signals: VsaSignalArrays

    @cached_property
    def events(self) -> tuple[SignalEvent, ...]:
        """The VSA events of the evaluated bars (built on first access; the decision does not need them)."""
        return tuple(self.signals.events())


@dataclass(frozen=True)
class _Setup:
    ok: bool
    score: float
    reasons: tuple[str, ...]
    signals: tuple[str, ...]


def _num(x: float) -> str:
    return repr(float(x))


def _names(bits: int) -> list[str]:
    return [s.value for s in SIGNAL_ORDER if bits & s.bit]


def _signed(x: int) -> str:
    return f"{x:+d}" if x else "0"


class _Window:
    """Bars lo..t as Python lists (index x - lo) and their signal bits by absolute bar."""

    def __init__(self, masks: dict[int, int], high, low, close, lo: int, t: int):
        self.masks, self.lo, self.t = masks, lo, t
        self.high = np.asarray(high[lo: t + 1], dtype=np.float64).tolist()
        self.low = np.asarray(low[lo: t + 1], dtype=np.float64).tolist()
        self.close = np.asarray(close[lo: t + 1], dtype=np.float64).tolist()

    def near(self, resistance: bool, levels: tuple[tuple[str, float | None], ...], x: int,
             tol: float) -> str | None:
        """The first level bar x is near, else None: near(S) = L <= S + tol and C >= S - tol; for resistance
        nearR(R) = H >= R - tol and C <= R + tol."""
        i = x - self.lo
        for name, level in levels:
            if level is None:
                continue
            if resistance and self.high[i] >= level - tol and self.close[i] <= level + tol:
                return name
            if not resistance and self.low[i] <= level + tol and self.close[i] >= level - tol:
                return name
        return None


@dataclass(frozen=True)
class _SideRule:
    """One side's setup: `mirror` = False for the support (long / neutral) side, True for the resistance side."""

    mirror: bool
    strength_bits: int
    retest_bits: int
    veto_bits: int
    no_levels: str
    no_strength: str
    no_retest: str
    veto_prefix: str


def _side_rule(mirror: bool, strength_window: int, retest_window: int) -> _SideRule:
    if mirror:
        return _SideRule(True, RESISTANCE_STRENGTH, RESISTANCE_RETEST, RESISTANCE_VETO,
                         "no resistance levels R1/R2 given",
                         f"no supply signal (UT/ND) near R1/R2 in the last {strength_window} bars",
                         f"no ND/UT-confirmation retest after the supply bar in the last {retest_window} bars",
                         "strength at support")
    return _SideRule(False, SUPPORT_STRENGTH, SUPPORT_RETEST, SUPPORT_VETO, "no support levels S1/S2 given",
                     f"no strength signal near S1/S2 in the last {strength_window} bars",
                     f"no NS/T retest after the strength bar in the last {retest_window} bars",
                     "weakness at resistance")


def _vetoes(rule: _SideRule, w: _Window, other, tol: float, weak_window: int) -> tuple[list[str], list[str]]:
    """(signals, reasons) of the veto signals near the opposite levels in the last weak_window bars."""
    signals: list[str] = []
    reasons: list[str] = []
    for x in range(max(w.lo, w.t - weak_window + 1), w.t + 1):
        bits = w.masks.get(x, 0) & rule.veto_bits
        name = w.near(not rule.mirror, other, x, tol) if bits else None
        if name is not None:
            for s in _names(bits):
                signals.append(f"{s}@{x} near {name}")
                reasons.append(f"{rule.veto_prefix}: {s} at bar {x} near {name}")
    return signals, reasons


def _best_strength(rule: _SideRule, w: _Window, own, tol: float, strength_window: int, retest_window: int):
    """The strength bar closest to a complete setup, the latest on ties, as
    (u, level name, retest bar or None, extreme after u or None, intact); None without a strength bar."""
    t, masks = w.t, w.masks
    best = None
    best_rank = -1
    for u in range(t, max(w.lo, t - strength_window + 1) - 1, -1):
        bits = masks.get(u, 0) & rule.strength_bits
        name = w.near(rule.mirror, own, u, tol) if bits else None
        if name is None:
            continue
        retest = next((x for x in range(t, max(u, t - retest_window), -1) if masks.get(x, 0) & rule.retest_bits),
                      None)
        i = u - w.lo
        extreme = None
        intact = True
        if u < t and rule.mirror:
            extreme = max(w.high[i + 1:])
            intact = extreme <= w.high[i] + tol
        elif u < t:
            extreme = min(w.low[i + 1:])
            intact = extreme >= w.low[i] - tol
        rank = int(retest is not None) + int(intact)
        if rank > best_rank:
            best, best_rank = (u, name, retest, extreme, intact), rank
        if rank == 2:
            break
    return best


def _evaluate_side(rule: _SideRule, w: _Window, *, supports, resistances, tol: float, params: VsaParams) -> _Setup:
    own, other = (resistances, supports) if rule.mirror else (supports, resistances)
    veto_signals, veto_reasons = _vetoes(rule, w, other, tol, params.weak_window)
    if all(level is None for _, level in own):
        return _Setup(False, 0.0, (rule.no_levels, *veto_reasons), tuple(veto_signals))
    best = _best_strength(rule, w, own, tol, params.strength_window, params.retest_window)
    if best is None:
        return _Setup(False, 0.0, (rule.no_strength, *veto_reasons), tuple(veto_signals))

    u, name, retest, extreme, intact = best
    signals = [f"{s}@{u} near {name}" for s in _names(w.masks[u] & rule.strength_bits)]
    reasons = []
    if retest is None:
        reasons.append(rule.no_retest)
    else:
        signals.extend(f"{s}@{retest}" for s in _names(w.masks[retest] & rule.retest_bits))
    if not intact:
        i = u - w.lo
        if rule.mirror:
            reasons.append(f"upthrust high broken: max high {_num(extreme)} > {_num(w.high[i])} + tol")
        else:
            reasons.append(f"climax low broken: min low {_num(extreme)} < {_num(w.low[i])} - tol")
    reasons.extend(veto_reasons)
    signals.extend(veto_signals)
    score = (1 + int(retest is not None) + int(intact) + int(not veto_signals)) / 4
    return _Setup(not reasons, score, tuple(reasons), tuple(signals))


def _masks(signals: VsaSignalArrays | Sequence[SignalEvent], lo: int, t: int) -> dict[int, int]:
    """Signal bits of bars lo..t (bars without signals left out)."""
    if isinstance(signals, VsaSignalArrays):
        if len(signals) <= t:
            raise InputError(f"signals: expected arrays covering bar {t}, were {len(signals)} bars long")
        if signals.start > lo:
            raise InputError(f"signals: evaluated from bar {signals.start}, the start rule needs bars from {lo}")
        window = signals.mask[lo - signals.start: t + 1 - signals.start]
        return {lo + int(i): int(window[i]) for i in np.flatnonzero(window)}
    out: dict[int, int] = {}
    for e in signals:
        if lo <= e.bar <= t:
            out[e.bar] = out.get(e.bar, 0) | VsaSignal(e.signal).bit
    return out


def _level(x: float | None, name: str) -> float | None:
    if x is None or math.isnan(x):
        return None
    if math.isinf(x):
        raise InputError(f"{name}: expected a finite price, NaN or None, was {x!r}")
    return float(x)


def _gate(state: str, bias: int, fire_dir: int) -> tuple[str | None, str]:
    """(direction allowed by squeeze state and bias, or None; the reason)."""
    per_bias = {1: LONG, -1: SHORT, 0: NEUTRAL}[bias]
    if state == "WARMUP":
        return None, "squeeze WARMUP: not enough bars for a squeeze state"
    if state == "COMPRESSION":
        return None, "squeeze COMPRESSION: breakout pending"
    if state == "FIRED":
        if fire_dir == 0:
            return None, "squeeze FIRED without a fire direction"
        if bias == -fire_dir:
            return None, f"squeeze FIRED {_signed(fire_dir)} against bias {_signed(bias)}"
        direction = LONG if fire_dir > 0 else SHORT
        return direction, f"squeeze FIRED {_signed(fire_dir)}, bias {_signed(bias)}: {direction} grid"
    if state == "RANGING":
        return per_bias, f"squeeze RANGING, bias {_signed(bias)}: {per_bias} grid"
    if bias == 0:
        return None, "squeeze TRENDING with bias 0: no bias side to confirm"
    return per_bias, f"squeeze TRENDING, bias {_signed(bias)}: {per_bias} grid"


def evaluate_start(signals: VsaSignalArrays | Sequence[SignalEvent], high, low, close, t: int, *,
                   s1: float | None, s2: float | None, r1: float | None, r2: float | None, tol: float, bias: int,
                   squeeze_state: str, fire_dir: int, params: VsaParams = DEFAULT_PARAMS) -> StartDecision:
    """May a grid start at bar t, and in which direction (module docstring). Uses bars <= t only.

    signals: VsaSignalArrays covering the last max(strength_window, weak_window) bars up to t, or SignalEvents
    (other bars are ignored); high/low/close: the bars' arrays; tol: the §2.4 tolerance in price units;
    bias: the MA25 bias (-1, 0, +1); squeeze_state: one of SQUEEZE_STATES (a SqueezeState works too);
    fire_dir: sign of the squeeze momentum at the fire (-1, 0, +1); params: the windows.
    """
    if squeeze_state not in SQUEEZE_STATES:
        raise InputError(f"squeeze_state: expected one of {', '.join(SQUEEZE_STATES)}, was {squeeze_state!r}")
    for name, x in (("bias", bias), ("fire_dir", fire_dir)):
        if x not in (-1, 0, 1):
            raise InputError(f"{name}: expected -1, 0 or +1, was {x!r}")
    if not (0 <= t < len(close)) or not len(high) == len(low) == len(close):
        raise InputError(f"t: expected a bar of the {len(close)} bars (high/low/close of equal length), was {t}")
    if not (math.isfinite(tol) and tol >= 0):
        raise InputError(f"tol: expected a finite price distance >= 0, was {tol!r}")
    windows = (params.strength_window, params.retest_window, params.weak_window)
    if min(windows) < 1 or params.retest_window > params.strength_window:
        raise InputError(f"vsa windows: expected >= 1 and retest_window <= strength_window, were {windows}")

    lo = max(0, t - _span(params) + 1)
    window = _Window(_masks(signals, lo, t), high, low, close, lo, t)
    supports = (("S1", _level(s1, "s1")), ("S2", _level(s2, "s2")))
    resistances = (("R1", _level(r1, "r1")), ("R2", _level(r2, "r2")))

    def setup(mirror: bool) -> _Setup:
        return _evaluate_side(_side_rule(mirror, params.strength_window, params.retest_window), window,
                              supports=supports, resistances=resistances, tol=float(tol), params=params)

    direction, gate_reason = _gate(str(squeeze_state), int(bias), int(fire_dir))
    if direction is None:
        score = max(setup(False).score, setup(True).score)
        return StartDecision(False, None, (gate_reason,), (), score)
    s = setup(direction == SHORT)
    if s.ok:
        where = "resistance" if direction == SHORT else "support"
        return StartDecision(True, direction, (gate_reason, f"VSA {where} setup confirmed"), s.signals, s.score)
    return StartDecision(False, None, (gate_reason, *s.reasons), s.signals, s.score)


def _span(params: VsaParams) -> int:
    """How many bars up to t the rule reads."""
    return max(params.strength_window, params.weak_window)


def evaluate_last_bar(open_, high, low, close, volume, *, s1: float | None, s2: float | None, r1: float | None,
                      r2: float | None, tol: float, tick: float, bias: int, squeeze_state: str, fire_dir: int,
                      params: VsaParams = DEFAULT_PARAMS) -> LastBarEvaluation:
    """The start decision at the last bar, computing VSA signals only for the bars the rule reads.

    Equal to evaluate_start on vsa_signal_arrays of the same arrays: rolling features are recomputed over their
    own windows, and the Wilder ATR is run over all bars passed (cheap, O(n)). Pass the bars since a fixed start
    (e.g. everything loaded) so the ATR matches the backtest's.
    """
    t = len(close) - 1
    if t < 0:
        raise InputError("close: expected at least one bar, was empty")
    start = max(0, t - _span(params) + 1)
    arrays = vsa_signal_arrays(open_, high, low, close, volume, levels=ZoneLevels(s1, s2, r1, r2), tol=tol,
                               tick=tick, params=params, start=start)
    decision = evaluate_start(arrays, high, low, close, t, s1=s1, s2=s2, r1=r1, r2=r2, tol=tol, bias=bias,
                              squeeze_state=squeeze_state, fire_dir=fire_dir, params=params)
    return LastBarEvaluation(decision, arrays)
