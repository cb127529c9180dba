"""What the engine does at each event of a walk (mirrors gridcore.strategy.engine._Run, method by method).

The state tuple S = (fs, ns, lv, bk, fq, stamp, tp, mp, fo_i, fo_f, ex, eq, alive) and the configuration tuple
C = (P, Q, tiers, slip, capv) are described in gridcore.sweep.layout and gridcore.sweep.kernel.

* book_fill: Ledger.apply_fill, then the booking mark at the walk's mark, the order filled (partly) or dropped;
* market / close_position: a market order validated like `submit` (reduce-only closes are never refused) and
  filled as taker against the reference with the bar's slippage;
* check_kill / kill: the drawdown check after every booking; cancel all, close at market, HALTED;
* stop_hit, liquidate_hit, kill_hit, order_hit: on_order_hit/stop, liquidate, on_threshold;
* counter_order: §4.5 re-placement (active from the next bar unless same_bar_refill; refused when the level
  already holds an order of that side);
* range_break / adverse_fire: the exits at the close.
"""

from __future__ import annotations

import math

import numpy as np

from gridcore.sweep._jit import njit
from gridcore.sweep._ledger_nb import apply_fill, drawdown, equity_at, liquidate, mark_to, update_liquidation_price
from gridcore.sweep._walk_nb import fillable_qty, find_order, next_hit
from gridcore.sweep.layout import (
    ACTIVE,
    B_ACTIVE,
    B_BF,
    B_BFBAR,
    B_FALL,
    B_FILLED,
    B_KIND,
    B_LEVEL,
    B_OPENS,
    B_PAIR,
    B_PRICE,
    B_QTY,
    B_SEQ,
    B_SIDE,
    B_TRIG,
    BUY,
    CLOSING,
    EX_BAR,
    EX_KIND,
    F_HIT_MARK,
    F_HIT_REF,
    F_LOWRISE,
    F_LP,
    F_MARK,
    F_SLIPPAGE,
    F_TOPFALL,
    F_WMARK,
    F_WPRICE,
    FF_EQUITY,
    FF_FEE,
    FF_PRICE,
    FF_REF,
    FF_SLIPCOST,
    FI_BAR,
    FI_LEVEL,
    FI_POS,
    FI_QTY,
    FI_REASON,
    FI_SEQ,
    FI_SIDE,
    FI_TAKER,
    HALTED,
    HK_KILL,
    HK_LIQ,
    HK_NONE,
    HK_VERTEX,
    I_BAR,
    I_BAR_MS,
    I_BRK_COUNT,
    I_BRK_SIDE,
    I_DIR,
    I_FQ_TAIL,
    I_FULLSCAN,
    I_HAS_GRID,
    I_HIT_ROW,
    I_KILLING,
    I_NEXIT,
    I_NFILL,
    I_NLEV,
    I_NORD,
    I_POS,
    I_R1F,
    I_R2F,
    I_S1C,
    I_S2C,
    I_SEQ,
    I_STATUS,
    I_WGAP,
    I_WN,
    IDLE,
    LIMIT,
    LONG,
    M_C,
    M_FIRE,
    NONE,
    P_MAKER,
    P_MAXDD,
    P_QP,
    P_TAKER,
    Q_ADVERSE,
    Q_BEYOND,
    Q_LIQ,
    Q_MINNOT,
    Q_MINQTY,
    Q_RBC,
    Q_SAMEBAR,
    Q_THETA,
    Q_TICK,
    R_CLOSE,
    R_GRID,
    R_KILL_SWITCH,
    R_RANGE_BREAK,
    R_STOP,
    SELL,
    SHORT,
    STOP,
    X_ADVERSE_FIRE,
    X_KILL_SWITCH,
    X_LIQUIDATION,
    X_RANGE_BREAK,
    X_STOP,
    YES,
)

ZERO, ONE = np.int64(0), np.int64(1)

# --- plumbing --------------------------------------------------------------------------------------------------------


