"""The Scanner's decision: from closed bars up to a 4h close, the four-peaks box and its context.

One pure function, `scan_zone`, used by the `scanner` command, the backtest and the tests alike (the backtest and
the sweep call it as ZoneScanner.scan, which scan_zone goes through). It reads fixed-length tail windows ending at
the evaluation time, so its result depends only on bars closed by then: the same zone whether the store holds
later bars or not (tested by truncation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np

from gridcore.analysis import indicators as ind
from gridcore.analysis.levels import Box, four_peaks_box, ma25_snap, ma_bias
from gridcore.analysis.squeeze import squeeze_last_bar
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


class _Window:
    """Rows lo..hi-1 of `bars` (a tail window) with their float64 columns (views when the bars are warm)."""

    __slots__ = ("bars", "lo", "hi", "open", "high", "low", "close", "volume")

    def __init__(self, bars: Bars, lo: int, hi: int):
        self.bars, self.lo, self.hi = bars, lo, hi
        self.open, self.high, self.low, self.close, self.volume = bars.float_rows(lo, hi)

    def __len__(self) -> int:
        return self.hi - self.lo

    @property
    def first_open_ms(self) -> int:
        return int(self.bars.open_ms[self.lo])

    @property
    def last_close_ms(self) -> int:
        return int(self.bars.open_ms[self.hi - 1]) + self.bars.interval_ms


def _tail_window(bars: Bars, at_ms: int, n_bars: int, what: str, stale_intervals: int) -> _Window:
    """The last n_bars interval slots closed by at_ms, refusing stale or too-gappy data."""
    iv = bars.interval_ms
    open_ms = bars.open_ms
    hi = int(open_ms.searchsorted(at_ms - iv + 1, side="left"))  # = len(bars.closed_by(at_ms))
    if hi == 0:
        raise DataError(f"no {bars.symbol} {bars.market} {bars.interval} bars closed by {ms_to_iso(at_ms)} ({what})")
    last_close = int(open_ms[hi - 1]) + iv
    if at_ms - last_close >= stale_intervals * iv:
        raise DataError(f"stale {bars.symbol} {bars.market} {bars.interval} data for the scan at {ms_to_iso(at_ms)}: "
                        f"the last bar closed at {ms_to_iso(last_close)} ({what})")
    lo = min(int(open_ms.searchsorted(at_ms - n_bars * iv, side="left")), hi)
    if hi - lo < MIN_WINDOW_SHARE * n_bars:
        raise DataError(f"expected at least {math.ceil(MIN_WINDOW_SHARE * n_bars)} of the {n_bars} {bars.interval} "
                        f"bars before {ms_to_iso(at_ms)} for the {what}, was {hi - lo} "
                        f"({bars.symbol} {bars.market}; first stored bar closes {ms_to_iso(int(open_ms[0]) + iv)})")
    return _Window(bars, lo, hi)


def _profile(window: _Window, params: StrategyParams, tick: float, ltf: Bars | None) -> Profile:
    vp = params.volume_profile
    row_height = vp.ticks_per_row * tick if vp.row_mode == "ticks" else None
    if vp.distribution == "ltf":
        if ltf is None or len(ltf) == 0:
            raise DataError(f"volume_profile.distribution = ltf needs {vp.ltf_interval} bars for the window")
        fine = ltf.slice_ms(window.first_open_ms, window.last_close_ms)
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
    return _round_repr(repr(x), tick)


@lru_cache(maxsize=4096)  # successive scans often round the same bin centres and edges
def _round_repr(text: str, tick: Decimal) -> float:
    """The float's shortest repr rounded half up to the tick (keyed by the text, which keeps -0.0 apart; the
    decimal context, which the division uses, is never changed in this code base)."""
    return float((Decimal(text) / tick).to_integral_value(rounding=ROUND_HALF_UP) * tick)


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def scan_zone(*, profile_bars: Bars, trend_bars: Bars, at_ms: int, params: StrategyParams, tick: Decimal,
              ltf_bars: Bars | None = None) -> ZoneScan:
    """The zone as of the close at `at_ms` (a multiple of the scan interval), from bars closed by then."""
    return ZoneScanner(profile_bars=profile_bars, trend_bars=trend_bars, params=params, tick=tick,
                       ltf_bars=ltf_bars).scan(at_ms)


class ZoneScanner:
    """scan_zone over fixed inputs at any number of times (the sweep, the backtest replay): the one
    implementation, so a replayed zone is the zone the scanner command stores. Call `warm()` on long bars first
    when scanning many times (their float columns are then converted once instead of per window)."""

    def __init__(self, *, profile_bars: Bars, trend_bars: Bars, params: StrategyParams, tick: Decimal,
                 ltf_bars: Bars | None = None):
        self.profile_bars, self.trend_bars, self.ltf_bars = profile_bars, trend_bars, ltf_bars
        self.params, self.tick = params, tick
        self.scan_ms = interval_ms(params.timeframes.scan_interval)
        self.intervals_ok = profile_bars.interval == params.volume_profile.interval and (
            trend_bars.interval == params.timeframes.analysis_interval)

    def scan(self, at_ms: int) -> ZoneScan:
        """The zone as of the close at `at_ms`; raises DataError when the data cannot answer (as scan_zone)."""
        params, tick, profile_bars, trend_bars = self.params, self.tick, self.profile_bars, self.trend_bars
        scan_ms = self.scan_ms
        if at_ms % scan_ms:
            raise InputError(f"expected a scan time on the {params.timeframes.scan_interval} close grid (UTC), "
                             f"was {ms_to_iso(at_ms)}")
        if not self.intervals_ok:
            raise InputError(f"expected profile bars of {params.volume_profile.interval} and trend bars of "
                             f"{params.timeframes.analysis_interval}, was {profile_bars.interval} and "
                             f"{trend_bars.interval}")
        stale = params.execution.stale_data_intervals
        window = _tail_window(profile_bars, at_ms, params.volume_profile.lookback_bars, "volume profile", stale)
        trend = _tail_window(trend_bars, at_ms, TREND_WINDOW_BARS, "MA25, ATR and squeeze", stale)
        return _scan(window, trend, at_ms, params, tick, float(tick), self.ltf_bars, scan_ms)


def _scan(window: _Window, trend: _Window, at_ms: int, params: StrategyParams, tick: Decimal, tick_f: float,
          ltf_bars: Bars | None, scan_ms: int) -> ZoneScan:
    """The scan from its two tail windows (ZoneScanner.scan has checked the time and the data)."""
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
    squeeze = squeeze_last_bar(trend.open, trend.high, trend.low, trend.close, bb_len=sq.bb_len, bb_mult=sq.bb_mult,
                               kc_len=sq.kc_len, kc_mult=sq.kc_mult, mom_len=sq.mom_len, fire_window=sq.fire_window,
                               min_on_bars=sq.min_on_bars, use_true_range=sq.use_true_range,
                               range_window=sq.ranging_window, min_crosses=sq.ranging_crosses,
                               fall_bars=sq.ranging_fall_bars)
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
        "profile": {"interval": window.bars.interval, "source_interval": window.bars.source_interval,
                    "bars": len(window), "rows": int(profile.volumes.size), "row_height": profile.row_height,
                    "first_bar": ms_to_iso(window.first_open_ms), "va_share": va.share,
                    "hvn": centres[hvn].tolist(), "lvn": centres[lvn].tolist()},
        "trend": {"interval": trend.bars.interval, "source_interval": trend.bars.source_interval, "bars": len(trend),
                  "momentum": _finite(squeeze.mom), "sqz_on": squeeze.sqz_on},
    }
    return ZoneScan(
        symbol=window.bars.symbol, market=window.bars.market, bar_ms=at_ms, price=price,
        s2=levels[0], s1=levels[1], r1=levels[2], r2=levels[3],
        poc=_round(float(centres[poc]), tick), vah=_round(vah, tick), val=_round(val, tick),
        ma25=_round(ma_t, tick), atr=_finite(atr), bias=bias, squeeze_state=str(squeeze.state),
        fire_dir=squeeze.fire_dir, valid=not reasons, reasons=tuple(reasons),
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
    scanner = ZoneScanner(profile_bars=profile_bars.warm(), trend_bars=trend_bars.warm(), params=params, tick=tick)
    for i, t in enumerate(times):
        try:
            zones.append(scanner.scan(t))
        except DataError as e:
            skipped.append((t, str(e)))
        if progress is not None and (i + 1) % 500 == 0:
            progress(i + 1, len(times))
    return SweepResult(zones, skipped)
