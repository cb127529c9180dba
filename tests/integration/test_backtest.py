"""`backtest` on the real data: deterministic, truncation-consistent, recorded with its provenance."""

from __future__ import annotations

import csv
import json
import time
from io import StringIO

import pytest
from django.core.management import call_command

from grid_trading.models import BacktestRun
from grid_trading.services.backtest import backtest_run
from grid_trading.services.configs import config_default
from gridcore.timeframes import parse_utc
from tests.conftest import real_files_imported

pytestmark = [pytest.mark.django_db, pytest.mark.realdata]


@pytest.fixture(scope="module")
def perp_data(django_db_setup, django_db_blocker):
    with real_files_imported(django_db_blocker, "BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz",
                             "BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz",
                             "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz"):
        yield


def _run(start: str, end: str, **kw):
    return backtest_run(symbol="BTCUSDT", market="perp", start_ms=parse_utc(start), end_ms=parse_utc(end),
                        config=config_default(), record=False, **kw)


def test_january_2023_on_5m_is_deterministic(perp_data):
    t0 = time.perf_counter()
    _, a, doc = _run("2023-01-01", "2023-01-20")
    elapsed = time.perf_counter() - t0
    _, b, _ = _run("2023-01-01", "2023-01-20")
    ra, rb = a["headline"], b["headline"]
    assert ra.exec_interval == "5m"
    assert ra.bars == 19 * 288
    assert ra.fills == rb.fills  # every fill event, exactly
    assert ra.equity == rb.equity  # every equity point, exactly
    assert [(s.id, s.bar_ms, s.status) for s in ra.signals] == [(s.id, s.bar_ms, s.status) for s in rb.signals]
    assert a["optimistic"].fills == b["optimistic"].fills
    assert doc["results"]["headline"]["counts"]["fills"] == len(ra.fills)
    assert len(ra.fills) > 0, "expected at least one fill in 2023-01-01..20"
    print(f"2023-01-01..20 5m: {ra.bars} bars x 2 policies in {elapsed:.2f} s "
          f"({2 * ra.bars / elapsed:.0f} bars/s incl. loading and the scanner/trigger replay)")


def test_truncated_run_is_the_prefix_of_a_longer_one(perp_data):
    _, short, _ = _run("2023-01-01", "2023-01-12")
    _, long, _ = _run("2023-01-01", "2023-01-20")
    t = parse_utc("2023-01-12")
    for p in ("headline", "optimistic"):
        s, lg = short[p], long[p]
        assert s.equity == lg.equity[:len(s.equity)]
        assert s.equity[-1].bar_ms == t - 5 * 60_000
        assert s.fills == [f for f in lg.fills if f[0] < t]
        assert [z.bar_ms for z in s.zones] == [z.bar_ms for z in lg.zones if z.bar_ms <= t]


def test_command_records_a_run_with_provenance(perp_data, tmp_path):
    out, err = StringIO(), StringIO()
    path, trades = tmp_path / "bt.json", tmp_path / "trades.csv"
    call_command("backtest", "--symbol", "BTC", "--start", "2023-01-01", "--end", "2023-01-06", "--json", str(path),
                 "--trades", str(trades), "--report", str(tmp_path / "r.html"), stdout=out, stderr=err)
    run = BacktestRun.objects.get()
    cfg = config_default()
    assert (run.config_id, run.config_hash, run.exec_interval, run.policy) == (cfg.pk, cfg.config_hash, "5m",
                                                                               "headline")
    assert len(run.data_checksum) == 64 and run.code_version
    assert set(run.results) == {"headline", "optimistic"}
    assert set(run.data_series) >= {"profile", "trend", "trigger", "exec", "funding"}
    doc = json.loads(path.read_text())
    assert doc["run_id"] == run.pk and doc["data_checksum"] == run.data_checksum
    with trades.open() as fh:
        assert len(list(csv.DictReader(fh))) == doc["results"]["headline"]["counts"]["fills"]
    text = out.getvalue()
    assert "conservative (headline)" in text and "optimistic" in text and "max drawdown" in text
    assert "execution headline" in err.getvalue()  # progress on stderr
    page = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in page and "conservative (headline)" in page and "http" not in page


def test_march_2020_runs_on_1h_and_reports_its_exits(perp_data):
    _, res, doc = _run("2020-03-01", "2020-04-01")
    r = res["headline"]
    assert r.exec_interval == "1h"  # no finer perpetual klines exist for March 2020
    assert r.bars == 31 * 24
    c = doc["results"]["headline"]["counts"]
    assert c["kill_switches"] == r.event_counts.get("KillSwitch", 0)
    assert c["liquidations"] == r.event_counts.get("Liquidated", 0)
    assert c["stops"] == sum(1 for x in r.exits if x.kind == "STOP")
    assert c["zones"] == 31 * 6 + 1  # every 4h close from the start through the end, both included
    # no 15m perpetual bars (stored or resampled) exist in 2020: the trigger cannot run, and the notes say so
    assert c["signals"] == 0 and c["grids_started"] == 0
    assert any(n.startswith("trigger:") for n in doc["notes"])
    assert doc["skipped"]["trigger"]["count"] > 0
    print("March 2020 counts:", c)