@njit
def walk_reference(S):
    """_Run.reference: a gap trades only at its end O; otherwise the walk's current price."""
    fs, ns, tp = S[0], S[1], S[6]
    return tp[ns[I_WN] - 1] if ns[I_WGAP] else fs[F_WPRICE]


@njit
def record_exit(S, kind):
    ns, ex = S[1], S[10]
    n = ns[I_NEXIT]
    ex[n, EX_BAR] = ns[I_BAR]
    ex[n, EX_KIND] = kind
    ns[I_NEXIT] = n + 1


@njit
def _copy_row(bk, dst, src):
    for c in range(bk.shape[1]):
        bk[dst, c] = bk[src, c]


@njit
def drop(S, row):
    """Remove a book row: the last row takes its place. Row order carries no meaning: ties between hits are
    broken by order id, and the fresh queue is sorted by sequence number."""
    ns, bk = S[1], S[3]
    n = ns[I_NORD] - 1
    if row != n:
        _copy_row(bk, row, n)
    ns[I_NORD] = n


@njit
def cancel_all(S, keep_seq):
    """_Run.cancel_all: every open order but `keep_seq` (−1: all) is cancelled."""
    ns, bk = S[1], S[3]
    n, w = ns[I_NORD], 0
    for r in range(n):
        if bk[r, B_SEQ] == keep_seq:
            if w != r:
                _copy_row(bk, w, r)
            w += 1
    ns[I_NORD] = w


@njit
def _rule_ok(Q, price, qty, needs_size):
    """_Run.rule_problem is None: price > 0 on the tick; unless reduce-only, qty >= minQty and the notional
    qty·price >= minNotional (quantities are whole steps, so always on the step)."""
    if price <= 0 or price % Q[Q_TICK] != 0:
        return False
    if not needs_size:
        return True
    return qty > 0 and qty >= Q[Q_MINQTY] and float(qty) * float(price) >= Q[Q_MINNOT]  # float: no int64 overflow


@njit
def submit_resting(S, C, side, kind, price, qty, level, seq, active, pair, opens):
    """_Run.submit of a limit or stop: validate, rest it in the book and queue it as fresh. False: rejected."""
    ns, bk, fq = S[1], S[3], S[4]
    Q = C[1]
    if not _rule_ok(Q, price, qty, kind == LIMIT):
        return False
    r = ns[I_NORD]
    bk[r, B_PRICE], bk[r, B_SIDE], bk[r, B_KIND], bk[r, B_QTY] = price, side, kind, qty
    bk[r, B_FILLED], bk[r, B_LEVEL], bk[r, B_SEQ], bk[r, B_ACTIVE] = 0, level, seq, active
    bk[r, B_PAIR], bk[r, B_OPENS], bk[r, B_BF], bk[r, B_BFBAR] = pair, opens, 0, -1
    ns[I_NORD] = r + 1
    fq[ns[I_FQ_TAIL]] = seq
    ns[I_FQ_TAIL] += 1
    fs = S[0]
    theta = Q[Q_THETA] if kind == LIMIT else 0
    falling = (side == BUY) == (kind == LIMIT)
    trig = price - theta if falling else price + theta
    bk[r, B_TRIG], bk[r, B_FALL] = trig, 1 if falling else 0
    y = float(trig)
    if falling:
        fs[F_TOPFALL] = max(fs[F_TOPFALL], y)
        beyond = y > fs[F_WPRICE]
    else:
        fs[F_LOWRISE] = min(fs[F_LOWRISE], y)
        beyond = y < fs[F_WPRICE]
    if beyond:  # Walk.add scans every order next; only the new one can be past its trigger here
        ns[I_FULLSCAN] = 1
    return True


# --- fills ------------------------------------------------------------------------------------------------------------


@njit
def taker_price(S, side, ref, limit):
    """Walk.taker_fill's price: ref·(1 ± slippage), capped at the limit of a marketable limit (limit < 0: none)."""
    s = S[0][F_SLIPPAGE]
    price = ref * (1.0 + s) if side == BUY else ref * (1.0 - s)
    if limit >= 0:
        price = min(price, limit) if side == BUY else max(price, limit)
    return price


