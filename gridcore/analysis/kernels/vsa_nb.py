"""Numba kernels for Volume Spread Analysis (algorithms.md §3.1–3.2). Validated wrappers live in analysis/vsa.py.

Every rolling quantity is summed directly over its window, oldest bar first, so a value at bar t is bit-identical
whether it is computed on the full series, on data[:t+1] or for a tail window only (the Wilder ATR is the one
recursion; it always runs from bar 0 of the arrays passed in, storing nothing before the window). Outputs cover
bars start..m-1 (index t - start), so evaluating the last bars allocates only window-sized arrays.
tests/reference/naive_vsa.py is the slow reference.
"""

import math

import numpy as np

from gridcore.analysis.kernels._jit import njit

# Signal bits: bit i is VsaSignal member i in declaration order (analysis/vsa.py checks the two stay aligned).
SC, SV, NS, T, T_OK, SP, SO, UT, UT_OK, ND, ABS, EASE = range(12)

# Level ids carried by springs, shakeouts and upthrusts (analysis/vsa.py LEVEL_NAMES).
LV_NONE, LV_S1, LV_S2, LV_RANGE_LOW, LV_R1, LV_RANGE_HIGH = range(6)

# Indices into the float64 parameter vector built by analysis/vsa.py kernel_vector().
(P_N, P_WIDE, P_NARROW, P_HIGH, P_ULTRA, P_LOWVOL_PREV, P_SC_CL, P_SV_CL, P_SV_LOOKBACK, P_TEST_CL, P_TEST_OK_CL,
 P_SPRING_CL, P_SPRING_STRONG_RV, P_SHAKEOUT_CL, P_UT_CL, P_ND_CL, P_ABS_EFFORT, P_ABS_RESULT, P_EASE_EFFORT,
 P_EASE_RESULT, P_RANGE_EXCLUDE, N_PARAMS) = range(22)


@njit
def _ratio(a: float, b: float) -> float:
    """a / b for a, b >= 0: inf when only b is 0, NaN when both are (no threshold test passes on NaN)."""
    if b > 0.0:
        return a / b
    if a > 0.0:
        return math.inf
    return math.nan


@njit
def _true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, t: int) -> float:
    if t == 0:
        return high[0] - low[0]
    pc = close[t - 1]
    return max(high[t] - low[t], abs(high[t] - pc), abs(low[t] - pc))


@njit
def features(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, n: int,  # noqa: E741
             start: int):
    """Per-bar features of bars start..m-1 (arrays of length m - start; NaN / 0 where the history is too short).

    Returns spread, rs, rv, cl, sma, sma_slope, atr, evr_result (float64) and direction (int8: +1 up bar,
    -1 down bar, 0 unchanged or bar 0). rs/rv use the mean of bars t-n..t-1; sma = SMA_n of closes t-n+1..t;
    sma_slope = sma[t] - sma[t-1]; atr = Wilder ATR_n seeded with the mean TR of bars 0..n-1 (TR_0 = H_0 - L_0);
    evr_result = |C_t - C_t-1| / ATR_n[t-1].
    """
    m = c.shape[0]
    start = min(max(start, 0), m)
    k = m - start
    spread = np.full(k, np.nan)
    rs = np.full(k, np.nan)
    rv = np.full(k, np.nan)
    cl = np.full(k, np.nan)
    sma = np.full(k, np.nan)
    slope = np.full(k, np.nan)
    atr_out = np.full(k, np.nan)
    result = np.full(k, np.nan)
    direction = np.zeros(k, np.int8)
    atr = math.nan
    atr_prev = math.nan  # ATR of bar t-1
    acc_tr = 0.0
    for t in range(m):
        tr = _true_range(h, l, c, t)
        if t < n:
            acc_tr += tr
            if t == n - 1:
                atr = acc_tr / n
        else:
            atr = (atr * (n - 1) + tr) / n
        if t >= start:
            j = t - start
            atr_out[j] = atr
            s = h[t] - l[t]
            spread[j] = s
            cl[j] = min(max((c[t] - l[t]) / s, 0.0), 1.0) if s > 0.0 else 0.5
            if t >= 1:
                if c[t] > c[t - 1]:
                    direction[j] = 1
                elif c[t] < c[t - 1]:
                    direction[j] = -1
            if t >= n - 1:
                acc = 0.0
                for i in range(t - n + 1, t + 1):
                    acc += c[i]
                sma[j] = acc / n
            if t >= n:
                acc_s = 0.0
                acc_v = 0.0
                acc_c = 0.0
                for i in range(t - n, t):
                    acc_s += h[i] - l[i]
                    acc_v += v[i]
                    acc_c += c[i]
                rs[j] = _ratio(s, acc_s / n)
                rv[j] = _ratio(v[t], acc_v / n)
                slope[j] = sma[j] - acc_c / n
                result[j] = _ratio(abs(c[t] - c[t - 1]), atr_prev)
        atr_prev = atr
    return spread, rs, rv, cl, sma, slope, atr_out, result, direction


@njit
def _near_support(level: float, low: float, close: float, tol: float) -> bool:
    return low <= level + tol and close >= level - tol


