"""Kline intervals and UTC time helpers. Times inside the core are int64 milliseconds since the epoch, UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from gridcore.errors import InputError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# Binance kline interval names -> length in ms. Month intervals are left out on purpose: they are not fixed-length.
INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
}


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise InputError(f"expected a kline interval out of {', '.join(INTERVAL_MS)}, was {interval!r}") from None


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def dt_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise InputError(f"expected an aware UTC datetime, was naive {dt.isoformat()}")
    return int(round(dt.timestamp() * 1000))


_YEAR_10000_MS = 253_402_300_800_000


def ms_to_iso(ms: int) -> str:
    """ISO 8601 UTC with a Z, minute precision when seconds are zero: 2020-03-12T00:00Z."""
    ms = int(ms)
    if not 0 <= ms < _YEAR_10000_MS:  # the arithmetic below assumes 4-digit years after the epoch
        dt = ms_to_dt(ms)
        if dt.second or dt.microsecond:
            return dt.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        return dt.strftime("%Y-%m-%dT%H:%MZ")
    day, rest = divmod(ms, DAY_MS)
    minutes, sub_minute = divmod(rest, MINUTE_MS)
    hh_mm = f"{_iso_day(day)}T{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{hh_mm}:{sub_minute // 1000:02d}Z" if sub_minute else f"{hh_mm}Z"


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    """YYYY-MM-DD of the day `day` days after 1970-01-01 (ms_to_iso's hot path formats many times of few days)."""
    return ms_to_dt(day * DAY_MS).strftime("%Y-%m-%d")


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_utc(text: str) -> int:
    """Parse '2020-03-01', '2020-03-10T00:00Z' or '2020-03-10T00:00:00+00:00' to ms UTC (naive means UTC)."""
    s = text.strip()
    if not _ISO.match(s):
        raise InputError(f"expected an ISO 8601 date or time such as 2020-03-10T00:00Z, was {text!r}")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt_to_ms(dt)


def floor_to(ms: int, step_ms: int) -> int:
    """Floor a UTC ms time onto a grid that is aligned to the epoch (so 4h buckets start at 00,04,..,20 UTC)."""
    return (ms // step_ms) * step_ms
