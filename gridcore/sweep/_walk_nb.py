"""One walk along a bar's path (mirrors gridcore.sim.matching.Walk.next and its candidates).

The walk state lives in the configuration's arrays: segment I_WK of the trade path `tp` (mark path `mp`, same
length I_WN), position F_WT along it, current trade price F_WPRICE and mark F_WMARK, I_WGAP on the gap C_{t−1}→O.
`next_hit` returns the next event in path order exactly as Walk.next does:

1. a fresh limit (placed at this point, or active since this bar) marketable at the current price, in queue order;
2. on the current segment the first of: an order past its trigger (here, against the current price), an order
   whose trigger the segment reaches (limit: maker at its price; stop: taker against the stop, or the gap's end),
   the liquidation or drawdown-kill mark threshold; ties at one point ordered liquidation, stop, kill, limit, then
   by order id (the engine's string order of `<grid>-G<level>-<seq>`);
3. otherwise the arrival at the next vertex.

Which orders are scanned follows Walk._may_hit: every order when one may be past its trigger (at the walk's start
when the book's outer triggers say so, after adding an order past its own trigger, after a hit at the current
point), otherwise only when the segment reaches the nearest trigger of its direction. Both are supersets of the
orders that can be hit, so the hits are the same as the engine's full scans.

Positions along a segment are float64 (the engine's are exact Fractions): triggers are integer units, so two
positions the engine calls equal are computed by the same float expression and compare equal here too.
"""

from __future__ import annotations

import math

from gridcore.sweep._jit import njit
from gridcore.sweep._ledger_nb import kill_price
from gridcore.sweep.layout import (
    B_ACTIVE,
    B_BF,
    B_BFBAR,
    B_FALL,
    B_FILLED,
    B_KIND,
    B_LEVEL,
    B_PRICE,
    B_QTY,
    B_SEQ,
    B_SIDE,
    B_TRIG,
    BUY,
    F_HIT_MARK,
    F_HIT_PRICE,
    F_HIT_REF,
    F_HIT_T,
    F_LOWRISE,
    F_LP,
    F_TOPFALL,
    F_WMARK,
    F_WPRICE,
    F_WT,
    HALTED,
    HK_KILL,
    HK_LIQ,
    HK_NONE,
    HK_ORDER,
    HK_VERTEX,
    I_BAR,
    I_FQ_HEAD,
    I_FQ_TAIL,
    I_FULLSCAN,
    I_HIT_ROW,
    I_HIT_SEG,
    I_NORD,
    I_POS,
    I_STATUS,
    I_WGAP,
    I_WK,
    I_WN,
    LIMIT,
    M_MS,
    NONE,
    Q_CAP,
    Q_LIQ,
    Q_SAMEBAR,
    RANK_KILL,
    RANK_LIMIT,
    RANK_LIQUIDATION,
    RANK_STOP,
)


@njit
def _ndigits(x):
    n = 1
    while x >= 10:
        x //= 10
        n += 1
    return n


