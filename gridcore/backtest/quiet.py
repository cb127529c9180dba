"""The backtest's fast path: runs of bars in which the engine provably does nothing but mark the position.

The engine (gridcore.strategy.engine.on_bar) stays the only decision path. This module only finds, from bar i on,
the bars in which nothing can happen — no order, stop, liquidation or kill level within reach of the bar's prices
(the previous close included, so the gap C_{t−1}→O is covered), no funding in the bar, no close that could start a
range break or an adverse-fire exit, no signal arriving or expiring — and books for such a run exactly what on_bar
would have booked bar by bar: the mark (each bar's mark close), the peak equity and the worst drawdown seen on a
path vertex. Every test is a superset test: a bar that might do anything ends the run and goes through on_bar.
tests/unit/backtest/test_quiet.py proves a backtest with the fast path equals one without it (final state, events,
signals, equity point by point) on real data and on random markets.

Why a few exact values suffice: while the position is fixed, equity is a monotone function of the mark (every
Decimal operation in `wallet + position·(mark − entry)` rounds monotonically), so the peak after a run is the equity
at its most favourable mark vertex, and the worst drawdown sits at one vertex, which the kernel finds in floats
(keeping every vertex within a tolerance far above float error) and Python recomputes exactly.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from gridcore.analysis.kernels._jit import njit
from gridcore.backtest.equity import EquityCurve, QuietRun
from gridcore.backtest.inputs import pick_signal
from gridcore.bars import SCALE, Bars, decimal_units
from gridcore.domain.orders import replace_fields
from gridcore.domain.transitions import StrategyStatus
from gridcore.params import StrategyParams
from gridcore.sim.ledger import Ledger, LedgerState
from gridcore.sim.path import units_to_decimal
from gridcore.strategy.engine import EngineState, trigger_reach
from gridcore.symbols import SymbolRules

PATH_CODES = {"bar_direction": 0, "adaptive": 1, "high_first": 2}
NO_LOW = -1  # no level triggered by a falling price
NO_HIGH = np.iinfo(np.int64).max  # no level triggered by a rising price
MAX_CANDIDATES = 16
DD_TOL = 1e-12  # float drawdowns err by ~1e-15: every vertex within this of the best is recomputed exactly
KILL_TOL = 1e-9  # a vertex within this relative distance of the kill level ends the run


@njit
def _high_first(o, h, lo, c, rule):
    """gridcore.sim.path.extremes: is the high visited before the low (rule codes: PATH_CODES)?"""
    if rule == 0:
        return c < o
    if rule == 1:
        return h - o < o - lo
    return True


@njit
def _vertices(j, pc, t_o, m_o, m_h, m_l, m_c, rule, vs):
    """The mark vertices on_bar books in bar j, in path order, into vs: the gap's end (when C_{t-1} != O), both
    extremes, C. Returns how many."""
    nv = 0
    if pc >= 0 and pc != t_o[j]:
        vs[0] = m_o[j]
        nv = 1
    if _high_first(m_o[j], m_h[j], m_l[j], m_c[j], rule):
        vs[nv], vs[nv + 1] = m_h[j], m_l[j]
    else:
        vs[nv], vs[nv + 1] = m_l[j], m_h[j]
    vs[nv + 2] = m_c[j]
    return nv + 3


@njit
def _in_reach(j, pc, pm, t_h, t_l, t_c, m_h, m_l, fire, levels, flags):
    """Could bar j (entered from trade close pc and mark close pm; -1: none) fill an order, cross a liquidation
    level or close where a range break or adverse fire begins? levels = (fall_top, rise_low, liq_fall, liq_rise),
    flags = (s1, r1, s2, r2 in units, brk_low, brk_high, fire_exit)."""
    lo, hi = t_l[j], t_h[j]
    if pc >= 0:
        lo, hi = min(lo, pc), max(hi, pc)
    if lo <= levels[0] or hi >= levels[1]:
        return True
    mlo, mhi = m_l[j], m_h[j]
    if pm >= 0:
        mlo, mhi = min(mlo, pm), max(mhi, pm)
    if mlo <= levels[2] or mhi >= levels[3]:
        return True
    c = float(t_c[j])
    s1, r1, s2, r2, brk_low, brk_high, fire_exit = flags[0], flags[1], flags[2], flags[3], flags[4], flags[5], flags[6]
    if (brk_low != 0 and c <= s2 + 1.0) or (brk_high != 0 and c >= r2 - 1.0):
        return True
    # engine.adverse_fire: a long ends on a fire down with the close below S1, a short on a fire up above R1
    return (fire_exit > 0 and fire[j] < 0 and c <= s1 + 1.0) or (fire_exit < 0 and fire[j] > 0 and c >= r1 - 1.0)


@njit
def quiet_run(i0, t_o, t_h, t_l, t_c, m_o, m_h, m_l, m_c, blocked, fire, prev_tc, prev_mc, levels, flags, account,
              rule, cand):
    """The first bar j >= i0 that is not provably quiet; returns (j, number of drawdown candidates, overflow, the
    most favourable mark vertex of bars i0..j−1: the highest for a long, the lowest for a short).

    Prices are int 1e-8 units (the mark arrays hold the trade bar where no mark bar exists), money floats.
    prev_tc / prev_mc: the trade and mark closes before i0 (-1: none). levels (int64): the highest trigger of an
    order a falling price fills (buy limits, sell stops), the lowest of one a rising price fills, a long's and a
    short's liquidation level rounded outwards (NO_LOW / NO_HIGH: none). flags (float64): see _in_reach.
    account (float64): position, wallet, entry, peak, 1 − max_drawdown, kill on (0/1), worst drawdown so far.
    `cand` (MAX_CANDIDATES × 3) receives (bar, vertex mark, running favourable mark) of the vertices whose drawdown
    is within DD_TOL of the worst of the run; overflow: there were more."""
    pos, wallet, entry, peak, kill_frac, kill_on, dd_seen = (account[0], account[1], account[2], account[3],
                                                             account[4], account[5] != 0, account[6])
    n = len(t_o)
    best = dd_seen
    fav = NO_LOW if pos > 0 else NO_HIGH
    ncand = 0
    overflow = False
    pc, pm = prev_tc, prev_mc
    vs = np.empty(4, np.int64)
    eqs = np.empty(4, np.float64)
    j = i0
    while j < n:
        if blocked[j] or _in_reach(j, pc, pm, t_h, t_l, t_c, m_h, m_l, fire, levels, flags):
            break
        if pos != 0:
            nv = _vertices(j, pc, t_o, m_o, m_h, m_l, m_c, rule, vs)
            b_peak = peak
            killed = False
            for q in range(nv):  # the kill level first: a bar that may fire it is not quiet
                eqs[q] = wallet + pos * (vs[q] / SCALE - entry)
                if kill_on and eqs[q] <= kill_frac * b_peak * (1 + KILL_TOL):
                    killed = True
                    break
                b_peak = max(b_peak, eqs[q])
            if killed:
                break
            for q in range(nv):
                m = vs[q]
                if (pos > 0 and m > fav) or (pos < 0 and m < fav):
                    fav = m
                peak = max(peak, eqs[q])
                dd = 1 - eqs[q] / peak
                if dd > best + DD_TOL:
                    best, ncand, overflow = dd, 0, False
                if dd >= best - DD_TOL and dd >= dd_seen - DD_TOL:
                    if ncand < MAX_CANDIDATES:
                        cand[ncand, 0], cand[ncand, 1], cand[ncand, 2] = j, m, fav
                        ncand += 1
                    else:
                        overflow = True
        pc, pm = t_c[j], m_c[j]
        j += 1
    return j, ncand, overflow, fav


def level_units(value: Decimal | None, falling: bool) -> int:
    """A level that fires at price <= value (falling) or >= value, in int units rounded so no crossing is missed."""
    if value is None:
        return NO_LOW if falling else NO_HIGH
    return decimal_units(value, ROUND_CEILING if falling else ROUND_FLOOR)


class QuietFinder:
    """Skips the quiet runs of a backtest's bars (the runner asks at every bar it would hand to the engine)."""

    def __init__(self, market: MarketArrays, signals, by_bar: dict, fires, params: StrategyParams,
                 rules: SymbolRules):
        self.mk, self.params, self.rules = market, params, rules
        n = len(market)
        ms = market.open_ms
        # bars where a signal arrives or expires: a flat strategy may act on them
        sig_block = np.zeros(n, dtype=np.bool_)
        for s in signals:
            for t in (s.bar_ms, s.expires_ms):
                k = int(np.searchsorted(ms, t, side="left"))
                if k < n:
                    sig_block[k] = True
        self.sig_stops = np.flatnonzero(sig_block)
        self.funding_last = np.full(n, -1, dtype=np.int64)  # the latest funding time inside each bar
        for t, events in by_bar.items():
            k = int(np.searchsorted(ms, t, side="left"))
            if k < n and int(ms[k]) == t:
                self.funding_last[k] = max(e.ts_ms for e in events)
        # a running grid ignores signals (the runner expires them after the run), so only funding ends its runs
        self.blocked = self.funding_last >= 0
        f = fires.fires
        f_ms = np.array([x[0] for x in f], dtype=np.int64)
        idx = np.searchsorted(f_ms, ms, side="right") - 1
        until = np.array([x[1] for x in f] or [0], dtype=np.int64)[np.maximum(idx, 0)]
        dirs = np.array([x[2] for x in f] or [0], dtype=np.int64)[np.maximum(idx, 0)]
        self.fire = np.where((idx >= 0) & (ms < until), dirs, 0).astype(np.int64)  # inputs.FireLookup.at per bar
        self.cand = np.zeros((MAX_CANDIDATES, 3), dtype=np.int64)
        self._levels = np.zeros(4, dtype=np.int64)  # quiet_run's levels and account, refilled for every call
        self._account = np.zeros(7, dtype=np.float64)
        self.kill_frac = float(1 - params.risk.max_drawdown)
        self._lp_key: tuple[Decimal, Decimal] | None = None
        self._flags_key: tuple | None = None
        self._flags = np.zeros(7)
        self._lp_levels = (NO_LOW, NO_HIGH)

    def skip(self, i: int, state: EngineState, pending: list, curve: EquityCurve) -> tuple[int, EngineState]:
        """(j, state after bar j − 1): bars i..j−1 are quiet and booked (their points appended to `curve`);
        j == i when bar i has to go through the engine."""
        if state.status is StrategyStatus.ACTIVE:
            return self._skip_active(i, state, curve)
        if state.status in (StrategyStatus.IDLE, StrategyStatus.HALTED):
            return self._skip_idle(i, state, pending, curve)
        return i, state

    # --- flat, no grid ----------------------------------------------------------------------------------------

    def _skip_idle(self, i: int, state: EngineState, pending: list, curve: EquityCurve) -> tuple[int, EngineState]:
        led = state.ledger
        if state.orders or led.position != 0:
            return i, state
        if state.status is StrategyStatus.IDLE and led.drawdown >= self.params.risk.max_drawdown:
            return i, state  # the kill switch would fire at the next booking
        open_ms = int(self.mk.open_ms[i])
        current, expired = pick_signal(pending, open_ms, window=lambda s: (s.status, s.bar_ms, s.expires_ms))
        if expired or (current is not None and str(current.id) != state.last_signal_ref):
            return i, state  # the engine would be passed a signal, or the runner has one to expire
        k = int(np.searchsorted(self.sig_stops, i, side="left"))
        j = int(self.sig_stops[k]) if k < len(self.sig_stops) else len(self.mk)
        if j <= i:
            return i, state
        last_f = int(self.funding_last[i:j].max())
        if led.last_funding_ms is not None:
            last_f = max(last_f, led.last_funding_ms)
        ledger = replace_fields(led, mark=self.mk.mark_close(j - 1),
                                last_funding_ms=None if last_f < 0 else last_f)
        curve.append_run(QuietRun(i, j, led.wallet, led.position, led.entry, led.peak_equity))
        return j, self._after(state, ledger, j)

    # --- a running grid ---------------------------------------------------------------------------------------

    def _skip_active(self, i: int, state: EngineState, curve: EquityCurve) -> tuple[int, EngineState]:
        grid, led, mk = state.grid, state.ledger, self.mk
        if grid is None or state.break_count or state.break_side or self.blocked[i]:
            return i, state
        pos = led.position
        if pos == 0 and led.drawdown >= self.params.risk.max_drawdown:
            return i, state
        policy = self.params.fills.headline if state.policy == "headline" else self.params.fills.optimistic
        bounds = self._trigger_bounds(state, policy.trade_through_ticks)
        if bounds is None:  # the engine runs this bar and leaves its sorted triggers for the next
            return i, state
        fall_top, rise_low = bounds
        liq_fall, liq_rise = self._liquidation_levels(led) if pos != 0 and state.liquidation else (NO_LOW, NO_HIGH)
        prev_tc, prev_mc = self._previous_closes(i, state)
        lo, hi = int(mk.t_l[i]), int(mk.t_h[i])
        if prev_tc >= 0:
            lo, hi = min(lo, prev_tc), max(hi, prev_tc)
        if lo <= fall_top or hi >= rise_low:  # the common case: bar i fills an order (the kernel would say so too)
            return i, state
        levels, account = self._levels, self._account
        levels[0], levels[1], levels[2], levels[3] = fall_top, rise_low, liq_fall, liq_rise
        flags = self._grid_flags(grid, 1 if pos > 0 else -1 if pos < 0 else 0)
        account[0], account[1], account[2], account[3] = pos, led.wallet, led.entry, led.peak_equity
        account[4], account[5] = self.kill_frac, pos != 0 and state.status is not StrategyStatus.HALTED
        account[6] = led.max_drawdown_seen
        cand = self.cand
        j, ncand, overflow, fav = quiet_run(i, mk.t_o, mk.t_h, mk.t_l, mk.t_c, mk.m_o, mk.m_h, mk.m_l, mk.m_c,
                                            self.blocked, self.fire, prev_tc, prev_mc, levels, flags, account,
                                            PATH_CODES[policy.path], cand)
        if j <= i:
            return i, state
        peak, dd_seen = led.peak_equity, led.max_drawdown_seen
        if pos != 0:
            def eq_at(u: int) -> Decimal:
                return led.wallet + pos * (units_to_decimal(u) - led.entry)

            fav_eq = eq_at(int(fav))
            peak0 = peak
            if fav_eq > peak:
                peak = fav_eq
            if overflow:
                dd_seen = self._worst_drawdown_exact(i, j, state, policy.path)
            else:
                for c in range(ncand):
                    _, m, rf = (int(x) for x in cand[c])
                    rf_eq = eq_at(rf)
                    pk = rf_eq if rf_eq > peak0 else peak0
                    dd = 1 - eq_at(m) / pk
                    if dd > dd_seen:
                        dd_seen = dd
        ledger = replace_fields(led, mark=mk.mark_close(j - 1), peak_equity=peak, max_drawdown_seen=dd_seen)
        curve.append_run(QuietRun(i, j, led.wallet, pos, led.entry, led.peak_equity))
        return j, self._after(state, ledger, j)

    def _grid_flags(self, grid, side: int) -> np.ndarray:
        """quiet_run's flags of a grid (see _in_reach), for a long (+1), short (−1) or flat (0) position."""
        key = (grid.grid_no, grid.signal_ref, side)
        if key != self._flags_key:
            d, beyond = grid.direction, self.params.risk.exit_beyond_range
            self._flags = np.array([_f_units(grid.s1), _f_units(grid.r1), _f_units(grid.s2), _f_units(grid.r2),
                                    beyond or d in ("LONG", "NEUTRAL"), beyond or d in ("SHORT", "NEUTRAL"),
                                    side * self.params.risk.exit_on_adverse_fire], dtype=np.float64)
            self._flags_key = key
        return self._flags

    def _previous_closes(self, i: int, state: EngineState) -> tuple[int, int]:
        """The trade and mark closes the state last booked, in units (-1: none); read off the arrays when that was
        bar i − 1 (the mark arrays hold the trade close where no mark bar exists, as the state does)."""
        mk = self.mk
        if i > 0 and state.last_bar_ms == int(mk.open_ms[i - 1]):
            return int(mk.t_c[i - 1]), int(mk.m_c[i - 1])
        if state.last_close is None:
            return -1, -1
        tc = decimal_units(state.last_close)
        return tc, tc if state.last_mark_close is None else decimal_units(state.last_mark_close)

    def _trigger_bounds(self, state: EngineState, theta_ticks: int) -> tuple[int, int] | None:
        """(highest trigger of the orders a falling price fills, lowest of those a rising price fills), in units,
        at most theta wider than the exact ones (fresh limits are marketable at their own price): read off the
        sorted triggers the engine left for this book. None when they are not at hand (a book no on_bar left)."""
        if not state.orders:
            return NO_LOW, NO_HIGH
        reach = trigger_reach(state, theta_ticks * self.rules.tick_size)
        if reach is None:
            return None
        return level_units(reach[0], True), level_units(reach[1], False)

    def _liquidation_levels(self, led: LedgerState) -> tuple[int, int]:
        key = (led.position, led.entry)
        if key != self._lp_key:
            lp = Ledger(led).liquidation_price(self.params.account.brackets.tiers)
            levels = (NO_LOW, NO_HIGH)
            if lp is not None:
                levels = (level_units(lp, True), NO_HIGH) if led.position > 0 else (NO_LOW, level_units(lp, False))
            self._lp_key, self._lp_levels = key, levels
        return self._lp_levels

    def _worst_drawdown_exact(self, i: int, j: int, state: EngineState, path: str) -> Decimal:
        """The ledger's own vertex-by-vertex booking over bars i..j−1 (when the kernel had too many candidates)."""
        ledger = Ledger(state.ledger)
        mk, rule, vs = self.mk, PATH_CODES[path], np.empty(4, np.int64)
        prev = -1 if state.last_close is None else decimal_units(state.last_close)
        for k in range(i, j):
            for m in vs[:_vertices(k, prev, mk.t_o, mk.m_o, mk.m_h, mk.m_l, mk.m_c, rule, vs)].tolist():
                ledger.mark_to(units_to_decimal(m))
            prev = int(mk.t_c[k])
        return ledger.max_drawdown_seen

    def _after(self, state: EngineState, ledger: LedgerState, j: int) -> EngineState:
        mk = self.mk
        return replace_fields(state, ledger=ledger, last_bar_ms=int(mk.open_ms[j - 1]),
                              last_close=units_to_decimal(int(mk.t_c[j - 1])),
                              last_mark_close=mk.mark_close(j - 1) if mk.has_mark[j - 1] else None)


