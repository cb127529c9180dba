"""Volume Spread Analysis on closed bars (algorithms.md §3.1–3.2): bar features and professional-activity signals.

Thresholds and windows are gridcore.params.VsaParams (the §7 defaults; re-exported here). Conventions (the choices
§3 leaves open):

* Lookback N = VsaParams.lookback (default 20). rs and rv divide by the mean of bars t-N..t-1 (bar t excluded).
  Bars with fewer than N previous bars are warm-up bars: their rs/rv are NaN and they emit no signal. lowvol:
  V_t below each of the previous lowvol_prev_bars (2) volumes and rv < 1.
* SMA_N(C)[t] is the ordinary SMA of closes t-N+1..t (it includes bar t, as the MA25 of §2.4); its slope is
  SMA_N[t] - SMA_N[t-1]. downtrend: C_t < SMA_N[t] and slope < 0; uptrend: C_t > SMA_N[t] and slope > 0.
* EvR result r = |C_t - C_{t-1}| / ATR_N[t-1] (Wilder, seeded with the mean TR of the first N bars): the previous
  bar's ATR, so bar t's own range does not dampen its result. The ATR is the one stateful feature: it depends on
  where the arrays start, so compare runs over the same arrays (see strategy.start_rule.evaluate_last_bar).
* A ratio whose average is 0 is inf when the bar's own value is > 0 and NaN when it is 0 too; no test passes on NaN.
* "L_t = min L of the last k bars" includes bar t (L_t <= min of L_{t-k+1..t-1}); UT's "new high" is
  H_t > max H_{t-N..t-1}. The spring/shakeout range low is min L_{t-N..t-4} (the last N bars without the last 3).
* Spring/shakeout levels are tried in the order S1, S2, range low; the event names the first that qualifies.
  UT names R1 when H_t > R1, else the N-bar high.
* Absorption is bullish when CL >= 0.5 and bar t is near(S) for S in {S1, S2, range low}, else bearish; ease of
  move takes the side of the close-to-close move.
* Confirmations are emitted at the bar where they become known: TEST_CONFIRMED at t+1 after a TEST at t when
  t+1 is an up bar with CL >= 0.5; UPTHRUST_CONFIRMED at t+1 after an UPTHRUST at t when t+1 is a down bar.
  Their events carry ref_bar = t.
* Scale invariance: every test is a ratio or a comparison of prices, so multiplying prices (with tick and tol) by
  c and volumes by c' changes no signal. The spring margin δ = spring_delta_ticks · tick is the one absolute
  quantity: scaling prices without the tick can change only springs that undercut their level by about one tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np

from gridcore.analysis.kernels import vsa_nb as nb
from gridcore.errors import ConfigError, InputError
from gridcore.params import VsaParams


class VsaSignal(StrEnum):
    """VSA signals; the declaration order is the bit order of the signal masks (do not reorder)."""

    SELLING_CLIMAX = "SELLING_CLIMAX"
    STOPPING_VOLUME = "STOPPING_VOLUME"
    NO_SUPPLY = "NO_SUPPLY"
    TEST = "TEST"
    TEST_CONFIRMED = "TEST_CONFIRMED"
    SPRING = "SPRING"
    SHAKEOUT = "SHAKEOUT"
    UPTHRUST = "UPTHRUST"
    UPTHRUST_CONFIRMED = "UPTHRUST_CONFIRMED"
    NO_DEMAND = "NO_DEMAND"
    ABSORPTION = "ABSORPTION"
    EASE_OF_MOVE = "EASE_OF_MOVE"

    @property
    def bit(self) -> int:
        """This signal's bit in VsaSignalArrays.mask."""
        return _BITS[self]


SIGNAL_ORDER: tuple[VsaSignal, ...] = tuple(VsaSignal)
_BITS: dict[VsaSignal, int] = {s: 1 << i for i, s in enumerate(SIGNAL_ORDER)}
if (nb.SC, nb.SV, nb.NS, nb.T, nb.T_OK, nb.SP, nb.SO, nb.UT, nb.UT_OK, nb.ND, nb.ABS, nb.EASE) != tuple(
        range(len(SIGNAL_ORDER))):
    raise RuntimeError("VsaSignal order and the kernel's signal bits diverged")

# +1 bullish, -1 bearish; 0 = the side depends on the bar (ABSORPTION, EASE_OF_MOVE: see SignalEvent.side).
SIGNAL_SIDE: dict[VsaSignal, int] = {
    VsaSignal.SELLING_CLIMAX: 1, VsaSignal.STOPPING_VOLUME: 1, VsaSignal.NO_SUPPLY: 1, VsaSignal.TEST: 1,
    VsaSignal.TEST_CONFIRMED: 1, VsaSignal.SPRING: 1, VsaSignal.SHAKEOUT: 1, VsaSignal.UPTHRUST: -1,
    VsaSignal.UPTHRUST_CONFIRMED: -1, VsaSignal.NO_DEMAND: -1, VsaSignal.ABSORPTION: 0, VsaSignal.EASE_OF_MOVE: 0,
}

