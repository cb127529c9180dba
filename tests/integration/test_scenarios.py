"""`scenarios`: the crash suite runs on the real data, each scenario recorded as a BacktestRun on a versioned config."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from grid_trading.models import BacktestRun, GridStrategyConfig
from grid_trading.services.configs import config_params
from tests.conftest import shared_file

pytestmark = [pytest.mark.django_db, pytest.mark.realdata]


def test_march_2020_runs_on_a_derived_config_with_a_1h_trigger():
    shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    shared_file("BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz")
    out = StringIO()
    call_command("scenarios", "--only", "march-2020", "--json", stdout=out, stderr=StringIO())
    doc = json.loads(out.getvalue())
    assert doc["slippage"] == "crash" and [r["scenario"] for r in doc["scenarios"]] == ["march-2020"]
    row = doc["scenarios"][0]
    assert row["exec_interval"] == "1h" and row["signals"] > 0 and row["grids"] >= 1
    derived = GridStrategyConfig.objects.get(name="default-march-2020")
    assert config_params(derived).timeframes.trigger_interval == "1h" and derived.parent.name == "default"
    run = BacktestRun.objects.get(pk=row["run_id"])
    assert run.config_id == derived.pk and run.exec_interval == "1h"
    assert row["max_drawdown_pct"] < 10  # the suite's gate: no scenario may breach the 10 % drawdown limit
