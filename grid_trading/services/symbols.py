"""The symbol registry of the running project: cached exchangeInfo in VAR_DIR when present, else the snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from gridcore.symbols import SymbolRegistry, registry_from_file

_registry: SymbolRegistry | None = None


def exchange_info_cache_path() -> Path:
    return Path(settings.VAR_DIR) / "cache" / "binance_usdm_exchange_info.json"


def symbol_registry() -> SymbolRegistry:
    global _registry
    if _registry is None:
        _registry = registry_from_file(exchange_info_cache_path())
    return _registry


def symbol_rules_refresh() -> SymbolRegistry:
    """Fetch exchangeInfo and cache it (atomically: write a temp file, then rename)."""
    global _registry
    from grid_trading.services.fetch import market_data_client

    doc = market_data_client().fetch_exchange_info()
    doc["_cachedAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
    path = exchange_info_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    tmp.replace(path)
    _registry = registry_from_file(path)
    return _registry
