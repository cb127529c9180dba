"""`executor` on the database: a real replay starts a grid and fills orders, every bar once, ledger in the rows."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, transaction

from grid_trading.models import GridFill, GridOrder, StrategyState, TradingSignal
from grid_trading.models.execution import ExecutionEvent
from grid_trading.services.configs import config_default
from grid_trading.services.executor import executor_lock
from grid_trading.services.klines import klines_import_file
from grid_trading.services.transitions import transition
from gridcore.domain.fsm import InvalidTransition
from gridcore.domain.transitions import STRATEGY_TRANSITIONS, StrategyTrigger
from tests.conftest import real_files_imported, shared_file

pytestmark = [pytest.mark.django_db, pytest.mark.realdata]
STATUS_FIELDS = {"state", "position", "entry_price", "equity", "cash", "realised_grid_profit", "unrealised_pnl",
                 "fees", "funding", "peak_equity", "open_orders", "last_bar", "config_hash"}


@pytest.fixture(scope="module")
def perp_2023(django_db_setup, django_db_blocker):
    with real_files_imported(django_db_blocker, "BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz",
                             "BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz",
                             "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz"):
        yield


@pytest.fixture(autouse=True)
def scratch_var(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # lock files of this test


def run(cmd: str, *args, symbol: str = "BTC") -> dict:
    out = StringIO()
    call_command(cmd, "--symbol", symbol, *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def start_long(*config: str) -> int:
    assert run("scanner", "--at", "2023-01-02T16:00Z", *config)["valid"]
    res = run("trigger", "--at", "2023-01-02T16:30Z", *config)
    assert res["start"] and res["direction"] == "LONG"
    return res["signal_id"]


def ledger_identity_holds(st: StrategyState) -> None:
    """§5.8 in the rows: wallet = deposit + realised - fees + funding; equity = wallet + position (mark - entry)."""
    fills = list(GridFill.objects.filter(strategy=st))
    events = list(ExecutionEvent.objects.filter(strategy=st))
    funding = sum((Decimal(e.data["cash"]) for e in events if e.type == "FundingPaid"), Decimal(0))
    lost = sum((Decimal(e.data["liquidation"]["margin_lost"]) for e in events if e.type == "Liquidated"),
               Decimal(0))
    capital = Decimal(config_default().params["account"]["capital"])
    realised = sum((f.realised for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    assert st.fees == fees and st.funding == funding
    assert st.realised_grid_profit == sum((f.grid_profit for f in fills), Decimal(0))
    assert st.cash == capital + realised - fees + funding - lost
    assert st.realised_grid_profit + st.realised_other == realised
    unrealised = st.position * (st.mark_price - st.entry_price) if st.position else 0
    assert abs(st.equity - (st.cash + unrealised)) < Decimal("1e-6")
    for o in GridOrder.objects.filter(strategy=st, status="FILLED").exclude(close_position=True):
        assert sum((f.qty for f in o.fills.all()), Decimal(0)) == o.filled_qty == o.qty


def test_a_replay_starts_a_grid_fills_orders_and_keeps_the_ledger_in_the_rows(perp_2023):
    assert run("executor", "--status")["state"] is None
    sig = start_long()
    res = run("executor", "--once", "--until", "2023-01-03T16:00Z")
    assert res["bars_processed"] == 282 and res["first_bar"] == "2023-01-02T16:30Z"
    assert res["signals_consumed"] == 1 and res["fills"] > 0
    assert TradingSignal.objects.get(pk=sig).status == "CONSUMED"
    st = StrategyState.objects.get()
    assert st.status == "ACTIVE" and st.interval == "5m" and st.fill_count == GridFill.objects.count() > 0
    assert st.last_bar_time.isoformat().startswith("2023-01-03T15:55")
    assert GridOrder.objects.filter(strategy=st, status="FILLED").exists()
    assert GridFill.objects.filter(strategy=st, reason="INITIAL").count() == 1
    assert ExecutionEvent.objects.filter(strategy=st, type="FundingPaid").exists()  # 00:00 and 08:00 funding
    ledger_identity_holds(st)
    status = run("executor", "--status")
    assert STATUS_FIELDS <= set(status)
    assert status["state"] == "ACTIVE" and status["last_bar"] == "2023-01-03T15:55Z"
    assert isinstance(status["open_orders"], list) and len(status["open_orders"]) == GridOrder.objects.filter(
        strategy=st, status="OPEN").count() > 0
    assert Decimal(status["cash"]) == st.cash and Decimal(status["fees"]) == st.fees
    assert status["config_hash"] == config_default().config_hash and status["funding_modelled"] is True


def test_a_rerun_never_reapplies_a_bar_and_a_continued_run_equals_one_run(perp_2023):
    start_long()
    run("executor", "--once", "--until", "2023-01-03T04:00Z")
    before = (GridFill.objects.count(), GridOrder.objects.count(), StrategyState.objects.get().version)
    again = run("executor", "--once", "--until", "2023-01-03T04:00Z")
    assert again["bars_processed"] == 0
    assert (GridFill.objects.count(), GridOrder.objects.count(), StrategyState.objects.get().version) == before
    run("executor", "--once", "--until", "2023-01-03T16:00Z")
    split = _snapshot()
    StrategyState.objects.all().delete()
    with transaction.atomic():  # the test resets the signal by hand (the table forbids CONSUMED -> NEW)
        TradingSignal.objects.all().delete()
    start_long()
    run("executor", "--once", "--until", "2023-01-03T16:00Z")
    assert _snapshot() == split


def _snapshot() -> tuple:
    st = StrategyState.objects.get()
    orders = list(GridOrder.objects.filter(strategy=st).order_by("order_id").values_list(
        "order_id", "status", "price", "qty", "filled_qty", "placed_at", "closed_at", "reason"))
    fills = list(GridFill.objects.filter(strategy=st).order_by("seq").values_list(
        "seq", "order__order_id", "ts", "price", "qty", "fee", "realised"))
    es = dict(st.engine_state, last_signal_ref=None, grid=dict(st.engine_state["grid"], signal_ref=None))
    return es, st.cash, st.status, orders, fills


def test_illegal_transitions_raise_and_change_nothing(perp_2023):
    start_long()
    run("executor", "--once", "--until", "2023-01-02T18:00Z")
    st = StrategyState.objects.get()
    with pytest.raises(InvalidTransition, match="ACTIVE -> RESET"):
        transition(st, table=STRATEGY_TRANSITIONS, trigger=StrategyTrigger.RESET)
    assert StrategyState.objects.get().status == "ACTIVE"
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        StrategyState.objects.filter(pk=st.pk).update(status="IDLE")  # ACTIVE -> IDLE skips CLOSING
    filled = GridOrder.objects.filter(status="FILLED").first()
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        GridOrder.objects.filter(pk=filled.pk).update(status="OPEN")
    fill = GridFill.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():  # a fill number is written once
        GridFill.objects.create(**{f.attname: getattr(fill, f.attname) for f in GridFill._meta.concrete_fields
                                   if f.attname != "id"})
    assert StrategyState.objects.get().status == "ACTIVE"
    assert GridOrder.objects.get(pk=filled.pk).status == "FILLED"


def test_reset_leaves_only_halted_and_changes_nothing_otherwise(perp_2023):
    start_long()
    run("executor", "--once", "--until", "2023-01-02T18:00Z")
    before = StrategyState.objects.values().get()
    with pytest.raises(CommandError, match="ACTIVE -> RESET"):
        run("executor", "--reset")
    assert StrategyState.objects.values().get() == before


def test_a_refused_plan_rejects_the_signal_with_the_reasons(perp_2023):
    call_command("config", "create", "tiny", "--set", "risk.max_drawdown=0.0003", stdout=StringIO())
    sig = start_long("--config", "tiny")
    res = run("executor", "--once", "--until", "2023-01-02T18:00Z", "--config", "tiny")
    assert res["signals_rejected"] == 1 and res["fills"] == 0 and res["status"]["state"] == "IDLE"
    got = TradingSignal.objects.get(pk=sig)
    assert got.status == "REJECTED" and "minNotional" in got.status_reason
    assert ExecutionEvent.objects.filter(type="GridRefused").count() == 1


def test_spot_history_has_no_funding_and_no_liquidation(perp_2023):
    klines_import_file(path=shared_file("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz"))
    res = run("executor", "--market", "spot", "--once", "--start", "2023-01-02T00:00Z", "--until",
              "2023-01-03T00:00Z")
    assert res["bars_processed"] == 24
    st = res["status"]
    assert st["state"] == "IDLE" and st["interval"] == "1h" and st["funding"] == "0"
    assert st["funding_modelled"] is False and st["liquidation_modelled"] is False
    assert any("no funding" in n for n in st["notes"]) and any("no liquidation" in n for n in st["notes"])
    text = StringIO()
    call_command("executor", "--symbol", "BTC", "--market", "spot", "--status", stdout=text)
    assert "no funding" in text.getvalue() and "no liquidation" in text.getvalue()


def test_a_second_executor_on_the_symbol_refuses_to_start(perp_2023):
    with executor_lock(symbol="BTCUSDT", market="perp", config=config_default()):
        with pytest.raises(CommandError, match=r"another executor is running for BTCUSDT perp \(pid \d+\)"):
            run("executor", "--once", "--until", "2023-01-03T00:00Z")
    assert run("executor", "--once", "--until", "2023-01-02T01:00Z")["bars_processed"] >= 0
