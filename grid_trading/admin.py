"""Admin registrations. Strategy configs are immutable, so their admin is read-only."""

from __future__ import annotations

from django.contrib import admin

from grid_trading.models import (
    BacktestRun,
    FundingRate,
    GridFill,
    GridOrder,
    GridStrategyConfig,
    GridZone,
    KlineChunk,
    StrategyState,
    TradingSignal,
)


@admin.register(GridStrategyConfig)
class GridStrategyConfigAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "hash_prefix", "code_version", "created_at"]
    list_filter = ["name"]
    search_fields = ["name", "config_hash", "note"]
    ordering = ["name", "-version"]
    readonly_fields = ["name", "version", "params", "config_hash", "code_version", "created_at", "note", "parent"]

    @admin.display(description="hash", ordering="config_hash")
    def hash_prefix(self, obj: GridStrategyConfig) -> str:
        return obj.config_hash[:12]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Pipeline records are written by the commands only: status changes go through the transition service."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(KlineChunk)
class KlineChunkAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "market", "interval", "month_start_ms", "rows", "first_open_ms", "last_open_ms"]
    list_filter = ["symbol", "market", "interval"]
    exclude = ["data"]


@admin.register(FundingRate)
class FundingRateAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "funding_time", "rate"]
    list_filter = ["symbol"]


@admin.register(GridZone)
class GridZoneAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "market", "bar_time", "status", "valid", "s2", "s1", "price", "r1", "r2",
                    "squeeze_state", "bias"]
    list_filter = ["symbol", "market", "status", "valid", "squeeze_state"]
    date_hierarchy = "bar_time"


@admin.register(TradingSignal)
class TradingSignalAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "market", "bar_time", "direction", "status", "strength", "zone"]
    list_filter = ["symbol", "market", "direction", "status"]
    date_hierarchy = "bar_time"


@admin.register(StrategyState)
class StrategyStateAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "market", "config", "status", "position", "equity", "peak_equity", "last_bar_time"]
    list_filter = ["symbol", "market", "status"]
    exclude = ["engine_state"]


@admin.register(GridOrder)
class GridOrderAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "side", "kind", "price", "qty", "level", "status", "placed_at", "closed_at"]
    list_filter = ["status", "side", "kind"]


@admin.register(GridFill)
class GridFillAdmin(ReadOnlyAdmin):
    list_display = ["ts", "side", "price", "qty", "fee", "liquidity", "reason", "position_after", "equity_after"]
    list_filter = ["reason", "liquidity", "side"]
    date_hierarchy = "ts"


@admin.register(BacktestRun)
class BacktestRunAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "market", "start", "end", "exec_interval", "config", "config_hash", "created_at"]
    list_filter = ["symbol", "market"]