_TABLE = tuple((s, _BITS[s], SIGNAL_SIDE[s]) for s in SIGNAL_ORDER)



def signal_list(bits: int) -> list[VsaSignal]:
    """The signals of a mask value, in VsaSignal order."""
    return [s for s, bit, _ in _TABLE if bits & bit]


@lru_cache(maxsize=4096)
def signal_names(bits: int) -> tuple[str, ...]:
    """The names (values) of the signals of a mask value, in VsaSignal order."""
    return tuple(s.value for s in signal_list(bits))


# Level ids of the kernel -> names used in events.
LEVEL_NAMES: dict[int, str] = {nb.LV_S1: "S1", nb.LV_S2: "S2", nb.LV_RANGE_LOW: "RANGE_LOW", nb.LV_R1: "R1",
                               nb.LV_RANGE_HIGH: "RANGE_HIGH"}


@dataclass(frozen=True)
class ZoneLevels:
    """The box levels (§2.3) the spring, shakeout, upthrust and absorption tests refer to; None = unknown.

    Any object with attributes s1, s2, r1, r2 (float, NaN or None; e.g. analysis.levels.Box) is accepted.
    """

    s1: float | None = None
    s2: float | None = None
    r1: float | None = None
    r2: float | None = None


DEFAULT_PARAMS = VsaParams()


@lru_cache(maxsize=64)
def kernel_vector(params: VsaParams) -> np.ndarray:
    """The kernel's float64 parameter vector for `params` (checked once per distinct parameter set)."""
    problems = []
    n = params.lookback
    if not n > max(params.spring_range_exclude, 1):
        problems.append(f"vsa.lookback: expected > spring_range_exclude ({params.spring_range_exclude}) and > 1, "
                        f"was {n}")
    for name in ("sv_low_window", "lowvol_prev_bars"):
        if not 1 <= getattr(params, name) <= n:
            problems.append(f"vsa.{name}: expected 1..lookback ({n}), was {getattr(params, name)}")
    if not params.evr_effort_low < params.evr_effort_high:
        problems.append(f"vsa.evr_effort_low: expected < evr_effort_high ({params.evr_effort_high}), "
                        f"was {params.evr_effort_low}")
    if problems:
        raise ConfigError("invalid VSA parameters", problems)
    p = np.empty(nb.N_PARAMS)
    p[nb.P_N] = n
    p[nb.P_WIDE] = params.wide
    p[nb.P_NARROW] = params.narrow
    p[nb.P_HIGH] = params.high_vol
    p[nb.P_ULTRA] = params.ultra_vol
    p[nb.P_LOWVOL_PREV] = params.lowvol_prev_bars
    p[nb.P_SC_CL] = params.sc_close_min
    p[nb.P_SV_CL] = params.sv_close_min
    p[nb.P_SV_LOOKBACK] = params.sv_low_window
    p[nb.P_TEST_CL] = params.test_close_min
    p[nb.P_TEST_OK_CL] = params.test_success_close_min
    p[nb.P_SPRING_CL] = params.spring_close_min
    p[nb.P_SPRING_STRONG_RV] = params.spring_strong_rv
    p[nb.P_SHAKEOUT_CL] = params.shakeout_close_min
    p[nb.P_UT_CL] = params.upthrust_close_max
    p[nb.P_ND_CL] = params.nd_close_max
    p[nb.P_ABS_EFFORT] = params.evr_effort_high
    p[nb.P_ABS_RESULT] = params.evr_result_low
    p[nb.P_EASE_EFFORT] = params.evr_effort_low
    p[nb.P_EASE_RESULT] = params.evr_result_high
    p[nb.P_RANGE_EXCLUDE] = params.spring_range_exclude
    p.setflags(write=False)
    return p


@dataclass(frozen=True, eq=False)
class VsaFeatures:
    """§3.1 features per bar (float64 / bool arrays of the input length; NaN / False where undefined)."""

    spread: np.ndarray
    rs: np.ndarray
    rv: np.ndarray
    cl: np.ndarray
    up: np.ndarray
    down: np.ndarray
    low2: np.ndarray  # V_t below each of the previous lowvol_prev_bars (default 2) volumes
    wide: np.ndarray
    narrow: np.ndarray
    high_vol: np.ndarray
    ultra_vol: np.ndarray
    low_vol: np.ndarray
    close_high: np.ndarray
    close_mid: np.ndarray
    close_low: np.ndarray
    sma: np.ndarray
    sma_slope: np.ndarray
    downtrend: np.ndarray
    uptrend: np.ndarray
    atr: np.ndarray  # Wilder ATR_N including bar t
    evr_result: np.ndarray  # |C_t - C_{t-1}| / atr[t-1]
    warm: np.ndarray  # True where bar t has >= N previous bars (signals possible)


