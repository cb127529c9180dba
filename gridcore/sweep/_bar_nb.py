"""One execution bar of one configuration (mirrors gridcore.strategy.engine.on_bar / _Run.process).

`process_bar` is the engine's order, step for step: fresh orders (placed in the previous bar, active now), the gap
segment C_{t−1}→O walked with the resting orders, funding at O, the start of a planned grid at O (its initial
taker position, limits and stops), the body O→extreme→extreme→C, the range break and the adverse squeeze fire at
C, the booking mark at the close.

`fast_run` is the common case, exactly equal to process_bar where it applies: no fresh order, no order trigger
within the bar's price range, no funding to book, the liquidation price and the drawdown kill level (at the
highest peak the bar can reach, with a margin of FAST_MARGIN) out of the mark range, and no exit at the close, so
the walks would only book their vertices. It books the same vertices in the same order, with the same float
operations.
"""

from __future__ import annotations

import math

import numpy as np

from gridcore.sweep._actions_nb import (
    adverse_fire,
    check_kill,
    market,
    range_break,
    run_walk,
    submit_resting,
    walk_reference,
)
from gridcore.sweep._jit import njit
from gridcore.sweep._ledger_nb import equity_at, mark_to
from gridcore.sweep.layout import (
    ACTIVE,
    B_ACTIVE,
    B_FALL,
    B_SEQ,
    B_TRIG,
    BUY,
    F_ENTRY,
    F_FUNDING,
    F_LOWRISE,
    F_LP,
    F_MARK,
    F_MAXDD,
    F_PEAK,
    F_SLIPPAGE,
    F_TOPFALL,
    F_WALLET,
    F_WMARK,
    F_WPRICE,
    F_WT,
    FL_FIRE_SHIFT,
    FL_FUNDING,
    FL_MARK,
    H_DIR,
    H_INITIAL,
    H_NLEV,
    H_NORD,
    H_R1F,
    H_R2F,
    H_S1C,
    H_S2C,
    H_STOP,
    H_STOP_SHORT,
    I_BAR,
    I_BAR_MS,
    I_BRK_COUNT,
    I_BRK_SIDE,
    I_DIR,
    I_FQ_HEAD,
    I_FQ_TAIL,
    I_FULLSCAN,
    I_GRIDS,
    I_HAS_FRESH,
    I_HAS_GRID,
    I_NLEV,
    I_NORD,
    I_NSLOW,
    I_POS,
    I_R1F,
    I_R2F,
    I_S1C,
    I_S2C,
    I_SEQ,
    I_SP,
    I_STATUS,
    I_WGAP,
    I_WK,
    I_WN,
    LIMIT,
    LONG,
    M_C,
    M_H,
    M_HASM,
    M_L,
    M_MC,
    M_MH,
    M_ML,
    M_MO,
    M_MS,
    M_O,
    NEUTRAL,
    NO,
    NONE,
    P_DEFRATE,
    P_MAXDD,
    P_QP,
    PO_LEVEL,
    PO_PRICE,
    PO_QTY,
    PO_SIDE,
    Q_ADVERSE,
    Q_BEYOND,
    Q_HISTFUND,
    Q_LIQ,
    Q_PATH,
    Q_RBC,
    R_INITIAL,
    SELL,
    SHORT,
    STOP,
    YES,
)

ZERO, ONE = np.int64(0), np.int64(1)
FAST_MARGIN = 1e-9  # relative distance to the kill level below which a bar is always walked


@njit
def body(o, h, lo, c, rule):
    """gridcore.sim.path.bar_body: O, first extreme, second extreme, C."""
    if rule == 0:
        high_first = c < o
    elif rule == 1:
        high_first = h - o < o - lo
    else:
        high_first = True
    if high_first:
        return float(o), float(h), float(lo), float(c)
    return float(o), float(lo), float(h), float(c)


@njit
def _body_paths(mk, j, rule, tp, mp):
    tp[0], tp[1], tp[2], tp[3] = body(mk[j, M_O], mk[j, M_H], mk[j, M_L], mk[j, M_C], rule)
    if mk[j, M_HASM]:
        mp[0], mp[1], mp[2], mp[3] = body(mk[j, M_MO], mk[j, M_MH], mk[j, M_ML], mk[j, M_MC], rule)
    else:
        for k in range(4):
            mp[k] = tp[k]


