"""In-memory KlineStore: the store of backtests and of tests that need no database. Same semantics as the
Django store (grid_trading.services.kline_store): atomic, idempotent upserts, new values win."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from gridcore.bars import Bars, empty_bars, merge_series
from gridcore.ports import UpsertResult


class MemoryKlineStore:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._funding: dict[str, dict[int, Decimal]] = {}

    def upsert_bars(self, bars: Bars) -> UpsertResult:
        key = (bars.symbol, bars.market, bars.interval)
        old_ms, old_units = self._series.get(key, (np.empty(0, np.int64), np.empty((0, 5), np.int64)))
        ms, units, (ins, upd, same) = merge_series(old_ms, old_units, bars.open_ms, bars.units)
        self._series[key] = (ms, units)
        return UpsertResult(ins, upd, same)

    def load_bars(self, symbol: str, market: str, interval: str,
                  start_ms: int | None = None, end_ms: int | None = None) -> Bars:
        if (symbol, market, interval) not in self._series:
            return empty_bars(symbol, market, interval)
        ms, units = self._series[(symbol, market, interval)]
        return Bars(symbol, market, interval, ms, units).slice_ms(start_ms, end_ms)

    def last_open_ms(self, symbol: str, market: str, interval: str) -> int | None:
        ms, _ = self._series.get((symbol, market, interval), (np.empty(0, np.int64), None))
        return int(ms[-1]) if ms.size else None

    def intervals(self, symbol: str, market: str) -> list[str]:
        return [k[2] for k in self._series if k[0] == symbol and k[1] == market]

    def upsert_funding(self, symbol: str, funding_ms: np.ndarray, rates: list[Decimal]) -> UpsertResult:
        series = self._funding.setdefault(symbol, {})
        ins = upd = same = 0
        for t, r in zip(funding_ms.tolist(), rates, strict=True):
            if t not in series:
                ins += 1
            elif series[t] == r:
                same += 1
            else:
                upd += 1
            series[t] = r
        return UpsertResult(ins, upd, same)

    def load_funding(self, symbol: str, start_ms: int | None = None,
                     end_ms: int | None = None) -> tuple[np.ndarray, list[Decimal]]:
        items = sorted(self._funding.get(symbol, {}).items())
        items = [(t, r) for t, r in items if (start_ms is None or t >= start_ms) and (end_ms is None or t < end_ms)]
        return np.array([t for t, _ in items], np.int64), [r for _, r in items]

    def last_funding_ms(self, symbol: str) -> int | None:
        series = self._funding.get(symbol)
        return max(series) if series else None
