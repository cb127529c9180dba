"""The sweep kernel's entry point and the arrays of one configuration's state.

`run_config(S, C, Mk, j0, js, jend, mode, hdr, plo, plv)` advances one configuration over the bars [j0, jend)
and returns (code, bar) when Python is needed:

* RC_SIGNAL: bar j opens with the strategy IDLE inside the window of a start signal not yet used (the engine would
  pass that signal: inputs.signal_for_bar). Python decides it and, while the decisions are refusals, the next
  ones too (an IDLE strategy is flat with no orders: its account cannot change until a grid starts, so every
  later decision sees the same equity and peak); then calls again with MODE_START at the bar js of the first start
  (plan arrays) or MODE_NO_START (all refused up to js: a refusing bar changes nothing);
* RC_FULL: the fill or exit buffers may not hold the next bar's records (Python grows them, calls again at j);
* RC_ERROR: a liquidation price that no bracket holds (the engine raises);
* RC_END: done.

IDLE and HALTED bars are the engine's quiet bars (flat, no orders: nothing to book); a HALTED strategy never
restarts in a backtest (no reset), so HALTED is final.

Tuples: S = (F, I, lv, bk, fq, stamp, tp, mp, fo_i, fo_f, ex, eq, alive) — float and int state, grid levels, the
order book, the fresh queue, the per-level fill stamp of the current bar, the walk's trade and mark paths, fills,
exits, sampled equity, which signals are still NEW. C = (P, Q, tiers, slip, capv) — parameters, brackets, the
slippage and the participation cap of each bar. Mk = (mk, f_ptr, f_ts, f_rate, wlo, whi, samp, ohlc, flags) — the
bars, funding per bar (CSR), signal windows as bar indices [wlo, whi), the bars whose close equity is sampled
(ascending), and a compact copy of O, H, L, C with per-bar flags for the fast path.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numba
import numpy as np
from numba.core.dispatcher import Dispatcher

from gridcore.sweep._bar_nb import bar_equity, fast_run, process_bar
from gridcore.sweep._jit import njit
from gridcore.sweep.layout import (
    F_LOWRISE,
    F_LP,
    F_PEAK,
    F_TOPFALL,
    F_WALLET,
    HALTED,
    I_ERR,
    I_HAS_FRESH,
    I_NEXIT,
    I_NFILL,
    I_NLEV,
    I_SP,
    I_STATUS,
    I_WP,
    IDLE,
    MODE_NO_START,
    MODE_START,
    NB,
    NF,
    NFF,
    NFI,
    NI,
    NO,
    Q_FAST,
    RC_END,
    RC_ERROR,
    RC_FULL,
    RC_SIGNAL,
    YES,
)

EXIT_ROOM = 8
_SOURCES = ("layout.py", "_jit.py", "_ledger_nb.py", "_walk_nb.py", "_actions_nb.py", "_bar_nb.py", "kernel.py")


@njit
def _next_signal_bar(S, Mk, j, jend):
    """The first bar >= j inside the window of a signal still NEW (jend: none). Windows are sorted by start and
    their ends are sorted too, so the first open window still alive holds the earliest such bar."""
    ns, alive = S[1], S[12]
    wlo, whi = Mk[4], Mk[5]
    nw = wlo.shape[0]
    wp = ns[I_WP]
    while wp < nw and whi[wp] <= j:
        wp += 1
    ns[I_WP] = wp
    for k in range(wp, nw):
        if alive[k] and wlo[k] < whi[k]:  # a window can hold no bar at all (missing bars)
            return min(max(wlo[k], j), jend)
    return jend


@njit
def _fill_samples(S, Mk, until, value):
    """Equity samples of the bars before `until`, all `value` (flat: the wallet)."""
    ns, eq, samp = S[1], S[11], Mk[6]
    sp = ns[I_SP]
    while sp < samp.shape[0] and samp[sp] < until:
        eq[sp] = value
        sp += 1
    ns[I_SP] = sp


def fill_room(n_levels: int) -> int:
    """Fill records one bar can produce at most: every level once per leg of the path, plus the market orders."""
    return 4 * (n_levels + 2) + 16


@njit
def _room(S):
    ns, fo_i, ex = S[1], S[8], S[10]
    return (ns[I_NFILL] + 4 * (ns[I_NLEV] + 2) + 16 <= fo_i.shape[0]
            and ns[I_NEXIT] + EXIT_ROOM <= ex.shape[0])


@njit
def _sample(S, C, Mk, j):
    ns, samp = S[1], Mk[6]
    sp = ns[I_SP]
    if sp < samp.shape[0] and samp[sp] == j:
        S[11][sp] = bar_equity(S, C)
        ns[I_SP] = sp + 1


@njit
def run_config(S, C, Mk, j0, js, jend, mode, hdr, plo, plv):
    """Advance one configuration from bar j0; (return code, bar index) — see the module docstring. With
    MODE_START the bars [j0, js) are quiet and the plan starts at bar js; with MODE_NO_START the bars [j0, js]
    are quiet (the signals Python decided there were all refused)."""
    fs, ns = S[0], S[1]
    j = j0
    if mode == MODE_START:
        _fill_samples(S, Mk, js, fs[F_WALLET])
        process_bar(S, C, Mk, js, YES, hdr, plo, plv)
        _sample(S, C, Mk, js)
        j = js + 1
    elif mode == MODE_NO_START:
        _fill_samples(S, Mk, js + 1, fs[F_WALLET])
        j = js + 1
    while j < jend:
        st = ns[I_STATUS]
        if st == IDLE or st == HALTED:
            nxt = _next_signal_bar(S, Mk, j, jend) if st == IDLE else jend
            _fill_samples(S, Mk, nxt, fs[F_WALLET])
            if nxt < jend:
                return RC_SIGNAL, nxt
            return RC_END, jend
        if not _room(S):
            return RC_FULL, j
        if C[1][Q_FAST] and not ns[I_HAS_FRESH]:
            k = fast_run(S, C, Mk, j, jend)
            if k > j:
                j = k
                continue
        process_bar(S, C, Mk, j, NO, hdr, plo, plv)
        _sample(S, C, Mk, j)
        j += 1
        if ns[I_ERR]:
            return RC_ERROR, j
    return RC_END, j


def _flush_stale_cache() -> None:
    """numba's cache=True keys each function on its own file only: an entry point cached before a change in a
    function it calls (another module) would keep running the old code. The digest of every kernel source is kept
    beside the cache; when it changes, the cached kernel functions are dropped and compile again."""
    here = Path(__file__).parent
    digest = hashlib.sha256(numba.__version__.encode())
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    cache = getattr(run_config, "_cache", None)
    path = getattr(cache, "cache_path", None)
    if path is None:
        return
    stamp = Path(path) / "sweep_kernel.sha256"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    from gridcore.sweep import _actions_nb, _bar_nb, _ledger_nb, _walk_nb
    for module in (_ledger_nb, _walk_nb, _actions_nb, _bar_nb, sys.modules[__name__]):
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.__module__ == module.__name__ and value._cache is not None:
                value._cache.flush()
    try:
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass


class ConfigState:
    """The arrays of one configuration's state; `tuple()` is the kernel's S."""

    def __init__(self, capital: float, n_signals: int, n_samples: int, *, levels: int = 64, fills: int = 4096,
                 exits: int = 64):
        self.F = np.zeros(NF)
        self.F[F_WALLET] = self.F[F_PEAK] = capital
        self.F[F_LP] = math.nan
        self.F[F_TOPFALL], self.F[F_LOWRISE] = -math.inf, math.inf
        self.I = np.zeros(NI, np.int64)
        self.tp = np.zeros(4)
        self.mp = np.zeros(4)
        self.fo_i = np.zeros((fills, NFI), np.int64)
        self.fo_f = np.zeros((fills, NFF))
        self.ex = np.zeros((exits, 2), np.int64)
        self.eq = np.full(max(n_samples, 1), math.nan)
        self.alive = np.ones(n_signals, np.uint8)
        self._levels(levels)

    def _levels(self, n: int) -> None:
        self.lv = np.zeros(n, np.int64)
        self.stamp = np.zeros(n, np.int64)
        self.bk = np.zeros((2 * n + 4, NB), np.int64)
        self.fq = np.zeros(4 * (2 * n + 4) + 64, np.int64)

    def ensure_levels(self, n: int) -> None:
        """Room for a grid of n levels (only between grids: the book is empty then)."""
        if n > self.lv.shape[0]:
            self._levels(max(n, 2 * self.lv.shape[0]))

    def ensure_room(self, n_levels: int) -> bool:
        """Grow the fill and exit buffers so that the next bar fits; True when they grew."""
        grew = False
        need = int(self.I[I_NFILL]) + fill_room(max(n_levels, int(self.I[I_NLEV])))
        if need > self.fo_i.shape[0]:
            size = max(need, 2 * self.fo_i.shape[0])
            self.fo_i = np.concatenate([self.fo_i, np.zeros((size - self.fo_i.shape[0], NFI), np.int64)])
            self.fo_f = np.concatenate([self.fo_f, np.zeros((size - self.fo_f.shape[0], NFF))])
            grew = True
        if int(self.I[I_NEXIT]) + EXIT_ROOM > self.ex.shape[0]:
            self.ex = np.concatenate([self.ex, np.zeros((self.ex.shape[0] + EXIT_ROOM, 2), np.int64)])
            grew = True
        return grew

    def tuple(self) -> tuple:
        return (self.F, self.I, self.lv, self.bk, self.fq, self.stamp, self.tp, self.mp, self.fo_i, self.fo_f,
                self.ex, self.eq, self.alive)

    @property
    def error(self) -> bool:
        return bool(self.I[I_ERR])


_flush_stale_cache()

__all__ = ["RC_END", "RC_ERROR", "RC_FULL", "RC_SIGNAL", "ConfigState", "run_config"]
