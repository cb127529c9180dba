"""The Scanner on real BTCUSDT perpetual 1h bars: causal by truncation, and the 2019-2023 sweep runs."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from gridcore.bars import resample
from gridcore.errors import DataError, InputError
from gridcore.kline_files import identify, read_klines
from gridcore.params import default_params
from gridcore.strategy.scanner import scan_times, scan_zone, sweep_zones
from gridcore.timeframes import HOUR_MS, parse_utc
from tests.conftest import shared_file

pytestmark = pytest.mark.realdata
TICK = Decimal("0.1")
PARAMS = default_params()


@pytest.fixture(scope="module")
def perp_1h():
    path = shared_file("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    return read_klines(path, identify(path)).bars


def _scan(bars_1h, at):
    return scan_zone(profile_bars=bars_1h, trend_bars=resample(bars_1h, "4h"), at_ms=at, params=PARAMS, tick=TICK)


def test_zone_from_truncated_data_equals_zone_with_full_history(perp_1h):
    rng = np.random.default_rng(2020)
    times = scan_times(parse_utc("2020-01-01"), parse_utc("2020-12-31T20:00Z"), PARAMS)
    picked = sorted(set(rng.choice(times, 40, replace=False).tolist()) | {parse_utc("2020-03-12T20:00Z"),
                                                                           parse_utc("2020-03-13T04:00Z")})
    full_4h = resample(perp_1h, "4h")
    valid = 0
    for at in picked:
        full = scan_zone(profile_bars=perp_1h, trend_bars=full_4h, at_ms=at, params=PARAMS, tick=TICK)
        cut = perp_1h.slice_ms(None, at)  # nothing after the scan time exists
        truncated = _scan(cut, at)
        assert truncated.as_dict() == full.as_dict(), at
        valid += full.valid
    assert 0 < valid < len(picked)  # the check covers valid and invalid boxes


def test_a_bar_that_has_not_closed_is_never_used(perp_1h):
    at = parse_utc("2020-03-12T12:00Z")
    # add the still-open 12:00 bar with an absurd value: the scan at 12:00 must not see it
    cut = perp_1h.slice_ms(None, at + HOUR_MS)
    poisoned_units = cut.units.copy()
    poisoned_units[-1] = [10**14, 10**15, 10**8, 10**14, 10**16]
    poisoned = type(cut)(cut.symbol, cut.market, cut.interval, cut.open_ms, poisoned_units)
    assert _scan(poisoned, at).as_dict() == _scan(perp_1h.slice_ms(None, at), at).as_dict()


def test_missing_or_stale_data_is_an_error_not_a_zone(perp_1h):
    with pytest.raises(DataError, match="stale"):
        _scan(perp_1h.slice_ms(None, parse_utc("2020-03-01")), parse_utc("2020-03-02T00:00Z"))
    with pytest.raises(DataError, match="expected at least 648 of the 720 1h bars"):
        _scan(perp_1h, parse_utc("2019-09-20T00:00Z"))
    with pytest.raises(InputError, match="4h close grid"):
        _scan(perp_1h, parse_utc("2020-03-02T01:00Z"))


@pytest.mark.slow
def test_sweep_every_4h_close_2019_10_to_2023_12_runs(perp_1h):
    times = scan_times(parse_utc("2019-10-01"), parse_utc("2023-12-31T20:00Z"), PARAMS)
    res = sweep_zones(profile_bars=perp_1h, trend_bars=resample(perp_1h, "4h"), times=times, params=PARAMS,
                      tick=TICK)
    n_closes = (parse_utc("2023-12-31T20:00Z") - parse_utc("2019-10-01")) // (4 * HOUR_MS) + 1
    assert len(res.zones) + len(res.skipped) == len(times) == n_closes
    # only the first days lack 30 days of history (the perp file starts 2019-09-08 17:00)
    assert all(t < parse_utc("2019-10-08") and "expected at least" in why for t, why in res.skipped)
    for z in res.zones:
        if z.valid:
            assert z.s2 < z.s1 < z.price < z.r1 < z.r2
        else:
            assert z.reasons
    share_valid = sum(z.valid for z in res.zones) / len(res.zones)
    assert 0.05 < share_valid < 0.95
