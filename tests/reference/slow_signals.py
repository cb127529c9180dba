"""The scanner, the trigger, the start rule and their replay as they were before the batch kernels: one call per
time on Bars windows, the start rule in plain Python, the analysis of tests/reference/slow_analysis.py. Kept
verbatim as the slow reference the optimised path (ZoneScanner, TriggerEvaluator, replay_signals) must equal bit
for bit (tests/unit/strategy/test_replay_reference.py); the start rule is also the reference of
gridcore/analysis/kernels/start_rule_nb.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from gridcore.analysis import indicators as ind
from gridcore.analysis.levels import Box, ma25_snap, ma_bias
from gridcore.analysis.volume_profile import Profile, volume_profile, volume_profile_ltf
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
from gridcore.bars import Bars
from gridcore.errors import ConfigError, DataError, InputError
from gridcore.params import StrategyParams
from gridcore.strategy.replay import ReplayResult, zone_context
from gridcore.strategy.scanner import MIN_WINDOW_SHARE, TREND_WINDOW_BARS, ZoneScan, _finite, _moving_average, _round
from gridcore.strategy.start_rule import (
    RESISTANCE_RETEST,
    RESISTANCE_STRENGTH,
    RESISTANCE_VETO,
    SHORT,
    SQUEEZE_STATES,
    SUPPORT_RETEST,
    SUPPORT_STRENGTH,
    SUPPORT_VETO,
    LastBarEvaluation,
    StartDecision,
    _gate,
    _num,
    _Setup,
    _SideRule,
)
from gridcore.strategy.trigger import TRIGGER_WINDOW_BARS, TriggerEvaluation, ZoneContext, _relative, near_tolerance
from gridcore.timeframes import interval_ms, ms_to_iso
from tests.reference.slow_analysis import four_peaks_box, point_of_control, squeeze_series, value_area, volume_nodes

# ---------------------------------------------------------------------------------------------------- start rule


def _names(bits: int) -> list[str]:
    return [s.value for s in SIGNAL_ORDER if bits & s.bit]


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


# ---------------------------------------------------------------------------------------------------- scanner


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


# ---------------------------------------------------------------------------------------------------- trigger


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


# ---------------------------------------------------------------------------------------------------- replay


def replay_signals(*, profile_bars: Bars, trend_bars: Bars, trigger_bars: Bars, start_ms: int, end_ms: int,
                   params: StrategyParams, tick: Decimal, progress=None) -> ReplayResult:
    res = ReplayResult()
    scan_step = interval_ms(params.timeframes.scan_interval)
    step = interval_ms(params.timeframes.trigger_interval)
    zone: ZoneScan | None = None
    first = -(-start_ms // step) * step
    times = range(first, end_ms + 1, step)
    for i, t in enumerate(times):
        if t % scan_step == 0:
            try:
                scan = scan_zone(profile_bars=profile_bars, trend_bars=trend_bars, at_ms=t, params=params, tick=tick)
                res.zones.append(scan)
                zone = scan if scan.valid else None
            except DataError as e:
                res.skipped.append((t, f"scanner: {e}"))
                zone = None
        if zone is not None and t >= zone.valid_until_ms:
            zone = None
        if zone is not None:
            try:
                ev = evaluate_trigger(bars=trigger_bars, at_ms=t, zone=zone_context(zone), params=params,
                                      tick=float(tick))
                res.evaluations.append((zone, ev))
            except DataError as e:
                res.skipped.append((t, f"trigger: {e}"))
        if progress is not None and (i + 1) % 5000 == 0:
            progress(i + 1, len(times))
    return res
