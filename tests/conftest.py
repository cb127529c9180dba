"""Shared test set-up: hypothesis profiles, the real-data switch, the Django settings for tests."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AUTOGRID_DATA_DIR", REPO.parent / "shared" / "data"))
REQUIRE_DATA = os.environ.get("AUTOGRID_REQUIRE_DATA", "") not in ("", "0", "false")


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or a skip (a failure when AUTOGRID_REQUIRE_DATA=1, as in CI)."""
    path = DATA_DIR / name
    if not path.exists():
        message = (f"needs ../shared/data/{name} (looked in {DATA_DIR}; set AUTOGRID_DATA_DIR or place shared/ "
                   f"beside the repo)")
        if REQUIRE_DATA:
            pytest.fail(message + " and AUTOGRID_REQUIRE_DATA=1 forbids skipping")
        pytest.skip(message)
    return path


@pytest.fixture
def data_dir() -> Path:
    shared_file("README.md")
    return DATA_DIR


@contextlib.contextmanager
def real_files_imported(django_db_blocker, *names: str):
    """Import files of ../shared/data into the test database for a module's tests, and empty the store after."""
    from grid_trading.models import FundingRate, KlineChunk
    from grid_trading.services.klines import klines_import_file

    paths = [shared_file(n) for n in names]
    with django_db_blocker.unblock():
        for path in paths:
            klines_import_file(path=path)
        yield
        KlineChunk.objects.all().delete()
        FundingRate.objects.all().delete()
