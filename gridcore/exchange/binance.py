"""Binance market data through ccxt: paginated, resumable kline and funding downloads into a KlineStore.

Klines come from ccxt's implicit raw endpoints (`fapiPublicGetKlines` etc.), whose rows hold Binance's decimal
strings, so prices and volumes convert to the 1e-8 int units exactly (no float parsing). Every page is validated
before it is written, and written atomically on its own, so a failure never leaves half a page and a re-run resumes
after the last stored bar. Transient failures (429/418, 5xx, timeouts, malformed JSON) are retried with bounded
exponential backoff honouring Retry-After; then an ExchangeError names symbol, market, interval and time range.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import ccxt
import numpy as np

from gridcore.bars import Bars, validate_rows
from gridcore.errors import ExchangeError, InputError, TemporaryExchangeError
from gridcore.ports import KlineStore, UpsertResult
from gridcore.symbols import split_symbol
from gridcore.timeframes import interval_ms, ms_to_iso

MARKETS = ("perp", "spot", "mark")
PAGE_LIMITS = {"perp": 1500, "mark": 1500, "spot": 1000}
FUNDING_PAGE_LIMIT = 1000
KLINE_ENDPOINTS = {"perp": "fapiPublicGetKlines", "mark": "fapiPublicGetMarkPriceKlines", "spot": "publicGetKlines"}
WEIGHT_LIMITS = {"perp": 2400, "spot": 6000}  # REQUEST_WEIGHT per minute and IP
_URL_SECTIONS = ("api", "test", "demo")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_STATUS = re.compile(r" (\d{3}) ")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of transient failures, per request.

    Attempt k (0-based) waits min(backoff_max_s, backoff_base_s * 2**k); a Retry-After header raises that to its
    value, capped at retry_after_max_s. A 418 (IP ban) longer than retry_after_max_s is not retried at all:
    requests during a ban lengthen it.
    """

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0

    def delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
        if retry_after_s is None:
            return backoff
        return min(self.retry_after_max_s, max(retry_after_s, backoff))


@dataclass(frozen=True)
class PremiumIndex:
    mark_price: Decimal
    last_funding_rate: Decimal
    next_funding_ms: int
    time_ms: int


@dataclass
class FetchReport:
    """What one fetch did. `gaps` are confirmed exchange gaps: (open time of the bar before, missing bars)."""

    symbol: str
    market: str
    interval: str  # "fundingRate" for funding fetches
    start_ms: int
    end_ms: int
    pages: int = 0
    bars_written: UpsertResult = field(default_factory=UpsertResult)
    retries: dict[str, int] = field(default_factory=dict)  # kind -> count: rate_limit, ip_ban, server_error, ...
    gaps: list[tuple[int, int]] = field(default_factory=list)
    resumed_from_ms: int | None = None  # where fetching resumed after bars already stored
    requests: int = 0
    pauses: int = 0  # waits because the used request weight neared the limit

    def count_retry(self, kind: str) -> None:
        self.retries[kind] = self.retries.get(kind, 0) + 1

    def summary(self) -> str:
        w = self.bars_written
        gaps = f", {len(self.gaps)} gaps ({sum(n for _, n in self.gaps)} bars missing at the exchange)" \
            if self.gaps else ""
        retries = f", retries {dict(sorted(self.retries.items()))}" if self.retries else ""
        return (f"{self.symbol} {self.market} {self.interval} {ms_to_iso(self.start_ms)}..{ms_to_iso(self.end_ms)}: "
                f"{self.pages} pages, {w.inserted} new, {w.updated} updated, {w.unchanged} unchanged{gaps}{retries}")