def _f_units(price: Decimal) -> float:
    return float(price * SCALE)


class MarketArrays:
    """The execution bars of a backtest (and their mark bars, aligned by open time) as int-unit arrays."""

    def __init__(self, exec_bars: Bars, mark_bars: Bars | None, first_ms: int, end_ms: int, step: int):
        self.open_ms = np.ascontiguousarray(exec_bars.open_ms, dtype=np.int64)
        u = np.ascontiguousarray(exec_bars.units, dtype=np.int64)
        self._units = u
        self.t_o, self.t_h, self.t_l, self.t_c = (np.ascontiguousarray(u[:, k]) for k in range(4))
        mu = u.copy()
        self.has_mark = np.zeros(len(self.open_ms), dtype=np.bool_)
        self._mark_rows: dict[int, tuple[int, ...]] = {}
        if mark_bars is not None and len(self.open_ms):
            mb = mark_bars.slice_ms(first_ms, end_ms - step + 1)
            k = np.searchsorted(self.open_ms, mb.open_ms)
            ok = (k < len(self.open_ms)) & (self.open_ms[np.minimum(k, len(self.open_ms) - 1)] == mb.open_ms)
            mu[k[ok]] = mb.units[ok]
            self.has_mark[k[ok]] = True
            self._mark_rows = {int(ms): (int(ms), *(int(x) for x in r))
                               for ms, r in zip(mb.open_ms.tolist(), mb.units.tolist(), strict=True)}
        self.m_o, self.m_h, self.m_l, self.m_c = (np.ascontiguousarray(mu[:, k]) for k in range(4))

    def __len__(self) -> int:
        return len(self.open_ms)

    def row(self, i: int) -> tuple[int, ...]:
        """Bar i as (open ms, o, h, l, c, v) in units, the form on_bar takes."""
        return (int(self.open_ms[i]), *self._units[i].tolist())

    def mark_row(self, i: int) -> tuple[int, ...] | None:
        return self._mark_rows.get(int(self.open_ms[i]))

    def first_at_or_after(self, ms: int) -> int:
        """Index of the first bar opening at or after ms."""
        return int(np.searchsorted(self.open_ms, ms, side="left"))

    def mark_close(self, i: int) -> Decimal:
        return units_to_decimal(int(self.m_c[i]))