@njit
def _gap_paths(mk, j, tp, mp):
    """The gap C_{t−1}→O; its marks (last mark close or the mark open, mark open) when the bar has a mark bar."""
    tp[0], tp[1] = float(mk[j - 1, M_C]), float(mk[j, M_O])
    if mk[j, M_HASM]:
        mp[0] = float(mk[j - 1, M_MC] if mk[j - 1, M_HASM] else mk[j, M_MO])
        mp[1] = float(mk[j, M_MO])
    else:
        mp[0], mp[1] = tp[0], tp[1]


@njit
def _set_walk(S, n, gap):
    """A new Walk at the path's start. The engine scans every order on its first segment (an order may already
    be past its trigger there); here only when the book's outer triggers say one is (the same hits: any other
    order can only be hit where the segment reaches its trigger, which the bounds test of Walk._may_hit sees)."""
    fs, ns, tp, mp = S[0], S[1], S[6], S[7]
    x = tp[0]
    ns[I_WK], ns[I_WN], ns[I_WGAP] = 0, n, gap
    ns[I_FULLSCAN] = 1 if fs[F_TOPFALL] > x or fs[F_LOWRISE] < x else 0
    fs[F_WT], fs[F_WPRICE], fs[F_WMARK] = 0.0, tp[0], mp[0]


@njit
def _queue_fresh(S, mk, j):
    """The orders active since this bar (placed in the previous one with active_from after it), in creation
    order (the engine's book order)."""
    ns, bk, fq = S[1], S[3], S[4]
    ns[I_FQ_HEAD], ns[I_FQ_TAIL] = 0, 0
    prev = mk[j - 1, M_MS] if j > 0 else 0
    n = 0
    for r in range(ns[I_NORD]):
        if j == 0 or bk[r, B_ACTIVE] > prev:
            seq = bk[r, B_SEQ]
            k = n
            while k > 0 and fq[k - 1] > seq:
                fq[k] = fq[k - 1]
                k -= 1
            fq[k] = seq
            n += 1
    ns[I_FQ_TAIL] = n


@njit
def funding(S, C, Mk, j):
    """_Run.funding: −position·mark·rate at each funding time of the bar (history rate or the default), booked
    at the mark (or trade) open; the kill switch is checked after each."""
    fs, ns = S[0], S[1]
    P, Q = C[0], C[1]
    mk, f_ptr, f_rate = Mk[0], Mk[1], Mk[3]
    for e in range(f_ptr[j], f_ptr[j + 1]):
        pos = ns[I_POS]
        if pos == 0:
            continue
        rate = f_rate[e] if Q[Q_HISTFUND] and not math.isnan(f_rate[e]) else P[P_DEFRATE]
        mark = float(mk[j, M_MO] if mk[j, M_HASM] else mk[j, M_O])
        cash = -pos * mark * P[P_QP] * rate
        fs[F_FUNDING] += cash
        fs[F_WALLET] += cash
        mark_to(fs, ns, P, mark)
        if check_kill(S, C, walk_reference(S)):
            return


@njit
def start_grid(S, C, hdr, plo, plv):
    """_Run.start: ACTIVE, the initial taker position at O, the grid limits, the stop(s)."""
    ns, lv = S[1], S[2]
    ns[I_GRIDS] += 1
    ns[I_HAS_GRID] = 1
    n = hdr[H_NLEV]
    for k in range(n):
        lv[k] = plv[k]
    ns[I_NLEV], ns[I_DIR] = n, hdr[H_DIR]
    ns[I_S1C], ns[I_S2C], ns[I_R1F], ns[I_R2F] = hdr[H_S1C], hdr[H_S2C], hdr[H_R1F], hdr[H_R2F]
    ns[I_BRK_COUNT], ns[I_BRK_SIDE] = 0, 0
    ns[I_STATUS] = ACTIVE
    o = walk_reference(S)
    init = hdr[H_INITIAL]
    if init != 0:
        market(S, C, BUY if init > 0 else SELL, abs(init), R_INITIAL, o, NO)
        if check_kill(S, C, o):
            return
    d, ts = hdr[H_DIR], ns[I_BAR_MS]
    for k in range(hdr[H_NORD]):
        ns[I_SEQ] += 1
        side = plo[k, PO_SIDE]
        opens = d == NEUTRAL or ((side == BUY) == (d == LONG))
        submit_resting(S, C, side, LIMIT, plo[k, PO_PRICE], plo[k, PO_QTY], plo[k, PO_LEVEL], ns[I_SEQ], ts, NONE,
                       ONE if opens else ZERO)
    if hdr[H_STOP] >= 0:
        ns[I_SEQ] += 1
        submit_resting(S, C, BUY if d == SHORT else SELL, STOP, hdr[H_STOP], ZERO, NONE, ns[I_SEQ], ts, NONE,
                       ZERO)
    if hdr[H_STOP_SHORT] >= 0:
        ns[I_SEQ] += 1
        submit_resting(S, C, BUY, STOP, hdr[H_STOP_SHORT], ZERO, NONE, ns[I_SEQ], ts, NONE, ZERO)


