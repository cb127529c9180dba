"""The app's tables. Each module holds one area; import models from here."""

from grid_trading.models.backtest import BacktestRun
from grid_trading.models.config import GridStrategyConfig
from grid_trading.models.execution import ExecutionEvent, GridFill, GridOrder, StrategyState
from grid_trading.models.market_data import FundingRate, KlineChunk
from grid_trading.models.signals import TradingSignal
from grid_trading.models.zones import GridZone

__all__ = ["BacktestRun", "ExecutionEvent", "FundingRate", "GridFill", "GridOrder", "GridStrategyConfig", "GridZone",
           "KlineChunk", "StrategyState", "TradingSignal"]
