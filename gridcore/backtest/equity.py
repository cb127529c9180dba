"""The equity curve of a backtest: one exact point per execution bar, stored compactly.

Bars that went through the engine keep their EquityPoint. A quiet run of bars (gridcore.backtest.quiet) keeps only
the account's constants over the run; its points are computed on demand with the ledger's own formulas
(equity = wallet + position·(mark − entry), drawdown = 1 − equity / peak, the peak raised by the most favourable
mark vertex so far), so they are exactly the points the engine would have produced. `floats()` gives the curve as
numpy arrays for metrics and charts without building a Decimal per bar.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

import numpy as np

from gridcore.analysis.kernels._jit import njit
from gridcore.bars import SCALE
from gridcore.sim.path import units_to_decimal

ZERO = Decimal(0)


class EquityPoint(NamedTuple):
    """The account at the close of the execution bar opening at bar_ms."""

    bar_ms: int
    equity: Decimal
    drawdown: Decimal  # the engine's: 1 − equity / peak (peak over every booked event and path vertex)
    position: Decimal
    mark: Decimal | None


class QuietRun(NamedTuple):
    """Bars [i0, j) of the curve's arrays with the position fixed; peak0 is the peak before the run."""

    i0: int
    j: int
    wallet: Decimal
    position: Decimal
    entry: Decimal
    peak0: Decimal


class EquityCurve(Sequence[EquityPoint]):
    """EquityPoints of every execution bar. `open_ms`, `mark_close` (int units) and `favourable` (per bar, the
    best mark vertex for a long: the mark high; for a short: the mark low — both given) cover all bars."""

    def __init__(self, open_ms: np.ndarray, mark_close: np.ndarray, mark_high: np.ndarray, mark_low: np.ndarray):
        self._ms, self._mc, self._mh, self._ml = open_ms, mark_close, mark_high, mark_low
        self._blocks: list[list[EquityPoint] | QuietRun] = []
        self._n = 0
        self._points: list[EquityPoint] | None = None

    # --- building ---------------------------------------------------------------------------------------------

    def append(self, point: EquityPoint) -> None:
        if not self._blocks or isinstance(self._blocks[-1], QuietRun):
            self._blocks.append([])
        self._blocks[-1].append(point)  # type: ignore[union-attr]
        self._n += 1
        self._points = None

    def append_run(self, run: QuietRun) -> None:
        if run.i0 != self._n:
            raise ValueError(f"expected a run from bar {self._n}, was from bar {run.i0}")
        self._blocks.append(run)
        self._n = run.j
        self._points = None

    # --- reading ----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def _all(self) -> list[EquityPoint]:
        if self._points is None:
            out: list[EquityPoint] = []
            for b in self._blocks:
                out.extend(self._run_points(b) if isinstance(b, QuietRun) else b)
            self._points = out
        return self._points

    def __getitem__(self, i):  # type: ignore[override]
        return self._all()[i]

    def __iter__(self) -> Iterator[EquityPoint]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EquityCurve | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _favourable(self, r: QuietRun) -> np.ndarray:
        if r.position > 0:
            return np.maximum.accumulate(self._mh[r.i0:r.j])
        return np.minimum.accumulate(self._ml[r.i0:r.j])

    def _run_points(self, r: QuietRun) -> list[EquityPoint]:
        ms, mc = self._ms[r.i0:r.j].tolist(), self._mc[r.i0:r.j].tolist()
        if r.position == 0:
            eq = r.wallet + ZERO  # the ledger's equity: wallet + unrealised (ZERO when flat)
            dd = 1 - eq / r.peak0
            return [EquityPoint(t, eq, dd, r.position, units_to_decimal(m)) for t, m in zip(ms, mc, strict=True)]
        out = []
        fav_eq = None
        last_fav = None
        for t, m, f in zip(ms, mc, self._favourable(r).tolist(), strict=True):
            if f != last_fav:
                last_fav, fav_eq = f, r.wallet + r.position * (units_to_decimal(f) - r.entry)
            mark = units_to_decimal(m)
            eq = r.wallet + r.position * (mark - r.entry)
            peak = max(r.peak0, fav_eq)
            out.append(EquityPoint(t, eq, 1 - eq / peak, r.position, mark))
        return out

    def floats(self) -> dict[str, np.ndarray]:
        """bar_ms (int64), equity, drawdown, position (float64) of every point, without building Decimals for runs."""
        n = self._n
        out = {"bar_ms": self._ms[:n].astype(np.int64), "equity": np.empty(n), "drawdown": np.empty(n),
               "position": np.empty(n)}
        runs = [b for b in self._blocks if isinstance(b, QuietRun)]
        if runs:
            bounds = np.array([(r.i0, r.j) for r in runs], dtype=np.int64)
            account = np.array([(float(r.position), float(r.wallet), float(r.entry), float(r.peak0)) for r in runs])
            _run_floats(bounds, account, self._mc, self._mh, self._ml, out["equity"], out["drawdown"],
                        out["position"])
        at: list[int] = []  # where the engine's points go, filled in one conversion per field
        points: list[EquityPoint] = []
        k = 0
        for b in self._blocks:
            if isinstance(b, QuietRun):
                k = b.j
            else:
                at.extend(range(k, k + len(b)))
                points.extend(b)
                k += len(b)
        if points:
            out["bar_ms"][at] = [p.bar_ms for p in points]
            out["equity"][at] = [float(p.equity) for p in points]
            out["drawdown"][at] = [float(p.drawdown) for p in points]
            out["position"][at] = [float(p.position) for p in points]
        return out


@njit
def _run_floats(bounds, account, mark_close, mark_high, mark_low, equity, drawdown, position):
    """Each quiet run's equity, drawdown and position per bar in floats: the mark close against the entry, the peak
    raised by the most favourable mark so far in the run (the high for a long, the low for a short)."""
    for r in range(bounds.shape[0]):
        pos, wallet, entry, peak = account[r, 0], account[r, 1], account[r, 2], account[r, 3]
        fav = np.inf if pos < 0 else -np.inf
        for i in range(bounds[r, 0], bounds[r, 1]):
            eq = wallet + pos * (mark_close[i] / SCALE - entry)
            if pos != 0:
                fav = max(fav, mark_high[i]) if pos > 0 else min(fav, mark_low[i])
                peak = max(peak, wallet + pos * (fav / SCALE - entry))
            equity[i], drawdown[i], position[i] = eq, 1 - eq / peak, pos
