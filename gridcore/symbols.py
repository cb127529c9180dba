"""Symbol normalisation and exchange rules (tick, step, minimum notional, funding interval).

Every spelling a trader types (`BTC`, `btc`, `BTCUSDT`, `BTC/USDT`, `BTC/USDT:USDT`, `btc-usdt`) means the USDT-M
perpetual `BTCUSDT`. Rules come from Binance's exchangeInfo: a cached copy when the exchange client has fetched
one, else the dated snapshot shipped in gridcore/data, so everything works offline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from gridcore.errors import SymbolError

QUOTE = "USDT"
_BASE = re.compile(r"^[A-Z0-9]{1,20}$")
_PAIR = re.compile(r"^([A-Z0-9]+)\s*[/\-_]\s*([A-Z0-9]+)(?::([A-Z0-9]+))?$")
SNAPSHOT_RESOURCE = "binance_usdm_exchange_info.json"


@dataclass(frozen=True, slots=True)
class SymbolRules:
    symbol: str
    base_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    funding_interval_hours: int
    source: str  # "snapshot 2026-11-01" or "exchangeInfo cached <date>"

    def round_price(self, price: Decimal | float | str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """Nearest tick (or floor/ceil with ROUND_DOWN/ROUND_UP); the result has the tick's exponent."""
        p = Decimal(str(price))
        return (p / self.tick_size).to_integral_value(rounding=rounding) * self.tick_size

    def floor_qty(self, qty: Decimal | float | str) -> Decimal:
        q = Decimal(str(qty))
        return (q / self.step_size).to_integral_value(rounding=ROUND_DOWN) * self.step_size

    def ceil_qty(self, qty: Decimal | float | str) -> Decimal:
        q = Decimal(str(qty))
        return (q / self.step_size).to_integral_value(rounding=ROUND_UP) * self.step_size

    def on_tick(self, price: Decimal) -> bool:
        return (price / self.tick_size) == (price / self.tick_size).to_integral_value()

    def on_step(self, qty: Decimal) -> bool:
        return (qty / self.step_size) == (qty / self.step_size).to_integral_value()


def split_symbol(text: str) -> str:
    """Normalise any accepted spelling to the exchange symbol (`BASEUSDT`) without checking it is listed."""
    raw = text
    s = text.strip().upper()
    if not s:
        raise SymbolError(f"expected a symbol such as BTC or BTCUSDT, was {raw!r}")
    m = _PAIR.match(s)
    if m:
        base, quote, settle = m.group(1), m.group(2), m.group(3)
        if quote != QUOTE or (settle is not None and settle != QUOTE):
            raise SymbolError(
                f"expected a USDT-margined symbol (BASE/USDT or BASE/USDT:USDT), was {raw!r}"
            )
    elif _BASE.match(s):
        base = s[: -len(QUOTE)] if s.endswith(QUOTE) and len(s) > len(QUOTE) else s
    else:
        raise SymbolError(f"expected a symbol of letters and digits such as BTC, BTCUSDT or BTC/USDT, was {raw!r}")
    if base == QUOTE or not _BASE.match(base):
        raise SymbolError(f"expected a base asset before USDT, was {raw!r}")
    return base + QUOTE


class SymbolRegistry:
    """The USDT-M perpetuals we know rules for, parsed from an exchangeInfo document."""

    def __init__(self, exchange_info: dict[str, Any], source: str):
        self.source = source
        self._rules: dict[str, SymbolRules] = {}
        for entry in exchange_info.get("symbols", []):
            if entry.get("contractType", "PERPETUAL") != "PERPETUAL" or entry.get("quoteAsset") != QUOTE:
                continue
            filters = {f["filterType"]: f for f in entry.get("filters", [])}
            try:
                rules = SymbolRules(
                    symbol=entry["symbol"],
                    base_asset=entry["baseAsset"],
                    tick_size=Decimal(filters["PRICE_FILTER"]["tickSize"]).normalize(),
                    step_size=Decimal(filters["LOT_SIZE"]["stepSize"]).normalize(),
                    min_qty=Decimal(filters["LOT_SIZE"]["minQty"]),
                    min_notional=Decimal(filters.get("MIN_NOTIONAL", {}).get("notional", "0")),
                    funding_interval_hours=int(entry.get("fundingIntervalHours", 8)),
                    source=source,
                )
            except (KeyError, ArithmeticError) as e:
                raise SymbolError(f"exchangeInfo entry {entry.get('symbol')!r} from {source} lacks {e}") from e
            self._rules[rules.symbol] = rules

    @property
    def symbols(self) -> list[str]:
        return sorted(self._rules)

    def normalize(self, text: str) -> str:
        symbol = split_symbol(text)
        if symbol not in self._rules:
            raise SymbolError(
                f"unknown USDT-M perpetual {symbol!r} (from input {text!r}); known from {self.source}: "
                f"{', '.join(self.symbols)}"
            )
        return symbol

    def rules(self, text: str) -> SymbolRules:
        return self._rules[self.normalize(text)]


def load_snapshot() -> dict[str, Any]:
    text = resources.files("gridcore.data").joinpath(SNAPSHOT_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)


def registry_from_file(path: Path | None) -> SymbolRegistry:
    """The cached exchangeInfo at `path` when it exists, else the shipped snapshot."""
    if path is not None and path.exists():
        doc = json.loads(path.read_text(encoding="utf-8"))
        return SymbolRegistry(doc, source=f"exchangeInfo cached {doc.get('_cachedAt', 'at an unknown time')}")
    doc = load_snapshot()
    return SymbolRegistry(doc, source=f"snapshot {doc['snapshotDate']}")


@lru_cache(maxsize=1)
def default_registry() -> SymbolRegistry:
    return registry_from_file(None)
