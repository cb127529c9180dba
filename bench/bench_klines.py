"""Kline store throughput: import of the real files, and loading a year of 1m bars (target <= 0.5 s).

Run: .venv/bin/python bench/bench_klines.py   (DATABASE_URL=postgres://... to measure PostgreSQL)
"""

from __future__ import annotations

import time

import numpy as np
from _setup import DATA_DIR, django_scratch, timed, verdict

django_scratch()

from django.db import connection  # noqa: E402

from grid_trading.models import FundingRate, KlineChunk  # noqa: E402
from grid_trading.services.kline_store import DjangoKlineStore  # noqa: E402
from grid_trading.services.klines import klines_import_file  # noqa: E402
from gridcore.bars import Bars  # noqa: E402

YEAR_1M = 525_600


def year_of_1m_bars() -> Bars:
    rng = np.random.default_rng(1)
    close = 3_000_000_000_000 + np.cumsum(rng.integers(-2_000_000_000, 2_000_000_000, YEAR_1M))
    open_ = np.r_[close[0], close[:-1]]
    units = np.column_stack([open_, np.maximum(open_, close) + 10**8, np.minimum(open_, close) - 10**8, close,
                             rng.integers(0, 10**11, YEAR_1M)])
    start = 1_672_531_200_000  # 2023-01-01
    return Bars("BTCUSDT", "perp", "1m", start + np.arange(YEAR_1M, dtype=np.int64) * 60_000, units)


def main() -> None:
    print(f"database: {connection.vendor}")
    store = DjangoKlineStore()
    files = sorted(DATA_DIR.glob("BTCUSDT-*.csv.gz"))
    if files:
        t = time.perf_counter()
        rows = sum(klines_import_file(path=p).rows for p in files)
        dt = time.perf_counter() - t
        print(f"import: {len(files)} real files, {rows:,} rows in {dt:.2f} s = {rows / dt:,.0f} rows/s")
        KlineChunk.objects.all().delete()
        FundingRate.objects.all().delete()
    else:
        print(f"import: skipped, no files in {DATA_DIR}")
    bars = year_of_1m_bars()
    t = time.perf_counter()
    store.upsert_bars(bars)
    dt = time.perf_counter() - t
    print(f"upsert: {YEAR_1M:,} generated 1m bars in {dt:.2f} s = {YEAR_1M / dt:,.0f} rows/s")
    load, loaded = timed(lambda: store.load_bars("BTCUSDT", "perp", "1m"), repeat=7)
    assert len(loaded) == YEAR_1M and np.array_equal(loaded.units, bars.units)
    floats, _ = timed(lambda: (lambda b: (b.open, b.high, b.low, b.close, b.volume))(
        store.load_bars("BTCUSDT", "perp", "1m")), repeat=7)
    print(f"load:   {YEAR_1M:,} 1m bars into numpy (median of 7): {load * 1000:.1f} ms = {YEAR_1M / load:,.0f} rows/s")
    print(verdict("load a year of 1m bars", load, 0.5))
    print(verdict("load + float64 views (open..volume)", floats, 0.5))


if __name__ == "__main__":
    main()