class _Transient(TemporaryExchangeError):
    def __init__(self, kind: str, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.kind, self.retry_after_s = kind, retry_after_s


@dataclass(frozen=True)
class _Page:
    open_ms: np.ndarray
    units: np.ndarray
    raw_rows: int  # rows the exchange sent
    cut: bool = False  # rows were dropped because they had not closed yet: nothing further to fetch

    def __len__(self) -> int:
        return int(self.open_ms.size)

    def upto(self, last_ms: int) -> _Page:
        keep = self.open_ms <= last_ms
        return _Page(self.open_ms[keep], self.units[keep], self.raw_rows, self.cut)


def redirect_urls(exchange: ccxt.Exchange, base_url: str) -> None:
    """Point every REST URL ccxt knows (live, testnet, demo) at base_url, keeping each URL's path."""
    base = base_url.rstrip("/")
    urls = dict(exchange.urls)
    for section in _URL_SECTIONS:
        if isinstance(urls.get(section), dict):
            urls[section] = {k: base + urlsplit(v).path if isinstance(v, str) else v for k, v in urls[section].items()}
    exchange.urls = urls
    stray = [v for s in _URL_SECTIONS for v in urls.get(s, {}).values()
             if isinstance(v, str) and not v.startswith(base)]
    if stray:
        raise ExchangeError(f"expected every ccxt URL to point at {base}, still pointing elsewhere: {stray}")
    if urlsplit(base).hostname in _LOOPBACK:
        exchange.session.trust_env = False  # a local server must not be reached through an environment proxy


def _units(text: Any) -> int:
    """Binance decimal text -> exact int 1e-8 units."""
    scaled = Decimal(str(text)).scaleb(8)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more than 8 decimals")
    return int(scaled)


def _retry_after_s(headers: Any) -> float | None:
    raw = headers.get("Retry-After") if headers else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _classify(e: ccxt.BaseError, headers: Any) -> ExchangeError:
    """ccxt's exception -> a _Transient to retry, or an ExchangeError to stop on."""
    text = str(e)[:400]
    status_match = _STATUS.search(text)
    status = int(status_match.group(1)) if status_match else None
    if isinstance(e, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        kind = "ip_ban" if re.match(r"^\S+ 418 ", text) else "rate_limit"
        return _Transient(kind, text, _retry_after_s(headers))
    if isinstance(e, ccxt.RequestTimeout):
        return _Transient("timeout", text)
    if isinstance(e, ccxt.ExchangeNotAvailable):
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return ExchangeError(f"Binance refused the request ({status}): {text}")
        return _Transient("server_error", text, _retry_after_s(headers))
    if isinstance(e, ccxt.NetworkError):
        return _Transient("network", text)
    if isinstance(e, ccxt.BadResponse):
        return _Transient("bad_response", text)
    if isinstance(e, ccxt.OperationFailed):
        return _Transient("server_error", text)
    return ExchangeError(f"Binance refused the request: {text}")


def _parse_klines(rows: Any, interval: str, source: str) -> _Page:
    if not isinstance(rows, list):
        raise _Transient("bad_response", f"expected a JSON list of klines, got {str(rows)[:120]!r}")
    try:
        open_ms = np.array([int(r[0]) for r in rows], np.int64)
        units = np.array([[_units(r[j]) for j in range(1, 6)] for r in rows], np.int64).reshape(-1, 5)
    except (TypeError, ValueError, IndexError, KeyError, ArithmeticError, OverflowError) as e:
        raise _Transient("bad_response", f"unreadable kline row from {source}: {e}") from e
    try:
        open_ms, units, _ = validate_rows(open_ms, units, interval, source, np.arange(1, open_ms.size + 1))
    except InputError as e:
        raise _Transient("invalid_page", str(e)) from e
    return _Page(open_ms, units, len(rows))


def _parse_funding(rows: Any, symbol: str, source: str) -> tuple[np.ndarray, list[Decimal], int]:
    if not isinstance(rows, list):
        raise _Transient("bad_response", f"expected a JSON list of funding rates, got {str(rows)[:120]!r}")
    try:
        times = [int(r["fundingTime"]) for r in rows if r.get("symbol", symbol) == symbol]
        rates = [Decimal(str(r["fundingRate"])) for r in rows if r.get("symbol", symbol) == symbol]
    except (TypeError, ValueError, KeyError, AttributeError, InvalidOperation) as e:
        raise _Transient("bad_response", f"unreadable funding row from {source}: {e}") from e
    keep_t: list[int] = []
    keep_r: list[Decimal] = []
    for t, r in zip(times, rates, strict=True):
        if keep_t and t <= keep_t[-1]:
            if t == keep_t[-1] and r == keep_r[-1]:
                continue
            raise _Transient("invalid_page", f"{source}: funding time {t} out of order or twice with different rates")
        keep_t.append(t)
        keep_r.append(r)
    return np.array(keep_t, np.int64), keep_r, len(rows)


def _parse_premium(doc: Any, source: str) -> PremiumIndex:
    try:
        return PremiumIndex(Decimal(str(doc["markPrice"])), Decimal(str(doc["lastFundingRate"])),
                            int(doc["nextFundingTime"]), int(doc["time"]))
    except (TypeError, ValueError, KeyError, InvalidOperation) as e:
        raise _Transient("bad_response", f"unreadable premiumIndex from {source}: {str(doc)[:120]!r}") from e


def _holes(open_ms: np.ndarray, prev_ms: int | None, step: int) -> list[tuple[int, int]]:
    """Missing bars between consecutive bars (and after prev_ms, the last bar before this page)."""
    ms = open_ms if prev_ms is None else np.r_[np.int64(prev_ms), open_ms]
    missing = np.diff(ms) // step - 1
    return [(int(ms[i]), int(missing[i])) for i in np.flatnonzero(missing > 0)]


def _segments(stored_ms: np.ndarray, start_ms: int, end_ms: int, step: int) -> list[tuple[int, int, int | None]]:
    """(from, to, last bar before) ranges still to fetch: before the first stored bar, and after the last."""
    if stored_ms.size == 0:
        return [(start_ms, end_ms, None)]
    first, last = int(stored_ms[0]), int(stored_ms[-1])
    out: list[tuple[int, int, int | None]] = []
    if first - step >= start_ms:
        out.append((start_ms, first, None))
    if last + step < end_ms:
        out.append((last + step, end_ms, last))
    return out


class BinanceClient:
    """Binance public market data via ccxt (binanceusdm for perp and mark prices, binance for spot).

    `base_url` redirects every URL ccxt would use (the fake server in tests); `rate_limit_ms` overrides ccxt's
    per-weight throttle (50 ms); `weight_budget` is the share of the per-minute request weight after which the
    client waits for the next minute.
    """

    def __init__(self, *, base_url: str | None = None, timeout_ms: int = 10_000, retry: RetryPolicy | None = None,
                 rate_limit_ms: float | None = None, weight_budget: float = 0.9,
                 sleep: Callable[[float], None] = time.sleep):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_ms = timeout_ms
        self.retry = retry or RetryPolicy()
        self.rate_limit_ms = rate_limit_ms
        self.weight_budget = weight_budget
        self._sleep = sleep
        self._apis: dict[str, ccxt.Exchange] = {}

    def api(self, market: str = "perp") -> ccxt.Exchange:
        """The ccxt instance serving `market` ("spot": ccxt.binance, else ccxt.binanceusdm)."""
        kind = "spot" if market == "spot" else "perp"
        if kind not in self._apis:
            options: dict[str, Any] = {"adjustForTimeDifference": False}
            if kind == "spot":
                options["fetchMarkets"] = {"types": ["spot"]}
            config: dict[str, Any] = {"enableRateLimit": True, "timeout": self.timeout_ms, "options": options}
            if self.rate_limit_ms is not None:
                config["rateLimit"] = self.rate_limit_ms
            exchange = (ccxt.binance if kind == "spot" else ccxt.binanceusdm)(config)
            if self.base_url:
                redirect_urls(exchange, self.base_url)
            self._apis[kind] = exchange
        return self._apis[kind]

    def close(self) -> None:
        for exchange in self._apis.values():
            exchange.session.close()
        self._apis.clear()

    def __enter__(self) -> BinanceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- requests with retries -----

    def _request(self, market: str, endpoint: str, params: dict[str, Any], parse: Callable[[Any], Any],
                 what: str, report: FetchReport | None = None) -> Any:
        """One API call through ccxt, parsed by `parse`; transient failures are retried per self.retry."""
        exchange = self.api(market)
        attempt = 0
        while True:
            try:
                if report is not None:
                    report.requests += 1
                try:
                    response = getattr(exchange, endpoint)(params)
                except ccxt.BaseError as e:
                    raise _classify(e, exchange.last_response_headers) from e
                value = parse(response)
            except _Transient as e:
                if attempt >= self.retry.max_retries:
                    tries = f"{attempt} retr{'y' if attempt == 1 else 'ies'}"
                    raise ExchangeError(f"{what}: gave up after {tries} ({e.kind}): {e}") from e
                if e.kind == "ip_ban" and (e.retry_after_s or 0) > self.retry.retry_after_max_s:
                    raise ExchangeError(f"{what}: Binance banned this IP for {e.retry_after_s:.0f} s (HTTP 418); "
                                        f"not retrying, since requests during a ban extend it: {e}") from e
                if report is not None:
                    report.count_retry(e.kind)
                self._sleep(self.retry.delay_s(attempt, e.retry_after_s))
                attempt += 1
                continue
            except ExchangeError as e:
                raise ExchangeError(f"{what}: {e}") from e
            self._respect_weight(exchange, market, report)
            return value

    def _respect_weight(self, exchange: ccxt.Exchange, market: str, report: FetchReport | None) -> None:
        headers = exchange.last_response_headers or {}
        used = headers.get("X-MBX-USED-WEIGHT-1M")
        limit = WEIGHT_LIMITS["spot" if market == "spot" else "perp"]
        if used is None or not str(used).isdigit() or int(used) < self.weight_budget * limit:
            return
        if report is not None:
            report.pauses += 1
        self._sleep(min(60.0 - time.time() % 60.0, self.retry.retry_after_max_s))

    # ----- klines -----

    def fetch_klines(self, store: KlineStore, symbol: str, market: str, interval: str, start_ms: int, end_ms: int,
                     *, progress: Progress | None = None) -> FetchReport:
        """Download closed bars with start_ms <= open < end_ms into `store`, resuming after bars already stored."""
        symbol = split_symbol(symbol)
        if market not in MARKETS:
            raise InputError(f"expected market out of {', '.join(MARKETS)}, was {market!r}")
        step = interval_ms(interval)
        if end_ms <= start_ms:
            raise InputError(f"expected start before end, was {ms_to_iso(start_ms)}..{ms_to_iso(end_ms)}")
        report = FetchReport(symbol, market, interval, start_ms, end_ms)
        now = self._server_time(market, f"{symbol} {market} {interval}", report)
        stored = store.load_bars(symbol, market, interval, start_ms, end_ms)
        segments = _segments(stored.open_ms, start_ms, end_ms, step)
        if len(stored):
            report.resumed_from_ms = int(stored.open_ms[-1]) + step
        for seg_start, seg_end, prev in segments:
            self._fetch_segment(store, report, seg_start, seg_end, prev, now, progress)
        if progress is not None:
            progress(end_ms - start_ms, end_ms - start_ms)
        return report

    def _fetch_segment(self, store: KlineStore, report: FetchReport, seg_start: int, seg_end: int,
                       prev: int | None, now: int, progress: Progress | None) -> None:
        symbol, market, interval = report.symbol, report.market, report.interval
        step, limit = interval_ms(interval), PAGE_LIMITS[market]
        cursor = seg_start
        while cursor < seg_end:
            what = f"{symbol} {market} {interval} {ms_to_iso(cursor)}..{ms_to_iso(seg_end)}"
            page = self._kline_page(report, cursor, seg_end, now, what)
            if len(page) == 0:
                break
            holes = _holes(page.open_ms, prev, step)
            if holes:
                page, holes = self._confirm_holes(report, page, holes, cursor, seg_end, prev, now, what)
                report.gaps.extend(holes)
            report.bars_written += store.upsert_bars(Bars(symbol, market, interval, page.open_ms, page.units))
            report.pages += 1
            prev = int(page.open_ms[-1])
            cursor = prev + step
            if progress is not None:
                progress(min(cursor, report.end_ms) - report.start_ms, report.end_ms - report.start_ms)
            if page.cut or (page.raw_rows < limit and not holes):
                break

    def _kline_page(self, report: FetchReport, cursor: int, seg_end: int, now: int, what: str) -> _Page:
        market, interval = report.market, report.interval
        params = {"symbol": report.symbol, "interval": interval, "startTime": cursor, "endTime": seg_end - 1,
                  "limit": PAGE_LIMITS[market]}
        page = self._request(market, KLINE_ENDPOINTS[market], params,
                             lambda rows: _parse_klines(rows, interval, f"klines page {what}"), what, report)
        in_range = (page.open_ms >= cursor) & (page.open_ms < seg_end)
        closed = page.open_ms + interval_ms(interval) <= now
        keep = in_range & closed
        return _Page(page.open_ms[keep], page.units[keep], page.raw_rows, bool(np.any(in_range & ~closed)))

    def _confirm_holes(self, report: FetchReport, page: _Page, holes: list[tuple[int, int]], cursor: int,
                       seg_end: int, prev: int | None, now: int, what: str) -> tuple[_Page, list[tuple[int, int]]]:
        """Re-fetch a page with holes once: filled -> use it; same holes -> real exchange gaps; else stop."""
        report.count_retry("hole")
        again = self._kline_page(report, cursor, seg_end, now, what).upto(int(page.open_ms[-1]))
        again_holes = _holes(again.open_ms, prev, interval_ms(report.interval))
        if len(again) == 0 or not set(again_holes) <= set(holes):
            raise ExchangeError(f"{what}: a klines page came back with missing bars {_describe(holes)} and "
                                f"differently on re-fetch {_describe(again_holes)}; nothing written for this page")
        return again, again_holes

    # ----- funding, premium index, exchange info, time -----

    def fetch_funding(self, store: KlineStore, symbol: str, start_ms: int, end_ms: int, *,
                      progress: Progress | None = None) -> FetchReport:
        """Download funding events with start_ms <= funding time < end_ms (rates as exact Decimals)."""
        symbol = split_symbol(symbol)
        if end_ms <= start_ms:
            raise InputError(f"expected start before end, was {ms_to_iso(start_ms)}..{ms_to_iso(end_ms)}")
        report = FetchReport(symbol, "perp", "fundingRate", start_ms, end_ms)
        now = self._server_time("perp", f"{symbol} funding", report)
        stored_ms, _ = store.load_funding(symbol, start_ms, end_ms)
        if stored_ms.size:
            report.resumed_from_ms = int(stored_ms[-1]) + 1
        for seg_start, seg_end, _prev in _segments(stored_ms, start_ms, end_ms, 1):
            cursor = seg_start
            while cursor < seg_end:
                what = f"{symbol} funding {ms_to_iso(cursor)}..{ms_to_iso(seg_end)}"
                params = {"symbol": symbol, "startTime": cursor, "endTime": seg_end - 1, "limit": FUNDING_PAGE_LIMIT}
                ms, rates, raw = self._request("perp", "fapiPublicGetFundingRate", params,
                                               lambda rows, w=what: _parse_funding(rows, symbol, w), what, report)
                keep = (ms >= cursor) & (ms < seg_end) & (ms <= now)
                if not keep.any():
                    break
                report.bars_written += store.upsert_funding(symbol, ms[keep], [r for r, k in zip(rates, keep,
                                                                                               strict=True) if k])
                report.pages += 1
                cursor = int(ms[keep][-1]) + 1
                if progress is not None:
                    progress(min(cursor, end_ms) - start_ms, end_ms - start_ms)
                if raw < FUNDING_PAGE_LIMIT or not keep.all():
                    break
        return report

    def fetch_premium_index(self, symbol: str) -> PremiumIndex:
        symbol = split_symbol(symbol)
        what = f"{symbol} premiumIndex"
        return self._request("perp", "fapiPublicGetPremiumIndex", {"symbol": symbol},
                             lambda doc: _parse_premium(doc, what), what)

    def fetch_exchange_info(self) -> dict[str, Any]:
        """The raw USDT-M exchangeInfo document (the caller caches it, adding `_cachedAt`)."""

        def parse(doc: Any) -> dict[str, Any]:
            if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), list):
                raise _Transient("bad_response",
                                 f"expected an exchangeInfo object with symbols, got {str(doc)[:120]!r}")
            return doc

        return self._request("perp", "fapiPublicGetExchangeInfo", {}, parse, "USDT-M exchangeInfo")

    def server_time_ms(self, market: str = "perp") -> int:
        return self._server_time(market, market, None)

    def _server_time(self, market: str, what: str, report: FetchReport | None) -> int:
        def parse(doc: Any) -> int:
            if not isinstance(doc, dict) or not isinstance(doc.get("serverTime"), int):
                raise _Transient("bad_response", f"expected {{\"serverTime\": ms}}, got {str(doc)[:120]!r}")
            return int(doc["serverTime"])

        endpoint = "publicGetTime" if market == "spot" else "fapiPublicGetTime"
        return self._request(market, endpoint, {}, parse, f"{what}: server time", report)


def _describe(holes: list[tuple[int, int]]) -> str:
    return ", ".join(f"{n} after {ms_to_iso(t)}" for t, n in holes if n) or "(none)"