@dataclass(frozen=True)
class SignalEvent:
    """One signal at one bar. level/level_name: SP, SO, UT only; strong: low-volume spring, high-volume upthrust;
    ref_bar: for TEST_CONFIRMED / UPTHRUST_CONFIRMED the bar of the confirmed signal."""

    bar: int
    signal: VsaSignal
    side: int
    level: float | None = None
    level_name: str | None = None
    strong: bool = False
    ref_bar: int | None = None


@dataclass(frozen=True, eq=False)
class VsaSignalArrays:
    """Signals of bars start..n_bars-1 as arrays indexed by t - start (window-sized for a tail evaluation).

    The accessors take absolute bar indices. A bar before `start` was not evaluated and raises IndexError.
    """

    mask: np.ndarray  # int64, bit VsaSignal.bit per signal
    side: np.ndarray  # int8, side of ABSORPTION / EASE_OF_MOVE at that bar
    spring_level: np.ndarray
    spring_level_id: np.ndarray
    shakeout_level: np.ndarray
    shakeout_level_id: np.ndarray
    upthrust_level: np.ndarray
    upthrust_level_id: np.ndarray
    spring_strong: np.ndarray
    upthrust_strong: np.ndarray
    start: int

    def __len__(self) -> int:
        """The number of input bars (start + the evaluated window)."""
        return self.start + int(self.mask.shape[0])

    def _index(self, t: int) -> int:
        j = t - self.start
        if not 0 <= j < self.mask.shape[0]:
            raise IndexError(f"bar {t}: expected a bar in {self.start}..{len(self) - 1} (the evaluated window)")
        return j

    def bits_at(self, t: int) -> int:
        return int(self.mask[self._index(t)])

    def has(self, t: int, signal: VsaSignal) -> bool:
        return bool(self.bits_at(t) & signal.bit)

    def signals_at(self, t: int) -> list[VsaSignal]:
        return signal_list(self.bits_at(t))

    def events_at(self, t: int) -> list[SignalEvent]:
        """The events of bar t in VsaSignal order."""
        j = self._index(t)
        bits = int(self.mask[j])
        out = []
        for s, bit, side in _TABLE:
            if not bits & bit:
                continue
            ev_side = side or int(self.side[j])
            if s is VsaSignal.SPRING:
                out.append(SignalEvent(t, s, ev_side, float(self.spring_level[j]),
                                       LEVEL_NAMES[int(self.spring_level_id[j])], bool(self.spring_strong[j])))
            elif s is VsaSignal.SHAKEOUT:
                out.append(SignalEvent(t, s, ev_side, float(self.shakeout_level[j]),
                                       LEVEL_NAMES[int(self.shakeout_level_id[j])]))
            elif s is VsaSignal.UPTHRUST:
                out.append(SignalEvent(t, s, ev_side, float(self.upthrust_level[j]),
                                       LEVEL_NAMES[int(self.upthrust_level_id[j])], bool(self.upthrust_strong[j])))
            elif s is VsaSignal.TEST_CONFIRMED or s is VsaSignal.UPTHRUST_CONFIRMED:
                out.append(SignalEvent(t, s, ev_side, ref_bar=t - 1))
            else:
                out.append(SignalEvent(t, s, ev_side))
        return out

    def events(self, lo: int | None = None, hi: int | None = None) -> list[SignalEvent]:
        """All events of bars lo <= t < hi (default: the evaluated window), by bar then VsaSignal order."""
        lo = self.start if lo is None else max(lo, self.start)
        hi = len(self) if hi is None else min(hi, len(self))
        out: list[SignalEvent] = []
        for j in np.flatnonzero(self.mask[lo - self.start: max(lo, hi) - self.start]):
            out.extend(self.events_at(int(j) + lo))
        return out


# ---------------------------------------------------------------------------------------------------- validation

def _arrays(open_, high, low, close, volume) -> tuple[np.ndarray, ...]:
    arrs = tuple(np.ascontiguousarray(x, dtype=np.float64) for x in (open_, high, low, close, volume))
    n = arrs[0].shape[0]
    for name, a in zip(("open", "high", "low", "close", "volume"), arrs, strict=True):
        if a.ndim != 1:
            raise InputError(f"{name}: expected a 1-D array, was shape {a.shape}")
        if a.shape[0] != n:
            raise InputError(f"{name}: expected {n} values like open, was {a.shape[0]}")
    return arrs


