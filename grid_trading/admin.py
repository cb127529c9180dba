"""Admin registrations. Strategy configs are immutable, so their admin is read-only."""

from __future__ import annotations

from django.contrib import admin

from grid_trading.models import GridStrategyConfig


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
