"""The Scanner's decision: from closed bars up to a 4h close, the four-peaks box and its context.

One pure function, `scan_zone`, used by the `scanner` command, the backtest and the tests alike. It reads fixed-
length tail windows ending at the evaluation time, so its result depends only on bars closed by then: the same
zone whether the store holds later bars or not (tested by truncation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from gridcore.analysis import indicators as ind
from gridcore.analysis.levels import Box, four_peaks_box, ma25_snap, ma_bias
from gridcore.analysis.squeeze import squeeze_series
from gridcore.analysis.volume_profile import (
    Profile,
    point_of_control,
    value_area,
    volume_nodes,
    volume_profile,
    volume_profile_ltf,
)
from gridcore.bars import Bars
from gridcore.errors import ConfigError, DataError, InputError
from gridcore.params import StrategyParams
from gridcore.timeframes import interval_ms, ms_to_iso

TREND_WINDOW_BARS = 150  # 4h bars read for MA25, ATR and the squeeze (25 days): enough to seed Wilder's ATR
MIN_WINDOW_SHARE = 0.9  # a profile window with more than 10 % of its bars missing is refused


@dataclass(frozen=True)
class ZoneScan:
    symbol: str
    market: str
    bar_ms: int
    price: float
    s2: float | None
    s1: float | None
    r1: float | None
    r2: float | None
    poc: float
    vah: float
    val: float
    ma25: float | None
    atr: float | None
    bias: int
    squeeze_state: str
    fire_dir: int
    valid: bool
    reasons: tuple[str, ...]
    valid_until_ms: int
    details: dict = field(default_factory=dict)

    def levels(self) -> dict[str, float | None]:
        return {"s2": self.s2, "s1": self.s1, "r1": self.r1, "r2": self.r2}

    def as_dict(self) -> dict:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["bar_time"] = ms_to_iso(self.bar_ms)
        return d


def zone_decimal(x: float | None) -> Decimal | None:
    """The stored (GridZone) form of a scan's float number: its shortest repr, exactly."""
    return None if x is None else Decimal(repr(x))


def zone_atr_decimal(atr: float | None) -> Decimal | None:
    """The stored form of a scan's ATR (rounded to the column's 8 decimals)."""
    return None if atr is None else Decimal(repr(round(atr, 8)))


def _tail_window(bars: Bars, at_ms: int, n_bars: int, what: str, stale_intervals: int) -> Bars:
    """The last n_bars interval slots closed by at_ms, refusing stale or too-gappy data."""
    iv = bars.interval_ms
    seen = bars.closed_by(at_ms)
    if len(seen) == 0:
        raise DataError(f"no {bars.symbol} {bars.market} {bars.interval} bars closed by {ms_to_iso(at_ms)} ({what})")
    last_close = int(seen.close_ms[-1])
    if at_ms - last_close >= stale_intervals * iv:
        raise DataError(f"stale {bars.symbol} {bars.market} {bars.interval} data for the scan at {ms_to_iso(at_ms)}: "
                        f"the last bar closed at {ms_to_iso(last_close)} ({what})")
    window = seen.slice_ms(at_ms - n_bars * iv, None)
    if len(window) < MIN_WINDOW_SHARE * n_bars:
        raise DataError(f"expected at least {math.ceil(MIN_WINDOW_SHARE * n_bars)} of the {n_bars} {bars.interval} "
                        f"bars before {ms_to_iso(at_ms)} for the {what}, was {len(window)} "
                        f"({bars.symbol} {bars.market}; first stored bar closes {ms_to_iso(int(seen.close_ms[0]))})")
    return window


def _profile(window: Bars, params: StrategyParams, tick: float, ltf: Bars | None) -> Profile:
    vp = params.volume_profile
    row_height = vp.ticks_per_row * tick if vp.row_mode == "ticks" else None
    if vp.distribution == "ltf":
        if ltf is None or len(ltf) == 0:
            raise DataError(f"volume_profile.distribution = ltf needs {vp.ltf_interval} bars for the window")
        fine = ltf.slice_ms(int(window.open_ms[0]), int(window.close_ms[-1]))
        return volume_profile_ltf(window.high, window.low, fine.high, fine.low, fine.close, fine.volume, tick=tick,
                                  rows=vp.rows, row_height=row_height)
    return volume_profile(window.high, window.low, window.close, window.volume, tick=tick, rows=vp.rows,
                          method=vp.distribution, open_=window.open, row_height=row_height)


