"""Paper trading on a replayed market: the cron jobs on their cadence against the local fake Binance server.

    .venv/bin/python tools/paper_replay.py [--start 2021-05-12] [--end 2021-05-20] [--capital 100000]

Starts FakeBinance over real files of ../shared/data, steps its clock 15 minutes at a time and runs, as cron would,
`scanner --fetch` at each 4h close, `trigger --fetch` at each 15m close and `executor --once --fetch` every step, on a
scratch SQLite database (or DATABASE_URL). Prints what the pipeline produced. The same loop is the e2e test
tests/e2e/test_paper_week.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from io import StringIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FILES = ("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz", "BTCUSDT-1m-spot-2021-04-02_2021-05-20.csv.gz")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", default="2021-05-12")
    ap.add_argument("--end", default="2021-05-20")
    ap.add_argument("--capital", default="100000")
    a = ap.parse_args()
    if "DATABASE_URL" not in os.environ:
        os.environ["AUTOGRID_VAR_DIR"] = tempfile.mkdtemp(prefix="autogrid-paper-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from fake_binance import FakeBinance
    from grid_trading.models import GridFill, GridOrder, GridZone, TradingSignal
    from gridcore.timeframes import MINUTE_MS, parse_utc

    call_command("migrate", verbosity=0)
    call_command("config", "create", "paper", "--set", f"account.capital={a.capital}", stdout=StringIO())

    def run(cmd: str, *args) -> dict:
        out = StringIO()
        call_command(cmd, "--symbol", "BTC", "--market", "spot", "--config", "paper", *args, "--json", stdout=out,
                     stderr=StringIO())
        return json.loads(out.getvalue())

    with FakeBinance.from_files(settings.DATA_DIR, FILES) as fake:
        settings.BINANCE_BASE_URL = fake.base_url
        start, end, step = parse_utc(a.start), parse_utc(a.end), 15 * MINUTE_MS
        for i, t in enumerate(range(start, end + 1, step)):
            fake.set_now(t + 20_000)
            if t % (4 * 60 * MINUTE_MS) == 0:
                run("scanner", "--fetch")
            run("trigger", "--fetch")
            run("executor", "--once", "--fetch")
            if i % 96 == 0:
                print(f"  {a.start} .. {fake.now_ms and t}: day {i // 96 + 1}", file=sys.stderr)
        status = run("executor", "--status")
    print(f"zones: {GridZone.objects.count()} ({GridZone.objects.filter(valid=True).count()} valid); signals: "
          f"{TradingSignal.objects.count()} (" + ", ".join(
              f"{s} {TradingSignal.objects.filter(status=s).count()}" for s in ("CONSUMED", "REJECTED", "EXPIRED",
                                                                                "NEW")) + ")")
    print(f"orders: {GridOrder.objects.count()}, fills: {GridFill.objects.count()}")
    print(json.dumps({k: status[k] for k in ("state", "position", "equity", "cash", "realised_grid_profit",
                                             "unrealised_pnl", "fees", "funding", "peak_equity", "last_bar")}))
    for s in TradingSignal.objects.order_by("bar_time"):
        print(f"  signal {s.bar_time:%Y-%m-%d %H:%M} {s.direction:7} {s.status:8} {s.status_reason[:110]}")


if __name__ == "__main__":
    main()
