"""The real Binance data in ../shared/data: imports reproduce its README exactly; resampling matches Binance."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from grid_trading.models import FundingRate, KlineChunk
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import klines_import_file
from gridcore.bars import resample
from gridcore.kline_files import identify, read_klines
from gridcore.timeframes import interval_ms, ms_to_iso, parse_utc
from tests.conftest import DATA_DIR, shared_file

pytestmark = [pytest.mark.realdata, pytest.mark.django_db]


def readme_table() -> dict[str, dict]:
    """The file table of ../shared/data/README.md plus each file's 'largest' gap line."""
    text = shared_file("README.md").read_text()
    out = {}
    for m in re.finditer(r"^\| `(?P<file>[^`]+)` \| (?P<symbol>\w+) \| [^|]+ \| (?P<interval>\w+) \| "
                         r"(?P<first>[\d\- :]+) \| (?P<last>[\d\- :]+) \| (?P<rows>[\d,]+) \| "
                         r"(?P<gaps>\d+) / (?P<missing>\d+) \|$", text, re.M):
        out[m["file"]] = {"rows": int(m["rows"].replace(",", "")), "gaps": int(m["gaps"]),
                          "missing": int(m["missing"]), "first": m["first"].strip(), "last": m["last"].strip()}
    for m in re.finditer(r"^### `(?P<file>[^`]+)`\n(?P<body>(?:- .*\n)+)", text, re.M):
        largest = re.search(r"largest .*\((\d+) bars\)", m["body"])
        out[m["file"]]["largest"] = int(largest.group(1)) if largest else 0
    return out


@pytest.fixture(scope="module")
def imported(django_db_setup, django_db_blocker):
    table = readme_table()
    assert len(table) == 17, "the README table was not parsed"
    with django_db_blocker.unblock():
        results = {name: klines_import_file(path=shared_file(name)) for name in sorted(table)}
        yield table, results
        KlineChunk.objects.all().delete()
        FundingRate.objects.all().delete()


def _iso(readme_time: str) -> str:
    return readme_time.replace(" ", "T") + "Z"


def test_every_file_imports_with_the_rows_of_the_readme(imported):
    table, results = imported
    for name, want in table.items():
        got = results[name]
        assert (got.rows, got.inserted, got.first, got.last) == (
            want["rows"], want["rows"], _iso(want["first"]), _iso(want["last"])), name


def test_klines_check_json_reports_the_readme_rows_and_gaps(imported):
    table, _ = imported
    checked = 0
    for name, want in table.items():
        info = identify(DATA_DIR / name)
        if info.kind != "klines":
            continue
        end = parse_utc(_iso(want["last"])) + interval_ms(info.interval)
        out = StringIO()
        call_command("klines", "check", "--symbol", info.symbol, "--interval", info.interval, "--market",
                     info.market, "--start", _iso(want["first"]), "--end", ms_to_iso(end), "--json", stdout=out)
        res = json.loads(out.getvalue())
        assert (res["rows"], res["gaps"], res["missing_bars"], res["largest_gap_bars"]) == (
            want["rows"], want["gaps"], want["missing"], want["largest"]), name
        assert (res["first"], res["last"]) == (_iso(want["first"]), _iso(want["last"])), name
        assert res["ohlc_violations"] == 0 and res["duplicates"] == 0
        checked += 1
    assert checked == 16


def test_reimporting_a_file_changes_nothing(imported):
    name = "BTCUSDT-1m-spot-2020-05-21_2020-06-20.csv.gz"
    before = list(KlineChunk.objects.order_by("pk").values_list("sha256", flat=True))
    again = klines_import_file(path=shared_file(name))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 43_198)
    assert list(KlineChunk.objects.order_by("pk").values_list("sha256", flat=True)) == before


def test_funding_history_is_stored_as_exact_decimals(imported):
    store = DjangoKlineStore()
    ms, rates = store.load_funding("BTCUSDT", parse_utc("2020-03-13T08:00Z"), parse_utc("2020-03-13T08:01Z"))
    assert rates == [Decimal("-0.003")] and ms.tolist() == [parse_utc("2020-03-13T08:00Z")]
    assert FundingRate.objects.filter(symbol="BTCUSDT").count() == 4721


def test_1m_resampled_to_1h_equals_binance_1h_bars():
    """README: the 1m spot file 2021-10-30..2021-12-11 matches the independent 1h download on every hour."""
    one_min = DATA_DIR / "BTCUSDT-1m-spot-2021-10-30_2021-12-11.csv.gz"
    one_hour = DATA_DIR / "BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz"
    m = read_klines(shared_file(one_min.name), identify(one_min)).bars
    h = read_klines(shared_file(one_hour.name), identify(one_hour)).bars
    mine = resample(m, "1h")
    ref = h.slice_ms(int(mine.open_ms[0]), int(mine.open_ms[-1]) + 1)
    assert len(mine) == 1008  # the README's count of complete hours in this file
    assert np.array_equal(mine.open_ms, ref.open_ms)
    assert np.array_equal(mine.units, ref.units)  # open, high, low, close and volume, exactly
