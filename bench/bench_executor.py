"""Executor time per bar, persistence included (one committed transaction a bar), without and with fills.

Real data: the BTCUSDT perpetual 1h + 5m klines and funding of 2023; the Scanner at 2023-01-02 16:00 and the Trigger at
16:30 start a LONG grid, then the executor steps over the 5m bars to 2023-01-09. Targets: 2 ms for a bar without
fills, 20 ms for a bar with fills. `DATABASE_URL=postgres://... python bench/bench_executor.py` measures PostgreSQL.
"""

from __future__ import annotations

import os
import statistics
import sys
from io import StringIO

from _setup import DATA_DIR, django_scratch, verdict


def _scratch_postgres() -> None:
    """Point DATABASE_URL at a fresh scratch database beside the configured one (never touch the real one)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    base, _, name = url.rpartition("/")
    scratch = f"{name.split('?')[0]}_bench_executor"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    os.environ["DATABASE_URL"] = f"{base}/{scratch}"


def main() -> int:
    _scratch_postgres()
    django_scratch()
    from django.core.management import call_command
    from django.db import connection

    from grid_trading.models import FundingRate, GridStrategyConfig
    from grid_trading.services.configs import config_default
    from grid_trading.services.executor import executor_run_once
    from grid_trading.services.klines import klines_import_file
    from gridcore.timeframes import parse_utc

    names = ["BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz", "BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz",
             "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz"]
    missing = [n for n in names if not (DATA_DIR / n).exists()]
    if missing:
        print(f"needs {', '.join(missing)} in {DATA_DIR}")
        return 1
    for n in names:
        klines_import_file(path=DATA_DIR / n)
    assert FundingRate.objects.exists()
    out = StringIO()
    call_command("scanner", "--symbol", "BTC", "--at", "2023-01-02T16:00Z", "--json", stdout=out, stderr=StringIO())
    call_command("trigger", "--symbol", "BTC", "--at", "2023-01-02T16:30Z", "--json", stdout=out, stderr=StringIO())
    config: GridStrategyConfig = config_default()

    quiet: list[float] = []
    busy: list[float] = []

    def timer(open_ms: int, counts: dict[str, int], seconds: float) -> None:
        (busy if counts["fills"] or counts["placed"] else quiet).append(seconds)

    res = executor_run_once(symbol="BTCUSDT", market="perp", config=config, until_ms=parse_utc("2023-01-09T00:00Z"),
                            bar_timer=timer)
    print(f"executor on {connection.vendor}: {res['bars_processed']} 5m bars 2023-01-02 16:30 .. 2023-01-09, "
          f"{res['fills']} fills, {res['orders_placed']} orders, final state {res['status']['state']}")
    for name, xs, limit in (("bar without fills", quiet, 2.0), ("bar with fills", busy, 20.0)):
        if not xs:
            print(f"{name}: none in the run")
            continue
        med, p95 = statistics.median(xs) * 1000, sorted(xs)[int(0.95 * (len(xs) - 1))] * 1000
        print(verdict(f"{name} (median of {len(xs)}; p95 {p95:.3f} ms, max {max(xs) * 1000:.3f} ms)", med, limit,
                      "ms"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
