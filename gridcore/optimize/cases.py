"""The markets a search runs on, prepared once and shared by every configuration."""

from __future__ import annotations

from gridcore.bars import Bars
from gridcore.optimize.search import MarketCase
from gridcore.params import StrategyParams
from gridcore.strategy.replay import ReplayResult
from gridcore.sweep.market import prepare_market

PERIOD = "period"


def period_case(*, exec_bars: Bars, mark_bars: Bars | None, funding: tuple | None, replay: ReplayResult,
                params: StrategyParams, start_ms: int, end_ms: int) -> dict[str, MarketCase]:
    """The whole search period as one market (normal slippage: the market as it is). Every configuration runs it
    once, continuously, as it would run live; the walk-forward windows are scored on the daily equity of that run
    (gridcore.optimize.ranking), so a fold's pick is chosen on its train window only and judged on the next."""
    market = prepare_market(exec_bars=exec_bars, mark_bars=mark_bars, funding=funding, start_ms=start_ms,
                            end_ms=end_ms, replay=replay)
    return {PERIOD: MarketCase(PERIOD, "period", market, params)}
