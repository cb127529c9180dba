"""The Trigger on real data: causal (truncation), and the scanner+trigger replay is causal as a whole."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from gridcore.bars import resample
from gridcore.errors import DataError
from gridcore.kline_files import identify, read_klines
from gridcore.params import default_params
from gridcore.strategy.replay import replay_signals, zone_context
from gridcore.strategy.scanner import scan_zone
from gridcore.strategy.trigger import evaluate_trigger
from gridcore.timeframes import parse_utc
from tests.conftest import shared_file

pytestmark = pytest.mark.realdata
PARAMS = default_params()
TICK = Decimal("0.1")


def _read(name):
    path = shared_file(name)
    return read_klines(path, identify(path)).bars


@pytest.fixture(scope="module")
def data():
    h = _read("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    m15 = resample(_read("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz"), "15m")
    return h, resample(h, "4h"), m15


def test_trigger_on_truncated_data_equals_trigger_with_later_bars(data):
    h, h4, m15 = data
    rng = np.random.default_rng(15)
    checked = 0
    for day in rng.choice(300, 12, replace=False):
        scan_at = parse_utc("2023-01-10") + int(day) * 86_400_000
        zone = scan_zone(profile_bars=h, trend_bars=h4, at_ms=scan_at, params=PARAMS, tick=TICK)
        if not zone.valid:
            continue
        for k in range(16):  # the 15m closes of the next four hours
            t = scan_at + k * 900_000
            full = evaluate_trigger(bars=m15, at_ms=t, zone=zone_context(zone), params=PARAMS, tick=0.1)
            cut = evaluate_trigger(bars=m15.slice_ms(None, t), zone=zone_context(zone), at_ms=t, params=PARAMS,
                                   tick=0.1)
            assert cut.as_dict() == full.as_dict()
            checked += 1
    assert checked >= 64


def test_replay_prefix_equals_replay_of_truncated_data(data):
    h, h4, m15 = data
    start, cut, end = parse_utc("2023-01-01"), parse_utc("2023-01-20"), parse_utc("2023-02-05")
    full = replay_signals(profile_bars=h, trend_bars=h4, trigger_bars=m15, start_ms=start, end_ms=end, params=PARAMS,
                          tick=TICK)
    h_cut = h.slice_ms(None, cut)
    short = replay_signals(profile_bars=h_cut, trend_bars=resample(h_cut, "4h"), trigger_bars=m15.slice_ms(None, cut),
                           start_ms=start, end_ms=cut, params=PARAMS, tick=TICK)
    prefix = [(z.as_dict(), e.as_dict()) for z, e in full.evaluations if e.bar_ms <= cut]
    assert [(z.as_dict(), e.as_dict()) for z, e in short.evaluations] == prefix
    assert any(e.start for _, e in full.evaluations if e.bar_ms <= cut)


def test_a_missing_trigger_bar_is_an_error_not_a_decision(data):
    h, h4, m15 = data
    zone = scan_zone(profile_bars=h, trend_bars=h4, at_ms=parse_utc("2023-01-02T16:00Z"), params=PARAMS, tick=TICK)
    holed = m15.take(np.flatnonzero(m15.open_ms != parse_utc("2023-01-02T16:00Z")))
    with pytest.raises(DataError, match="no BTCUSDT perp 15m bar closes at 2023-01-02T16:15Z"):
        evaluate_trigger(bars=holed, at_ms=parse_utc("2023-01-02T16:15Z"), zone=zone_context(zone), params=PARAMS,
                         tick=0.1)