@njit
def after_bar(S, C, Mk, j):
    """The triggers nearest the price on each side (any order, active or not) and whether an order becomes
    active in the next bar: what fast_run and Walk._may_hit need."""
    fs, ns, bk = S[0], S[1], S[3]
    top, low, fresh = -math.inf, math.inf, 0
    ms = Mk[0][j, M_MS]
    for r in range(ns[I_NORD]):
        y = float(bk[r, B_TRIG])
        if bk[r, B_FALL]:
            top = max(top, y)
        else:
            low = min(low, y)
        if bk[r, B_ACTIVE] > ms:
            fresh = 1
    fs[F_TOPFALL], fs[F_LOWRISE], ns[I_HAS_FRESH] = top, low, fresh


@njit
def _begin_bar(S, C, Mk, j):
    fs, ns = S[0], S[1]
    ns[I_BAR], ns[I_BAR_MS] = j, Mk[0][j, M_MS]
    fs[F_SLIPPAGE] = C[3][j]


@njit
def process_bar(S, C, Mk, j, start, hdr, plo, plv):
    """_Run.process + result for bar j (a grid starts at O when `start`)."""
    fs, ns, tp, mp = S[0], S[1], S[6], S[7]
    mk = Mk[0]
    rule = C[1][Q_PATH]
    ns[I_NSLOW] += 1
    _begin_bar(S, C, Mk, j)
    ns[I_FQ_HEAD], ns[I_FQ_TAIL] = 0, 0
    if j == 0 or ns[I_HAS_FRESH]:
        _queue_fresh(S, mk, j)
    if j > 0 and mk[j - 1, M_C] != mk[j, M_O]:
        _gap_paths(mk, j, tp, mp)
        _set_walk(S, np.int64(2), YES)
        run_walk(S, C, Mk)
        ns[I_FQ_HEAD], ns[I_FQ_TAIL] = 0, 0
    _body_paths(mk, j, rule, tp, mp)
    _set_walk(S, np.int64(4), NO)
    funding(S, C, Mk, j)
    if start:
        start_grid(S, C, hdr, plo, plv)
    run_walk(S, C, Mk)
    range_break(S, C, Mk, j)
    adverse_fire(S, C, Mk, j)
    mark_to(fs, ns, C[0], mp[3])
    after_bar(S, C, Mk, j)


@njit
def _eq(wallet, pos, entry, qp, mark):
    """equity_at on scalars (the same operations, so the same float)."""
    if pos == 0:
        return wallet
    return wallet + pos * (mark - entry) * qp


@njit
def _low_eq(peak, maxdd):
    """Below this equity the drawdown may beat maxdd: peak·(1 − maxdd) plus a slack far above the rounding of
    1 − e/peak (so above it, 1 − e/peak < maxdd for sure)."""
    keep = 1.0 - maxdd
    return peak * keep + 1e-9 * peak * max(1.0, abs(keep))


@njit
def _book(wallet, pos, entry, qp, peak, maxdd, low_eq, mark):
    """mark_to on scalars: (peak, max drawdown seen, low_eq); the division is skipped when it cannot matter."""
    e = _eq(wallet, pos, entry, qp, mark)
    if e > peak:
        return e, maxdd, _low_eq(e, maxdd)
    if e < low_eq:
        dd = 1.0 - e / peak
        if dd > maxdd:
            maxdd = dd
            low_eq = _low_eq(peak, maxdd)
    return peak, maxdd, low_eq


@njit
def _mark_points(mk, ohlc, flag, j, rule):
    """The mark path's O, first extreme, second extreme, C, and the low and high of the whole walk (its start is
    C_{t−1}'s mark, or O)."""
    if flag & FL_MARK:
        mo, mx, my, mc = body(mk[j, M_MO], mk[j, M_MH], mk[j, M_ML], mk[j, M_MC], rule)
        g0 = float(mk[j - 1, M_MC] if mk[j - 1, M_HASM] else mk[j, M_MO])
    else:
        mo, mx, my, mc = body(ohlc[j, 0], ohlc[j, 1], ohlc[j, 2], ohlc[j, 3], rule)
        g0 = float(ohlc[j - 1, 3])
    lo, hi = min(g0, mx, my), max(g0, mx, my)
    return mo, mx, my, mc, lo, hi


