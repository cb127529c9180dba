"""On PostgreSQL, two executors started at once on one symbol: one works, the other exits with a clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from grid_trading.services.klines import klines_import_file
from tests.conftest import REPO, shared_file

pytestmark = [pytest.mark.postgres, pytest.mark.realdata, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def needs_postgres():
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI runs this test on PostgreSQL)")


def _env() -> dict:
    db = connection.settings_dict  # NAME is the test database here
    url = f"postgres://{db['USER']}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}@{db['HOST']}:{db['PORT']}/"
    return {**os.environ, "DATABASE_URL": url + db["NAME"], "PYTHONUNBUFFERED": "1"}


def _start() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "executor", "--symbol", "BTC", "--interval", "1"],
                            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_executors_at_once_one_works_the_other_refuses():
    klines_import_file(path=shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz"))
    a, b = _start(), _start()
    try:
        deadline = time.monotonic() + 60
        while a.poll() is None and b.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        loser, winner = (a, b) if a.poll() is not None else (b, a)
        assert loser.poll() is not None, "neither executor exited: both hold the lock?"
        _, err = loser.communicate()
        assert loser.returncode != 0
        assert f"another executor is running for BTCUSDT perp (pid {winner.pid})" in err
        assert winner.poll() is None  # still running its loop, lock held
        time.sleep(0.5)
        winner.send_signal(signal.SIGTERM)  # stops cleanly between bars / passes
        out, err = winner.communicate(timeout=60)
        assert winner.returncode == 0, err[-2000:]
        assert "BTCUSDT perp" in out
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.communicate()