@njit
def _record_fill(S, C, side, qty, price, fee, ref, slipcost, reason, taker, level, seq):
    fs, ns, fo_i, fo_f = S[0], S[1], S[8], S[9]
    n = ns[I_NFILL]
    fo_i[n, FI_BAR], fo_i[n, FI_SIDE], fo_i[n, FI_QTY], fo_i[n, FI_REASON] = ns[I_BAR], side, qty, reason
    fo_i[n, FI_TAKER], fo_i[n, FI_LEVEL], fo_i[n, FI_SEQ], fo_i[n, FI_POS] = taker, level, seq, ns[I_POS]
    fo_f[n, FF_PRICE], fo_f[n, FF_FEE], fo_f[n, FF_REF], fo_f[n, FF_SLIPCOST] = price, fee, ref, slipcost
    fo_f[n, FF_EQUITY] = equity_at(fs, ns, C[0], fs[F_MARK])
    ns[I_NFILL] = n + 1


@njit
def book_fill(S, C, row, side, qty, price, fee, ref, slipcost, reason, taker, level, seq, pair):
    """_Run.book_fill: ledger, booking mark at the walk's mark, the order filled or dropped, the fill recorded."""
    fs, ns, bk = S[0], S[1], S[3]
    P, tiers = C[0], C[2]
    apply_fill(fs, ns, P, side, qty, price, fee, slipcost, pair)
    if C[1][Q_LIQ]:  # spot history has no liquidation (the engine computes the price and never uses it)
        update_liquidation_price(fs, ns, P, tiers)
    mark_to(fs, ns, P, fs[F_WMARK])
    if row >= 0:
        if bk[row, B_KIND] == STOP:
            drop(S, row)
        else:
            bk[row, B_FILLED] += qty
            if bk[row, B_FILLED] >= bk[row, B_QTY]:
                drop(S, row)
    _record_fill(S, C, side, qty, price, fee, ref, slipcost, reason, taker, level, seq)


@njit
def market(S, C, side, qty, reason, ref, reduce_only):
    """_Run.market: place (validated against the walk reference unless reduce-only) and fill at once as taker."""
    ns = S[1]
    P, Q = C[0], C[1]
    ns[I_SEQ] += 1
    seq = ns[I_SEQ]
    if not reduce_only and (qty <= 0 or qty < Q[Q_MINQTY] or qty * walk_reference(S) < Q[Q_MINNOT]):
        return False
    price = taker_price(S, side, ref, -1.0)
    fee = qty * price * P[P_QP] * P[P_TAKER]
    slipcost = qty * abs(price - ref) * P[P_QP]
    book_fill(S, C, NONE, side, qty, price, fee, ref, slipcost, reason, ONE, NONE, seq, -1.0)
    return True


@njit
def close_position(S, C, reason, ref):
    pos = S[1][I_POS]
    if pos != 0:
        market(S, C, SELL if pos > 0 else BUY, abs(pos), reason, ref, YES)


# --- risk ------------------------------------------------------------------------------------------------------------


@njit
def kill(S, C, ref):
    """_Run.kill: cancel all, close at market against `ref`, HALTED."""
    ns = S[1]
    ns[I_KILLING] = 1
    cancel_all(S, NONE)
    close_position(S, C, R_KILL_SWITCH, ref)
    ns[I_STATUS] = HALTED
    record_exit(S, X_KILL_SWITCH)
    ns[I_HAS_GRID] = 0
    ns[I_BRK_COUNT] = 0
    ns[I_BRK_SIDE] = 0
    ns[I_KILLING] = 0


@njit
def check_kill(S, C, ref):
    """_Run.check_kill: fire the kill switch when the drawdown has reached max_drawdown; True when it fired."""
    fs, ns = S[0], S[1]
    P = C[0]
    if ns[I_KILLING] or ns[I_STATUS] == HALTED:
        return False
    if drawdown(fs, ns, P) < P[P_MAXDD]:
        return False
    kill(S, C, ref)
    return True


@njit
def finish_exit(S):
    ns = S[1]
    if ns[I_STATUS] == CLOSING:
        ns[I_STATUS] = IDLE
    ns[I_HAS_GRID] = 0
    ns[I_BRK_COUNT] = 0
    ns[I_BRK_SIDE] = 0