def check_tol_tick(tol: float, tick: float) -> None:
    """The tolerance and tick checks of vsa_signal_arrays (shared with batch callers of the kernel)."""
    if not (math.isfinite(tol) and tol >= 0):
        raise InputError(f"tol: expected a finite price distance >= 0, was {tol!r}")
    if not (math.isfinite(tick) and tick > 0):
        raise InputError(f"tick: expected a finite price > 0, was {tick!r}")


def kernel_levels(levels: object) -> tuple[float, float, float]:
    """(s1, s2, r1) as the kernel takes them: NaN for unknown; an infinite level raises."""
    return _level(levels, "s1"), _level(levels, "s2"), _level(levels, "r1")


def _level(levels: object, name: str) -> float:
    x = None if levels is None else getattr(levels, name)
    if x is None:
        return math.nan
    x = float(x)
    if math.isinf(x):
        raise InputError(f"levels.{name}: expected a finite price, NaN or None, was {x!r}")
    return x  # NaN (an invalid Box's missing level) counts as unknown, like None


# ---------------------------------------------------------------------------------------------------- public API

def vsa_features(open_, high, low, close, volume, *, params: VsaParams = DEFAULT_PARAMS) -> VsaFeatures:
    """§3.1 features of every bar (causal: the value at t uses bars <= t only)."""
    o, h, lo, c, v = _arrays(open_, high, low, close, volume)
    n = int(kernel_vector(params)[nb.P_N])
    spread, rs, rv, cl, sma, slope, atr, result, direction = nb.features(o, h, lo, c, v, n, 0)
    k = params.lowvol_prev_bars
    low2 = np.zeros(c.shape[0], bool)
    low2[k:] = True
    for i in range(1, k + 1):
        low2[k:] &= v[k:] < v[k - i: c.shape[0] - i]
    warm = np.arange(c.shape[0]) >= n
    return VsaFeatures(
        spread=spread, rs=rs, rv=rv, cl=cl, up=direction == 1, down=direction == -1, low2=low2,
        wide=rs >= params.wide, narrow=rs <= params.narrow, high_vol=rv >= params.high_vol,
        ultra_vol=rv >= params.ultra_vol, low_vol=low2 & (rv < 1.0), close_high=cl >= params.close_high,
        close_mid=(cl > params.close_low) & (cl < params.close_high), close_low=cl <= params.close_low,
        sma=sma, sma_slope=slope, downtrend=(c < sma) & (slope < 0), uptrend=(c > sma) & (slope > 0),
        atr=atr, evr_result=result, warm=warm,
    )


def vsa_signal_arrays(open_, high, low, close, volume, *, levels: ZoneLevels | None, tol: float, tick: float,
                      params: VsaParams = DEFAULT_PARAMS, start: int = 0) -> VsaSignalArrays:
    """§3.2 signals of bars start..end as bitmask arrays.

    levels: the box levels (None: only the range low / N-bar high are used); tol: the near() tolerance of §2.4
    in price units; tick: the price tick (spring margin δ = spring_delta_ticks · tick). Only bars >= start are
    evaluated (bars before are read as history); their signals equal those of a run with start=0.
    """
    o, h, lo, c, v = _arrays(open_, high, low, close, volume)
    check_tol_tick(tol, tick)
    if not 0 <= start <= c.shape[0]:
        raise InputError(f"start: expected 0..{c.shape[0]}, was {start}")
    out = nb.signals(o, h, lo, c, v, kernel_vector(params), _level(levels, "s1"), _level(levels, "s2"),
                     _level(levels, "r1"), start, float(tol), params.spring_delta_ticks * tick)
    return VsaSignalArrays(*out, start=start)


def vsa_signals(open_, high, low, close, volume, *, levels: ZoneLevels | None, tol: float, tick: float,
                params: VsaParams = DEFAULT_PARAMS) -> list[SignalEvent]:
    """§3.2 signals of every bar as events, by bar then VsaSignal order."""
    return vsa_signal_arrays(open_, high, low, close, volume, levels=levels, tol=tol, tick=tick,
                             params=params).events()


__all__ = ["DEFAULT_PARAMS", "LEVEL_NAMES", "SIGNAL_ORDER", "SIGNAL_SIDE", "SignalEvent", "VsaFeatures",
           "VsaParams", "VsaSignal", "VsaSignalArrays", "ZoneLevels", "check_tol_tick", "kernel_levels",
           "kernel_vector", "signal_names", "vsa_features", "vsa_signal_arrays", "vsa_signals"]
