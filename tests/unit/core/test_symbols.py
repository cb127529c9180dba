from decimal import Decimal

import pytest

from gridcore.errors import SymbolError
from gridcore.symbols import default_registry


@pytest.mark.parametrize("text", ["BTC", "btc", "BTCUSDT", "BTC/USDT", "BTC/USDT:USDT", " btc-usdt ", "btc_usdt"])
def test_every_spelling_means_the_usdt_m_perpetual(text):
    assert default_registry().normalize(text) == "BTCUSDT"


def test_other_symbols_normalise_alike():
    reg = default_registry()
    assert [reg.normalize(s) for s in ["eth", "ETH/USDT:USDT", "solusdt"]] == ["ETHUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "expected a symbol"), ("USDT", "base asset"), ("BTC/BUSD", "USDT-margined"), ("BTC/USDT:BTC", "USDT-m"),
     ("b@d!", "letters and digits"), ("NOPE", "unknown USDT-M perpetual 'NOPEUSDT' (from input 'NOPE')")],
)
def test_bad_symbols_name_the_input(text, fragment):
    with pytest.raises(SymbolError) as e:
        default_registry().normalize(text)
    assert fragment.lower() in str(e.value).lower()
    assert repr(text) in str(e.value)


def test_rules_come_from_the_dated_snapshot_and_round_onto_the_grid():
    r = default_registry().rules("BTC")
    assert (r.tick_size, r.step_size, r.min_notional, r.funding_interval_hours) == (
        Decimal("0.1"), Decimal("0.001"), Decimal("100"), 8)
    assert "snapshot" in r.source
    assert r.round_price(7934.58) == Decimal("7934.6") and r.on_tick(Decimal("7934.6"))
    assert r.floor_qty("0.12345") == Decimal("0.123") and r.ceil_qty("0.1231") == Decimal("0.124")
    assert not r.on_step(Decimal("0.0005"))
