"""Serve data files as a fake Binance until SIGTERM/SIGINT; prints the base URL on stdout.

    python -m fake_binance --data ../shared/data [--port 8765] [--files GLOB ...] [--now 2020-03-12T00:00Z]

Clock and faults are then driven over HTTP: POST /_fake/clock?now=<ms>, POST /_fake/faults (JSON), GET
/_fake/requests.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from fake_binance.server import FakeBinance
from gridcore.errors import GridError
from gridcore.timeframes import ms_to_iso, parse_utc


def _parse_now(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text) if text.isdigit() else parse_utc(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fake_binance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="directory of SYMBOL-INTERVAL-MARKET-*.csv.gz files")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--files", action="append", metavar="GLOB",
                        help="only files matching GLOB inside --data (repeatable; default *.csv.gz)")
    parser.add_argument("--now", help="start the stepping clock here (ISO 8601 UTC or ms); default: unset")
    parser.add_argument("--forming-bar", action="store_true", help="with the clock set, also serve the open bar")
    args = parser.parse_args(argv)
    try:
        fake = FakeBinance.from_files(args.data, args.files or ["*.csv.gz"], host=args.host, port=args.port,
                                      now_ms=_parse_now(args.now), serve_forming_bar=args.forming_bar)
        fake.start()
    except (OSError, GridError, ValueError) as e:
        print(f"fake_binance: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(fake.base_url, flush=True)
    for market, symbol, interval in fake.catalog():
        bars = fake.series(market, symbol, interval)
        if len(bars):
            print(f"  {symbol} {market} {interval}: {len(bars)} bars {ms_to_iso(int(bars.open_ms[0]))}.."
                  f"{ms_to_iso(int(bars.open_ms[-1]))}", file=sys.stderr)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
