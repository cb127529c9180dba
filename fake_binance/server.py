"""FakeBinance: Binance's public market-data REST endpoints on 127.0.0.1, served from data held in memory.

Used as a pytest fixture and as a runnable server (`python -m fake_binance`). Responses have Binance's JSON shapes
(prices as strings, 12-field kline rows, Binance error bodies). A stepping clock decides what has "happened" yet,
and scheduled faults (429, 418, 5xx, timeouts, truncated JSON, pages with holes) make failure tests deterministic.

Conventions: a bar has closed at `open + interval` (gridcore.bars.Bars.close_ms); with the clock set only closed
bars are served (plus the forming one when `serve_forming_bar` is on, as the real exchange does).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from gridcore.bars import CLOSE, SCALE, Bars, empty_bars, merge_series, resample
from gridcore.kline_files import identify, read_funding, read_klines
from gridcore.symbols import QUOTE, load_snapshot
from gridcore.timeframes import HOUR_MS, INTERVAL_MS

FAULTS = ("429", "418", "500", "502", "503", "timeout", "malformed", "hole")
MARKETS = ("perp", "spot", "mark")
KLINE_LIMITS = {"perp": 1500, "mark": 1500, "spot": 1000}
FUNDING_LIMIT = 1000
WEIGHT_LIMITS = {"fapi": 2400, "api": 6000, "dapi": 2400}
_TOO_MANY = ("Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. Please use WebSocket "
             "Streams for live updates to avoid polling the API.")


@dataclass
class Fault:
    """A fault served instead of (or applied to) the next `times` requests of `path`, after `skip` clean ones.

    `times=None` never clears. `retry_after` (s) goes in the Retry-After header of 429/418; `sleep_s` is how long a
    "timeout" stalls before dropping the connection; "hole" removes `drop` rows from a klines page, starting at row
    `at` (default: the middle; never the first or last row, so the hole is interior).
    """

    path: str
    fault: str
    times: int | None = 1
    skip: int = 0
    retry_after: int = 1
    sleep_s: float = 2.0
    drop: int = 3
    at: int | None = None

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"expected a fault out of {', '.join(FAULTS)}, was {self.fault!r}")
        if self.times is not None and self.times < 0:
            self.times = None  # -1 over HTTP means "forever"
        if self.skip < 0 or self.drop < 1:
            raise ValueError(f"expected skip >= 0 and drop >= 1, was skip={self.skip} drop={self.drop}")

    @classmethod
    def from_json(cls, doc: Any) -> Fault:
        if not isinstance(doc, dict):
            raise ValueError(f"expected a fault object such as {{\"path\": ..., \"fault\": \"429\"}}, was {doc!r}")
        unknown = set(doc) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        if "path" not in doc or "fault" not in doc:
            raise ValueError(f"expected a fault with 'path' and 'fault', was {doc!r}")
        return cls(**doc)


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the server saw it (control requests under /_fake/ are not logged)."""

    method: str
    path: str
    params: dict[str, str]
    status: int  # 0: no response was sent (timeout fault)
    fault: str | None
    weight: int
    rows: int | None  # rows in a list response
    clock_ms: int | None  # the stepping clock when served (None: unset)
    at: float  # time.monotonic() on arrival


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass
class _Reply:
    status: int = 200
    doc: Any = None
    body: bytes | None = None  # raw body instead of doc (HTML error pages, truncated JSON)
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    weight: int = 1
    stall_s: float | None = None  # sleep this long, then drop the connection without answering


