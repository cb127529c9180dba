"""Reusable pytest fixtures around FakeBinance (load with `pytest_plugins = ["tests.fake_binance_fixtures"]`).

- `fake_binance`: a started FakeBinance over small generated data (seeded random walks), described by
  `fake_binance_data` (a Generated: the served series and the constants they were made from).
- `fake_binance_real`: a started FakeBinance over files of ../shared/data (REAL_FILES); skipped when absent.
- `loopback_only`: while active, any attempt to resolve or connect to a host other than 127.0.0.1 fails, so a
  missed URL override can never reach the real Binance. Both server fixtures use it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from fake_binance import FakeBinance
from gridcore.bars import Bars
from gridcore.timeframes import HOUR_MS, MINUTE_MS, parse_utc
from tests.conftest import DATA_DIR, REQUIRE_DATA

START_MS = parse_utc("2023-06-01")
DAYS = 3
MINUTES = DAYS * 24 * 60
FUNDING_START_MS = parse_utc("2023-01-01")
FUNDING_EVENTS = 3 * 365  # a year of 8-hourly funding: two pages of 1000
# ETHUSDT perp 1m has two real gaps, by minute slot: one inside the first 1500-bar page, and one that starts
# exactly where that page ends (so the next page opens with it).
ETH_MINUTES = 2 * 24 * 60
ETH_GAPS = ((600, 637), (1537, 1557))
REAL_FILES = ("BTCUSDT-1h-perp-*.csv.gz", "BTCUSDT-fundingRate-*.csv.gz", "BTCUSDT-5m-spot-2019-11-15_*.csv.gz")
REAL_SKIP = "needs ../shared/data (set AUTOGRID_DATA_DIR or place shared/ beside the repo)"


def random_walk(symbol: str, market: str, start_ms: int, n: int, seed: int, *, interval: str = "1m",
                step_ms: int = MINUTE_MS, base: int = 30_000, tick_units: int = 10**7) -> Bars:
    """n seeded random-walk bars on the tick grid (default 0.1), volume with 3 decimals, OHLC consistent."""
    rng = np.random.default_rng(seed)
    close = base * 10**8 // tick_units + np.cumsum(rng.integers(-30, 31, n))
    open_ = np.r_[close[0] - rng.integers(-5, 6), close[:-1]]
    high = np.maximum(open_, close) + rng.integers(0, 20, n)
    low = np.minimum(open_, close) - rng.integers(0, 20, n)
    volume = rng.integers(1, 500_000, n) * 10**5
    units = np.column_stack([open_ * tick_units, high * tick_units, low * tick_units, close * tick_units, volume])
    open_ms = start_ms + np.arange(n, dtype=np.int64) * step_ms
    return Bars(symbol, market, interval, open_ms, units.astype(np.int64))


def funding_events(start_ms: int, n: int, seed: int) -> tuple[np.ndarray, list[Decimal]]:
    rng = np.random.default_rng(seed)
    ms = start_ms + np.arange(n, dtype=np.int64) * 8 * HOUR_MS
    return ms, [Decimal(int(k)).scaleb(-8) for k in rng.integers(-5_000, 20_000, n)]


@dataclass(frozen=True)
class Generated:
    """What `fake_binance` serves, and the constants it was made from (test modules get it from the
    `fake_binance_data` fixture rather than importing this module, which pytest loads as a plugin)."""

    btc_perp: Bars  # 1m, MINUTES bars from START_MS
    btc_spot: Bars  # 1m, same span
    eth_perp: Bars  # 1m, ETH_MINUTES slots from START_MS with ETH_GAPS missing
    btc_funding: tuple[np.ndarray, list[Decimal]]  # FUNDING_EVENTS 8-hourly from FUNDING_START_MS
    eth_funding: tuple[np.ndarray, list[Decimal]]
    start_ms: int = START_MS
    end_ms: int = START_MS + MINUTES * MINUTE_MS
    minutes: int = MINUTES
    eth_minutes: int = ETH_MINUTES
    eth_gaps: tuple[tuple[int, int], ...] = ETH_GAPS
    funding_start_ms: int = FUNDING_START_MS
    funding_events: int = FUNDING_EVENTS


def generated() -> Generated:
    eth = random_walk("ETHUSDT", "perp", START_MS, ETH_MINUTES, seed=3, base=1_800, tick_units=10**6)
    keep = np.ones(ETH_MINUTES, bool)
    for lo, hi in ETH_GAPS:
        keep[lo:hi] = False
    return Generated(
        btc_perp=random_walk("BTCUSDT", "perp", START_MS, MINUTES, seed=1),
        btc_spot=random_walk("BTCUSDT", "spot", START_MS, MINUTES, seed=2, tick_units=10**6),
        eth_perp=eth.take(keep),
        btc_funding=funding_events(FUNDING_START_MS, FUNDING_EVENTS, seed=4),
        eth_funding=funding_events(START_MS, DAYS * 3, seed=5),
    )


GENERATED = generated()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse name resolution and connections to anything but the loopback interface."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def local(host: object) -> bool:
        return host in ("localhost", "::1") or (isinstance(host, str) and host.startswith("127."))

    def getaddrinfo(host: object, *args: Any, **kwargs: Any) -> Any:
        if not local(host):
            raise OSError(f"test tried to reach {host!r}: only 127.0.0.1 is allowed in tests")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not local(address[0]):
            raise OSError(f"test tried to connect to {address!r}: only 127.0.0.1 is allowed in tests")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="session")
def fake_binance_data() -> Generated:
    return GENERATED


@pytest.fixture
def fake_binance(loopback_only: None) -> Iterator[FakeBinance]:
    g = GENERATED
    fake = FakeBinance([g.btc_perp, g.btc_spot, g.eth_perp],
                       {"BTCUSDT": g.btc_funding, "ETHUSDT": g.eth_funding})
    with fake:
        yield fake


@pytest.fixture(scope="session")
def _fake_binance_real_server() -> Iterator[FakeBinance]:
    if not (DATA_DIR / "README.md").exists():
        message = f"{REAL_SKIP}; looked in {DATA_DIR}"
        if REQUIRE_DATA:
            pytest.fail(message + " and AUTOGRID_REQUIRE_DATA=1 forbids skipping")
        pytest.skip(message)
    with FakeBinance.from_files(DATA_DIR, REAL_FILES) as fake:
        yield fake


@pytest.fixture
def fake_binance_real(_fake_binance_real_server: FakeBinance, loopback_only: None) -> Iterator[FakeBinance]:
    _fake_binance_real_server.reset()
    yield _fake_binance_real_server
    _fake_binance_real_server.reset()