@njit
def signals(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray,  # noqa: E741, C901
            p: np.ndarray, s1: float, s2: float, r1: float, start: int, tol: float, delta: float):
    """Signals of bars start..m-1 (arrays of length m - start); warm-up bars t < n have none. Levels NaN = unknown.

    Returns mask (int64 bits), side (int8: the side of ABSORPTION / EASE_OF_MOVE, 0 elsewhere), for springs,
    shakeouts and upthrusts the level price (NaN if none) and level id (int8), spring_strong and
    upthrust_strong (bool).
    """
    n = int(p[P_N])
    m = c.shape[0]
    start = min(max(start, 0), m)
    k = m - start
    mask = np.zeros(k, np.int64)
    side = np.zeros(k, np.int8)
    sp_level = np.full(k, np.nan)
    so_level = np.full(k, np.nan)
    ut_level = np.full(k, np.nan)
    sp_id = np.zeros(k, np.int8)
    so_id = np.zeros(k, np.int8)
    ut_id = np.zeros(k, np.int8)
    sp_strong = np.zeros(k, np.bool_)
    ut_strong = np.zeros(k, np.bool_)
    # Bar start-1 is evaluated too (not returned): the confirmations at `start` need its signals.
    f0 = max(start - 1, n)
    if f0 >= m:
        return mask, side, sp_level, sp_id, so_level, so_id, ut_level, ut_id, sp_strong, ut_strong
    spread, rs, rv, cl, sma, slope, atr, result, direction = features(o, h, l, c, v, n, f0)
    sv_lookback = int(p[P_SV_LOOKBACK])
    range_exclude = int(p[P_RANGE_EXCLUDE])
    lowvol_prev = int(p[P_LOWVOL_PREV])
    supports = np.empty(3)
    support_ids = np.array([LV_S1, LV_S2, LV_RANGE_LOW], np.int8)
    prev_bits = 0  # the signals known at bar t-1 (0 for a warm-up bar)
    for t in range(f0, m):
        f = t - f0
        up = direction[f] == 1
        down = direction[f] == -1
        wide = rs[f] >= p[P_WIDE]
        narrow = rs[f] <= p[P_NARROW]
        high_vol = rv[f] >= p[P_HIGH]
        ultra_vol = rv[f] >= p[P_ULTRA]
        low_vol = rv[f] < 1.0  # below average and below each of the previous lowvol_prev bars
        for i in range(t - lowvol_prev, t):
            low_vol = low_vol and v[t] < v[i]
        downtrend = c[t] < sma[f] and slope[f] < 0.0
        uptrend = c[t] > sma[f] and slope[f] > 0.0
        x = cl[f]

        min_low_n = math.inf  # lows of the other bars among the last n (t-n+1..t-1)
        for i in range(t - n + 1, t):
            min_low_n = min(min_low_n, l[i])
        min_low_sv = math.inf
        for i in range(t - sv_lookback + 1, t):
            min_low_sv = min(min_low_sv, l[i])
        range_low = math.inf  # bars t-n..t-range_exclude-1
        for i in range(t - n, t - range_exclude):
            range_low = min(range_low, l[i])
        max_high_n = -math.inf  # bars t-n..t-1
        for i in range(t - n, t):
            max_high_n = max(max_high_n, h[i])
        supports[0] = s1
        supports[1] = s2
        supports[2] = range_low

        bits = 0
        sp_k = -1
        so_k = -1
        if down and wide and ultra_vol and l[t] <= min_low_n and downtrend and x >= p[P_SC_CL]:
            bits |= 1 << SC
        if (down or l[t] <= min_low_sv) and high_vol and x >= p[P_SV_CL] and downtrend:
            bits |= 1 << SV
        if down and narrow and low_vol:
            bits |= 1 << NS
        if l[t] < l[t - 1] and x >= p[P_TEST_CL] and low_vol:
            bits |= 1 << T
        if up and narrow and low_vol and x <= p[P_ND_CL]:
            bits |= 1 << ND
        if x >= p[P_SPRING_CL]:
            for q in range(3):
                if l[t] < supports[q] - delta and c[t] > supports[q]:  # False for a NaN level
                    bits |= 1 << SP
                    sp_k = q
                    break
        if wide and high_vol and x >= p[P_SHAKEOUT_CL]:
            for q in range(3):
                if l[t] < supports[q]:
                    bits |= 1 << SO
                    so_k = q
                    break
        if wide and x <= p[P_UT_CL] and uptrend and (h[t] > r1 or h[t] > max_high_n):
            bits |= 1 << UT
        side_t = 0
        if rv[f] >= p[P_ABS_EFFORT] and result[f] <= p[P_ABS_RESULT]:
            bits |= 1 << ABS
            near = False
            for q in range(3):
                near = near or _near_support(supports[q], l[t], c[t], tol)
            side_t = 1 if x >= 0.5 and near else -1
        if rv[f] <= p[P_EASE_EFFORT] and result[f] >= p[P_EASE_RESULT]:
            bits |= 1 << EASE
            side_t = 1 if c[t] > c[t - 1] else -1

        if t >= start:
            j = t - start
            out = bits
            # Confirmations, known one bar later and emitted here.
            if (prev_bits & (1 << T)) != 0 and up and x >= p[P_TEST_OK_CL]:
                out |= 1 << T_OK
            if (prev_bits & (1 << UT)) != 0 and down:
                out |= 1 << UT_OK
            mask[j] = out
            side[j] = side_t
            if sp_k >= 0:
                sp_level[j] = supports[sp_k]
                sp_id[j] = support_ids[sp_k]
                sp_strong[j] = rv[f] <= p[P_SPRING_STRONG_RV]
            if so_k >= 0:
                so_level[j] = supports[so_k]
                so_id[j] = support_ids[so_k]
            if (bits & (1 << UT)) != 0:
                if h[t] > r1:
                    ut_level[j] = r1
                    ut_id[j] = LV_R1
                else:
                    ut_level[j] = max_high_n
                    ut_id[j] = LV_RANGE_HIGH
                ut_strong[j] = high_vol
        prev_bits = bits
    return mask, side, sp_level, sp_id, so_level, so_id, ut_level, ut_id, sp_strong, ut_strong