def _nodes(profile: Profile, params: StrategyParams) -> tuple[np.ndarray, np.ndarray]:
    vp = params.volume_profile
    v = profile.volumes
    if vp.node_method == "threshold":  # §1.6 alternative rule, no smoothing
        local_max = np.r_[False, (v[1:-1] >= v[:-2]) & (v[1:-1] >= v[2:]), False] if v.size > 2 else v > np.inf
        hvn = np.flatnonzero(local_max & (v >= v.mean() + vp.threshold_std * v.std()))
        lvn = np.flatnonzero(v <= vp.lvn_median_frac * np.median(v))
        return hvn, lvn
    nodes = volume_nodes(v, sigma=vp.smooth_sigma, prominence=vp.hvn_prominence, distance=vp.hvn_distance)
    return nodes.hvn, nodes.lvn


def _moving_average(close: np.ndarray, params: StrategyParams) -> np.ndarray:
    n = params.ma.length
    if params.ma.kind == "sma":
        return ind.sma(close, n)
    alpha = 2.0 / (n + 1)  # EMA seeded with the SMA of the first n closes of the window
    out = np.full(close.shape, np.nan)
    if close.size >= n:
        out[n - 1] = close[:n].mean()
        for i in range(n, close.size):
            out[i] = alpha * close[i] + (1 - alpha) * out[i - 1]
    return out