@njit
def begin_close(S, kind):
    """transition(CLOSE): ACTIVE -> CLOSING, recorded as an exit of `kind`."""
    S[1][I_STATUS] = CLOSING
    record_exit(S, kind)


# --- walk events ------------------------------------------------------------------------------------------------------


@njit
def stop_hit(S, C, row):
    """_Run.stop: exit; the stop closes the position on its side, otherwise a market close."""
    fs, ns, bk = S[0], S[1], S[3]
    P = C[0]
    seq, side, ref = bk[row, B_SEQ], bk[row, B_SIDE], fs[F_HIT_REF]
    if ns[I_STATUS] == ACTIVE:
        begin_close(S, X_STOP)
    cancel_all(S, seq)
    pos = ns[I_POS]
    if pos != 0 and (pos > 0) == (side == SELL):
        qty = abs(pos)
        price = taker_price(S, side, ref, -1.0)
        fee = qty * price * P[P_QP] * P[P_TAKER]
        slipcost = qty * abs(price - ref) * P[P_QP]
        book_fill(S, C, find_order(ns, bk, seq), side, qty, price, fee, ref, slipcost, R_STOP, ONE, NONE, seq,
                  -1.0)
    else:
        cancel_all(S, NONE)
        close_position(S, C, R_STOP, ref)
    if not check_kill(S, C, ref):
        finish_exit(S)


@njit
def liquidate_hit(S, C):
    """_Run.liquidate: exit, cancel all, lose the isolated margin at the liquidation price."""
    fs, ns = S[0], S[1]
    P, tiers = C[0], C[2]
    if ns[I_STATUS] == ACTIVE:
        begin_close(S, X_LIQUIDATION)
    cancel_all(S, NONE)
    liquidate(fs, ns, P, fs[F_LP])
    update_liquidation_price(fs, ns, P, tiers)
    mark_to(fs, ns, P, fs[F_HIT_MARK])
    if not check_kill(S, C, walk_reference(S)):
        finish_exit(S)


@njit
def kill_hit(S, C):
    """_Run.on_threshold for the kill level: book the mark; fire even when rounding kept DD a hair short."""
    fs, ns = S[0], S[1]
    ref = fs[F_HIT_REF]
    mark_to(fs, ns, C[0], fs[F_HIT_MARK])
    if not check_kill(S, C, ref):
        kill(S, C, ref)


@njit
def counter_order(S, C, side, level, qty, opens, price):
    """_Run.counter_order (§4.5): a filled buy at level i re-places a sell at i+1, a sell a buy at i−1."""
    ns, lv, bk = S[1], S[2], S[3]
    Q = C[1]
    if not ns[I_HAS_GRID] or level < 0:
        return
    j = level + (1 if side == BUY else -1)
    if not 0 <= j < ns[I_NLEV]:
        return
    ts = ns[I_BAR_MS]
    active = ts if Q[Q_SAMEBAR] else ts + 1
    ns[I_SEQ] += 1
    seq = ns[I_SEQ]
    for r in range(ns[I_NORD]):
        if bk[r, B_LEVEL] == j and bk[r, B_KIND] == LIMIT and bk[r, B_SIDE] == -side:
            return
    submit_resting(S, C, -side, LIMIT, lv[j], qty, j, seq, active, price if opens else NONE,
                   ZERO if opens else ONE)


