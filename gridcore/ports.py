"""Ports: the interfaces the core needs from the outside world. Django adapters and in-memory fakes implement them.

Backtest and paper trading differ only in which implementation of these they are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import numpy as np

from gridcore.bars import Bars


@dataclass(frozen=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0  # a stored bar replaced by different values (Binance revises klines)
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(self.inserted + other.inserted, self.updated + other.updated,
                            self.unchanged + other.unchanged)


class KlineStore(Protocol):
    """Klines per (symbol, market, interval) and funding rates per symbol.

    Every write is atomic: it lands whole or not at all. Upserts are idempotent: writing the same bars twice
    changes nothing the second time, and a series never holds one open time twice.
    """

    def upsert_bars(self, bars: Bars) -> UpsertResult: ...

    def load_bars(self, symbol: str, market: str, interval: str,
                  start_ms: int | None = None, end_ms: int | None = None) -> Bars: ...

    def last_open_ms(self, symbol: str, market: str, interval: str) -> int | None: ...

    def upsert_funding(self, symbol: str, funding_ms: np.ndarray, rates: list[Decimal]) -> UpsertResult: ...

    def load_funding(self, symbol: str, start_ms: int | None = None,
                     end_ms: int | None = None) -> tuple[np.ndarray, list[Decimal]]: ...

    def last_funding_ms(self, symbol: str) -> int | None: ...


class Clock(Protocol):
    """The only way the core learns the time (ms UTC). Live: the wall clock; replays: a stepping clock."""

    def now_ms(self) -> int: ...
