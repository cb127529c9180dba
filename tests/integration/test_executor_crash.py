"""Crash safety: `executor --once` SIGKILLed at random moments and restarted ends exactly as an uninterrupted run.

A scratch SQLite database holds one real day of 1m spot bars (2021-05-19, the May 2021 crash) and start signals
every 4 hours (a LONG grid at each, when none runs). The uninterrupted run is the reference; then runs are killed
with SIGKILL after seeded random delays spread over a run's duration and restarted, at least 20 kills, until one
completes; orders, fills, the event journal, the strategy state and the signals must equal the reference exactly.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_file

pytestmark = [pytest.mark.slow, pytest.mark.realdata]
DAY, UNTIL = "2021-05-19", "2021-05-20T00:00Z"
KILLS = 20

PREPARE = r"""
import sys
from decimal import Decimal as D
from grid_trading.models import GridZone, TradingSignal
from grid_trading.services.configs import config_default
from grid_trading.services.klines import klines_import_file
from grid_trading.services.kline_store import DjangoKlineStore
from gridcore.timeframes import ms_to_dt, parse_utc
klines_import_file(path=__import__("pathlib").Path(sys.argv[1]))
cfg = config_default()
bars = DjangoKlineStore().load_bars("BTCUSDT", "spot", "1m", parse_utc("2021-05-19"), parse_utc("2021-05-20"))
for hour in range(0, 24, 4):
    t = parse_utc("2021-05-19") + hour * 3_600_000
    p = D(int(bars.units[bars.open_ms.tolist().index(t - 60_000) if hour else 0][3])) / D(10**8)
    z = GridZone.objects.create(symbol="BTCUSDT", market="spot", bar_time=ms_to_dt(t), config=cfg,
        config_hash=cfg.config_hash, code_version="test", price=p, s2=(p * D("0.95")).quantize(D("0.1")),
        s1=(p * D("0.985")).quantize(D("0.1")), r1=(p * D("1.015")).quantize(D("0.1")),
        r2=(p * D("1.05")).quantize(D("0.1")), atr=(p * D("0.01")).quantize(D("0.1")), bias=1,
        squeeze_state="RANGING", valid=True, valid_until=ms_to_dt(t + 8 * 3_600_000), status="ACTIVE" if hour == 20
        else "SUPERSEDED")
    TradingSignal.objects.create(zone=z, config=cfg, config_hash=cfg.config_hash, code_version="test",
        symbol="BTCUSDT", market="spot", bar_time=ms_to_dt(t), price=p, direction="LONG", strength=1.0,
        expires_at=ms_to_dt(t + 30 * 60_000))
"""

DUMP = r"""
import json
from grid_trading.models import GridFill, GridOrder, StrategyState, TradingSignal
from grid_trading.models.execution import ExecutionEvent
out = {
    "states": list(StrategyState.objects.order_by("pk").values(
        "symbol", "market", "status", "engine_state", "cash", "position", "entry_price", "equity",
        "realised_grid_profit", "realised_other", "fees", "funding", "peak_equity", "last_bar_time", "fill_count",
        "event_count", "version")),
    "orders": list(GridOrder.objects.order_by("order_id").values(
        "order_id", "side", "kind", "purpose", "price", "qty", "filled_qty", "level", "status", "reason",
        "placed_at", "closed_at", "active_from_ms")),
    "fills": list(GridFill.objects.order_by("seq").values(
        "seq", "order__order_id", "ts", "side", "price", "qty", "fee", "liquidity", "reason", "realised",
        "grid_profit", "position_after", "equity_after")),
    "events": list(ExecutionEvent.objects.order_by("seq").values("seq", "bar_time", "type", "data")),
    "signals": list(TradingSignal.objects.order_by("pk").values("pk", "status", "status_reason")),
}
print("DUMP=" + json.dumps(out, default=str, sort_keys=True))
"""


def _env(var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(AUTOGRID_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1")
    return env


def _python(var_dir: Path, code: str, *args: str) -> str:
    boot = "import django; django.setup()\n"
    res = subprocess.run([sys.executable, "-c", boot + code, *args], cwd=REPO, env=_env(var_dir),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def _executor(var_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "executor", "--symbol", "BTC", "--market", "spot",
                             "--once", "--until", UNTIL, "--json"], cwd=REPO, env=_env(var_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _dump(var_dir: Path) -> dict:
    line = [x for x in _python(var_dir, DUMP).splitlines() if x.startswith("DUMP=")][-1]
    return json.loads(line[5:])


def test_sigkill_at_random_moments_then_restart_equals_an_uninterrupted_run(tmp_path):
    data = shared_file("BTCUSDT-1m-spot-2021-04-02_2021-05-20.csv.gz")
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=_env(prepared), check=True,
                   timeout=120)
    _python(prepared, PREPARE, str(data))

    ref_dir = tmp_path / "reference"
    shutil.copytree(prepared, ref_dir)
    t0 = time.monotonic()
    proc = _executor(ref_dir)
    out, err = proc.communicate(timeout=300)
    run_seconds = time.monotonic() - t0
    assert proc.returncode == 0, err[-3000:]
    res = json.loads(out)
    assert res["bars_processed"] == 1440 and res["fills"] > 0 and res["status"]["last_bar"] == "2021-05-19T23:59Z"
    reference = _dump(ref_dir)
    assert reference["fills"] and reference["orders"] and reference["events"]

    rng = random.Random(20210519)
    crash_dir = tmp_path / "crash"
    shutil.copytree(prepared, crash_dir)
    kills = completions = 0
    killed_mid_run = 0
    while kills < KILLS:
        proc = _executor(crash_dir)
        try:
            proc.wait(timeout=rng.uniform(0.3, run_seconds))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            kills += 1
            state = _dump(crash_dir)["states"]
            killed_mid_run += bool(state) and state[0]["last_bar_time"] is not None
            continue
        out, err = proc.communicate()
        assert proc.returncode == 0, err[-3000:]
        assert _dump(crash_dir) == reference
        completions += 1
        shutil.rmtree(crash_dir)  # the chain completed: a fresh chain from the prepared database
        shutil.copytree(prepared, crash_dir)
    proc = _executor(crash_dir)  # the last chain runs to the end
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert _dump(crash_dir) == reference
    assert kills >= KILLS and killed_mid_run >= KILLS // 2, (kills, killed_mid_run, completions)