@njit
def order_hit(S, C, row):
    """_Run.on_order_hit of a limit: maker at its price, or taker against the reference (capped at the limit)."""
    fs, ns, bk, stamp = S[0], S[1], S[3], S[5]
    P, Q, capv = C[0], C[1], C[4]
    if bk[row, B_KIND] == STOP:
        stop_hit(S, C, row)
        return
    seq, side, p, level = bk[row, B_SEQ], bk[row, B_SIDE], bk[row, B_PRICE], bk[row, B_LEVEL]
    opens, total, pair = bk[row, B_OPENS], bk[row, B_QTY], bk[row, B_PAIR]
    qty = fillable_qty(ns, Q, bk, capv, row)
    ref = fs[F_HIT_REF]
    if math.isnan(ref):
        price, fee, slipcost, taker, ref = float(p), qty * p * P[P_QP] * P[P_MAKER], 0.0, ZERO, float(p)
    else:
        price = taker_price(S, side, ref, float(p))
        fee = qty * price * P[P_QP] * P[P_TAKER]
        slipcost, taker = qty * abs(price - ref) * P[P_QP], ONE
    j = ns[I_BAR]
    if bk[row, B_BFBAR] != j:
        bk[row, B_BF], bk[row, B_BFBAR] = 0, j
    bk[row, B_BF] += qty
    if not Q[Q_SAMEBAR] and level >= 0:
        stamp[level] = j + 1
    full = bk[row, B_FILLED] + qty >= total
    book_fill(S, C, row, side, qty, price, fee, ref, slipcost, R_GRID, taker, level, seq, float(pair))
    if check_kill(S, C, walk_reference(S)):
        return
    if full:
        counter_order(S, C, side, level, total, opens, p)


@njit
def run_walk(S, C, Mk):
    """_Run.run_walk: every event of the current walk, booked in path order."""
    fs, ns, bk, fq, stamp, tp, mp = S[0], S[1], S[3], S[4], S[5], S[6], S[7]
    P, Q, capv = C[0], C[1], C[4]
    mk = Mk[0]
    while True:
        kind = next_hit(fs, ns, P, Q, bk, fq, stamp, capv, mk, tp, mp)
        if kind == HK_NONE:
            return
        if kind == HK_VERTEX:
            mark_to(fs, ns, P, fs[F_HIT_MARK])
            check_kill(S, C, walk_reference(S))
        elif kind == HK_LIQ:
            liquidate_hit(S, C)
        elif kind == HK_KILL:
            kill_hit(S, C)
        else:
            order_hit(S, C, ns[I_HIT_ROW])


# --- exits at the close --------------------------------------------------------------------------------------------


@njit
def _exit_at_close(S, C, kind, reason, close):
    begin_close(S, kind)
    cancel_all(S, NONE)
    close_position(S, C, reason, close)
    if not check_kill(S, C, close):
        finish_exit(S)


@njit
def range_break(S, C, Mk, j):
    """_Run.range_break: range_break_closes consecutive closes beyond S2 (long/neutral) or R2 (short/neutral), or
    beyond either with risk.exit_beyond_range."""
    ns = S[1]
    Q = C[1]
    if ns[I_STATUS] != ACTIVE or not ns[I_HAS_GRID]:
        return
    c, d, beyond = Mk[0][j, M_C], ns[I_DIR], Q[Q_BEYOND] != 0
    side = 0
    if c < ns[I_S2C] and (beyond or d != SHORT):
        side = -1
    elif c > ns[I_R2F] and (beyond or d != LONG):
        side = 1
    if side == 0:
        ns[I_BRK_COUNT] = 0
    else:
        ns[I_BRK_COUNT] = ns[I_BRK_COUNT] + 1 if side == ns[I_BRK_SIDE] else 1
    ns[I_BRK_SIDE] = side
    if ns[I_BRK_COUNT] >= Q[Q_RBC]:
        _exit_at_close(S, C, X_RANGE_BREAK, R_RANGE_BREAK, float(c))


@njit
def adverse_fire(S, C, Mk, j):
    """_Run.adverse_fire: a squeeze fire against the inventory with the close beyond S1 (long) / R1 (short)."""
    ns = S[1]
    Q = C[1]
    if not Q[Q_ADVERSE] or ns[I_STATUS] != ACTIVE or not ns[I_HAS_GRID]:
        return
    c, fire, pos = Mk[0][j, M_C], Mk[0][j, M_FIRE], ns[I_POS]
    if (pos > 0 and fire < 0 and c < ns[I_S1C]) or (pos < 0 and fire > 0 and c > ns[I_R1F]):
        _exit_at_close(S, C, X_ADVERSE_FIRE, R_CLOSE, float(c))

