"""The crash suite: named periods of the real shared data a setting must survive (backtest issue, §6.4).

Each scenario names the data it needs (files of ../shared/data) and, where the data cannot feed the default
pipeline, the parameter change it runs with: March 2020 has no bars finer than 1h, so its trigger reads 1h bars.
All run with the crash slippage of §5.4 (max(stress, 0.25·(H−L)/O) on every taker fill).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    market: str
    start: str
    end: str
    exec_interval: str
    files: tuple[str, ...]
    overrides: dict = field(default_factory=dict)  # params changes (a derived, versioned config)


SPOT_1H = "BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz"
CRASH_SUITE: tuple[Scenario, ...] = (
    Scenario("march-2020", "Black Thursday, March 2020", "perp", "2020-03-01", "2020-04-01", "1h",
             ("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz", "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz"),
             {"timeframes": {"trigger_interval": "1h"}}),
    Scenario("may-2021", "19 May 2021 crash", "spot", "2021-05-01", "2021-05-20T20:00Z", "1m",
             (SPOT_1H, "BTCUSDT-1m-spot-2021-04-02_2021-05-20.csv.gz")),
    Scenario("june-2022", "3AC / Celsius, June 2022", "spot", "2022-06-01", "2022-06-26", "1m",
             (SPOT_1H, "BTCUSDT-1m-spot-2022-05-27_2022-06-26.csv.gz")),
    Scenario("luna-2022", "LUNA collapse, May 2022", "spot", "2022-05-01", "2022-05-28", "5m",
             (SPOT_1H, "BTCUSDT-5m-spot-2021-11-01_2022-05-28.csv.gz")),
    Scenario("ftx-2022", "FTX collapse, November 2022", "spot", "2022-11-01", "2022-12-01", "5m",
             (SPOT_1H, "BTCUSDT-5m-spot-2022-10-19_2023-04-17.csv.gz")),
)


def scenario(name: str) -> Scenario:
    for s in CRASH_SUITE:
        if s.name == name:
            return s
    raise KeyError(f"expected a scenario out of {', '.join(s.name for s in CRASH_SUITE)}, was {name!r}")
