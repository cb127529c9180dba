"""DjangoKlineStore: the database implementation of gridcore.ports.KlineStore (atomic, idempotent upserts)."""

from __future__ import annotations

import hashlib
from datetime import UTC
from decimal import Decimal

import numpy as np
from django.db import transaction

from grid_trading.models import FundingRate, KlineChunk
from gridcore.bars import Bars, concat, empty_bars, merge_series
from gridcore.ports import UpsertResult
from gridcore.timeframes import ms_to_dt

_DTYPE = np.dtype("<i8")


def month_start_ms(open_ms: np.ndarray) -> np.ndarray:
    months = open_ms.astype("datetime64[ms]").astype("datetime64[M]")
    return months.astype("datetime64[ms]").astype(np.int64)


def _pack(open_ms: np.ndarray, units: np.ndarray) -> bytes:
    return np.column_stack([open_ms, units]).astype(_DTYPE).tobytes()


def _unpack(blob: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    arr = np.frombuffer(blob, dtype=_DTYPE).reshape(-1, 6)
    return arr[:, 0], arr[:, 1:]


class DjangoKlineStore:
    def upsert_bars(self, bars: Bars) -> UpsertResult:
        if len(bars) == 0:
            return UpsertResult()
        months = month_start_ms(bars.open_ms)
        bounds = np.flatnonzero(np.r_[True, months[1:] != months[:-1], True])
        total = UpsertResult()
        with transaction.atomic():
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                total += self._upsert_chunk(bars, int(months[a]), bars.open_ms[a:b], bars.units[a:b])
        return total

    def _upsert_chunk(self, bars: Bars, month: int, new_ms: np.ndarray, new_units: np.ndarray) -> UpsertResult:
        key = dict(symbol=bars.symbol, market=bars.market, interval=bars.interval, month_start_ms=month)
        row = KlineChunk.objects.select_for_update().filter(**key).first()
        if row is None:
            ms, units, counts = new_ms, new_units, (len(new_ms), 0, 0)
        else:
            old_ms, old_units = _unpack(row.data)
            ms, units, counts = merge_series(old_ms, old_units, new_ms, new_units)
            if counts[0] == 0 and counts[1] == 0:
                return UpsertResult(*counts)
        blob = _pack(ms, units)
        fields = dict(first_open_ms=int(ms[0]), last_open_ms=int(ms[-1]), rows=len(ms), data=blob,
                      sha256=hashlib.sha256(blob).hexdigest())
        if row is None:
            KlineChunk.objects.create(**key, **fields)
        else:
            KlineChunk.objects.filter(pk=row.pk).update(**fields)
        return UpsertResult(*counts)

    def load_bars(self, symbol: str, market: str, interval: str,
                  start_ms: int | None = None, end_ms: int | None = None) -> Bars:
        qs = KlineChunk.objects.filter(symbol=symbol, market=market, interval=interval)
        if start_ms is not None:
            qs = qs.filter(last_open_ms__gte=start_ms)
        if end_ms is not None:
            qs = qs.filter(first_open_ms__lt=end_ms)
        parts = []
        for blob in qs.order_by("month_start_ms").values_list("data", flat=True):
            ms, units = _unpack(blob)
            parts.append(Bars(symbol, market, interval, ms, units))
        if not parts:
            return empty_bars(symbol, market, interval)
        return concat(parts).slice_ms(start_ms, end_ms)

    def checksum(self, symbol: str, market: str, interval: str) -> str:
        """sha256 over the chunk checksums of a series: what a backtest records as 'the data used'."""
        h = hashlib.sha256()
        for digest in KlineChunk.objects.filter(symbol=symbol, market=market, interval=interval).order_by(
                "month_start_ms").values_list("sha256", flat=True):
            h.update(digest.encode())
        return h.hexdigest()

    def last_open_ms(self, symbol: str, market: str, interval: str) -> int | None:
        row = KlineChunk.objects.filter(symbol=symbol, market=market, interval=interval).order_by(
            "-month_start_ms").values_list("last_open_ms", flat=True).first()
        return None if row is None else int(row)

    def intervals(self, symbol: str, market: str) -> list[str]:
        return list(KlineChunk.objects.filter(symbol=symbol, market=market).order_by().values_list(
            "interval", flat=True).distinct())

    def upsert_funding(self, symbol: str, funding_ms: np.ndarray, rates: list[Decimal]) -> UpsertResult:
        times = [ms_to_dt(int(t)) for t in funding_ms]
        if not times:
            return UpsertResult()
        with transaction.atomic():
            existing = dict(FundingRate.objects.select_for_update().filter(
                symbol=symbol, funding_time__gte=min(times), funding_time__lte=max(times)).values_list(
                "funding_time", "rate"))
            new, changed, same = [], [], 0
            for t, r in zip(times, rates, strict=True):
                old = existing.get(t)
                if old is None:
                    new.append(FundingRate(symbol=symbol, funding_time=t, rate=r))
                elif old != r:
                    changed.append((t, r))
                else:
                    same += 1
            FundingRate.objects.bulk_create(new, batch_size=2000)
            for t, r in changed:
                FundingRate.objects.filter(symbol=symbol, funding_time=t).update(rate=r)
        return UpsertResult(len(new), len(changed), same)

    def load_funding(self, symbol: str, start_ms: int | None = None,
                     end_ms: int | None = None) -> tuple[np.ndarray, list[Decimal]]:
        qs = FundingRate.objects.filter(symbol=symbol)
        if start_ms is not None:
            qs = qs.filter(funding_time__gte=ms_to_dt(start_ms))
        if end_ms is not None:
            qs = qs.filter(funding_time__lt=ms_to_dt(end_ms))
        rows = list(qs.order_by("funding_time").values_list("funding_time", "rate"))
        ms = np.array([int(t.astimezone(UTC).timestamp() * 1000) for t, _ in rows], np.int64)
        return ms, [r for _, r in rows]

    def last_funding_ms(self, symbol: str) -> int | None:
        t = FundingRate.objects.filter(symbol=symbol).order_by("-funding_time").values_list(
            "funding_time", flat=True).first()
        return None if t is None else int(t.timestamp() * 1000)