def _fmt(units: int, decimals: int) -> str:
    """1e-8 units -> decimal text with at least `decimals` places and never fewer than the value needs."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), SCALE)
    digits = f"{frac:08d}"
    places = max(decimals, len(digits.rstrip("0")))
    return f"{sign}{whole}.{digits[:places]}" if places else f"{sign}{whole}"


def _fmt_rate(rate: Decimal) -> str:
    exponent = rate.as_tuple().exponent
    return f"{rate:.8f}" if isinstance(exponent, int) and exponent >= -8 else format(rate, "f")


def _decimals(text: str | None, default: int) -> int:
    if not text:
        return default
    exponent = Decimal(text).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else default


def _int_param(params: dict[str, str], name: str, default: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; "
                                    f"legal range is '^[0-9]{{1,20}}$'.") from None


def _fmt_block(block: np.ndarray, decimals: int) -> list[list[str]]:
    """Columns of 1e-8 units -> columns of decimal text, all with one number of places (as Binance prints them):
    at least `decimals`, more only when some value needs them."""
    v = np.asarray(block, np.int64).reshape(len(block), -1)
    mag = np.abs(v)
    places = decimals
    while places < 8 and np.any(mag % 10 ** (8 - places)):
        places += 1
    whole, part = np.divmod(mag // 10 ** (8 - places), 10**places)
    signs = np.where(v < 0, "-", "")
    out = []
    for j in range(v.shape[1]):
        triples = zip(signs[:, j].tolist(), whole[:, j].tolist(), part[:, j].tolist(), strict=True)
        out.append([f"{s}{w}.{p:0{places}d}" if places else f"{s}{w}" for s, w, p in triples])
    return out


def _kline_rows(market: str, page: Bars, price_dec: int, qty_dec: int) -> list[list]:
    """Binance's 12-field kline rows. Quote volume and taker volumes are stand-ins (our data has OHLCV only)."""
    n, step = len(page), page.interval_ms
    opens = page.open_ms.tolist()
    closes = (page.open_ms + step - 1).tolist()
    o, h, lo, c = _fmt_block(page.units[:, :4], price_dec)
    if market == "mark":  # mark-price klines carry no volume
        return [[opens[i], o[i], h[i], lo[i], c[i], "0", closes[i], "0", step // 1000, "0", "0", "0"]
                for i in range(n)]
    volume = page.units[:, 4]
    quote = np.rint(volume.astype(np.float64) * page.units[:, 3] / SCALE).astype(np.int64)
    (vol,), (taker,) = _fmt_block(volume, qty_dec), _fmt_block(volume // 2, qty_dec)
    q, taker_q = _fmt_block(np.column_stack([quote, quote // 2]), 8)
    trades = (volume // SCALE + 1).tolist()
    return [[opens[i], o[i], h[i], lo[i], c[i], vol[i], closes[i], q[i], trades[i], taker[i], taker_q[i], "0"]
            for i in range(n)]


def _kline_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class FakeBinance:
    """The fake exchange. Give it data (`bars`, `funding`, `mark`) or build it with `from_files`, then `start()`."""

    def __init__(self, bars: Iterable[Bars] = (),
                 funding: Mapping[str, tuple[np.ndarray, list[Decimal]]] | None = None, *,
                 mark: Iterable[Bars] = (), exchange_info: dict[str, Any] | None = None,
                 now_ms: int | None = None, host: str = "127.0.0.1", port: int = 0,
                 serve_forming_bar: bool = False):
        self._lock = threading.RLock()
        self._series: dict[tuple[str, str, str], Bars] = {}
        self._derived: dict[tuple[str, str, str], Bars] = {}  # intervals served by resampling, rebuilt on add
        self._funding: dict[str, tuple[np.ndarray, list[Decimal]]] = {}
        self._exchange_info = exchange_info if exchange_info is not None else load_snapshot()
        self._now_ms = now_ms
        self._faults: list[Fault] = []
        self._requests: list[RequestRecord] = []
        self._weights: dict[str, tuple[int, int]] = {}
        self.serve_forming_bar = serve_forming_bar
        self.used_weight_base = 0  # weight "other clients" used this minute, added to X-MBX-USED-WEIGHT-1M
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        for b in bars:
            self.add_bars(b)
        for b in mark:
            self.add_bars(b, market="mark")
        for symbol, (ms, rates) in (funding or {}).items():
            self.add_funding(symbol, ms, rates)

    # ----- data -----

    @classmethod
    def from_files(cls, data_dir: Path, patterns: Iterable[str] = ("*.csv.gz",),
                   **kwargs: Any) -> FakeBinance:
        """Serve files of ../shared/data (our naming: SYMBOL-INTERVAL-MARKET-FIRST_LAST.csv.gz)."""
        fake = cls(**kwargs)
        patterns = list(patterns)
        paths = sorted({p for pattern in patterns for p in Path(data_dir).glob(pattern) if p.is_file()})
        if not paths:
            raise FileNotFoundError(f"no data files matching {patterns} in {data_dir}")
        for path in paths:
            info = identify(path)
            if info.kind == "funding":
                f = read_funding(path, info)
                fake.add_funding(f.symbol, f.funding_ms, f.rates)
            else:
                fake.add_bars(read_klines(path, info).bars)
        return fake

    def add_bars(self, bars: Bars, market: str | None = None) -> None:
        """Add (or overwrite, bar by bar) a series; `market` overrides bars.market ("perp", "spot" or "mark")."""
        market = market or bars.market
        if market not in MARKETS:
            raise ValueError(f"expected market out of {', '.join(MARKETS)}, was {market!r}")
        key = (market, bars.symbol, bars.interval)
        with self._lock:
            old = self._series.get(key, empty_bars(bars.symbol, market, bars.interval))
            ms, units, _ = merge_series(old.open_ms, old.units, bars.open_ms, bars.units)
            self._series[key] = Bars(bars.symbol, market, bars.interval, ms, units)
            self._derived.clear()

    def add_funding(self, symbol: str, funding_ms: np.ndarray, rates: list[Decimal]) -> None:
        with self._lock:
            old_ms, old_rates = self._funding.get(symbol, (np.empty(0, np.int64), []))
            merged = dict(zip(old_ms.tolist(), old_rates, strict=True))
            merged.update(zip(np.asarray(funding_ms, np.int64).tolist(), rates, strict=True))
            items = sorted(merged.items())
            self._funding[symbol] = (np.array([t for t, _ in items], np.int64), [r for _, r in items])

    def series(self, market: str, symbol: str, interval: str) -> Bars:
        """The bars served for (market, symbol, interval), ignoring the clock (mark falls back to perp).

        Like Binance, every interval is available: one that was not loaded is served resampled (complete buckets
        only) from the finest loaded interval that divides it.
        """
        with self._lock:
            for mkt in (market, "perp") if market == "mark" else (market,):
                bars = self._series.get((mkt, symbol, interval)) or self._derived.get((mkt, symbol, interval))
                if bars is not None:
                    return bars
                target = INTERVAL_MS[interval]
                finer = sorted((iv for (m, s, iv) in self._series if m == mkt and s == symbol
                                and INTERVAL_MS[iv] < target and target % INTERVAL_MS[iv] == 0), key=INTERVAL_MS.get)
                if finer:
                    bars = resample(self._series[(mkt, symbol, finer[0])], interval)
                    self._derived[(mkt, symbol, interval)] = bars
                    return bars
        return empty_bars(symbol, market, interval)

    def catalog(self) -> list[tuple[str, str, str]]:
        """(market, symbol, interval) of every kline series held."""
        with self._lock:
            return sorted(self._series)

    def funding_series(self, symbol: str) -> tuple[np.ndarray, list[Decimal]]:
        with self._lock:
            ms, rates = self._funding.get(symbol, (np.empty(0, np.int64), []))
            return ms.copy(), list(rates)

    # ----- clock, faults, log -----

    @property
    def now_ms(self) -> int | None:
        return self._now_ms

    def set_now(self, now_ms: int | None) -> None:
        """Set the stepping clock (ms UTC); None serves everything and reports the wall clock as server time."""
        with self._lock:
            self._now_ms = None if now_ms is None else int(now_ms)

    def _now(self) -> int:
        now = self._now_ms
        return int(time.time() * 1000) if now is None else now

    def add_fault(self, path: str, fault: str, times: int | None = 1, **options: Any) -> Fault:
        rule = Fault(path=path, fault=fault, times=times, **options)
        with self._lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return [copy.copy(f) for f in self._faults]

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Back to a fresh server over the same data: no faults, empty log, clock unset."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._weights.clear()
            self._now_ms = None
            self.serve_forming_bar = False
            self.used_weight_base = 0

    def _take_fault(self, path: str) -> Fault | None:
        """The fault for this request, if any; every rule for the path counts the request against its skip."""
        chosen = None
        with self._lock:
            for rule in self._faults:
                if rule.path != path or rule.times == 0:
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                elif chosen is None:
                    chosen = rule
                    if rule.times is not None:
                        rule.times -= 1
            self._faults = [f for f in self._faults if f.times != 0]
        return chosen

    # ----- server lifecycle -----

    def start(self) -> FakeBinance:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self._host, self._port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"FakeBinance:{self._server.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers stalled by a timeout fault
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeBinance is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ----- request handling -----

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if split.path.startswith("/_fake/"):
            reply = self._control(method, split.path, params, body)
            _send(handler, reply)
            return
        arrived = time.monotonic()
        clock = self._now_ms
        fault = self._take_fault(split.path)
        try:
            reply = self._api_reply(method, split.path, params, fault)
        except Exception as e:  # a bug in the fake must answer, not hang the client
            reply = _Reply(500, {"code": -1000, "msg": f"FakeBinance internal error: {e!r}"})
        rows = len(reply.doc) if isinstance(reply.doc, list) else None
        record = RequestRecord(method, split.path, params, 0 if reply.stall_s is not None else reply.status,
                               fault.fault if fault else None, reply.weight, rows, clock, arrived)
        with self._lock:
            self._requests.append(record)  # logged before answering, so a client never sees an unlogged reply
        if reply.stall_s is not None:
            self._stopping.wait(reply.stall_s)
            handler.close_connection = True
            return
        family = split.path.split("/")[1] if split.path.count("/") > 1 else ""
        used = self._use_weight(family, reply.weight)
        reply.headers = {**(reply.headers or {}), "X-MBX-USED-WEIGHT-1M": str(used)}
        _send(handler, reply)

    def _use_weight(self, family: str, weight: int) -> int:
        minute = int(time.time() // 60)
        with self._lock:
            seen, used = self._weights.get(family, (minute, 0))
            used = (used if seen == minute else 0) + weight
            self._weights[family] = (minute, used)
        return used + self.used_weight_base

    def _api_reply(self, method: str, path: str, params: dict[str, str], fault: Fault | None) -> _Reply:
        if fault is not None and fault.fault not in ("hole", "malformed"):
            return self._fault_reply(fault)
        try:
            reply = self._dispatch(method, path, params)
        except _ApiError as e:
            return _Reply(e.status, {"code": e.code, "msg": e.msg})
        if fault is not None and reply.status == 200:
            if fault.fault == "hole" and isinstance(reply.doc, list) and len(reply.doc) > 2:
                at = fault.at if fault.at is not None else len(reply.doc) // 2
                at = min(max(at, 1), len(reply.doc) - 2)
                reply.doc = reply.doc[:at] + reply.doc[at + min(fault.drop, len(reply.doc) - 1 - at):]
            elif fault.fault == "malformed":
                text = json.dumps(reply.doc, separators=(",", ":")).encode()
                reply.body = text[: max(1, len(text) // 2)]
        return reply

    def _fault_reply(self, fault: Fault) -> _Reply:
        if fault.fault == "timeout":
            return _Reply(stall_s=fault.sleep_s)
        retry_after = {"Retry-After": str(fault.retry_after)}
        if fault.fault == "429":
            return _Reply(429, {"code": -1003, "msg": _TOO_MANY}, headers=retry_after)
        if fault.fault == "418":
            until = self._now() + fault.retry_after * 1000
            return _Reply(418, {"code": -1003, "msg": f"Way too many requests; IP(127.0.0.1) banned until {until}. "
                                                      f"Please use WebSocket Streams for live updates to avoid bans."},
                          headers=retry_after)
        if fault.fault == "500":
            return _Reply(500, {"code": -1000, "msg": "An unknown error occurred while processing the request."})
        return _Reply(int(fault.fault), body=f"<html><body><h1>{fault.fault} Bad Gateway or Service Unavailable"
                                             f"</h1></body></html>".encode(), content_type="text/html")

    def _dispatch(self, method: str, path: str, params: dict[str, str]) -> _Reply:
        if method != "GET":
            raise _ApiError(405, -5000, f"Path {path}, Method {method} is invalid")
        routes = {
            "/fapi/v1/klines": lambda: self._klines("perp", params),
            "/fapi/v1/markPriceKlines": lambda: self._klines("mark", params),
            "/api/v3/klines": lambda: self._klines("spot", params),
            "/fapi/v1/fundingRate": lambda: self._funding_rates(params),
            "/fapi/v1/premiumIndex": lambda: self._premium_index(params),
            "/fapi/v1/exchangeInfo": self._fapi_exchange_info,
            "/api/v3/exchangeInfo": lambda: _Reply(doc=self._spot_exchange_info(), weight=20),
            "/dapi/v1/exchangeInfo": lambda: _Reply(doc={"timezone": "UTC", "serverTime": self._now(),
                                                         "rateLimits": [], "exchangeFilters": [], "symbols": []}),
        }
        for prefix in ("/fapi/v1", "/api/v3", "/dapi/v1"):
            routes[f"{prefix}/time"] = lambda: _Reply(doc={"serverTime": self._now()})
            routes[f"{prefix}/ping"] = lambda: _Reply(doc={})
        route = routes.get(path)
        if route is None:
            raise _ApiError(404, -5000, f"Path {path}, Method {method} is invalid")
        return route()

    # ----- endpoints -----

    def _perp_symbols(self) -> set[str]:
        with self._lock:
            ours = {s for (m, s, _) in self._series if m in ("perp", "mark")} | set(self._funding)
        return ours | {e["symbol"] for e in self._exchange_info.get("symbols", [])}

    def _symbol(self, params: dict[str, str], known: set[str]) -> str:
        symbol = params.get("symbol", "")
        if not symbol:
            raise _ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol not in known:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return symbol

    def _visible(self, bars: Bars) -> Bars:
        """The bars that exist at the clock: closed ones, plus the forming one when serve_forming_bar is on."""
        now = self._now_ms
        if now is None:
            return bars
        last_open = now if self.serve_forming_bar else now - bars.interval_ms
        return bars.take(slice(0, int(np.searchsorted(bars.open_ms, last_open, side="right"))))

    def _klines(self, market: str, params: dict[str, str]) -> _Reply:
        with self._lock:
            spot = {s for (m, s, _) in self._series if m == "spot"}
        symbol = self._symbol(params, (spot | {"BTCUSDT"}) if market == "spot" else self._perp_symbols())
        interval = params.get("interval", "")
        if not interval:
            raise _ApiError(400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in INTERVAL_MS:
            raise _ApiError(400, -1120, "Invalid interval.")
        limit = _int_param(params, "limit", 500)
        if not 1 <= limit <= KLINE_LIMITS[market]:
            raise _ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        start, end = _int_param(params, "startTime", None), _int_param(params, "endTime", None)
        bars = self._visible(self.series(market, symbol, interval))
        lo = 0 if start is None else int(np.searchsorted(bars.open_ms, start, side="left"))
        hi = len(bars) if end is None else int(np.searchsorted(bars.open_ms, end, side="right"))
        lo, hi = (max(lo, hi - limit), hi) if start is None else (lo, min(hi, lo + limit))
        page = bars.take(slice(lo, hi))
        price_dec, qty_dec = self._precision(market, symbol)
        rows = _kline_rows(market, page, price_dec, qty_dec)
        weight = 2 if market == "spot" else _kline_weight(limit)
        return _Reply(doc=rows, weight=weight)

    def _precision(self, market: str, symbol: str) -> tuple[int, int]:
        """Decimals of prices and quantities as Binance prints them: 8 on spot, the tick/step's on futures."""
        if market == "spot":
            return 8, 8
        for entry in self._exchange_info.get("symbols", []):
            if entry.get("symbol") == symbol:
                filters = {f.get("filterType"): f for f in entry.get("filters", [])}
                return (_decimals(filters.get("PRICE_FILTER", {}).get("tickSize"), 2),
                        _decimals(filters.get("LOT_SIZE", {}).get("stepSize"), 3))
        return 2, 3

    def _mark_series(self, symbol: str) -> Bars:
        """The finest mark series of a symbol (else its finest perp series), limited to what the clock shows."""
        with self._lock:
            for market in ("mark", "perp"):
                keys = sorted((INTERVAL_MS[i], i) for (m, s, i) in self._series if m == market and s == symbol)
                if keys:
                    bars = self._series[(market, symbol, keys[0][1])]
                    now = self._now_ms
                    return bars if now is None else bars.closed_by(now)
        return empty_bars(symbol, "mark", "1m")

    def _mark_at(self, symbol: str, t_ms: int) -> str:
        bars = self._mark_series(symbol).closed_by(t_ms)
        return _fmt(int(bars.units[-1, CLOSE]), 8) if len(bars) else ""

    def _funding_rates(self, params: dict[str, str]) -> _Reply:
        limit = _int_param(params, "limit", 100)
        if not 1 <= limit <= FUNDING_LIMIT:
            raise _ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        start, end = _int_param(params, "startTime", None), _int_param(params, "endTime", None)
        symbols = [self._symbol(params, self._perp_symbols())] if params.get("symbol") else sorted(self._funding)
        now = self._now_ms
        rows: list[dict[str, Any]] = []
        for symbol in symbols:
            ms, rates = self.funding_series(symbol)
            hi_t = end if now is None else now if end is None else min(end, now)
            lo = 0 if start is None else int(np.searchsorted(ms, start, side="left"))
            hi = len(ms) if hi_t is None else int(np.searchsorted(ms, hi_t, side="right"))
            lo, hi = (max(lo, hi - limit), hi) if start is None else (lo, min(hi, lo + limit))
            rows += [{"symbol": symbol, "fundingTime": int(ms[i]), "fundingRate": _fmt_rate(rates[i]),
                      "markPrice": self._mark_at(symbol, int(ms[i]))} for i in range(lo, hi)]
        return _Reply(doc=rows[:limit] if start is not None else rows[-limit:])

    def _premium_index(self, params: dict[str, str]) -> _Reply:
        one = bool(params.get("symbol"))
        symbols = [self._symbol(params, self._perp_symbols())] if one else sorted(self._perp_symbols())
        docs = [self._premium_doc(s) for s in symbols]
        return _Reply(doc=docs[0] if one else docs, weight=1 if one else 10)

    def _premium_doc(self, symbol: str) -> dict[str, Any]:
        """markPrice: close of the last closed bar; lastFundingRate: the last settled rate (no look-ahead)."""
        now = self._now()
        bars = self._mark_series(symbol).closed_by(now)
        mark = _fmt(int(bars.units[-1, CLOSE]), 8) if len(bars) else "0.00000000"
        ms, rates = self.funding_series(symbol)
        k = int(np.searchsorted(ms, now, side="right"))
        hours = next((int(e.get("fundingIntervalHours", 8)) for e in self._exchange_info.get("symbols", [])
                      if e.get("symbol") == symbol), 8)
        next_funding = int(ms[k]) if k < len(ms) else (now // (hours * HOUR_MS) + 1) * hours * HOUR_MS
        return {"symbol": symbol, "markPrice": mark, "indexPrice": mark, "estimatedSettlePrice": mark,
                "lastFundingRate": _fmt_rate(rates[k - 1]) if k else "0.00000000", "interestRate": "0.00010000",
                "nextFundingTime": next_funding, "time": now}

    def _fapi_exchange_info(self) -> _Reply:
        doc = {k: v for k, v in copy.deepcopy(self._exchange_info).items() if not k.startswith("_")
               and k != "snapshotDate"}
        doc["serverTime"] = self._now()
        doc.setdefault("futuresType", "U_MARGINED")
        doc.setdefault("rateLimits", [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}])
        doc.setdefault("exchangeFilters", [])
        doc.setdefault("assets", [])
        listed = {e.get("symbol") for e in doc.get("symbols", [])}
        with self._lock:
            extra = sorted({s for (m, s, _) in self._series if m in ("perp", "mark")} - listed)
        doc.setdefault("symbols", []).extend(self._minimal_perp(s) for s in extra)
        return _Reply(doc=doc)

    @staticmethod
    def _minimal_perp(symbol: str) -> dict[str, Any]:
        base = symbol[: -len(QUOTE)] if symbol.endswith(QUOTE) else symbol
        return {"symbol": symbol, "pair": symbol, "contractType": "PERPETUAL", "status": "TRADING",
                "baseAsset": base, "quoteAsset": QUOTE, "marginAsset": QUOTE, "fundingIntervalHours": 8,
                "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01", "minPrice": "0.01",
                             "maxPrice": "1000000"},
                            {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "1000"},
                            {"filterType": "MIN_NOTIONAL", "notional": "5"}]}

    def _spot_exchange_info(self) -> dict[str, Any]:
        with self._lock:
            symbols = sorted({s for (m, s, _) in self._series if m == "spot"} | {"BTCUSDT"})
        entries = [{"symbol": s, "status": "TRADING", "baseAsset": s[: -len(QUOTE)], "baseAssetPrecision": 8,
                    "quoteAsset": QUOTE, "quotePrecision": 8, "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
                    "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": ["SPOT"],
                    "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                                 "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                                 "stepSize": "0.00001000"}]}
                   for s in symbols if s.endswith(QUOTE)]
        return {"timezone": "UTC", "serverTime": self._now(), "exchangeFilters": [], "symbols": entries,
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                "limit": 6000}]}

    # ----- control API (/_fake/...) -----

    def _control(self, method: str, path: str, params: dict[str, str], body: bytes) -> _Reply:
        try:
            doc = json.loads(body) if body.strip() else None
            return self._control_route(method, path, params, doc)
        except (ValueError, TypeError) as e:
            return _Reply(400, {"error": str(e)})

    def _control_route(self, method: str, path: str, params: dict[str, str], doc: Any) -> _Reply:
        if path == "/_fake/clock":
            if method == "POST":
                raw = params["now"] if "now" in params else (doc or {}).get("now")
                self.set_now(None if raw in (None, "", "none", "null") else int(raw))
            return _Reply(doc={"now": self._now_ms})
        if path == "/_fake/faults":
            if method == "POST":
                items = doc.get("faults", doc) if isinstance(doc, dict) and "faults" in doc else doc
                rules = [Fault.from_json(d) for d in (items if isinstance(items, list) else [items])]
                with self._lock:
                    self._faults.extend(rules)
            elif method == "DELETE":
                self.clear_faults()
            return _Reply(doc={"faults": [asdict(f) for f in self.faults]})
        if path == "/_fake/requests":
            if method == "DELETE":
                self.clear_requests()
            return _Reply(doc=[asdict(r) for r in self.requests])
        if path == "/_fake/reset" and method == "POST":
            self.reset()
            return _Reply(doc={})
        return _Reply(404, {"error": f"unknown control endpoint {method} {path}"})


def _send(handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
    body = reply.body if reply.body is not None else json.dumps(reply.doc, separators=(",", ":")).encode()
    try:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (reply.headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (its timeout); nothing to tell it


def _make_handler(fake: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeBinance/1"

        def do_GET(self) -> None:
            fake._handle(self, "GET")

        def do_POST(self) -> None:
            fake._handle(self, "POST")

        def do_DELETE(self) -> None:
            fake._handle(self, "DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log (fake.requests) replaces stderr chatter

    return Handler
