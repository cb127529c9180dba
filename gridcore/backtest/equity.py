"""The equity curve of a backtest: one exact point per execution bar, stored compactly.

Bars that went through the engine keep their EquityPoint. A quiet run of bars (gridcore.backtest.quiet) keeps only
the account's constants over the run; its points are computed on demand with the ledger's own formulas
(equity = wallet + position·(mark − entry), drawdown = 1 − equity / peak, the peak raised by the most favourable
mark vertex so far), so they are exactly the points the engine would have produced. `floats()` gives the curve as
numpy arrays for metrics and charts without building a Decimal per bar.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np

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


@dataclass(frozen=True)
class QuietRun:
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
        parts: dict[str, list[np.ndarray]] = {"bar_ms": [], "equity": [], "drawdown": [], "position": []}
        for b in self._blocks:
            if isinstance(b, QuietRun):
                ms = self._ms[b.i0:b.j]
                pos, wallet, entry = float(b.position), float(b.wallet), float(b.entry)
                eq = wallet + pos * (self._mc[b.i0:b.j] / SCALE - entry)
                if pos == 0:
                    peak = np.full(len(ms), float(b.peak0))
                else:
                    peak = np.maximum(float(b.peak0), wallet + pos * (self._favourable(b) / SCALE - entry))
                parts["bar_ms"].append(ms)
                parts["equity"].append(eq)
                parts["drawdown"].append(1 - eq / peak)
                parts["position"].append(np.full(len(ms), pos))
            else:
                parts["bar_ms"].append(np.array([p.bar_ms for p in b], dtype=np.int64))
                parts["equity"].append(np.array([float(p.equity) for p in b]))
                parts["drawdown"].append(np.array([float(p.drawdown) for p in b]))
                parts["position"].append(np.array([float(p.position) for p in b]))
        return {k: (np.concatenate(v) if v else np.empty(0, np.int64 if k == "bar_ms" else np.float64))
                for k, v in parts.items()}
