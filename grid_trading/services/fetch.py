"""`klines fetch`: download klines (plus funding history and mark prices for perpetuals) into the store."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from grid_trading.services.kline_store import DjangoKlineStore
from gridcore.errors import GridError
from gridcore.exchange import BinanceClient, RetryPolicy
from gridcore.timeframes import interval_ms, ms_to_iso


def market_data_client(**kw) -> BinanceClient:
    """The Binance client at settings.BINANCE_BASE_URL; `kw` (timeout_ms, retry, ...) go to BinanceClient."""
    return BinanceClient(base_url=settings.BINANCE_BASE_URL or None, **kw)


def exchange_reachable(*, timeout_ms: int = 5_000, retries: int = 1) -> str | None:
    """None when Binance (or BINANCE_BASE_URL) answers a server-time request quickly, else why not: a cheap probe
    (short timeout, one retry) before a download, so an offline machine finds out in seconds."""
    try:
        with market_data_client(timeout_ms=timeout_ms, retry=RetryPolicy(max_retries=retries)) as client:
            client.server_time_ms("perp")
    except GridError as e:
        return str(e).splitlines()[0]
    return None


def _progress(say: Callable[[str], None] | None, what: str):
    if say is None:
        return None
    last = [-1]

    def report(done_ms: int, total_ms: int) -> None:
        pct = int(100 * done_ms / total_ms) if total_ms else 100
        if pct // 10 != last[0] // 10 or pct == 100:
            say(f"  {what}: {pct:3d} %")
            last[0] = pct

    return report


def klines_fetch(*, symbol: str, market: str, interval: str, start_ms: int, end_ms: int, with_funding: bool = True,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Each page is validated and written atomically; a re-run resumes after the last stored bar."""
    store = DjangoKlineStore()
    reports = {}
    with market_data_client() as client:
        jobs = [("klines", market)]
        if market == "perp" and with_funding:
            jobs.append(("mark", "mark"))
        for name, mkt in jobs:
            reports[name] = client.fetch_klines(store, symbol, mkt, interval, start_ms, end_ms,
                                                progress=_progress(progress, f"{symbol} {mkt} {interval}"))
        if market == "perp" and with_funding:
            reports["funding"] = client.fetch_funding(store, symbol, start_ms, end_ms,
                                                      progress=_progress(progress, f"{symbol} funding"))
    out = {"symbol": symbol, "market": market, "interval": interval, "start": ms_to_iso(start_ms),
           "end": ms_to_iso(end_ms)}
    for name, r in reports.items():
        out[name] = {"pages": r.pages, "inserted": r.bars_written.inserted, "updated": r.bars_written.updated,
                     "unchanged": r.bars_written.unchanged, "retries": dict(r.retries),
                     "gaps": [{"after": ms_to_iso(a), "missing_bars": m} for a, m in r.gaps],
                     "resumed_from": ms_to_iso(r.resumed_from_ms) if r.resumed_from_ms else None}
    return out


def klines_fetch_window(*, symbol: str, market: str, interval: str, at_ms: int, bars: int,
                        progress: Callable[[str], None] | None = None) -> dict:
    """Fetch the `bars` bars of `interval` that close by at_ms (what a scan or trigger evaluation reads)."""
    step = interval_ms(interval)
    return klines_fetch(symbol=symbol, market=market, interval=interval, start_ms=at_ms - bars * step, end_ms=at_ms,
                        with_funding=False, progress=progress)


def clock_now_ms(*, exchange: bool, market: str = "perp") -> int:
    """Now: the exchange's clock when trading live against it (and in replays through the fake server, whose clock
    steps), else the wall clock. The core never reads a clock itself."""
    if not exchange:
        return int(time.time() * 1000)
    with market_data_client() as client:
        return client.server_time_ms("spot" if market == "spot" else "perp")


def klines_fetch_recent(*, symbol: str, market: str, interval: str, now_ms: int, lookback_ms: int,
                        progress: Callable[[str], None] | None = None) -> dict:
    """Bring the execution bars (and for perpetuals mark prices and funding) up to now; resumes after the last
    stored bar, so a pass after a minute asks for one page."""
    return klines_fetch(symbol=symbol, market=market, interval=interval, start_ms=now_ms - lookback_ms, end_ms=now_ms,
                        with_funding=market == "perp", progress=progress)
