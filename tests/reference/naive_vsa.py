"""Slow, obviously-correct reference for gridcore.analysis.vsa (plain Python, one bar at a time).

Each bar's features are recomputed from scratch out of the bars <= t (only the Wilder ATR is a recursion, as its
definition is). Sums run oldest bar first, like the kernel, so features match bit for bit.
"""

from __future__ import annotations

import math

from gridcore.analysis.vsa import DEFAULT_PARAMS, SIGNAL_SIDE, SignalEvent, VsaParams, VsaSignal


def mean(xs: list[float]) -> float:
    acc = 0.0
    for x in xs:
        acc += x
    return acc / len(xs)


def ratio(a: float, b: float) -> float:
    if b > 0:
        return a / b
    return math.inf if a > 0 else math.nan


def true_range(h: list[float], lo: list[float], c: list[float], t: int) -> float:
    if t == 0:
        return h[0] - lo[0]
    return max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1]))


def wilder_atr(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    out = [math.nan] * len(c)
    if len(c) < n:
        return out
    atr = mean([true_range(h, lo, c, t) for t in range(n)])
    out[n - 1] = atr
    for t in range(n, len(c)):
        atr = (atr * (n - 1) + true_range(h, lo, c, t)) / n
        out[t] = atr
    return out


def features_at(h, lo, c, v, atr, t: int, n: int, k: int = 2) -> dict:
    """The §3.1 features of bar t (t >= n)."""
    s = h[t] - lo[t]
    cl = min(max((c[t] - lo[t]) / s, 0.0), 1.0) if s > 0 else 0.5
    sma = mean(c[t - n + 1: t + 1])
    sma_prev = mean(c[t - n: t])
    return {
        "spread": s,
        "rs": ratio(s, mean([h[i] - lo[i] for i in range(t - n, t)])),
        "rv": ratio(v[t], mean(v[t - n: t])),
        "cl": cl,
        "up": c[t] > c[t - 1],
        "down": c[t] < c[t - 1],
        "low2": all(v[t] < v[t - i] for i in range(1, k + 1)),  # below each of the previous k bars
        "sma": sma,
        "sma_slope": sma - sma_prev,
        "atr_prev": atr[t - 1],
        "evr_result": ratio(abs(c[t] - c[t - 1]), atr[t - 1]),
    }


def near_support(level: float | None, low: float, close: float, tol: float) -> bool:
    return level is not None and low <= level + tol and close >= level - tol


def base_signals(h, lo, c, v, atr, t: int, *, s1, s2, r1, tol: float, delta: float, p: VsaParams) -> list:
    """The signals known at bar t itself, as SignalEvents."""
    n = p.lookback
    f = features_at(h, lo, c, v, atr, t, n, p.lowvol_prev_bars)
    rs, rv, cl = f["rs"], f["rv"], f["cl"]
    wide, narrow = rs >= p.wide, rs <= p.narrow
    high_vol, ultra_vol = rv >= p.high_vol, rv >= p.ultra_vol
    low_vol = f["low2"] and rv < 1.0
    downtrend = c[t] < f["sma"] and f["sma_slope"] < 0
    uptrend = c[t] > f["sma"] and f["sma_slope"] > 0
    new_low_n = lo[t] <= min(lo[t - n + 1: t])
    new_low_sv = lo[t] <= min(lo[t - p.sv_low_window + 1: t])
    range_low = min(lo[t - n: t - p.spring_range_exclude])
    range_high = max(h[t - n: t])
    supports = [("S1", s1), ("S2", s2), ("RANGE_LOW", range_low)]
    out = []

    def add(sig, side=None, **kw):
        out.append(SignalEvent(t, sig, SIGNAL_SIDE[sig] if side is None else side, **kw))

    if f["down"] and wide and ultra_vol and new_low_n and downtrend and cl >= p.sc_close_min:
        add(VsaSignal.SELLING_CLIMAX)
    if (f["down"] or new_low_sv) and high_vol and cl >= p.sv_close_min and downtrend:
        add(VsaSignal.STOPPING_VOLUME)
    if f["down"] and narrow and low_vol:
        add(VsaSignal.NO_SUPPLY)
    if lo[t] < lo[t - 1] and cl >= p.test_close_min and low_vol:
        add(VsaSignal.TEST)
    springs = [(name, x) for name, x in supports if x is not None and lo[t] < x - delta and c[t] > x]
    if springs and cl >= p.spring_close_min:
        name, x = springs[0]
        add(VsaSignal.SPRING, level=x, level_name=name, strong=rv <= p.spring_strong_rv)
    shakeouts = [(name, x) for name, x in supports if x is not None and lo[t] < x]
    if shakeouts and wide and high_vol and cl >= p.shakeout_close_min:
        name, x = shakeouts[0]
        add(VsaSignal.SHAKEOUT, level=x, level_name=name)
    if wide and cl <= p.upthrust_close_max and uptrend:
        if r1 is not None and h[t] > r1:
            add(VsaSignal.UPTHRUST, level=r1, level_name="R1", strong=high_vol)
        elif h[t] > range_high:
            add(VsaSignal.UPTHRUST, level=range_high, level_name="RANGE_HIGH", strong=high_vol)
    if f["up"] and narrow and low_vol and cl <= p.nd_close_max:
        add(VsaSignal.NO_DEMAND)
    if rv >= p.evr_effort_high and f["evr_result"] <= p.evr_result_low:
        near = any(near_support(x, lo[t], c[t], tol) for _, x in supports)
        add(VsaSignal.ABSORPTION, side=1 if cl >= 0.5 and near else -1)
    if rv <= p.evr_effort_low and f["evr_result"] >= p.evr_result_high:
        add(VsaSignal.EASE_OF_MOVE, side=1 if c[t] > c[t - 1] else -1)
    return out


def naive_signals(open_, high, low, close, volume, *, levels=None, tol: float, tick: float,
                  params: VsaParams = DEFAULT_PARAMS) -> list[SignalEvent]:
    """Every signal of every bar, in the order of gridcore.analysis.vsa.vsa_signals."""
    h, lo, c, v = (list(map(float, x)) for x in (high, low, close, volume))
    s1, s2, r1 = (None if levels is None else getattr(levels, k) for k in ("s1", "s2", "r1"))
    n = params.lookback
    atr = wilder_atr(h, lo, c, n)
    delta = params.spring_delta_ticks * tick
    base = {t: base_signals(h, lo, c, v, atr, t, s1=s1, s2=s2, r1=r1, tol=tol, delta=delta, p=params)
            for t in range(n, len(c))}
    out = []
    for t in range(n, len(c)):
        events = list(base[t])
        prev = {e.signal for e in base.get(t - 1, [])}
        cl = features_at(h, lo, c, v, atr, t, n)["cl"]
        if VsaSignal.TEST in prev and c[t] > c[t - 1] and cl >= params.test_success_close_min:
            events.append(SignalEvent(t, VsaSignal.TEST_CONFIRMED, 1, ref_bar=t - 1))
        if VsaSignal.UPTHRUST in prev and c[t] < c[t - 1]:
            events.append(SignalEvent(t, VsaSignal.UPTHRUST_CONFIRMED, -1, ref_bar=t - 1))
        order = list(VsaSignal)
        out.extend(sorted(events, key=lambda e: order.index(e.signal)))
    return out


def naive_features(open_, high, low, close, volume, *, params: VsaParams = DEFAULT_PARAMS) -> dict[int, dict]:
    """Features of the warm bars t >= n, by bar."""
    h, lo, c, v = (list(map(float, x)) for x in (high, low, close, volume))
    n, k = params.lookback, params.lowvol_prev_bars
    atr = wilder_atr(h, lo, c, n)
    return {t: {**features_at(h, lo, c, v, atr, t, n, k), "atr": atr[t]} for t in range(n, len(c))}
