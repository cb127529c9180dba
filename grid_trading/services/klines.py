"""Kline services: import files, check a series, load bars for an analysis (stored or resampled)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from django.db import transaction

from grid_trading.services.kline_store import DjangoKlineStore
from gridcore.bars import SCALE, Bars, find_gaps, resample
from gridcore.errors import DataError
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.timeframes import INTERVAL_MS, interval_ms, ms_to_iso


@dataclass(frozen=True)
class ImportResult:
    path: str
    kind: str
    symbol: str
    market: str
    interval: str | None
    rows: int
    inserted: int
    updated: int
    unchanged: int
    duplicates_in_file: int
    first: str
    last: str

    def as_dict(self) -> dict:
        return asdict(self)


def klines_import_file(*, path: Path, symbol: str | None = None, market: str | None = None,
                       interval: str | None = None, store: DjangoKlineStore | None = None) -> ImportResult:
    """Import one file all-or-nothing: it is fully parsed and checked before one transaction writes it."""
    store = store or DjangoKlineStore()
    info = identify(path, symbol=symbol, market=market, interval=interval)
    if info.kind == "funding":
        f = read_funding(path, info)
        with transaction.atomic():
            res = store.upsert_funding(info.symbol, f.funding_ms, f.rates)
        times, dups, iv = f.funding_ms, f.duplicates, None
    else:
        k = read_klines(path, info)
        with transaction.atomic():
            res = store.upsert_bars(k.bars)
        times, dups, iv = k.bars.open_ms, k.duplicates, info.interval
    return ImportResult(str(path), info.kind, info.symbol, info.market or "", iv, int(times.size), res.inserted,
                        res.updated, res.unchanged, dups, ms_to_iso(int(times[0])), ms_to_iso(int(times[-1])))


def klines_check(*, symbol: str, market: str, interval: str, start_ms: int | None = None,
                 end_ms: int | None = None, store: DjangoKlineStore | None = None) -> dict:
    """Rows, first/last bar, gaps, OHLC violations and duplicates of one stored series (optionally a range)."""
    store = store or DjangoKlineStore()
    bars = store.load_bars(symbol, market, interval, start_ms, end_ms)
    n = len(bars)
    out: dict = {"symbol": symbol, "market": market, "interval": interval, "rows": n,
                 "first": ms_to_iso(int(bars.open_ms[0])) if n else None,
                 "last": ms_to_iso(int(bars.open_ms[-1])) if n else None}
    gaps = find_gaps(bars.open_ms, interval)
    u = bars.units
    o, h, lo, c, v = (u[:, j] for j in range(5))
    violations = (h < lo) | (o > h) | (o < lo) | (c > h) | (c < lo) | (v < 0)
    out.update(
        gaps=gaps.count,
        missing_bars=gaps.missing_bars,
        largest_gap_bars=gaps.largest_bars,
        largest_gap_after=ms_to_iso(gaps.largest_after_ms) if gaps.largest_after_ms is not None else None,
        ohlc_violations=int(np.count_nonzero(violations)),
        duplicates=int(np.count_nonzero(np.diff(bars.open_ms) == 0)) if n > 1 else 0,
        off_grid=int(np.count_nonzero(bars.open_ms % interval_ms(interval))),
        zero_volume_bars=int(np.count_nonzero(v == 0)),
        low=float(lo.min()) / SCALE if n else None,
        high=float(h.max()) / SCALE if n else None,
    )
    return out


def bars_for_analysis(*, symbol: str, market: str, interval: str, start_ms: int | None = None,
                      end_ms: int | None = None, store: DjangoKlineStore | None = None) -> Bars:
    """Bars of `interval` for [start, end): the stored series when it has bars there, else a resample of the
    finest stored interval that covers the range at both ends (only complete buckets; the one with the most bars
    when none covers it all). `Bars.source_interval` says which it was."""
    store = store or DjangoKlineStore()
    stored = store.load_bars(symbol, market, interval, start_ms, end_ms)
    if len(stored):
        return stored
    target = interval_ms(interval)
    finer = sorted((iv for iv in store.intervals(symbol, market)
                    if INTERVAL_MS.get(iv, target) < target and target % INTERVAL_MS[iv] == 0),
                   key=INTERVAL_MS.__getitem__)
    best = None
    for iv in finer:
        # Widen the window to whole target buckets so the first and last bucket can be complete.
        lo = None if start_ms is None else (start_ms // target) * target
        got = resample(store.load_bars(symbol, market, iv, lo, end_ms), interval).slice_ms(start_ms, end_ms)
        starts = start_ms is None or (len(got) and got.open_ms[0] < start_ms + target)
        ends = end_ms is None or (len(got) and got.close_ms[-1] > end_ms - target)
        if len(got) and starts and ends:  # covers both ends (a finer series may stop early: the next one may not)
            return got
        if len(got) and (best is None or len(got) > len(best)):
            best = got
    if best is not None:
        return best
    have = ", ".join(sorted(store.intervals(symbol, market), key=lambda i: INTERVAL_MS.get(i, 0))) or "nothing"
    rng = f"{ms_to_iso(start_ms) if start_ms else '-inf'} .. {ms_to_iso(end_ms) if end_ms else '+inf'}"
    raise DataError(f"no {symbol} {market} bars for {interval} in {rng}: stored intervals are {have}; "
                    f"import or fetch {interval} or a finer interval (klines import / klines fetch)")
