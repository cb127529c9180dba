"""The app's tables. Each module holds one area; import models from here."""

from grid_trading.models.market_data import FundingRate, KlineChunk

__all__ = ["FundingRate", "KlineChunk"]
