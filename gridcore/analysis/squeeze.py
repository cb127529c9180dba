"""TTM squeeze (LazyBear's variant, algorithms.md §2.5) and the VP-Squeeze analyzer state for every bar, causally.

States (first match wins):

- WARMUP: the bands at t, or momentum at any of bars t-L..t (L = max(range_window, fall_bars)), are not defined
  yet (or the input has NaNs there). A fifth state rather than None, so that the per-bar array stays integer.
- COMPRESSION: sqz_on at t.
- FIRED: a fire at some bar u with 0 <= t - u < fire_window.
- RANGING: momentum crossed 0 at least min_crosses times in the last range_window bars, or |mom| fell on each of
  the last fall_bars bars.
- TRENDING: otherwise.

A fire at t is sqz_on[t-1] and not sqz_on[t] after >= min_on_bars consecutive on-bars ending at t-1, with defined
bands at t; its direction is sign(mom[t]) (0 when mom is NaN or 0). A momentum cross at u is a change of
(mom >= 0) between u-1 and u. The KC true range uses H-L on bar 0 (Pine's ta.tr(true)); the momentum detrends
with HH/LL/SMA over kc_len, as LazyBear does, and fits the line over mom_len.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from gridcore.analysis.kernels import squeeze_nb as nb
from gridcore.errors import ConfigError, InputError


class SqueezeState(StrEnum):
    WARMUP = "WARMUP"
    COMPRESSION = "COMPRESSION"
    FIRED = "FIRED"
    RANGING = "RANGING"
    TRENDING = "TRENDING"


SQUEEZE_STATES: tuple[SqueezeState, ...] = tuple(SqueezeState)  # int code -> state
STATE_CODE = {s: i for i, s in enumerate(SQUEEZE_STATES)}
if (nb.WARMUP, nb.COMPRESSION, nb.FIRED, nb.RANGING, nb.TRENDING) != tuple(STATE_CODE[s] for s in SQUEEZE_STATES):
    raise RuntimeError("SqueezeState order and the kernel's state codes diverged")


@dataclass(frozen=True, eq=False)
class SqueezeSeries:
    """Per-bar squeeze output, all arrays as long as the input.

    sqz_on / sqz_off: bool (both False during warm-up). mom: float, NaN during warm-up. fired: bool, True on fire
    bars only. fire_dir: int8, the direction of the fire behind a FIRED bar, 0 on every other bar.
    bars_since_fire: int64, t - (last fire <= t), -1 before the first fire. state: int8 codes into
    SQUEEZE_STATES. The band arrays are for charts and diagnostics.
    """

    sqz_on: np.ndarray
    sqz_off: np.ndarray
    mom: np.ndarray
    fired: np.ndarray
    fire_dir: np.ndarray
    bars_since_fire: np.ndarray
    state: np.ndarray
    upper_bb: np.ndarray
    lower_bb: np.ndarray
    upper_kc: np.ndarray
    lower_kc: np.ndarray

    def __len__(self) -> int:
        return int(self.state.shape[0])

    def state_at(self, t: int) -> SqueezeState:
        return SQUEEZE_STATES[int(self.state[t])]

    def states(self) -> list[SqueezeState]:
        return [SQUEEZE_STATES[c] for c in self.state.tolist()]


def squeeze_series(
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    *,
    bb_len: int = 20,
    bb_mult: float = 2.0,
    kc_len: int = 20,
    kc_mult: float = 1.5,
    mom_len: int = 20,
    fire_window: int = 5,
    min_on_bars: int = 3,
    use_true_range: bool = True,
    range_window: int = 20,
    min_crosses: int = 2,
    fall_bars: int = 3,
) -> SqueezeSeries:
    """Squeeze bands, momentum, fires and the analyzer state for every bar; bar t uses bars <= t only.

    open_ is not used by the formulas; it is accepted (and length-checked) so callers pass whole bars.
    """
    hlc, kernel_params = _checked("squeeze_series", open_, high, low, close, bb_len, bb_mult, kc_len, kc_mult,
                                  mom_len, fire_window, min_on_bars, use_true_range, range_window, min_crosses,
                                  fall_bars)
    floats, flags, codes, bars_since_fire = nb.squeeze(*(np.ascontiguousarray(x) for x in hlc), *kernel_params)
    mom, upper_bb, lower_bb, upper_kc, lower_kc = floats
    sqz_on, sqz_off, fired = flags
    fire_dir, state = codes
    return SqueezeSeries(sqz_on, sqz_off, mom, fired, fire_dir, bars_since_fire, state, upper_bb, lower_bb, upper_kc,
                         lower_kc)


class SqueezeBar(NamedTuple):
    """The last bar of a SqueezeSeries: its state, fire_dir, mom and sqz_on."""

    state: SqueezeState
    fire_dir: int
    mom: float
    sqz_on: bool


def squeeze_last_bar(
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    *,
    bb_len: int = 20,
    bb_mult: float = 2.0,
    kc_len: int = 20,
    kc_mult: float = 1.5,
    mom_len: int = 20,
    fire_window: int = 5,
    min_on_bars: int = 3,
    use_true_range: bool = True,
    range_window: int = 20,
    min_crosses: int = 2,
    fall_bars: int = 3,
) -> SqueezeBar:
    """squeeze_series(...) at the last bar, exactly, computed from the last squeeze_span bars only (the scanner's
    per-scan read: no per-bar arrays are built)."""
    hlc, kernel_params = _checked("squeeze_last_bar", open_, high, low, close, bb_len, bb_mult, kc_len, kc_mult,
                                  mom_len, fire_window, min_on_bars, use_true_range, range_window, min_crosses,
                                  fall_bars)
    n = hlc[0].shape[0]
    if n == 0:
        raise InputError("squeeze_last_bar: expected at least one bar, was 0")
    span = squeeze_span(bb_len=bb_len, kc_len=kc_len, mom_len=mom_len, fire_window=fire_window,
                        min_on_bars=min_on_bars, range_window=range_window, fall_bars=fall_bars)
    tail = slice(max(0, n - span), None)
    state, fire_dir, mom, sqz_on = nb.squeeze_last(*(np.ascontiguousarray(x[tail]) for x in hlc), *kernel_params)
    return SqueezeBar(SQUEEZE_STATES[state], int(fire_dir), float(mom), bool(sqz_on))


def _checked(who: str, open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike, bb_len: int,
             bb_mult: float, kc_len: int, kc_mult: float, mom_len: int, fire_window: int, min_on_bars: int,
             use_true_range: bool, range_window: int, min_crosses: int, fall_bars: int) -> tuple[tuple, tuple]:
    """The checks squeeze_series and squeeze_last_bar share: ((high, low, close) as float64, the kernel's
    parameter arguments after the bars)."""
    _check_params(bb_len, kc_len, mom_len, fire_window, min_on_bars, range_window, min_crosses, fall_bars,
                  bb_mult, kc_mult)
    o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close))
    if o.ndim != 1 or not o.shape == h.shape == lo.shape == c.shape:
        raise InputError(f"{who}: expected 1-D open, high, low, close of equal length, was "
                         f"{o.shape}, {h.shape}, {lo.shape}, {c.shape}")
    return (h, lo, c), (int(bb_len), float(bb_mult), int(kc_len), float(kc_mult), int(mom_len), int(fire_window),
                        int(min_on_bars), bool(use_true_range), int(range_window), int(min_crosses), int(fall_bars))


def _check_params(*args: float) -> None:
    try:
        _check_params_once(*args)
    except TypeError:  # unhashable arguments: check them uncached
        _check_params_uncached(*args)


@lru_cache(maxsize=64, typed=True)  # typed: True and 1 (equal, same hash) are different answers
def _check_params_once(*args: float) -> None:
    _check_params_uncached(*args)


def _check_params_uncached(*args: float) -> None:
    names = ("bb_len", "kc_len", "mom_len", "fire_window", "min_on_bars", "range_window", "min_crosses",
             "fall_bars", "bb_mult", "kc_mult")
    problems = []
    for name, value in zip(names, args, strict=True):
        if name.endswith("_mult"):
            if not (value > 0 and np.isfinite(value)):
                problems.append(f"{name}: expected > 0, was {value!r}")
        elif isinstance(value, bool) or int(value) != value or value < 1:
            problems.append(f"{name}: expected an integer >= 1, was {value!r}")
    if problems:
        raise ConfigError("squeeze_series: invalid parameters", problems)


def squeeze_span(*, bb_len: int = 20, kc_len: int = 20, mom_len: int = 20, fire_window: int = 5,
                 min_on_bars: int = 3, range_window: int = 20, fall_bars: int = 3) -> int:
    """How many trailing bars decide the last bar's state, fire_dir, mom and sqz_on: squeeze_series of the last
    `squeeze_span` bars gives those four exactly as squeeze_series of the whole series (every band and momentum
    value is recomputed over its own window, so only the bars these windows reach matter).

    The state reads momentum over the last M + 1 bars, M = max(range_window, fall_bars, fire_window - 1) (its
    warm-up, crossings, falls and a fire's direction), each momentum value mom_len detrended closes of kc_len bars;
    a fire in the last fire_window bars needs min_on_bars squeeze-on bars before it, each with bands over
    max(bb_len - 1, kc_len) bars (the true range reads the close before).
    """
    reach = max(range_window, fall_bars, fire_window - 1)
    return max(reach + mom_len + kc_len - 1, fire_window + min_on_bars + max(bb_len - 1, kc_len))