@njit
def _char(level, seq, nl, ns, k):
    """Character k of '<level>-<seq>' (nl digits of level, 0 when it has none; ns digits of seq)."""
    if k < nl:
        return 48 + (level // 10 ** (nl - 1 - k)) % 10
    if k == nl:
        return 45  # '-'
    return 48 + (seq // 10 ** (ns - 1 - (k - nl - 1))) % 10


@njit
def id_less(level_a, seq_a, level_b, seq_b):
    """order id A < order id B as strings. Ids of one grid and purpose differ only in '<level>-<seq>' (stops
    have no level: '-<seq>')."""
    la = _ndigits(level_a) if level_a >= 0 else 0
    lb = _ndigits(level_b) if level_b >= 0 else 0
    sa, sb = _ndigits(seq_a), _ndigits(seq_b)
    na, nb = la + 1 + sa, lb + 1 + sb
    for k in range(min(na, nb)):
        ca, cb = _char(level_a, seq_a, la, sa, k), _char(level_b, seq_b, lb, sb, k)
        if ca != cb:
            return ca < cb
    return na < nb


@njit
def find_order(ns, bk, seq):
    for r in range(ns[I_NORD]):
        if bk[r, B_SEQ] == seq:
            return r
    return -1


@njit
def fillable_qty(ns, Q, bk, capv, r):
    """Walk.fillable_qty: the remaining quantity, or less under the participation cap (steps)."""
    remaining = bk[r, B_QTY] - bk[r, B_FILLED]
    if not Q[Q_CAP]:
        return remaining
    j = ns[I_BAR]
    used = bk[r, B_BF] if bk[r, B_BFBAR] == j else 0
    return max(0, min(remaining, capv[j] - used))


@njit
def eligible(ns, Q, bk, stamp, capv, mk, r):
    """Walk._eligible: active, its level not filled in this bar (no same-bar refill), room under the cap."""
    j = ns[I_BAR]
    if bk[r, B_ACTIVE] > mk[j, M_MS]:
        return False
    lv = bk[r, B_LEVEL]
    if not Q[Q_SAMEBAR] and lv >= 0 and stamp[lv] == j + 1:
        return False
    return not Q[Q_CAP] or bk[r, B_KIND] != LIMIT or fillable_qty(ns, Q, bk, capv, r) > 0


@njit
def lerp(a, b, t):
    if t == 0.0 or a == b:
        return a
    if t == 1.0:
        return b
    return a + (b - a) * t


@njit
def _set_hit(fs, ns, row, t, price, mark, ref):
    ns[I_HIT_ROW] = row
    ns[I_HIT_SEG] = ns[I_WK]
    fs[F_HIT_T] = t
    fs[F_HIT_PRICE] = price
    fs[F_HIT_MARK] = mark
    fs[F_HIT_REF] = ref


@njit
def _fresh_hit(fs, ns, Q, bk, fq, stamp, capv, mk):
    """Walk._fresh_hit: the first queued limit marketable at the current price (taker)."""
    x = fs[F_WPRICE]
    while ns[I_FQ_HEAD] < ns[I_FQ_TAIL]:
        r = find_order(ns, bk, fq[ns[I_FQ_HEAD]])
        ns[I_FQ_HEAD] += 1
        if r < 0 or bk[r, B_KIND] != LIMIT or not eligible(ns, Q, bk, stamp, capv, mk, r):
            continue
        p = bk[r, B_PRICE]
        if (p >= x) if bk[r, B_SIDE] == BUY else (p <= x):
            _set_hit(fs, ns, r, fs[F_WT], x, fs[F_WMARK], x)
            return True
    return False


@njit
def _order_candidate(fs, ns, bk, tp, mp, r):
    """Walk._order_candidate: (t, rank, hit price, hit mark, reference) or t = NaN when the order is not hit."""
    falling, y = bk[r, B_FALL], float(bk[r, B_TRIG])
    x = fs[F_WPRICE]
    k = ns[I_WK]
    a, b = tp[k], tp[k + 1]
    if falling:
        beyond, reached = y > x, b <= y
    else:
        beyond, reached = y < x, b >= y
    if not beyond and (not reached or a == b):
        return math.nan, 0, 0.0, 0.0, 0.0
    kind = bk[r, B_KIND]
    rank = RANK_LIMIT if kind == LIMIT else RANK_STOP
    if beyond:
        return fs[F_WT], rank, x, fs[F_WMARK], x
    t = (a - y) / (a - b)
    mark = lerp(mp[k], mp[k + 1], t) if mp[k] != tp[k] or mp[k + 1] != tp[k + 1] else y
    ref = math.nan
    if kind != LIMIT:
        ref = b if ns[I_WGAP] else y
    return t, rank, y, mark, ref


@njit
def _threshold_candidate(fs, ns, tp, mp, price, falling):
    """Walk._threshold_candidate: (t, hit price, hit mark, reference), t = NaN when not crossed."""
    k = ns[I_WK]
    ma, mb = mp[k], mp[k + 1]
    a, b = tp[k], tp[k + 1]
    cur = fs[F_WMARK]
    if (cur <= price) if falling else (cur >= price):
        t, mark, px = fs[F_WT], cur, fs[F_WPRICE]
    elif ((mb <= price) if falling else (mb >= price)) and ma != mb:
        t = (ma - price) / (ma - mb)
        mark = price
        px = lerp(a, b, t) if ma != a or mb != b else price
    else:
        return math.nan, 0.0, 0.0, 0.0
    return t, px, mark, b if ns[I_WGAP] else px


@njit
def _better(t, rank, level, seq, bt, brank, blevel, bseq):
    """(t, rank, id) < (bt, brank, bid) — the walk's ordering of candidates."""
    if math.isnan(bt) or t < bt:
        return True
    if t > bt or rank > brank:
        return False
    if rank < brank:
        return True
    return id_less(level, seq, blevel, bseq)


@njit
def _best_order(fs, ns, Q, bk, stamp, capv, mk, tp, mp):
    """The first order hit on the current segment: (row, t, rank, price, mark, ref); row −1: none. (Whether an
    order would be hit is tested before whether it may fill: both must hold, and the first is cheaper.)"""
    best, bt, brank, bp, bm, bref = -1, math.nan, 0, 0.0, 0.0, 0.0
    for r in range(ns[I_NORD]):
        t, rank, p, m, ref = _order_candidate(fs, ns, bk, tp, mp, r)
        if math.isnan(t) or not eligible(ns, Q, bk, stamp, capv, mk, r):
            continue
        if best < 0 or _better(t, rank, bk[r, B_LEVEL], bk[r, B_SEQ], bt, brank, bk[best, B_LEVEL],
                               bk[best, B_SEQ]):
            best, bt, brank, bp, bm, bref = r, t, rank, p, m, ref
    return best, bt, brank, bp, bm, bref


@njit
def _pick_threshold(fs, ns, tp, mp, price, falling, rank, kind, best_kind, bt, brank):
    """A threshold candidate replaces the best so far when strictly earlier (ranks of thresholds and orders
    differ, so equal keys never occur). Returns the new (kind, t, rank) and stores the hit."""
    t, px, mark, ref = _threshold_candidate(fs, ns, tp, mp, price, falling)
    if math.isnan(t):
        return best_kind, bt, brank
    if best_kind != HK_NONE and not (t < bt or (t == bt and rank < brank)):
        return best_kind, bt, brank
    _set_hit(fs, ns, NONE, t, px, mark, ref)
    return kind, t, rank


@njit
def _may_hit(fs, ns, a, b):
    """Walk._may_hit: False when no order can trigger on a → b. The bounds (F_TOPFALL, F_LOWRISE) cover every
    order in the book and are only widened within a bar, so they bound the engine's (active orders) from outside."""
    if ns[I_FULLSCAN]:
        return True
    if b < a:
        return fs[F_TOPFALL] >= b
    return b > a and fs[F_LOWRISE] <= b


@njit
def _thresholds(fs, ns, P, Q, tp, mp, kind, bt, brank):
    """The engine's thresholds(): liquidation (perpetual) and the drawdown kill level, with a position open."""
    pos = ns[I_POS]
    if pos == 0:
        return kind
    lp = fs[F_LP]
    if Q[Q_LIQ] and not math.isnan(lp):
        kind, bt, brank = _pick_threshold(fs, ns, tp, mp, lp, pos > 0, RANK_LIQUIDATION, HK_LIQ, kind, bt, brank)
    if ns[I_STATUS] != HALTED:
        kp = kill_price(fs, ns, P)
        if not math.isnan(kp):
            kind, bt, brank = _pick_threshold(fs, ns, tp, mp, kp, pos > 0, RANK_KILL, HK_KILL, kind, bt, brank)
    return kind


@njit
def next_hit(fs, ns, P, Q, bk, fq, stamp, capv, mk, tp, mp):
    """Walk.next(engine thresholds): the next event's kind (HK_*); the hit is stored in F_HIT_*/I_HIT_*, and the
    walk moves there."""
    if _fresh_hit(fs, ns, Q, bk, fq, stamp, capv, mk):
        return HK_ORDER
    k = ns[I_WK]
    if k >= ns[I_WN] - 1:
        return HK_NONE
    kind, bt, brank = HK_NONE, math.nan, 0
    if _may_hit(fs, ns, tp[k], tp[k + 1]):
        row, t, rank, p, m, ref = _best_order(fs, ns, Q, bk, stamp, capv, mk, tp, mp)
        if row >= 0:
            _set_hit(fs, ns, row, t, p, m, ref)
            kind, bt, brank = HK_ORDER, t, rank
        ns[I_FULLSCAN] = 1 if row >= 0 and t == fs[F_WT] else 0
    kind = _thresholds(fs, ns, P, Q, tp, mp, kind, bt, brank)
    if kind != HK_NONE:
        fs[F_WT], fs[F_WPRICE], fs[F_WMARK] = fs[F_HIT_T], fs[F_HIT_PRICE], fs[F_HIT_MARK]
        return kind
    ns[I_WK] = k + 1
    fs[F_WT], fs[F_WPRICE], fs[F_WMARK] = 0.0, tp[k + 1], mp[k + 1]
    fs[F_HIT_MARK] = mp[k + 1]
    return HK_VERTEX
