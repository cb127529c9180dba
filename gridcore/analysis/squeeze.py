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

import numpy as np
from numpy.typing import ArrayLike

from gridcore.analysis import indicators as ind
from gridcore.errors import ConfigError, InputError


class SqueezeState(StrEnum):
    WARMUP = "WARMUP"
    COMPRESSION = "COMPRESSION"
    FIRED = "FIRED"
    RANGING = "RANGING"
    TRENDING = "TRENDING"


SQUEEZE_STATES: tuple[SqueezeState, ...] = tuple(SqueezeState)  # int code -> state
STATE_CODE = {s: i for i, s in enumerate(SQUEEZE_STATES)}
_WARMUP, _COMPRESSION, _FIRED, _RANGING, _TRENDING = range(5)  # the codes, in SQUEEZE_STATES order


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
    _check_params(bb_len, kc_len, mom_len, fire_window, min_on_bars, range_window, min_crosses, fall_bars,
                  bb_mult, kc_mult)
    o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close))
    if o.ndim != 1 or not o.shape == h.shape == lo.shape == c.shape:
        raise InputError(f"squeeze_series: expected 1-D open, high, low, close of equal length, was "
                         f"{o.shape}, {h.shape}, {lo.shape}, {c.shape}")
    n = c.shape[0]
    idx = np.arange(n)

    basis = ind.sma(c, bb_len)
    dev = bb_mult * ind.rolling_std(c, bb_len)
    upper_bb, lower_bb = basis + dev, basis - dev
    ma = ind.sma(c, kc_len)
    rangema = ind.sma(ind.true_range(h, lo, c) if use_true_range else h - lo, kc_len)
    upper_kc, lower_kc = ma + rangema * kc_mult, ma - rangema * kc_mult
    sqz_on = (lower_bb > lower_kc) & (upper_bb < upper_kc)  # NaN compares False: off during warm-up
    sqz_off = (lower_bb < lower_kc) & (upper_bb > upper_kc)
    bands_ok = np.isfinite(upper_bb) & np.isfinite(lower_bb) & np.isfinite(upper_kc) & np.isfinite(lower_kc)

    mid = (ind.highest(h, kc_len) + ind.lowest(lo, kc_len)) / 2.0
    mom = ind.linreg(c - (mid + ma) / 2.0, mom_len)

    # fires: length of the on-run ending at each bar, from the last bar that was not on
    run = idx - np.maximum.accumulate(np.where(sqz_on, -1, idx))
    fired = np.zeros(n, dtype=bool)
    fired[1:] = sqz_on[:-1] & ~sqz_on[1:] & (run[:-1] >= min_on_bars) & bands_ok[1:]
    dir_at = np.where(mom > 0, 1, np.where(mom < 0, -1, 0)).astype(np.int8)
    last_fire = np.maximum.accumulate(np.where(fired, idx, -1))
    bars_since_fire = np.where(last_fire >= 0, idx - last_fire, -1)

    lookback = max(range_window, fall_bars)
    mom_ok = _trailing_all(np.isfinite(mom), lookback + 1)
    prev_nonneg = np.concatenate(([False], mom[:-1] >= 0))
    cross = np.concatenate(([False], np.isfinite(mom[:-1]))) & np.isfinite(mom) & ((mom >= 0) != prev_nonneg)
    absm = np.abs(mom)
    fall = np.concatenate(([False], absm[1:] < absm[:-1]))
    ranging = (_trailing_sum(cross, range_window) >= min_crosses) | _trailing_all(fall, fall_bars)

    state = np.full(n, _TRENDING, dtype=np.int8)
    state[ranging] = _RANGING
    in_fire = (bars_since_fire >= 0) & (bars_since_fire < fire_window)
    state[in_fire] = _FIRED
    state[sqz_on] = _COMPRESSION
    state[~(bands_ok & mom_ok)] = _WARMUP
    fire_dir = np.where(state == _FIRED, dir_at[np.maximum(last_fire, 0)], 0).astype(np.int8)
    return SqueezeSeries(sqz_on, sqz_off, mom, fired, fire_dir, bars_since_fire, state, upper_bb, lower_bb,
                         upper_kc, lower_kc)


def _trailing_sum(flags: np.ndarray, window: int) -> np.ndarray:
    """Number of True flags in (t - window, t], counting only bars that exist."""
    cs = np.cumsum(flags, dtype=np.int64)
    out = cs.copy()
    out[window:] -= cs[:-window]
    return out


def _trailing_all(flags: np.ndarray, window: int) -> np.ndarray:
    """True where the last `window` bars (t - window, t] all exist and are True."""
    out = _trailing_sum(flags, window) == window
    out[: window - 1] = False
    return out


def _check_params(*args: float) -> None:
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
