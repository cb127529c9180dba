"""The optimised scanner/trigger path equals the slow reference bit for bit on real data.

tests/reference/slow_signals.py is the code as it was before the batch kernels (one scan_zone / evaluate_trigger
per time on Bars windows, numpy/scipy analysis, the start rule in plain Python). The replay (ZoneScanner,
TriggerEvaluator in batches, warm bars) must give the same zones, evaluations and skips, compared by repr (exact for
floats), and so must the one-call functions the paper-trading services use.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from gridcore.bars import Bars, resample
from gridcore.kline_files import identify, read_klines
from gridcore.params import default_params, params_from_dict
from gridcore.strategy import replay as replay_module
from gridcore.strategy.replay import replay_signals, zone_context
from gridcore.strategy.scanner import ZoneScanner, scan_zone
from gridcore.strategy.trigger import TriggerEvaluator, evaluate_trigger
from gridcore.timeframes import HOUR_MS, parse_utc
from tests.conftest import shared_file
from tests.reference import slow_signals as slow

pytestmark = pytest.mark.realdata
TICK = Decimal("0.1")


def _read(name: str) -> Bars:
    path = shared_file(name)
    return read_klines(path, identify(path)).bars


def _cold(bars: Bars) -> Bars:
    """The same bars as a new object without cached float columns (as the services load them)."""
    return Bars(bars.symbol, bars.market, bars.interval, bars.open_ms, bars.units, bars.source_interval)


@pytest.fixture(scope="module")
def spot():
    h = _read("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz")
    return h, resample(h, "4h"), resample(_read("BTCUSDT-1m-spot-2021-10-30_2021-12-11.csv.gz"), "15m")


@pytest.fixture(scope="module")
def perp():
    h = _read("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz")
    return h, resample(h, "4h"), resample(_read("BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz"), "15m")


@pytest.fixture(scope="module")
def holed(perp):
    """Perp bars with a day of 1h bars and six hours of 15m bars missing: stale scans and trigger gaps."""
    h, _, m15 = perp
    keep_h = (h.open_ms < parse_utc("2023-01-10")) | (h.open_ms >= parse_utc("2023-01-11"))
    hh = h.take(np.flatnonzero(keep_h))
    keep_m = (m15.open_ms < parse_utc("2023-01-15T02:00Z")) | (m15.open_ms >= parse_utc("2023-01-15T08:00Z"))
    return hh, resample(hh, "4h"), m15.take(np.flatnonzero(keep_m))


def _as_reprs(res) -> tuple[list[str], list[tuple[str, str]], list[tuple[int, str]]]:
    return [repr(z) for z in res.zones], [(repr(z), repr(e)) for z, e in res.evaluations], list(res.skipped)


def _both(bars, start, end, params):
    h, h4, m15 = bars
    kw = {"start_ms": parse_utc(start), "end_ms": parse_utc(end), "params": params, "tick": TICK}
    fast = replay_signals(profile_bars=_cold(h), trend_bars=_cold(h4), trigger_bars=_cold(m15), **kw)
    ref = slow.replay_signals(profile_bars=h, trend_bars=h4, trigger_bars=m15, **kw)
    return fast, ref


VARIANTS = {
    "defaults": {},
    "vsa windows": {"vsa": {"strength_window": 10, "retest_window": 3, "weak_window": 8, "lookback": 14}},
    "profile and nodes": {"volume_profile": {"va_step": 1, "va_bounds": "centres", "rows": 60, "smooth_sigma": 0.7,
                                             "hvn_distance": 5, "hvn_prominence": 0.02}},
    "no smoothing, ema, centroid": {"volume_profile": {"smooth_sigma": 0.0, "hvn_distance": 1},
                                    "ma": {"kind": "ema"}, "box": {"level": "centroid", "eps_bins": 0},
                                    "squeeze": {"use_true_range": False, "fire_window": 9, "ranging_crosses": 1}},
}


def test_replay_equals_the_slow_reference_on_spot_2021(spot):
    fast, ref = _both(spot, "2021-11-01", "2021-11-15", default_params())
    assert _as_reprs(fast) == _as_reprs(ref)
    assert len(ref.evaluations) > 500 and any(e.start for _, e in ref.evaluations)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_replay_equals_the_slow_reference_on_perp_2023(perp, variant):
    fast, ref = _both(perp, "2023-01-01", "2023-01-21", params_from_dict(VARIANTS[variant]))
    assert _as_reprs(fast) == _as_reprs(ref)
    assert len(ref.evaluations) > 300 and ref.skipped  # the first trigger closes lack VSA history


def test_replay_with_data_gaps_equals_the_slow_reference(holed):
    fast, ref = _both(holed, "2023-01-05", "2023-01-20", default_params())
    assert _as_reprs(fast) == _as_reprs(ref)
    kinds = [why.split(":")[0] for _, why in ref.skipped]
    assert "scanner" in kinds and "trigger" in kinds


def test_small_batches_and_progress_reports_equal_one_batch(perp, monkeypatch):
    h, h4, m15 = perp
    kw = {"profile_bars": h, "trend_bars": h4, "trigger_bars": m15, "start_ms": parse_utc("2023-01-01"),
          "end_ms": parse_utc("2023-03-01"), "params": default_params(), "tick": TICK}
    calls_one, calls_small = [], []
    one = replay_signals(**kw, progress=lambda i, n: calls_one.append((i, n)))
    monkeypatch.setattr(replay_module, "FLUSH_EVERY", 7)
    small = replay_signals(**kw, progress=lambda i, n: calls_small.append((i, n)))
    assert _as_reprs(small) == _as_reprs(one)
    assert calls_small == calls_one and [i for i, _ in calls_one] == [5000]


def test_one_call_functions_equal_the_replay(perp):
    """scan_zone / evaluate_trigger (what the services call, on cold bars) give the replay's zones and evaluations,
    and TriggerEvaluator over all the pairs at once gives the same as one call per pair."""
    h, h4, m15 = perp
    params = default_params()
    res = replay_signals(profile_bars=h, trend_bars=h4, trigger_bars=m15, start_ms=parse_utc("2023-02-01"),
                         end_ms=parse_utc("2023-02-08"), params=params, tick=TICK)
    assert len(res.evaluations) > 200
    for z in res.zones:
        cut = _cold(h.slice_ms(z.bar_ms - 800 * HOUR_MS, z.bar_ms))
        assert repr(scan_zone(profile_bars=cut, trend_bars=resample(cut, "4h"), at_ms=z.bar_ms, params=params,
                              tick=TICK)) == repr(z)
    scanner = ZoneScanner(profile_bars=_cold(h), trend_bars=_cold(h4), params=params, tick=TICK)
    assert [repr(scanner.scan(z.bar_ms)) for z in res.zones] == [repr(z) for z in res.zones]
    times = [e.bar_ms for _, e in res.evaluations]
    contexts = [zone_context(z) for z, _ in res.evaluations]
    one_by_one = [evaluate_trigger(bars=_cold(m15), at_ms=t, zone=c, params=params, tick=float(TICK))
                  for t, c in zip(times, contexts, strict=True)]
    batch = TriggerEvaluator(bars=_cold(m15), params=params, tick=float(TICK)).evaluate(times, contexts)
    assert [repr(e) for e in one_by_one] == [repr(e) for e in batch] == [repr(e) for _, e in res.evaluations]
