"""`demo`: a backtest end to end with a summary and an HTML report, on real klines (imported from ../shared/data,
cached in the database, or downloaded), or offline with nothing cached on a generated market labelled as such."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
from django.core.management import call_command

from fake_binance import FakeBinance
from grid_trading.management.commands.demo import DEMO_FILES
from grid_trading.models import BacktestRun, FundingRate, KlineChunk
from grid_trading.services.backtest import backtest_run
from grid_trading.services.configs import config_default
from gridcore.errors import InputError
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.synthetic import GENERATED_LABEL
from gridcore.timeframes import parse_utc
from tests.conftest import DATA_DIR, shared_file

pytest_plugins = ["tests.fake_binance_fixtures"]
pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def demo(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("demo", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _assert_backtest_report(path, generated: bool) -> str:
    page = path.read_text()
    assert "<img alt='chart'" in page and "data:image/png;base64," in page  # candles, zones, fills, equity
    assert "final_equity" in page and "conservative (headline)" in page and "optimistic" in page
    assert (GENERATED_LABEL in page) == generated
    return page


@pytest.mark.realdata
def test_demo_on_real_data_imports_the_files_records_a_run_and_writes_the_report(settings, tmp_path,
                                                                                  loopback_only):
    for name in DEMO_FILES:
        shared_file(name)
    settings.DATA_DIR = DATA_DIR
    settings.BINANCE_BASE_URL = _closed_port_url()  # the files suffice: nothing is downloaded
    report = tmp_path / "demo.html"
    out, err = demo("--start", "2023-01-01", "--end", "2023-01-15", "--report", str(report))
    assert f"data: real Binance klines from {DATA_DIR}" in out
    assert "imported BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz" in err and "[2/2] backtest" in err
    assert "execution headline: 4032/4032 (100 %)" in err  # progress
    assert "conservative (headline)" in out and "final equity" in out and f"report      {report}" in out
    assert GENERATED_LABEL not in out + err
    run = BacktestRun.objects.get()
    assert (run.symbol, run.market, run.exec_interval, run.policy) == ("BTCUSDT", "perp", "5m", "headline")
    assert f"BacktestRun {run.pk}" in out and f", run {run.pk}" in out
    page = _assert_backtest_report(report, generated=False)
    assert "data: real Binance klines from" in page

    out, err = demo("--start", "2023-01-01", "--end", "2023-01-15", "--report", str(report), "--json")
    doc = json.loads(out)  # a re-run reads the database, imports nothing
    assert doc["data"] == "real Binance klines cached in the database" and doc["generated"] is False
    assert "imported" not in err and BacktestRun.objects.count() == 2 and doc["run_id"] != run.pk
    assert doc["backtest"]["results"] == run.results


def test_demo_offline_with_nothing_cached_uses_a_labelled_generated_market(settings, tmp_path, loopback_only):
    settings.DATA_DIR = tmp_path / "empty"
    settings.DATA_DIR.mkdir()
    settings.BINANCE_BASE_URL = _closed_port_url()
    report = tmp_path / "demo.html"
    out, err = demo("--report", str(report))
    assert "offline (" in err and f"falling back to a {GENERATED_LABEL}" in err
    assert out.startswith(f"autogrid demo\n*** {GENERATED_LABEL}: not a real market result ***")
    assert f"data: {GENERATED_LABEL}" in out and "recorded    nothing (generated market)" in out
    assert "conservative (headline)" in out and "execution on 15m bars" in out
    page = _assert_backtest_report(report, generated=True)
    assert f"<title>{GENERATED_LABEL}: backtest" in page and f"<b>{GENERATED_LABEL}</b>" in page
    # nothing generated is left where it could pass for real klines
    assert not KlineChunk.objects.exists() and not FundingRate.objects.exists()
    assert not BacktestRun.objects.exists()


def test_a_generated_market_is_never_recorded():
    with pytest.raises(InputError, match="record=False for a generated market"):
        backtest_run(symbol="BTCUSDT", market="perp", start_ms=parse_utc("2024-02-01"),
                     end_ms=parse_utc("2024-02-02"), config=config_default(), data_label=GENERATED_LABEL)


@pytest.fixture
def fake_exchange_with_a_slice_of_the_files(loopback_only):
    """FakeBinance on 127.0.0.1 serving the demo files cut to what a 2023-01-01..08 backtest reads."""
    paths = [shared_file(n) for n in DEMO_FILES]
    lo, hi = parse_utc("2022-11-25"), parse_utc("2023-01-09")
    bars, funding = [], {}
    for p in paths:
        info = identify(p)
        if info.kind == "funding":
            f = read_funding(p, info)
            keep = (f.funding_ms >= lo) & (f.funding_ms < hi)
            funding[f.symbol] = (f.funding_ms[keep], [r for r, k in zip(f.rates, keep, strict=True) if k])
        else:
            bars.append(read_klines(p, info).bars.slice_ms(lo, hi))
    with FakeBinance(bars, funding) as fake:
        yield fake


@pytest.mark.realdata
def test_demo_downloads_with_klines_fetch_when_nothing_is_cached(settings, tmp_path,
                                                                 fake_exchange_with_a_slice_of_the_files):
    settings.DATA_DIR = tmp_path / "empty"
    settings.DATA_DIR.mkdir()
    settings.BINANCE_BASE_URL = fake_exchange_with_a_slice_of_the_files.base_url
    report = tmp_path / "demo.html"
    out, err = demo("--start", "2023-01-01", "--end", "2023-01-08", "--report", str(report))
    assert f"data: real Binance klines downloaded with klines fetch from {settings.BINANCE_BASE_URL}" in out
    assert "      BTCUSDT mark 5m: 100 %" in err and "      BTCUSDT perp 1h: 100 %" in err  # progress
    assert GENERATED_LABEL not in out + err
    assert BacktestRun.objects.get().exec_interval == "5m"
    _assert_backtest_report(report, generated=False)
