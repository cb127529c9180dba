"""`scanner` on the database: idempotent per bar, supersedes, refuses stale data, statuses guarded by the DB."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, transaction

from grid_trading.models import GridZone, KlineChunk
from grid_trading.services.klines import klines_import_file
from tests.conftest import shared_file

pytestmark = [pytest.mark.django_db, pytest.mark.realdata]
REQUIRED = {"id", "symbol", "market", "bar_time", "price", "valid", "reasons", "s2", "s1", "r1", "r2", "poc", "vah",
            "val", "ma25", "atr", "bias", "squeeze_state", "status", "config_hash"}


@pytest.fixture(scope="module")
def perp_1h(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        klines_import_file(path=shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz"))
        yield
        KlineChunk.objects.all().delete()


def scan(*args) -> dict:
    out = StringIO()
    call_command("scanner", "--symbol", "btc", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_json_has_the_contract_fields_and_reruns_are_idempotent(perp_1h):
    first = scan("--at", "2021-03-10T04:00Z")
    assert REQUIRED <= set(first) and first["symbol"] == "BTCUSDT" and first["market"] == "perp"
    assert first["created"] is True and first["bar_time"] == "2021-03-10T04:00Z"
    again = scan("--at", "2021-03-10T04:00Z")
    assert again["created"] is False and again["id"] == first["id"]
    assert {k: again[k] for k in REQUIRED} == {k: first[k] for k in REQUIRED}
    assert GridZone.objects.count() == 1


def test_a_newer_zone_supersedes_the_active_one_and_an_older_scan_does_not(perp_1h):
    a = scan("--at", "2021-03-10T12:00Z")
    b = scan("--at", "2021-03-10T16:00Z")
    assert a["valid"] and b["valid"] and b["status"] == "ACTIVE"
    assert GridZone.objects.get(pk=a["id"]).status == "SUPERSEDED"
    older = scan("--at", "2021-03-10T04:00Z")
    assert older["valid"] and older["status"] == "SUPERSEDED"
    invalid = scan("--at", "2021-03-10T20:00Z")  # the newest scan says no box: nothing stays active
    assert invalid["status"] == "INVALID" and not GridZone.objects.filter(status="ACTIVE").exists()


def test_stale_or_missing_data_is_a_clear_error_and_writes_nothing(perp_1h):
    with pytest.raises(CommandError, match="stale BTCUSDT perp 1h data .* last bar closed at 2024-01-01T00:00Z"):
        scan("--at", "2024-01-01T08:00Z")
    with pytest.raises(CommandError, match="no BTCUSDT perp bars for 1h in 2024-01-01T20:00Z"):
        scan("--at", "2024-02-01T00:00Z")
    with pytest.raises(CommandError, match="no BTCUSDT spot bars for 1h"):
        scan("--market", "spot", "--at", "2021-03-10T04:00Z")
    with pytest.raises(CommandError, match="4h close"):
        scan("--at", "2021-03-10T05:00Z")
    with pytest.raises(CommandError, match="unknown USDT-M perpetual 'XYZUSDT' \\(from input 'xyz'\\)"):
        call_command("scanner", "--symbol", "xyz", "--at", "2021-03-10T04:00Z")
    assert GridZone.objects.count() == 0


def test_the_database_refuses_illegal_status_changes(perp_1h):
    a = scan("--at", "2021-03-10T12:00Z")
    scan("--at", "2021-03-10T16:00Z")
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        GridZone.objects.filter(pk=a["id"]).update(status="ACTIVE")  # SUPERSEDED is final
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        GridZone.objects.filter(pk=a["id"]).update(status="EXPIRED")
    assert GridZone.objects.get(pk=a["id"]).status == "SUPERSEDED"


def test_plot_files_are_written(perp_1h, tmp_path):
    png, html = tmp_path / "zone.png", tmp_path / "zone.html"
    scan("--at", "2020-03-10T00:00Z", "--plot", str(png))
    scan("--at", "2020-03-10T00:00Z", "--plot", str(html))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "<svg" in html.read_text()
