"""BinanceClient against FakeBinance: real ccxt over real HTTP on 127.0.0.1, no mocks.

Generated data (the `fake_binance_data` fixture) covers paging, resuming, every fault and real gaps; the
real ../shared/data files check that a fetch reproduces them exactly.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import ccxt
import numpy as np
import pytest

from fake_binance import FakeBinance
from gridcore.bars import CLOSE, OPEN, VOLUME, Bars, find_gaps
from gridcore.errors import ExchangeError
from gridcore.exchange import BinanceClient, FetchReport, RetryPolicy, redirect_urls
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.ports import UpsertResult
from gridcore.store_memory import MemoryKlineStore
from gridcore.symbols import SymbolRegistry
from gridcore.timeframes import DAY_MS, HOUR_MS, MINUTE_MS, ms_to_iso, parse_utc
from tests.conftest import DATA_DIR

if TYPE_CHECKING:
    from tests.fake_binance_fixtures import Generated

pytest_plugins = ["tests.fake_binance_fixtures"]

FAST = RetryPolicy(max_retries=3, backoff_base_s=0.001, backoff_max_s=0.005, retry_after_max_s=0.02)
KLINES = "/fapi/v1/klines"
REPO = Path(__file__).resolve().parents[2]


def make_client(fake: FakeBinance, **kwargs: object) -> BinanceClient:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("timeout_ms", 2_000)
    return BinanceClient(base_url=fake.base_url, rate_limit_ms=1, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def g(fake_binance_data: Generated) -> Generated:
    return fake_binance_data


@pytest.fixture
def client(fake_binance: FakeBinance) -> Iterator[BinanceClient]:
    with make_client(fake_binance) as c:
        yield c


def fetch_btc(client: BinanceClient, store: MemoryKlineStore, g: Generated, **kwargs: object) -> FetchReport:
    return client.fetch_klines(store, "BTCUSDT", "perp", "1m", g.start_ms, g.end_ms, **kwargs)  # type: ignore[arg-type]


def assert_same_bars(got: Bars, want: Bars) -> None:
    assert len(got) == len(want)
    np.testing.assert_array_equal(got.open_ms, want.open_ms)
    np.testing.assert_array_equal(got.units, want.units)


def stored_btc(store: MemoryKlineStore) -> Bars:
    return store.load_bars("BTCUSDT", "perp", "1m")


def http_json(url: str, doc: object | None = None, method: str = "POST") -> object:
    data = None if doc is None else json.dumps(doc).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# ----- ccxt wiring -----


def test_every_ccxt_url_points_at_the_fake(client: BinanceClient, fake_binance: FakeBinance) -> None:
    for market in ("perp", "spot"):
        urls = client.api(market).urls
        for section in ("api", "test", "demo"):
            assert all(u.startswith(fake_binance.base_url + "/") for u in urls[section].values()), (market, section)


def test_ccxt_load_markets_and_fetch_time_are_served(client: BinanceClient, fake_binance: FakeBinance,
                                                     g: Generated) -> None:
    now = g.start_ms + 12 * HOUR_MS
    fake_binance.set_now(now)
    perp, spot = client.api("perp"), client.api("spot")
    assert "BTC/USDT:USDT" in perp.load_markets()
    assert perp.fetch_time() == now
    assert "BTC/USDT" in spot.load_markets()
    assert spot.fetch_time() == now
    assert client.server_time_ms() == now and client.server_time_ms("spot") == now
    info = client.fetch_exchange_info()
    assert SymbolRegistry(info, "test").rules("BTC").tick_size == Decimal("0.1")
    assert info["serverTime"] == now
    log = fake_binance.requests
    assert {r.path for r in log} == {"/fapi/v1/exchangeInfo", "/fapi/v1/time", "/api/v3/exchangeInfo", "/api/v3/time"}
    assert all(r.status == 200 for r in log)


def test_a_plain_ccxt_binance_loads_spot_linear_and_inverse_markets(fake_binance: FakeBinance) -> None:
    exchange = ccxt.binance({"enableRateLimit": True, "rateLimit": 1})
    redirect_urls(exchange, fake_binance.base_url)
    markets = exchange.load_markets()
    assert {"BTC/USDT", "BTC/USDT:USDT"} <= set(markets)
    assert [(r.path, r.status) for r in fake_binance.requests] == [
        ("/api/v3/exchangeInfo", 200), ("/fapi/v1/exchangeInfo", 200), ("/dapi/v1/exchangeInfo", 200)]


def test_the_test_sandbox_refuses_the_real_binance(loopback_only: None) -> None:
    with BinanceClient(retry=FAST) as client, pytest.raises(ExchangeError, match="fapi.binance.com") as failed:
        client.server_time_ms()
    causes, e = [], failed.value
    while e is not None:
        causes.append(str(e))
        e = e.__cause__ or e.__context__
    assert any("only 127.0.0.1 is allowed in tests" in c for c in causes)


# ----- clean fetches -----


def test_clean_paginated_fetch_reproduces_the_served_bars(client: BinanceClient, fake_binance: FakeBinance,
                                                          g: Generated) -> None:
    store = MemoryKlineStore()
    seen: list[tuple[int, int]] = []
    report = fetch_btc(client, store, g, progress=lambda done, total: seen.append((done, total)))
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert (report.pages, report.bars_written, report.retries, report.gaps) == (3, UpsertResult(4320), {}, [])
    pages = fake_binance.requests_to(KLINES)
    assert [int(r.params["startTime"]) for r in pages] == [g.start_ms + k * 1500 * MINUTE_MS for k in range(3)]
    assert {(r.params["limit"], r.params["endTime"], r.weight) for r in pages} == {("1500", str(g.end_ms - 1), 10)}
    assert [r.rows for r in pages] == [1500, 1500, 1320]  # the short last page ends the fetch: no extra request
    assert seen[-1] == (g.end_ms - g.start_ms, g.end_ms - g.start_ms)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_spot_pages_by_1000_and_mark_prices_go_to_market_mark(client: BinanceClient,
                                                              fake_binance: FakeBinance, g: Generated) -> None:
    store = MemoryKlineStore()
    spot = client.fetch_klines(store, "BTC/USDT", "spot", "1m", g.start_ms, g.end_ms)
    assert_same_bars(store.load_bars("BTCUSDT", "spot", "1m"), g.btc_spot)
    assert spot.pages == 5
    assert {r.params["limit"] for r in fake_binance.requests_to("/api/v3/klines")} == {"1000"}
    mark = client.fetch_klines(store, "BTCUSDT", "mark", "1m", g.start_ms, g.end_ms)
    got, perp = store.load_bars("BTCUSDT", "mark", "1m"), g.btc_perp
    assert mark.pages == 3 and len(fake_binance.requests_to("/fapi/v1/markPriceKlines")) == 3
    np.testing.assert_array_equal(got.open_ms, perp.open_ms)
    np.testing.assert_array_equal(got.units[:, OPEN:CLOSE + 1], perp.units[:, OPEN:CLOSE + 1])
    assert not got.units[:, VOLUME].any()  # Binance's mark-price klines carry no volume
    assert store.load_bars("BTCUSDT", "perp", "1m").open_ms.size == 0


# ----- resuming -----


def test_resume_after_a_mid_run_failure_fetches_only_the_remainder(client: BinanceClient,
                                                                   fake_binance: FakeBinance, g: Generated) -> None:
    store = MemoryKlineStore()
    fake_binance.add_fault(KLINES, "500", times=None, skip=2)
    with pytest.raises(ExchangeError, match="gave up after 3 retries"):
        fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp.take(slice(0, 3000)))
    fake_binance.clear_faults()
    fake_binance.clear_requests()
    report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert report.resumed_from_ms == g.start_ms + 3000 * MINUTE_MS
    assert (report.pages, report.bars_written) == (1, UpsertResult(1320))
    assert [int(r.params["startTime"]) for r in fake_binance.requests_to(KLINES)] == [g.start_ms + 3000 * MINUTE_MS]
    fake_binance.clear_requests()
    again = fetch_btc(client, store, g)
    assert (again.pages, fake_binance.requests_to(KLINES)) == (0, [])  # complete: nothing asked


def test_resume_also_fills_a_missing_start(client: BinanceClient, fake_binance: FakeBinance, g: Generated) -> None:
    store = MemoryKlineStore()
    store.upsert_bars(g.btc_perp.take(slice(2000, 2500)))
    report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert report.bars_written == UpsertResult(3820)


# ----- faults that clear -----


@pytest.mark.parametrize(("fault", "kind", "options"), [
    ("429", "rate_limit", {"retry_after": 1}),
    ("500", "server_error", {}),
    ("502", "server_error", {}),
    ("503", "server_error", {}),
    ("malformed", "bad_response", {}),
])
def test_a_fault_that_clears_is_retried_and_the_result_equals_a_clean_fetch(
        fault: str, kind: str, options: dict, client: BinanceClient, fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.add_fault(KLINES, fault, times=2, skip=1, **options)
    store = MemoryKlineStore()
    report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert report.retries == {kind: 2}
    log = fake_binance.requests_to(KLINES)
    assert [r.fault for r in log] == [None, fault, fault, None, None]
    if fault == "429":  # Retry-After: 1 honoured, capped at retry_after_max_s
        assert log[2].at - log[1].at >= FAST.retry_after_max_s * 0.9


def test_a_timeout_is_retried(fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.add_fault(KLINES, "timeout", times=1, skip=1, sleep_s=5.0)
    store = MemoryKlineStore()
    with make_client(fake_binance, timeout_ms=1_500) as client:  # a clean page takes ~50 ms, even loaded < 1 s
        report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert report.retries == {"timeout": 1}
    assert [r.status for r in fake_binance.requests_to(KLINES)] == [200, 0, 200, 200]


def test_an_ip_ban_waits_its_retry_after_then_recovers(fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.add_fault(KLINES, "418", times=1, skip=1, retry_after=1)
    store = MemoryKlineStore()
    with make_client(fake_binance, retry=RetryPolicy(3, 0.001, 0.005, retry_after_max_s=2.0)) as client:
        report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert report.retries == {"ip_ban": 1}
    log = fake_binance.requests_to(KLINES)
    assert log[2].at - log[1].at >= 1.0


def test_a_long_ip_ban_is_not_retried(client: BinanceClient, fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.add_fault(KLINES, "418", times=None, retry_after=3600)
    with pytest.raises(ExchangeError, match=r"banned this IP for 3600 s"):
        fetch_btc(client, MemoryKlineStore(), g)
    assert len(fake_binance.requests_to(KLINES)) == 1


def test_a_page_with_a_hole_is_refetched_and_the_filled_page_used(client: BinanceClient,
                                                                  fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.add_fault(KLINES, "hole", times=1, skip=1, drop=5)
    store = MemoryKlineStore()
    report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert (report.retries, report.gaps, report.pages) == ({"hole": 1}, [], 3)
    assert [r.rows for r in fake_binance.requests_to(KLINES)] == [1500, 1495, 1500, 1320]


def test_faults_can_be_scheduled_over_http(client: BinanceClient, fake_binance: FakeBinance, g: Generated) -> None:
    http_json(f"{fake_binance.base_url}/_fake/faults", [{"path": KLINES, "fault": "502", "times": 1},
                                                        {"path": KLINES, "fault": "429", "times": 1, "retry_after": 0}])
    store = MemoryKlineStore()
    report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert report.retries == {"server_error": 1, "rate_limit": 1}
    log = http_json(f"{fake_binance.base_url}/_fake/requests", method="GET")
    assert [r["status"] for r in log if r["path"] == KLINES] == [502, 429, 200, 200, 200]
    assert http_json(f"{fake_binance.base_url}/_fake/faults", method="DELETE") == {"faults": []}


# ----- faults that never clear -----


@pytest.mark.parametrize("fault", ["malformed", "503", "429", "timeout"])
def test_a_fault_that_never_clears_stops_with_whole_pages_stored(fault: str, fake_binance: FakeBinance,
                                                                 g: Generated) -> None:
    fake_binance.add_fault(KLINES, fault, times=None, skip=1, retry_after=0, sleep_s=5.0)
    retry = RetryPolicy(1, 0.001, 0.005, 0.02) if fault == "timeout" else FAST  # each timeout costs 1.5 s
    store = MemoryKlineStore()
    with make_client(fake_binance, timeout_ms=1_500, retry=retry) as client, pytest.raises(ExchangeError) as failed:
        fetch_btc(client, store, g)
    page_from = g.start_ms + 1500 * MINUTE_MS
    retries = f"{retry.max_retries} retr{'y' if retry.max_retries == 1 else 'ies'}"
    failed_range = f"{ms_to_iso(page_from)}..{ms_to_iso(g.end_ms)}"
    assert f"BTCUSDT perp 1m {failed_range}: gave up after {retries}" in str(failed.value)
    assert_same_bars(stored_btc(store), g.btc_perp.take(slice(0, 1500)))
    assert len(fake_binance.requests_to(KLINES)) == 1 + retry.max_retries + 1


def test_a_hole_that_changes_on_refetch_stops_without_writing(client: BinanceClient,
                                                              fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.add_fault(KLINES, "hole", times=1, at=100, drop=3)
    fake_binance.add_fault(KLINES, "hole", times=1, at=200, drop=4)
    store = MemoryKlineStore()
    with pytest.raises(ExchangeError, match="differently on re-fetch"):
        fetch_btc(client, store, g)
    assert len(stored_btc(store)) == 0


def test_invalid_bars_are_not_a_page(fake_binance: FakeBinance, client: BinanceClient, g: Generated) -> None:
    bad = g.btc_perp.take(slice(0, 10))
    units = bad.units.copy()
    units[5, 1] = units[5, 2] - 1  # high below low
    fake_binance.add_bars(Bars("BTCUSDT", "perp", "1m", bad.open_ms, units))
    store = MemoryKlineStore()
    with pytest.raises(ExchangeError, match=r"(?s)invalid_page.*high .* < low"):
        fetch_btc(client, store, g)
    assert len(stored_btc(store)) == 0


def test_an_unknown_symbol_is_not_retried(client: BinanceClient, fake_binance: FakeBinance, g: Generated) -> None:
    with pytest.raises(ExchangeError, match="Invalid symbol"):
        client.fetch_klines(MemoryKlineStore(), "NOPE", "perp", "1m", g.start_ms, g.end_ms)
    assert len(fake_binance.requests_to(KLINES)) == 1


# ----- gaps -----


def test_a_real_gap_is_kept_and_reported_not_filled(client: BinanceClient, fake_binance: FakeBinance,
                                                    g: Generated) -> None:
    store = MemoryKlineStore()
    report = client.fetch_klines(store, "ETHUSDT", "perp", "1m", g.start_ms, g.start_ms + g.eth_minutes * MINUTE_MS)
    assert_same_bars(store.load_bars("ETHUSDT", "perp", "1m"), g.eth_perp)
    assert report.gaps == [(g.start_ms + (lo - 1) * MINUTE_MS, hi - lo) for lo, hi in g.eth_gaps]
    assert report.retries == {"hole": 2}  # each gap confirmed by one identical re-fetch
    gaps = find_gaps(store.load_bars("ETHUSDT", "perp", "1m").open_ms, "1m")
    assert (gaps.count, gaps.missing_bars) == (2, sum(hi - lo for lo, hi in g.eth_gaps))


def test_a_hole_served_every_time_is_indistinguishable_from_a_real_gap(client: BinanceClient,
                                                                       fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.add_fault(KLINES, "hole", times=None, at=100, drop=3)
    store = MemoryKlineStore()
    report = fetch_btc(client, store, g)
    assert [n for _, n in report.gaps] == [3, 3, 3]
    assert len(stored_btc(store)) == g.minutes - 9


# ----- the stepping clock -----


def test_the_stepping_clock_hides_bars_that_have_not_closed(client: BinanceClient,
                                                            fake_binance: FakeBinance, g: Generated) -> None:
    store = MemoryKlineStore()
    fake_binance.set_now(g.start_ms + 1000 * MINUTE_MS + 30_000)
    report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp.take(slice(0, 1000)))
    assert report.bars_written == UpsertResult(1000)
    fake_binance.serve_forming_bar = True  # like the real exchange: the open bar is served too, and dropped
    http_json(f"{fake_binance.base_url}/_fake/clock?now={g.start_ms + 2000 * MINUTE_MS + 30_000}")
    assert fake_binance.now_ms == g.start_ms + 2000 * MINUTE_MS + 30_000
    report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp.take(slice(0, 2000)))
    assert report.bars_written == UpsertResult(1000)
    assert fake_binance.requests_to(KLINES)[-1].rows == 1001


def test_premium_index_reflects_the_clock(client: BinanceClient, fake_binance: FakeBinance, g: Generated) -> None:
    perp, (f_ms, f_rates) = g.btc_perp, g.btc_funding
    now = g.start_ms + 8 * HOUR_MS + 5 * MINUTE_MS + 10_000
    http_json(f"{fake_binance.base_url}/_fake/clock?now={now}")
    pi = client.fetch_premium_index("BTC")
    bar = 8 * 60 + 4  # the last bar closed by now opened at 08:04
    assert pi.mark_price == Decimal(int(perp.units[bar, CLOSE])).scaleb(-8)
    assert pi.last_funding_rate == f_rates[int(np.searchsorted(f_ms, g.start_ms + 8 * HOUR_MS))]
    assert (pi.next_funding_ms, pi.time_ms) == (g.start_ms + 16 * HOUR_MS, now)
    fake_binance.set_now(g.start_ms + 16 * HOUR_MS + MINUTE_MS)
    pi = client.fetch_premium_index("BTCUSDT")
    assert pi.mark_price == Decimal(int(perp.units[16 * 60, CLOSE])).scaleb(-8)
    assert pi.last_funding_rate == f_rates[int(np.searchsorted(f_ms, g.start_ms + 16 * HOUR_MS))]
    assert pi.next_funding_ms == g.start_ms + 24 * HOUR_MS


# ----- funding -----


def test_funding_fetch_reproduces_the_served_rates_exactly(client: BinanceClient, fake_binance: FakeBinance,
                                                           g: Generated) -> None:
    store = MemoryKlineStore()
    end = g.funding_start_ms + 365 * DAY_MS
    report = client.fetch_funding(store, "BTCUSDT", g.funding_start_ms, end)
    want_ms, want_rates = g.btc_funding
    got_ms, got_rates = store.load_funding("BTCUSDT")
    np.testing.assert_array_equal(got_ms, want_ms)
    assert got_rates == want_rates and all(isinstance(r, Decimal) for r in got_rates)
    assert (report.pages, report.bars_written) == (2, UpsertResult(g.funding_events))
    assert [r.params["limit"] for r in fake_binance.requests_to("/fapi/v1/fundingRate")] == ["1000", "1000"]
    fake_binance.clear_requests()
    assert client.fetch_funding(store, "BTCUSDT", g.funding_start_ms, end).bars_written == UpsertResult()


def test_funding_fetch_respects_the_clock_and_resumes(client: BinanceClient, fake_binance: FakeBinance,
                                                      g: Generated) -> None:
    store = MemoryKlineStore()
    end = g.funding_start_ms + 365 * DAY_MS
    fake_binance.set_now(g.funding_start_ms + 10 * DAY_MS)
    assert client.fetch_funding(store, "BTCUSDT", g.funding_start_ms, end).bars_written == UpsertResult(31)
    fake_binance.set_now(None)
    report = client.fetch_funding(store, "BTCUSDT", g.funding_start_ms, end)
    assert report.resumed_from_ms == g.funding_start_ms + 10 * DAY_MS + 1
    assert report.bars_written == UpsertResult(g.funding_events - 31)
    assert store.load_funding("BTCUSDT")[1] == g.btc_funding[1]


# ----- rate-limit awareness -----


def test_a_high_used_weight_makes_the_client_pause(fake_binance: FakeBinance, g: Generated) -> None:
    fake_binance.used_weight_base = 2300  # other clients on this IP used most of the minute's 2400
    store = MemoryKlineStore()
    with make_client(fake_binance) as client:
        report = fetch_btc(client, store, g)
    assert_same_bars(stored_btc(store), g.btc_perp)
    assert report.pauses == report.requests == 4  # server time + 3 pages


# ----- the runnable server -----


def write_csv_gz(path: Path, header: str, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(header + "\n" + "\n".join(lines) + "\n")


def test_python_m_fake_binance_serves_files_until_sigterm(tmp_path: Path, loopback_only: None, g: Generated) -> None:
    bars = g.btc_perp.take(slice(0, 2000))
    write_csv_gz(tmp_path / "BTCUSDT-1m-perp-2023-06-01_2023-06-02.csv.gz", "open_time,open,high,low,close,volume",
                 [f"{t}," + ",".join(str(Decimal(int(x)).scaleb(-8)) for x in u)
                  for t, u in zip(bars.open_ms.tolist(), bars.units.tolist(), strict=True)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "fake_binance", "--data", str(tmp_path), "--port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), proc.stderr.read()
        store = MemoryKlineStore()
        with BinanceClient(base_url=base_url, rate_limit_ms=1, retry=FAST) as client:
            client.fetch_klines(store, "BTCUSDT", "perp", "1m", g.start_ms, g.end_ms)
        assert_same_bars(stored_btc(store), bars)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# ----- the real data -----


@pytest.mark.realdata
def test_real_march_2020_perp_and_funding_fetch_equal_the_files(fake_binance_real: FakeBinance, g: Generated) -> None:
    start, end = parse_utc("2020-03-01"), parse_utc("2020-03-15")
    store = MemoryKlineStore()
    with make_client(fake_binance_real) as client:
        klines = client.fetch_klines(store, "BTCUSDT", "perp", "1h", start, end)
        funding = client.fetch_funding(store, "BTCUSDT", start, end)
    kline_file = next(DATA_DIR.glob("BTCUSDT-1h-perp-*.csv.gz"))
    want = read_klines(kline_file, identify(kline_file)).bars.slice_ms(start, end)
    assert len(want) == 14 * 24
    assert_same_bars(store.load_bars("BTCUSDT", "perp", "1h"), want)
    assert (klines.pages, klines.gaps, klines.retries) == (1, [], {})
    funding_file = next(DATA_DIR.glob("BTCUSDT-fundingRate-*.csv.gz"))
    f = read_funding(funding_file, identify(funding_file))
    keep = (f.funding_ms >= start) & (f.funding_ms < end)
    got_ms, got_rates = store.load_funding("BTCUSDT")
    np.testing.assert_array_equal(got_ms, f.funding_ms[keep])
    assert got_rates == [r for r, k in zip(f.rates, keep, strict=True) if k]
    assert funding.bars_written == UpsertResult(int(keep.sum()))


@pytest.mark.realdata
def test_real_outage_gap_in_spot_5m_is_kept_and_reported(fake_binance_real: FakeBinance) -> None:
    start, end = parse_utc("2020-02-18"), parse_utc("2020-02-21")
    store = MemoryKlineStore()
    with make_client(fake_binance_real) as client:
        report = client.fetch_klines(store, "BTCUSDT", "spot", "5m", start, end)
    path = next(DATA_DIR.glob("BTCUSDT-5m-spot-2019-11-15_*.csv.gz"))
    want = read_klines(path, identify(path)).bars.slice_ms(start, end)
    assert_same_bars(store.load_bars("BTCUSDT", "spot", "5m"), want)
    assert (parse_utc("2020-02-19T11:35Z"), 70) in report.gaps
    assert sum(n for _, n in report.gaps) == find_gaps(want.open_ms, "5m").missing_bars