def _round(x: float, tick: Decimal) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float((Decimal(repr(x)) / tick).to_integral_value(rounding=ROUND_HALF_UP) * tick)


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def scan_zone(*, profile_bars: Bars, trend_bars: Bars, at_ms: int, params: StrategyParams, tick: Decimal,
              ltf_bars: Bars | None = None) -> ZoneScan:
    """The zone as of the close at `at_ms` (a multiple of the scan interval), from bars closed by then."""
    scan_ms = interval_ms(params.timeframes.scan_interval)
    if at_ms % scan_ms:
        raise InputError(f"expected a scan time on the {params.timeframes.scan_interval} close grid (UTC), "
                         f"was {ms_to_iso(at_ms)}")
    if profile_bars.interval != params.volume_profile.interval or trend_bars.interval != (
            params.timeframes.analysis_interval):
        raise InputError(f"expected profile bars of {params.volume_profile.interval} and trend bars of "
                         f"{params.timeframes.analysis_interval}, was {profile_bars.interval} and "
                         f"{trend_bars.interval}")
    stale = params.execution.stale_data_intervals
    window = _tail_window(profile_bars, at_ms, params.volume_profile.lookback_bars, "volume profile", stale)
    trend = _tail_window(trend_bars, at_ms, TREND_WINDOW_BARS, "MA25, ATR and squeeze", stale)
    tick_f = float(tick)
    price = float(window.close[-1])

    profile = _profile(window, params, tick_f, ltf_bars)
    centres = profile.centres
    poc = point_of_control(profile.volumes)
    va = value_area(profile.volumes, poc, pct=params.volume_profile.va_pct, step=params.volume_profile.va_step)
    val, vah = va.prices(profile.edges) if params.volume_profile.va_bounds == "edges" else (
        float(centres[va.lo]), float(centres[va.hi]))
    hvn, lvn = _nodes(profile, params)

    atr_series = ind.atr(trend.high, trend.low, trend.close, params.ma.atr_len)
    atr = float(atr_series[-1])
    ma = _moving_average(trend.close, params)
    ma_t = float(ma[-1])
    sq = params.squeeze
    squeeze = squeeze_series(trend.open, trend.high, trend.low, trend.close, bb_len=sq.bb_len, bb_mult=sq.bb_mult,
                             kc_len=sq.kc_len, kc_mult=sq.kc_mult, mom_len=sq.mom_len, fire_window=sq.fire_window,
                             min_on_bars=sq.min_on_bars, use_true_range=sq.use_true_range,
                             range_window=sq.ranging_window, min_crosses=sq.ranging_crosses,
                             fall_bars=sq.ranging_fall_bars)
    state = squeeze.state_at(-1)
    if not math.isfinite(atr) or atr <= 0:
        box = Box(math.nan, math.nan, math.nan, math.nan, valid=False, reasons=(f"ATR not available: {atr}",))
    else:
        b = params.box
        if b.mode != "split":
            raise ConfigError(f"box.mode: only 'split' is implemented (the §2.3 research 'global' mode is not), "
                              f"was {b.mode!r}")
        eps = profile.row_height * b.eps_bins if b.eps_bins else 1e-9 * price  # rows this close to price: no side
        box = four_peaks_box(centres, profile.volumes, price=price, atr=atr, row_height=eps,
                             gap_atr=b.gap_atr, gap_pct=b.gap_pct, min_share=b.min_cluster_share, level_mode=b.level)
        if params.ma.confluence_snap:
            box = ma25_snap(box, ma=ma_t, tick=tick_f, tol_atr=params.ma.tol_atr, tol_pct=params.ma.tol_pct)
    levels = [_round(x, tick) for x in box.levels]
    reasons = list(box.reasons)
    if box.valid and not (levels[0] < levels[1] < price < levels[2] < levels[3]):
        reasons.append(f"levels collide after rounding to the tick {tick}: {levels}")
    bias = ma_bias(ma, atr, price, slope_bars=params.ma.slope_lookback, s_min=params.ma.slope_min)
    details = {
        "box": box.as_dict(),
        "profile": {"interval": window.interval, "source_interval": window.source_interval, "bars": len(window),
                    "rows": int(profile.volumes.size), "row_height": profile.row_height,
                    "first_bar": ms_to_iso(int(window.open_ms[0])), "va_share": va.share,
                    "hvn": [float(centres[i]) for i in hvn], "lvn": [float(centres[i]) for i in lvn]},
        "trend": {"interval": trend.interval, "source_interval": trend.source_interval, "bars": len(trend),
                  "momentum": _finite(float(squeeze.mom[-1])), "sqz_on": bool(squeeze.sqz_on[-1])},
    }
    return ZoneScan(
        symbol=profile_bars.symbol, market=profile_bars.market, bar_ms=at_ms, price=price,
        s2=levels[0], s1=levels[1], r1=levels[2], r2=levels[3],
        poc=_round(float(centres[poc]), tick), vah=_round(vah, tick), val=_round(val, tick),
        ma25=_round(ma_t, tick), atr=_finite(atr), bias=bias, squeeze_state=str(state),
        fire_dir=int(squeeze.fire_dir[-1]), valid=not reasons, reasons=tuple(reasons),
        valid_until_ms=at_ms + params.timeframes.zone_valid_scans * scan_ms, details=details,
    )





@dataclass(frozen=True)
class SweepResult:
    zones: list[ZoneScan]
    skipped: list[tuple[int, str]]  # (scan time, why no zone: the DataError message)


def scan_times(start_ms: int, end_ms: int, params: StrategyParams) -> list[int]:
    """Every scan-interval close in [start, end]."""
    step = interval_ms(params.timeframes.scan_interval)
    first = -(-start_ms // step) * step
    return list(range(first, end_ms + 1, step))


def sweep_zones(*, profile_bars: Bars, trend_bars: Bars, times: list[int], params: StrategyParams, tick: Decimal,
                progress=None) -> SweepResult:
    """scan_zone at each time; a time the data cannot answer (too little history, stale) is skipped with why."""
    zones, skipped = [], []
    for i, t in enumerate(times):
        try:
            zones.append(scan_zone(profile_bars=profile_bars, trend_bars=trend_bars, at_ms=t, params=params,
                                   tick=tick))
        except DataError as e:
            skipped.append((t, str(e)))
        if progress is not None and (i + 1) % 500 == 0:
            progress(i + 1, len(times))
    return SweepResult(zones, skipped)
