"""Margin, maintenance margin and liquidation for isolated USDT-M positions (algorithms.md §5.7)."""

from gridcore.risk.margin import (
    cum_recurrence,
    isolated_margin,
    liquidation_price,
    maintenance_margin,
    max_leverage_for,
    tier_for,
)

__all__ = [
    "cum_recurrence",
    "isolated_margin",
    "liquidation_price",
    "maintenance_margin",
    "max_leverage_for",
    "tier_for",
]
