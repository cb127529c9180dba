"""Exchange clients: Binance market data through ccxt (no Django here)."""

from gridcore.exchange.binance import (
    FUNDING_PAGE_LIMIT,
    PAGE_LIMITS,
    BinanceClient,
    FetchReport,
    PremiumIndex,
    RetryPolicy,
    redirect_urls,
)

__all__ = ["FUNDING_PAGE_LIMIT", "PAGE_LIMITS", "BinanceClient", "FetchReport", "PremiumIndex", "RetryPolicy",
           "redirect_urls"]