@njit
def _marks_clear(pos, wallet, entry, qp, peak, keep, lp, lo, hi):
    """No liquidation and no drawdown kill anywhere in the mark range [lo, hi] (see the module docstring)."""
    if not math.isnan(lp) and ((pos > 0 and lo <= lp) or (pos < 0 and hi >= lp)):
        return False
    e_hi = _eq(wallet, pos, entry, qp, hi if pos > 0 else lo)
    e_lo = _eq(wallet, pos, entry, qp, lo if pos > 0 else hi)
    pk = max(peak, e_hi)
    return e_lo > keep * pk + FAST_MARGIN * pk


@njit
def _break_count(ns, c, count, side, beyond):
    """range_break's consecutive-close count and side after close c."""
    d = ns[I_DIR]
    new = 0
    if c < ns[I_S2C] and (beyond or d != SHORT):
        new = -1
    elif c > ns[I_R2F] and (beyond or d != LONG):
        new = 1
    if new == 0:
        return 0, 0
    return (count + 1 if new == side else 1), new


@njit
def _exits_at_close(ns, Q, c, flag, count, pos):
    """The close ends the grid (range break or adverse fire): left to process_bar."""
    if count >= Q[Q_RBC]:
        return True
    fire = ((flag >> FL_FIRE_SHIFT) & 3) - 1
    return Q[Q_ADVERSE] and ((pos > 0 and fire < 0 and c < ns[I_S1C]) or (pos < 0 and fire > 0 and c > ns[I_R1F]))


@njit
def fast_run(S, C, Mk, j, jend):
    """Bars j, j+1, … of an ACTIVE grid while nothing can trigger in them; returns the first bar left to
    process_bar (or jend). Each bar books its path vertices (the gap's O, then X, Y, C: the only events of its
    walks), updates the range-break count and samples the equity, with the account in locals."""
    fs, ns, eqa = S[0], S[1], S[11]
    P, Q = C[0], C[1]
    mk, samp, ohlc, flags = Mk[0], Mk[6], Mk[7], Mk[8]
    wallet, entry, peak, maxdd, mark = fs[F_WALLET], fs[F_ENTRY], fs[F_PEAK], fs[F_MAXDD], fs[F_MARK]
    low_eq = _low_eq(peak, maxdd)
    pos, qp, keep, rule = ns[I_POS], P[P_QP], 1.0 - P[P_MAXDD], Q[Q_PATH]
    top, low = fs[F_TOPFALL], fs[F_LOWRISE]
    lp = fs[F_LP] if Q[Q_LIQ] else math.nan
    count, side, sp = ns[I_BRK_COUNT], ns[I_BRK_SIDE], ns[I_SP]
    nxt = samp[sp] if sp < samp.shape[0] else -1
    cp = ohlc[j - 1, 3]
    while j < jend:
        o, h, lo_t, c, flag = ohlc[j, 0], ohlc[j, 1], ohlc[j, 2], ohlc[j, 3], flags[j]
        if min(lo_t, cp) <= top or max(h, cp) >= low:
            break
        if pos != 0:
            mo, mx, my, mc, lo, hi = _mark_points(mk, ohlc, flag, j, rule)
            if flag & FL_FUNDING or not _marks_clear(pos, wallet, entry, qp, peak, keep, lp, lo, hi):
                break
        n_count, n_side = _break_count(ns, c, count, side, Q[Q_BEYOND] != 0)
        if _exits_at_close(ns, Q, c, flag, n_count, pos):
            break
        if pos != 0:
            if cp != o:
                peak, maxdd, low_eq = _book(wallet, pos, entry, qp, peak, maxdd, low_eq, mo)
            peak, maxdd, low_eq = _book(wallet, pos, entry, qp, peak, maxdd, low_eq, mx)
            peak, maxdd, low_eq = _book(wallet, pos, entry, qp, peak, maxdd, low_eq, my)
            peak, maxdd, low_eq = _book(wallet, pos, entry, qp, peak, maxdd, low_eq, mc)
            mark = mc
        else:
            mark = float(mk[j, M_MC] if flag & FL_MARK else c)
        count, side, cp = n_count, n_side, c
        if j == nxt:
            eqa[sp] = _eq(wallet, pos, entry, qp, mark)
            sp += 1
            nxt = samp[sp] if sp < samp.shape[0] else -1
        j += 1
    fs[F_PEAK], fs[F_MAXDD], fs[F_MARK] = peak, maxdd, mark
    ns[I_BRK_COUNT], ns[I_BRK_SIDE], ns[I_SP] = count, side, sp
    return j


@njit
def bar_equity(S, C):
    fs, ns = S[0], S[1]
    return equity_at(fs, ns, C[0], fs[F_MARK])

