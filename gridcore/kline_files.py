"""Readers for kline and funding-rate files.

Two layouts are understood:
- autogrid / ../shared/data: gzip CSV with a header, `open_time,open,high,low,close,volume` (funding files:
  `funding_time,funding_rate`), named `SYMBOL-INTERVAL-MARKET-FIRSTDAY_LASTDAY.csv.gz`
  (MARKET is `spot` or `perp`; INTERVAL is `fundingRate` for funding files).
- Binance public data (data.binance.vision): 12 columns, usually no header, as CSV or as a ZIP holding one CSV,
  named `SYMBOL-INTERVAL-YYYY-MM(-DD).zip`; open times in milliseconds, or microseconds (spot files since 2025).
  Their names carry no market, so the caller says which.
Every row is checked (gridcore.bars.validate_rows); a bad row refuses the whole file, naming file and line.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from gridcore.bars import Bars, to_units, validate_rows
from gridcore.errors import InputError
from gridcore.symbols import split_symbol
from gridcore.timeframes import INTERVAL_MS

MARKETS = ("spot", "perp")
KLINE_HEADER = ["open_time", "open", "high", "low", "close", "volume"]
FUNDING_HEADER = ["funding_time", "funding_rate"]
_OURS = re.compile(r"^(?P<symbol>[A-Za-z0-9]+)-(?P<interval>[0-9]+[mhd]|fundingRate)-(?P<market>spot|perp)"
                   r"-\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.csv(\.gz)?$")
_BINANCE = re.compile(r"^(?P<symbol>[A-Za-z0-9]+)-(?P<interval>[0-9]+[mhd])-\d{4}-\d{2}(-\d{2})?\.(csv|zip)$")
_MICROS_FROM = 10**14  # ms timestamps stay below this until the year 5138; µs ones are above it since 1973


@dataclass(frozen=True)
class FileInfo:
    kind: str  # "klines" or "funding"
    symbol: str
    market: str | None
    interval: str | None


@dataclass(frozen=True)
class KlineFile:
    bars: Bars
    duplicates: int  # exact duplicate rows dropped


@dataclass(frozen=True)
class FundingFile:
    symbol: str
    funding_ms: np.ndarray  # int64
    rates: list[Decimal]
    duplicates: int


def identify(path: Path, *, symbol: str | None = None, market: str | None = None,
             interval: str | None = None) -> FileInfo:
    """What a file holds, from its name; explicit arguments override (and are needed for Binance's names)."""
    name = path.name
    m = _OURS.match(name)
    if m:
        kind = "funding" if m["interval"] == "fundingRate" else "klines"
        info = FileInfo(kind, m["symbol"], m["market"], None if kind == "funding" else m["interval"])
    else:
        b = _BINANCE.match(name)
        info = FileInfo("klines", b["symbol"], None, b["interval"]) if b else FileInfo("klines", "", None, None)
    info = FileInfo(info.kind, symbol or info.symbol, market or info.market, interval or info.interval)
    if not info.symbol:
        raise InputError(f"{path}: cannot tell the symbol from the file name; expected SYMBOL-INTERVAL-MARKET-"
                         f"FIRST_LAST.csv.gz or SYMBOL-INTERVAL-YYYY-MM.zip, or pass --symbol")
    if info.market not in MARKETS:
        raise InputError(f"{path}: expected market spot or perp (from the name or --market), was {info.market!r}")
    if info.kind == "klines" and info.interval not in INTERVAL_MS:
        raise InputError(f"{path}: expected a kline interval out of {', '.join(INTERVAL_MS)}, was {info.interval!r}")
    return FileInfo(info.kind, split_symbol(info.symbol), info.market, info.interval)


def _read_text(path: Path) -> str:
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                members = [n for n in z.namelist() if n.endswith(".csv")]
                if len(members) != 1:
                    raise InputError(f"{path}: expected one CSV inside the ZIP, found {members}")
                return z.read(members[0]).decode("utf-8")
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from e


def _table(path: Path, text: str, header: list[str], min_cols: int) -> tuple[np.ndarray, int]:
    """Parse the numeric table; returns (array, line number of its first row). Header optional for 12-col files."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    first = 0
    if lines and not lines[0][:1].isdigit():
        got = [c.strip() for c in lines[0].split(",")]
        if got[: len(header)] != header:
            raise InputError(f"{path}:1: expected the header {','.join(header)}, was {lines[0][:120]!r}")
        first = 1
    body = lines[first:]
    if not body:
        raise InputError(f"{path}: no data rows")
    try:
        arr = np.loadtxt(io.StringIO("\n".join(body)), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        arr = None
    if arr is None or arr.shape[1] < min_cols:
        for k, line in enumerate(body):  # slow path only to name the offending line
            cells = line.split(",")
            if len(cells) < min_cols:
                raise InputError(f"{path}:{first + k + 1}: expected at least {min_cols} columns, "
                                 f"found {len(cells)}: {line[:120]!r}")
            for c in cells[:min_cols]:
                try:
                    float(c)
                except ValueError:
                    raise InputError(f"{path}:{first + k + 1}: expected a number, was {c!r}") from None
        raise InputError(f"{path}: rows have differing column counts")
    nan = np.flatnonzero(~np.isfinite(arr[:, :min_cols]).all(axis=1))
    if nan.size:
        k = int(nan[0])
        raise InputError(f"{path}:{first + k + 1}: expected finite numbers, found NaN or inf: {body[k][:120]!r}")
    return arr, first + 1


def _times(path: Path, col: np.ndarray, first_line: int, what: str) -> np.ndarray:
    if np.any(col != np.floor(col)) or np.any(col < 0):
        k = int(np.flatnonzero((col != np.floor(col)) | (col < 0))[0])
        raise InputError(f"{path}:{first_line + k}: expected integer {what} in ms or µs, was {col[k]!r}")
    t = col.astype(np.int64)
    micros = t >= _MICROS_FROM
    return np.where(micros, t // 1000, t)


def read_klines(path: Path, info: FileInfo) -> KlineFile:
    text = _read_text(path)
    arr, first_line = _table(path, text, KLINE_HEADER, 6)
    open_ms = _times(path, arr[:, 0], first_line, "open_time")
    src = str(path)
    units = np.column_stack([to_units(arr[:, j], name, src, first_line)
                             for j, name in enumerate(KLINE_HEADER[1:], start=1)])
    line_of = np.arange(first_line, first_line + open_ms.size)
    open_ms, units, dups = validate_rows(open_ms, units, info.interval or "", src, line_of)
    return KlineFile(Bars(info.symbol, info.market or "", info.interval or "", open_ms, units), dups)


def read_funding(path: Path, info: FileInfo) -> FundingFile:
    """Funding rates are kept as exact Decimals from the text (they are booked as money)."""
    text = _read_text(path)
    arr, first_line = _table(path, text, FUNDING_HEADER, 2)
    t = _times(path, arr[:, 0], first_line, "funding_time")
    lines = [ln for ln in text.splitlines() if ln.strip()][first_line - 1:]
    rates: list[Decimal] = []
    for k, line in enumerate(lines):
        try:
            rates.append(Decimal(line.split(",")[1].strip()))
        except (InvalidOperation, IndexError):
            raise InputError(f"{path}:{first_line + k}: expected a funding rate, was {line[:120]!r}") from None
    bad = np.flatnonzero(np.diff(t) <= 0)
    dups = 0
    if bad.size:
        same = [int(i) for i in bad if t[i + 1] == t[i]]
        back = [int(i) for i in bad if t[i + 1] < t[i]]
        if back:
            i = back[0]
            raise InputError(f"{path}:{first_line + i + 1}: time goes backwards: {int(t[i + 1])} after {int(t[i])}")
        for i in same:
            if rates[i] != rates[i + 1]:
                raise InputError(f"{path}:{first_line + i + 1}: funding time {int(t[i])} appears twice with "
                                 f"different rates")
        keep = np.ones(t.size, bool)
        keep[[i + 1 for i in same]] = False
        t = t[keep]
        rates = [r for r, k in zip(rates, keep, strict=True) if k]
        dups = len(same)
    return FundingFile(info.symbol, t, rates, dups)
