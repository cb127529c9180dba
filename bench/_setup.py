"""Shared bench set-up: Django on a scratch database (a temp SQLite file unless DATABASE_URL is set)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA_DIR = Path(os.environ.get("AUTOGRID_DATA_DIR", REPO.parent / "shared" / "data"))


def django_scratch() -> None:
    """Configure Django on a scratch database and migrate it."""
    if "DATABASE_URL" not in os.environ:
        scratch = tempfile.mkdtemp(prefix="autogrid-bench-")
        os.environ["AUTOGRID_VAR_DIR"] = scratch
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    """Median wall time of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def verdict(name: str, value: float, limit: float, unit: str = "s") -> str:
    ok = "OK " if value <= limit else "SLOW"
    return f"[{ok}] {name}: {value:.4f} {unit} (target <= {limit} {unit}, {value / limit:.2f}x of target)"
