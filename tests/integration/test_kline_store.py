"""The database kline store on SQLite and PostgreSQL: idempotent, atomic, exact, month chunks invisible."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from grid_trading.models import KlineChunk
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import bars_for_analysis
from gridcore.bars import Bars
from gridcore.errors import DataError
from gridcore.store_memory import MemoryKlineStore

pytestmark = pytest.mark.django_db
MIN = 60_000
T0 = 1_582_934_400_000  # 2020-02-29 00:00 UTC: the series below crosses a month boundary


def random_walk(n: int, start_ms: int = T0, interval_ms: int = MIN, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 800_000_000_000 + np.cumsum(rng.integers(-5_000_000, 5_000_000, n))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + rng.integers(0, 3_000_000, n)
    low = np.minimum(open_, close) - rng.integers(0, 3_000_000, n)
    vol = rng.integers(0, 10**10, n)
    return start_ms + np.arange(n, dtype=np.int64) * interval_ms, np.column_stack([open_, high, low, close, vol])


def bars(n=3000, **kw) -> Bars:
    ms, units = random_walk(n, **kw)
    return Bars("BTCUSDT", "spot", "1m", ms, units)


@pytest.mark.parametrize("store_cls", [DjangoKlineStore, MemoryKlineStore])
def test_upsert_is_idempotent_and_loads_back_exactly(store_cls):
    store, b = store_cls(), bars()
    first = store.upsert_bars(b)
    assert (first.inserted, first.updated, first.unchanged) == (3000, 0, 0)
    again = store.upsert_bars(b)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3000)
    back = store.load_bars("BTCUSDT", "spot", "1m")
    assert np.array_equal(back.open_ms, b.open_ms) and np.array_equal(back.units, b.units)
    part = store.load_bars("BTCUSDT", "spot", "1m", int(b.open_ms[100]), int(b.open_ms[2500]))
    assert np.array_equal(part.open_ms, b.open_ms[100:2500])
    assert store.last_open_ms("BTCUSDT", "spot", "1m") == int(b.open_ms[-1])


@pytest.mark.parametrize("store_cls", [DjangoKlineStore, MemoryKlineStore])
def test_overlapping_upsert_keeps_one_bar_per_time_and_new_values_win(store_cls):
    store, b = store_cls(), bars()
    store.upsert_bars(b.take(slice(0, 2000)))
    revised = b.take(slice(1500, 3000))
    changed_units = revised.units.copy()
    changed_units[0, 4] += 1  # Binance revised one bar's volume
    res = store.upsert_bars(Bars("BTCUSDT", "spot", "1m", revised.open_ms, changed_units))
    assert (res.inserted, res.updated, res.unchanged) == (1000, 1, 499)
    back = store.load_bars("BTCUSDT", "spot", "1m")
    assert len(back) == 3000 and np.all(np.diff(back.open_ms) == MIN)
    assert back.units[1500, 4] == b.units[1500, 4] + 1


def test_month_chunks_are_one_row_per_month_and_unique_in_the_database():
    DjangoKlineStore().upsert_bars(bars())
    chunks = list(KlineChunk.objects.order_by("month_start_ms").values_list("rows", flat=True))
    assert sum(chunks) == 3000 and len(chunks) == 2  # February and March 2020
    row = KlineChunk.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        KlineChunk.objects.create(symbol=row.symbol, market=row.market, interval=row.interval,
                                  month_start_ms=row.month_start_ms, first_open_ms=0, last_open_ms=0, rows=1,
                                  data=b"", sha256="")


def _write_csv(path, ms, units, bad_last_line=False):
    with gzip.open(path, "wt") as f:
        f.write("open_time,open,high,low,close,volume\n")
        for t, u in zip(ms, units, strict=True):
            f.write(f"{t},{u[0] / 1e8},{u[1] / 1e8},{u[2] / 1e8},{u[3] / 1e8},{u[4] / 1e8}\n")
        if bad_last_line:
            f.write(f"{ms[-1] + MIN},1,0.5,2,1,1\n")


def test_a_file_with_one_bad_row_imports_nothing(tmp_path):
    ms, units = random_walk(3000)
    path = tmp_path / "BTCUSDT-1m-spot-2020-02-29_2020-03-02.csv.gz"
    _write_csv(path, ms, units, bad_last_line=True)
    out = StringIO()
    with pytest.raises(CommandError, match=r"csv.gz:3002: high 0.5 < low 2.0"):
        call_command("klines", "import", str(path), stdout=out, stderr=out)
    assert KlineChunk.objects.count() == 0
    _write_csv(path, ms, units)
    call_command("klines", "import", str(path), "--json", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue())["files"][0]["inserted"] == 3000


def test_analysis_gets_the_stored_interval_or_a_resample_and_knows_which():
    store = DjangoKlineStore()
    store.upsert_bars(bars(n=24 * 60 * 3))  # three days of 1m bars
    h = bars_for_analysis(symbol="BTCUSDT", market="spot", interval="1h", start_ms=T0 + 30 * MIN)
    assert h.interval == "1h" and h.source_interval == "1m" and h.resampled
    assert len(h) == 71  # the first, incomplete-by-request hour is left out; 72 - 1
    assert h.open_ms[0] == T0 + 60 * MIN
    ms, units = random_walk(72, interval_ms=60 * MIN, seed=3)
    store.upsert_bars(Bars("BTCUSDT", "spot", "1h", ms, units))
    stored = bars_for_analysis(symbol="BTCUSDT", market="spot", interval="1h")
    assert stored.source_interval == "1h" and not stored.resampled
    with pytest.raises(DataError, match="stored intervals are 1m, 1h"):
        bars_for_analysis(symbol="BTCUSDT", market="spot", interval="1d", start_ms=T0 + 10 * 86_400_000)


@pytest.mark.parametrize(("debug", "key", "ok"), [("0", "", False), ("1", "", True), ("0", "k" * 50, True)])
def test_settings_require_a_secret_key_when_debug_is_off(tmp_path, debug, key, ok):
    from django.conf import settings

    code = "import django; django.setup(); from django.conf import settings; print(settings.TIME_ZONE)"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(settings.BASE_DIR), "DJANGO_SETTINGS_MODULE": "config.settings",
           "AUTOGRID_ENV_FILE": str(tmp_path / "absent.env"), "AUTOGRID_VAR_DIR": str(tmp_path),
           "DJANGO_DEBUG": debug, "DJANGO_SECRET_KEY": key}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert (proc.returncode == 0) is ok
    assert ("DJANGO_SECRET_KEY is required when DEBUG is off" in proc.stderr) is (not ok)
    if ok:
        assert proc.stdout.strip() == "UTC"


def test_resampling_prefers_the_finest_interval_that_covers_the_range():
    store = DjangoKlineStore()
    ms, units = random_walk(24 * 10, interval_ms=60 * MIN, seed=5)  # ten days of 1h bars
    store.upsert_bars(Bars("BTCUSDT", "spot", "1h", ms, units))
    store.upsert_bars(bars(n=2 * 24 * 60, start_ms=T0 + 8 * 86_400_000))  # 1m bars for the last two days only
    last_day = bars_for_analysis(symbol="BTCUSDT", market="spot", interval="4h", start_ms=T0 + 9 * 86_400_000,
                                 end_ms=T0 + 10 * 86_400_000)
    assert last_day.source_interval == "1m" and len(last_day) == 6
    whole = bars_for_analysis(symbol="BTCUSDT", market="spot", interval="4h", start_ms=T0, end_ms=T0 + 10 * 86_400_000)
    assert whole.source_interval == "1h" and len(whole) == 60


def test_resampling_skips_a_finer_interval_that_stops_before_the_end():
    """A 5m series ending early must not cut a 4h analysis short when the 1h series covers it (the June 2022 crash
    scenario read a 4h trend that stopped at the end of the 5m file once that file had been imported)."""
    store = DjangoKlineStore()
    ms, units = random_walk(24 * 10, interval_ms=60 * MIN, seed=5)  # ten days of 1h bars
    store.upsert_bars(Bars("BTCUSDT", "spot", "1h", ms, units))
    store.upsert_bars(bars(n=3 * 24 * 60, start_ms=T0))  # 1m bars for the first three days only
    trend = bars_for_analysis(symbol="BTCUSDT", market="spot", interval="4h", start_ms=T0, end_ms=T0 + 10 * 86_400_000)
    assert trend.source_interval == "1h" and len(trend) == 60
