"""`trigger` on the database: no zone is a normal outcome, starts become TradingSignals once per zone and bar."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, transaction

from grid_trading.models import GridZone, KlineChunk, TradingSignal
from grid_trading.services.klines import klines_import_file
from grid_trading.services.trigger import signal_transition
from gridcore.domain.fsm import InvalidTransition
from gridcore.domain.transitions import SignalTrigger
from tests.conftest import shared_file

pytestmark = [pytest.mark.django_db, pytest.mark.realdata]
FIELDS = {"zone_id", "bar_time", "signals", "start", "direction", "reasons", "signal_id"}


@pytest.fixture(scope="module")
def perp_2023(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        klines_import_file(path=shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz"))
        klines_import_file(path=shared_file("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz"))
        yield
        KlineChunk.objects.all().delete()


def run(cmd: str, *args) -> dict:
    out = StringIO()
    call_command(cmd, "--symbol", "BTC", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_no_active_zone_is_a_normal_outcome(perp_2023):
    res = run("trigger", "--at", "2023-01-02T16:15Z")
    assert FIELDS <= set(res)
    assert res["zone_id"] is None and res["start"] is False and res["direction"] is None
    assert "no active zone" in res["reasons"][0]
    assert TradingSignal.objects.count() == 0


def test_a_start_writes_one_signal_per_zone_and_bar(perp_2023):
    zone = run("scanner", "--at", "2023-01-02T16:00Z")
    assert zone["valid"]
    res = run("trigger", "--at", "2023-01-02T16:30Z")
    assert res["zone_id"] == zone["id"] and res["start"] is True and res["direction"] == "LONG"
    assert res["setup"] and res["signal_id"] is not None
    again = run("trigger", "--at", "2023-01-02T16:30Z")
    assert again["signal_id"] == res["signal_id"] and TradingSignal.objects.count() == 1
    sig = TradingSignal.objects.get(pk=res["signal_id"])
    assert (sig.status, sig.direction, sig.config_hash) == ("NEW", "LONG", zone["config_hash"])
    assert sig.expires_at > sig.bar_time and sig.zone_id == zone["id"]


def test_signal_status_changes_follow_the_table_and_the_database_refuses_others(perp_2023):
    run("scanner", "--at", "2023-01-02T16:00Z")
    sig = TradingSignal.objects.get(pk=run("trigger", "--at", "2023-01-02T16:30Z")["signal_id"])
    signal_transition(sig, trigger=SignalTrigger.CONSUME)
    with pytest.raises(InvalidTransition, match="CONSUMED -> EXPIRE"):
        signal_transition(sig, trigger=SignalTrigger.EXPIRE)
    assert TradingSignal.objects.get(pk=sig.pk).status == "CONSUMED"
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        TradingSignal.objects.filter(pk=sig.pk).update(status="NEW")
    assert TradingSignal.objects.get(pk=sig.pk).status == "CONSUMED"


def test_an_invalid_newest_scan_means_no_zone_for_the_trigger(perp_2023):
    run("scanner", "--at", "2023-01-02T16:00Z")
    zone = GridZone.objects.get()
    assert run("trigger", "--at", "2023-01-03T00:15Z")["zone_id"] is None  # 8 h later the zone has expired
    assert zone.valid_until.strftime("%H:%M") == "00:00"


def test_stale_zones_expire_through_their_table(perp_2023):
    # Signals expire in the executor, on its own bar clock (never early from the trigger's wall clock).
    from grid_trading.services.scanner import zone_expire_stale
    from gridcore.timeframes import parse_utc

    zone = run("scanner", "--at", "2023-01-02T16:00Z")
    assert zone_expire_stale(symbol="BTCUSDT", market="perp", now_ms=parse_utc("2023-01-02T23:59Z")) == 0
    assert zone_expire_stale(symbol="BTCUSDT", market="perp", now_ms=parse_utc("2023-01-03T00:00Z")) == 1
    assert GridZone.objects.get(pk=zone["id"]).status == "EXPIRED"
