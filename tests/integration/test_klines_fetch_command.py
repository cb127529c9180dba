"""`klines fetch` into the database through ccxt and the local fake Binance server (real data, real faults)."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from grid_trading.models import FundingRate, KlineChunk
from grid_trading.services.kline_store import DjangoKlineStore
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.timeframes import parse_utc
from tests.conftest import shared_file

pytest_plugins = ["tests.fake_binance_fixtures"]
pytestmark = [pytest.mark.django_db, pytest.mark.realdata]
START, END = "2020-03-01", "2020-03-16"


@pytest.fixture
def served(fake_binance_real, settings):
    settings.BINANCE_BASE_URL = fake_binance_real.base_url
    return fake_binance_real


def fetch(*extra) -> dict:
    out = StringIO()
    call_command("klines", "fetch", "--symbol", "BTC/USDT:USDT", "--interval", "1h", "--start", START, "--end", END,
                 *extra, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def file_slice():
    path = shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    return read_klines(path, identify(path)).bars.slice_ms(parse_utc(START), parse_utc(END))


def test_fetch_reproduces_the_served_real_data_exactly_through_faults(served):
    served.add_fault("/fapi/v1/klines", "429", times=1, retry_after=0)
    served.add_fault("/fapi/v1/klines", "malformed", times=1, skip=1)
    served.add_fault("/fapi/v1/fundingRate", "503", times=1)
    report = fetch()
    want = file_slice()
    got = DjangoKlineStore().load_bars("BTCUSDT", "perp", "1h")
    assert np.array_equal(got.open_ms, want.open_ms) and np.array_equal(got.units, want.units)
    assert report["klines"]["inserted"] == len(want) == 360
    assert report["klines"]["retries"] and report["funding"]["retries"]
    fpath = shared_file("BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz")
    f = read_funding(fpath, identify(fpath))
    keep = (f.funding_ms >= parse_utc(START)) & (f.funding_ms < parse_utc(END))
    ms, rates = DjangoKlineStore().load_funding("BTCUSDT")
    assert ms.tolist() == f.funding_ms[keep].tolist()
    assert rates == [r for r, k in zip(f.rates, keep, strict=True) if k]
    assert KlineChunk.objects.filter(market="mark").exists()  # mark prices came along
    again = fetch()
    assert again["klines"]["inserted"] == 0 and len(DjangoKlineStore().load_bars("BTCUSDT", "perp", "1h")) == 360


def test_a_fault_that_never_clears_stops_with_a_clear_error_and_only_whole_pages(served):
    served.add_fault("/fapi/v1/klines", "500", times=None)
    with pytest.raises(CommandError, match=r"BTCUSDT perp 1h .*gave up after \d+ retries"):
        fetch("--no-funding")
    assert KlineChunk.objects.count() == 0 and FundingRate.objects.count() == 0


def test_rules_refresh_caches_exchange_info_from_the_exchange(served, settings, tmp_path):
    import grid_trading.services.symbols as symbols

    settings.VAR_DIR = tmp_path
    symbols._registry = None
    try:
        out = StringIO()
        call_command("klines", "rules", "--symbol", "btc", "--refresh", "--json", stdout=out)
        res = json.loads(out.getvalue())
        assert res["source"].startswith("exchangeInfo cached ")
        assert res["symbols"][0]["tick_size"] == "0.1" and res["symbols"][0]["min_notional"] == "100"
        assert (tmp_path / "cache" / "binance_usdm_exchange_info.json").exists()
        assert any(r.path == "/fapi/v1/exchangeInfo" for r in served.requests)
    finally:
        symbols._registry = None


def test_scanner_fetch_on_the_fake_exchange_gives_the_zone_of_the_file_data(served):
    from gridcore.bars import resample
    from gridcore.params import default_params
    from gridcore.strategy.scanner import scan_zone

    at = "2020-03-10T00:00Z"
    served.set_now(parse_utc(at) + 25 * 60_000)  # the exchange's clock: 00:25, the 4h bar closed 25 min ago
    out = StringIO()
    call_command("scanner", "--symbol", "BTC", "--at", at, "--fetch", "--json", stdout=out, stderr=StringIO())
    zone = json.loads(out.getvalue())
    path = shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    bars = read_klines(path, identify(path)).bars
    want = scan_zone(profile_bars=bars, trend_bars=resample(bars, "4h"), at_ms=parse_utc(at), params=default_params(),
                     tick=Decimal("0.1"))
    assert (zone["s2"], zone["s1"], zone["r1"], zone["r2"], zone["valid"]) == (want.s2, want.s1, want.r1, want.r2,
                                                                                want.valid)
    assert DjangoKlineStore().last_open_ms("BTCUSDT", "perp", "1h") == parse_utc(at) - 3_600_000
