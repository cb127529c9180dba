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

The numbers of the rule (veto bars, the best strength bar, its retest and extreme) come from
gridcore/analysis/kernels/start_rule_nb.py, the texts from this module; evaluate_last_bars evaluates many windows in
one kernel call (the trigger's batch form), with the same kernels and texts as evaluate_start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from gridcore.analysis.kernels import start_rule_nb as _nb
from gridcore.analysis.vsa import (
    DEFAULT_PARAMS,
    SignalEvent,
    VsaParams,
    VsaSignal,
    VsaSignalArrays,
    ZoneLevels,
    check_tol_tick,
    kernel_levels,
    kernel_vector,
    signal_names,
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


def _names(bits: int) -> tuple[str, ...]:
    return signal_names(bits)  # the values of the signals in `bits`, in SIGNAL_ORDER


def _signed(x: int) -> str:
    return f"{x:+d}" if x else "0"


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


@lru_cache(maxsize=64)
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


_RULE_BITS = np.array([SUPPORT_STRENGTH, SUPPORT_RETEST, SUPPORT_VETO, RESISTANCE_STRENGTH, RESISTANCE_RETEST,
                       RESISTANCE_VETO], np.int64)
_SUPPORT_NAMES, _RESISTANCE_NAMES = ("S1", "S2"), ("R1", "R2")


def _setup_from(rule: _SideRule, ints: list[int], floats: list[float], own_missing: bool) -> _Setup:
    """One side's setup from the kernel's numbers (kernels/start_rule_nb.py): the veto signals near the opposite
    levels in the last weak_window bars, then the strength bar closest to a complete setup, the latest on ties."""
    own_names, other_names = (_RESISTANCE_NAMES, _SUPPORT_NAMES) if rule.mirror else (_SUPPORT_NAMES,
                                                                                     _RESISTANCE_NAMES)
    veto_signals: list[str] = []
    veto_reasons: list[str] = []
    for k in range(ints[0]):
        x, bits, q = ints[_nb.N_HEAD + 3 * k: _nb.N_HEAD + 3 * k + 3]
        name = other_names[q]
        for s in _names(bits):
            veto_signals.append(f"{s}@{x} near {name}")
            veto_reasons.append(f"{rule.veto_prefix}: {s} at bar {x} near {name}")
    if own_missing:
        return _Setup(False, _score(ints, own_missing), (rule.no_levels, *veto_reasons), tuple(veto_signals))
    u = ints[1]
    if u < 0:
        return _Setup(False, _score(ints, own_missing), (rule.no_strength, *veto_reasons), tuple(veto_signals))

    name, retest, intact = own_names[ints[2]], (ints[3] if ints[3] >= 0 else None), bool(ints[4])
    signals = [f"{s}@{u} near {name}" for s in _names(ints[6] & rule.strength_bits)]
    reasons = []
    if retest is None:
        reasons.append(rule.no_retest)
    else:
        signals.extend(f"{s}@{retest}" for s in _names(ints[7] & rule.retest_bits))
    if not intact:  # only a strength bar before t can be broken, so the extreme exists
        extreme, at_u = floats
        if rule.mirror:
            reasons.append(f"upthrust high broken: max high {_num(extreme)} > {_num(at_u)} + tol")
        else:
            reasons.append(f"climax low broken: min low {_num(extreme)} < {_num(at_u)} - tol")
    reasons.extend(veto_reasons)
    signals.extend(veto_signals)
    return _Setup(not reasons, _score(ints, own_missing), tuple(reasons), tuple(signals))


def _score(ints: list[int], own_missing: bool) -> float:
    """The setup's completeness: 0 without levels or a strength bar, else (1 + retest + intact + no veto) / 4
    (every veto bar found has at least one signal, so "no veto signal" is "no veto bar")."""
    if own_missing or ints[1] < 0:
        return 0.0
    return (1 + int(ints[3] >= 0) + int(bool(ints[4])) + int(ints[0] == 0)) / 4


def _decide(ints: list[list[int]], floats: list[list[float]], levels: tuple[float | None, ...], bias: int,
            squeeze_state: str, fire_dir: int, params: VsaParams) -> StartDecision:
    """The decision from the kernel's two sides (support row 0, resistance row 1, as lists) and the gate."""
    s1, s2, r1, r2 = levels
    missing = (s1 is None and s2 is None, r1 is None and r2 is None)
    direction, gate_reason = _gate(str(squeeze_state), int(bias), int(fire_dir))
    if direction is None:  # only the scores count: max of the two setups' scores
        score = max(_score(ints[0], missing[0]), _score(ints[1], missing[1]))
        return StartDecision(False, None, (gate_reason,), (), score)
    mirror = direction == SHORT
    s = _setup_from(_side_rule(mirror, params.strength_window, params.retest_window), ints[int(mirror)],
                    floats[int(mirror)], missing[int(mirror)])
    if s.ok:
        where = "resistance" if direction == SHORT else "support"
        return StartDecision(True, direction, (gate_reason, f"VSA {where} setup confirmed"), s.signals, s.score)
    return StartDecision(False, None, (gate_reason, *s.reasons), s.signals, s.score)


def _rule_arrays(params: VsaParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows for the kernel, int output buffer, float output buffer) of one evaluation."""
    return (np.array([params.strength_window, params.retest_window, params.weak_window], np.int64),
            np.zeros((2, _nb.N_HEAD + 3 * params.weak_window), np.int64), np.zeros((2, 2)))


def _masks(signals: VsaSignalArrays | Sequence[SignalEvent], lo: int, t: int) -> np.ndarray:
    """Signal bits of bars lo..t (index x - lo), int64."""
    if isinstance(signals, VsaSignalArrays):
        if len(signals) <= t:
            raise InputError(f"signals: expected arrays covering bar {t}, were {len(signals)} bars long")
        if signals.start > lo:
            raise InputError(f"signals: evaluated from bar {signals.start}, the start rule needs bars from {lo}")
        return np.ascontiguousarray(signals.mask[lo - signals.start: t + 1 - signals.start], dtype=np.int64)
    out = np.zeros(t - lo + 1, np.int64)
    for e in signals:
        if lo <= e.bar <= t:
            out[e.bar - lo] |= VsaSignal(e.signal).bit
    return out


def _level(x: float | None, name: str) -> float | None:
    if x is None or math.isnan(x):
        return None
    if math.isinf(x):
        raise InputError(f"{name}: expected a finite price, NaN or None, was {x!r}")
    return float(x)


@lru_cache(maxsize=256)
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
    mask = _masks(signals, lo, t)
    h, low_, c = (np.ascontiguousarray(x[lo: t + 1], dtype=np.float64) for x in (high, low, close))
    levels = (_level(s1, "s1"), _level(s2, "s2"), _level(r1, "r1"), _level(r2, "r2"))
    windows, ints, floats = _rule_arrays(params)
    _nb.both_sides(mask, h, low_, c, lo, t, np.array([math.nan if x is None else x for x in levels]), float(tol),
                   _RULE_BITS, windows, ints, floats)
    return _decide(ints.tolist(), floats.tolist(), levels, bias, squeeze_state, fire_dir, params)


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


@dataclass(frozen=True)
class WindowZone:
    """What evaluate_last_bars needs per window besides the bars and the tolerance: the levels and gate inputs."""

    s1: float | None
    s2: float | None
    r1: float | None
    r2: float | None
    bias: int
    squeeze_state: str
    fire_dir: int


def check_window_zone(zone: WindowZone, tol: float, tick: float, params: VsaParams,
                      checked: dict[int, tuple[float | None, ...]] | None = None) -> tuple[float | None, ...]:
    """evaluate_last_bar's argument checks, in its order; returns the rule's (s1, s2, r1, r2) (None = unknown).
    `checked` remembers zones (by identity) that passed, so a zone shared by many windows is checked once."""
    check_tol_tick(tol, tick)
    if checked is not None and id(zone) in checked:
        return checked[id(zone)]
    kernel_vector(params)
    kernel_levels(ZoneLevels(zone.s1, zone.s2, zone.r1, zone.r2))
    if zone.squeeze_state not in SQUEEZE_STATES:
        raise InputError(f"squeeze_state: expected one of {', '.join(SQUEEZE_STATES)}, was {zone.squeeze_state!r}")
    for name, x in (("bias", zone.bias), ("fire_dir", zone.fire_dir)):
        if x not in (-1, 0, 1):
            raise InputError(f"{name}: expected -1, 0 or +1, was {x!r}")
    windows = (params.strength_window, params.retest_window, params.weak_window)
    if min(windows) < 1 or params.retest_window > params.strength_window:
        raise InputError(f"vsa windows: expected >= 1 and retest_window <= strength_window, were {windows}")
    levels = (_level(zone.s1, "s1"), _level(zone.s2, "s2"), _level(zone.r1, "r1"), _level(zone.r2, "r2"))
    if checked is not None:
        checked[id(zone)] = levels
    return levels


def evaluate_last_bars(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                       windows: Sequence[tuple[int, int]], zones: Sequence[WindowZone], tols: Sequence[float], *,
                       tick: float, params: VsaParams = DEFAULT_PARAMS) -> list[tuple[StartDecision, int]]:
    """evaluate_last_bar for many windows of the same float64 arrays in one kernel call: for window (lo, hi), its
    zone and tolerance, the decision at bar hi - 1 of the bars lo..hi-1 (bar numbers in the decision count from
    lo) and the signal bits of that bar. Equal, window by window, to evaluate_last_bar(open_[lo:hi], ...)."""
    decisions, bits = decide_windows(open_, high, low, close, volume, windows, zones, tols, tick=tick, params=params)
    return list(zip(decisions, bits, strict=True))


def decide_windows(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                   windows: Sequence[tuple[int, int]] | np.ndarray, zones: Sequence[WindowZone],
                   tols: Sequence[float], *, tick: float,
                   params: VsaParams = DEFAULT_PARAMS) -> tuple[list[StartDecision], list[int]]:
    """evaluate_last_bars answered as two lists (the decisions, the signal bits of each window's last bar), which
    the trigger's batches build faster; `windows` may be a (k, 2) array. Consecutive windows with the same setup
    share one StartDecision object."""
    if not len(windows) == len(zones) == len(tols):
        raise InputError(f"expected one zone and tol per window, were {len(zones)} zones and {len(tols)} tols for "
                         f"{len(windows)} windows")
    if not len(windows):
        return [], []
    arrays = [np.ascontiguousarray(x, dtype=np.float64) for x in (open_, high, low, close, volume)]
    n = arrays[0].shape[0]
    if any(a.ndim != 1 or a.shape[0] != n for a in arrays):
        raise InputError("expected 1-D open, high, low, close, volume of equal length")
    bounds = np.array(windows, np.int64).reshape(len(windows), 2)
    los, his = np.ascontiguousarray(bounds[:, 0]), np.ascontiguousarray(bounds[:, 1])
    if np.any(los < 0) or np.any(his > n) or np.any(his <= los):
        raise InputError(f"windows: expected 0 <= lo < hi <= {n}")
    checked: dict[int, tuple[float | None, ...]] = {}
    for z, tol in zip(zones, tols, strict=True):
        check_window_zone(z, tol, tick, params, checked)
    zone_ids = {key: i for i, key in enumerate(checked)}
    zone_of = np.array([zone_ids[id(z)] for z in zones], np.int64)
    levels = np.array([[math.nan if x is None else x for x in lv] for lv in checked.values()], np.float64)[zone_of]
    rule_windows, ints_one, floats_one = _rule_arrays(params)
    k = len(zones)
    now_bits = np.zeros(k, np.int64)
    ints = np.zeros((k, *ints_one.shape), np.int64)
    floats = np.zeros((k, *floats_one.shape))
    _nb.last_bars(*arrays, los, his, levels, np.array(tols, np.float64), kernel_vector(params),
                  params.spring_delta_ticks * tick, _span(params), _RULE_BITS, rule_windows, now_bits, ints, floats)
    used = _nb.N_HEAD + 3 * int(ints[:, :, 0].max())  # the veto slots any window filled
    first, run = _runs(ints[:, :, :used], floats, zone_of)
    decided = [_decide(ints_j, floats_j, checked[id(zones[j])], zones[j].bias, zones[j].squeeze_state,
                       zones[j].fire_dir, params)
               for ints_j, floats_j, j in zip(ints[first, :, :used].tolist(), floats[first].tolist(), first.tolist(),
                                              strict=True)]
    return [decided[i] for i in run.tolist()], now_bits.tolist()


def _runs(ints: np.ndarray, floats: np.ndarray, zone_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the first window of each run of consecutive windows with the same input to _decide, each window's run
    number): the kernel's output rows (floats compared bit for bit) and the zone. A run shares one decision
    (consecutive trigger closes often see the same setup)."""
    k = ints.shape[0]
    rows = np.concatenate([ints.reshape(k, -1), floats.reshape(k, -1).view(np.int64),
                           zone_of.reshape(k, 1)], axis=1)
    new = np.ones(k, np.bool_)
    new[1:] = np.any(rows[1:] != rows[:-1], axis=1)
    return np.flatnonzero(new), np.cumsum(new) - 1
