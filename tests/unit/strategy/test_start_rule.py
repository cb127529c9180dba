"""The grid-start rule (algorithms.md §3.3 with the §2.4 / §2.5 / §8.5 gating)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcore.analysis.vsa import SignalEvent, VsaParams, VsaSignal, VsaSignalArrays, ZoneLevels, vsa_signal_arrays
from gridcore.errors import InputError
from gridcore.strategy.start_rule import (
    SQUEEZE_STATES,
    StartDecision,
    WindowZone,
    evaluate_last_bar,
    evaluate_last_bars,
    evaluate_start,
)
from tests.reference import slow_signals as slow

S = VsaSignal
TOL = 0.5
TICK = 0.1


def arrays(rows) -> tuple[np.ndarray, ...]:
    return tuple(np.array(col, dtype=float) for col in zip(*rows, strict=True))


# Support scenario: 20 falling bars, a selling climax at bar 20 (low 78, close 79.6) near S1 = 78.5, three quiet
# bars, a no-supply retest at bar 24.
SUPPORT_ROWS = ([(100.5 - i, 101.0 - i, 99.0 - i, 100.0 - i, 100.0) for i in range(20)]
                + [(81.0, 82.0, 78.0, 79.6, 250.0)] + [(80.0, 81.0, 79.0, 80.0, 100.0)] * 3
                + [(80.0, 80.25, 79.5, 79.75, 80.0)])
SUPPORT_LEVELS = {"s1": 78.5, "s2": 70.0, "r1": 90.0, "r2": 95.0}
# Resistance scenario: 20 rising bars, an upthrust at bar 20 (high 102) near R1 = 101.5, confirmed by bar 21.
RESISTANCE_ROWS = ([(79.5 + i, 81.0 + i, 79.0 + i, 80.0 + i, 100.0) for i in range(20)]
                   + [(99.5, 102.0, 98.0, 99.0, 100.0), (99.0, 99.5, 97.5, 98.0, 100.0)])
RESISTANCE_LEVELS = {"s1": 85.0, "s2": 82.0, "r1": 101.5, "r2": 105.0}


def decide(rows, levels, *, state="RANGING", bias=0, fire_dir=0, tol=TOL, t=None) -> StartDecision:
    o, h, lo, c, v = arrays(rows)
    sig = vsa_signal_arrays(o, h, lo, c, v, levels=ZoneLevels(**levels), tol=tol, tick=TICK)
    return evaluate_start(sig, h, lo, c, len(c) - 1 if t is None else t, **levels, tol=tol, bias=bias,
                          squeeze_state=state, fire_dir=fire_dir)


def test_support_scenario_starts_a_neutral_grid_when_ranging():
    d = decide(SUPPORT_ROWS, SUPPORT_LEVELS)
    assert d == StartDecision(True, "NEUTRAL", ("squeeze RANGING, bias 0: NEUTRAL grid", "VSA support setup confirmed"),
                              ("SELLING_CLIMAX@20 near S1", "NO_SUPPLY@24"), 1.0)


def test_resistance_scenario_starts_a_short_grid():
    d = decide(RESISTANCE_ROWS, RESISTANCE_LEVELS, bias=-1)
    assert d == StartDecision(True, "SHORT", ("squeeze RANGING, bias -1: SHORT grid",
                                              "VSA resistance setup confirmed"),
                              ("UPTHRUST@20 near R1", "UPTHRUST_CONFIRMED@21"), 1.0)


NO_SUPPLY_SETUP = "no supply signal (UT/ND) near R1/R2 in the last 20 bars"
NO_STRENGTH = "no strength signal near S1/S2 in the last 20 bars"


@pytest.mark.parametrize(("state", "bias", "fire_dir", "direction", "reason"), [
    ("WARMUP", 0, 0, None, "squeeze WARMUP: not enough bars for a squeeze state"),
    ("COMPRESSION", 0, 0, None, "squeeze COMPRESSION: breakout pending"),
    ("COMPRESSION", 1, 1, None, "squeeze COMPRESSION: breakout pending"),
    ("FIRED", 0, 1, "LONG", "squeeze FIRED +1, bias 0: LONG grid"),
    ("FIRED", 1, 1, "LONG", "squeeze FIRED +1, bias +1: LONG grid"),
    ("FIRED", -1, 1, None, "squeeze FIRED +1 against bias -1"),
    ("FIRED", 0, 0, None, "squeeze FIRED without a fire direction"),
    ("FIRED", 0, -1, None, NO_SUPPLY_SETUP),  # a short grid needs the resistance setup
    ("RANGING", 0, 0, "NEUTRAL", "squeeze RANGING, bias 0: NEUTRAL grid"),
    ("RANGING", 1, 0, "LONG", "squeeze RANGING, bias +1: LONG grid"),
    ("RANGING", -1, 0, None, NO_SUPPLY_SETUP),  # bias -1 vetoes the long side
    ("TRENDING", 1, 0, "LONG", "squeeze TRENDING, bias +1: LONG grid"),
    ("TRENDING", 0, 0, None, "squeeze TRENDING with bias 0: no bias side to confirm"),
    ("TRENDING", -1, 0, None, NO_SUPPLY_SETUP),
])
def test_gating_of_the_support_setup(state, bias, fire_dir, direction, reason):
    d = decide(SUPPORT_ROWS, SUPPORT_LEVELS, state=state, bias=bias, fire_dir=fire_dir)
    assert (d.start, d.direction) == (direction is not None, direction)
    assert reason in d.reasons


@pytest.mark.parametrize(("state", "bias", "fire_dir", "direction", "reason"), [
    ("COMPRESSION", -1, -1, None, "squeeze COMPRESSION: breakout pending"),
    ("FIRED", 0, -1, "SHORT", "squeeze FIRED -1, bias 0: SHORT grid"),
    ("FIRED", 1, -1, None, "squeeze FIRED -1 against bias +1"),
    ("RANGING", -1, 0, "SHORT", "squeeze RANGING, bias -1: SHORT grid"),
    ("RANGING", 0, 0, None, NO_STRENGTH),  # a neutral grid starts only from the support setup
    ("RANGING", 1, 0, None, NO_STRENGTH),
    ("TRENDING", -1, 0, "SHORT", "squeeze TRENDING, bias -1: SHORT grid"),
    ("TRENDING", 1, 0, None, "weakness at resistance: UPTHRUST at bar 20 near R1"),
])
def test_gating_of_the_resistance_setup(state, bias, fire_dir, direction, reason):
    d = decide(RESISTANCE_ROWS, RESISTANCE_LEVELS, state=state, bias=bias, fire_dir=fire_dir)
    assert (d.start, d.direction) == (direction is not None, direction)
    assert reason in d.reasons


def test_the_squeeze_module_states_are_accepted():
    from gridcore.analysis.squeeze import SqueezeState

    assert {str(s) for s in SqueezeState} == set(SQUEEZE_STATES)
    d = decide(SUPPORT_ROWS, SUPPORT_LEVELS, state=SqueezeState.RANGING)
    assert d.start and d.direction == "NEUTRAL"


def test_windows_come_from_the_params():
    evs = events((20, S.SELLING_CLIMAX), (24, S.NO_SUPPLY))
    h, lo, c = flat_bars()
    kw = {"s1": 79.5, "s2": 70.0, "r1": 95.0, "r2": 99.0, "tol": TOL, "bias": 0, "squeeze_state": "RANGING",
          "fire_dir": 0}
    assert evaluate_start(evs, h, lo, c, 29, **kw, params=VsaParams(retest_window=6)).start
    assert not evaluate_start(evs, h, lo, c, 29, **kw).start
    d = evaluate_start(evs, h, lo, c, 24, **kw, params=VsaParams(strength_window=4, retest_window=3))
    assert d.reasons[1] == "no strength signal near S1/S2 in the last 4 bars"
    vetoed = events((20, S.SELLING_CLIMAX), (21, S.NO_DEMAND), (24, S.NO_SUPPLY))
    kw["r1"] = 80.5
    assert evaluate_start(vetoed, h, lo, c, 26, **kw).start  # bar 21 is outside (26 - 5, 26]
    assert not evaluate_start(vetoed, h, lo, c, 26, **kw, params=VsaParams(weak_window=6)).start


def test_blocked_gate_still_reports_the_setup_strength():
    d = decide(SUPPORT_ROWS, SUPPORT_LEVELS, state="COMPRESSION")
    assert d.reasons == ("squeeze COMPRESSION: breakout pending",) and d.strength == 1.0


def test_climax_low_broken():
    rows = SUPPORT_ROWS + [(79.75, 80.0, 76.5, 76.5, 100.0)]
    d = decide(rows, SUPPORT_LEVELS)
    assert not d.start and d.direction is None
    assert d.reasons == ("squeeze RANGING, bias 0: NEUTRAL grid", "climax low broken: min low 76.5 < 78.0 - tol")
    assert d.strength == 0.75


@settings(max_examples=30)
@given(tol=st.floats(0.05, 1.0), eps=st.floats(0.001, 5.0), extra=st.integers(0, 3))
def test_start_rule_false_once_the_climax_low_breaks_by_more_than_tol(tol, eps, extra):
    low = 78.0 - tol - eps
    rows = SUPPORT_ROWS + [(79.75, 79.75, low, low, 100.0)] + [(low, low + 0.25, low, low, 100.0)] * extra
    # The retest at bar 24 must stay inside the 5-bar window: t = 25 + extra <= 28.
    assert decide(SUPPORT_ROWS, SUPPORT_LEVELS, tol=tol).start
    d = decide(rows, SUPPORT_LEVELS, tol=tol)
    assert not d.start
    assert any(r.startswith("climax low broken: min low ") for r in d.reasons)


@settings(max_examples=30)
@given(tol=st.floats(0.05, 1.0), frac=st.floats(0.0, 1.0))
def test_a_dip_within_tol_keeps_the_low_intact(tol, frac):
    low = max(78.0 - frac * tol, 78.0 - tol)
    rows = SUPPORT_ROWS + [(79.75, 79.75, low, low, 100.0)]
    assert decide(rows, SUPPORT_LEVELS, tol=tol).start


def test_upthrust_high_broken():
    rows = RESISTANCE_ROWS + [(98.0, 103.0, 97.5, 102.5, 100.0)]
    d = decide(rows, RESISTANCE_LEVELS, bias=-1)
    assert not d.start
    assert "upthrust high broken: max high 103.0 > 102.0 + tol" in d.reasons


# ------------------------------------------------------------------ windows and vetoes, on hand-written events

def flat_bars(m: int = 45):
    """Bars at 80 (range 79..81): near S1 = 79.5 and near R1 = 80.5 with tol 0.5."""
    return np.full(m, 81.0), np.full(m, 79.0), np.full(m, 80.0)


def events(*pairs) -> list[SignalEvent]:
    return [SignalEvent(bar, sig, 1) for bar, sig in pairs]


def decide_events(evs, t, **kw) -> StartDecision:
    h, lo, c = flat_bars()
    levels = {"s1": 79.5, "s2": 70.0, "r1": 95.0, "r2": 99.0} | kw.pop("levels", {})
    return evaluate_start(evs, h, lo, c, t, **levels, tol=TOL, bias=kw.pop("bias", 0),
                          squeeze_state=kw.pop("state", "RANGING"), fire_dir=0)


def test_strength_window_and_retest_window():
    evs = events((20, S.SELLING_CLIMAX), (24, S.NO_SUPPLY))
    assert decide_events(evs, 24).start and decide_events(evs, 28).start
    assert "no NS/T retest after the strength bar in the last 5 bars" in decide_events(evs, 29).reasons
    assert "no NS/T retest after the strength bar in the last 5 bars" in decide_events(evs, 39).reasons
    assert NO_STRENGTH in decide_events(evs, 40).reasons
    assert decide_events(evs, 23).reasons[1:] == ("no NS/T retest after the strength bar in the last 5 bars",)


def test_retest_must_come_after_the_strength_bar():
    d = decide_events(events((20, S.NO_SUPPLY), (21, S.SPRING)), 22)
    assert not d.start and d.signals == ("SPRING@21 near S1",)


@pytest.mark.parametrize("strength", [S.SELLING_CLIMAX, S.STOPPING_VOLUME, S.SHAKEOUT, S.SPRING])
@pytest.mark.parametrize("retest", [S.NO_SUPPLY, S.TEST])
def test_every_strength_and_retest_signal_counts(strength, retest):
    assert decide_events(events((30, strength), (32, retest)), 33).start
    other = events((30, S.NO_DEMAND), (32, retest))  # not a strength signal
    assert NO_STRENGTH in decide_events(other, 33).reasons


def test_strength_must_be_near_a_support_level():
    evs = events((20, S.SELLING_CLIMAX), (24, S.NO_SUPPLY))
    assert NO_STRENGTH in decide_events(evs, 24, levels={"s1": 85.0, "s2": 75.0}).reasons
    assert decide_events(evs, 24, levels={"s1": 85.0, "s2": 79.0}).signals[0] == "SELLING_CLIMAX@20 near S2"
    assert "no support levels S1/S2 given" in decide_events(evs, 24, levels={"s1": None, "s2": None}).reasons
    assert "no support levels S1/S2 given" in decide_events(evs, 24, levels={"s1": math.nan, "s2": None}).reasons


def test_weakness_at_resistance_vetoes_the_support_setup():
    evs = events((20, S.SELLING_CLIMAX), (23, S.NO_DEMAND), (24, S.NO_SUPPLY))
    assert decide_events(evs, 24).start  # R1 = 95: the no-demand bar is nowhere near it
    d = decide_events(evs, 24, levels={"r1": 80.5})
    assert not d.start
    assert "weakness at resistance: NO_DEMAND at bar 23 near R1" in d.reasons
    assert d.strength == 0.75
    assert decide_events(evs, 28, levels={"r1": 80.5}).start  # bar 23 left the 5-bar window


def test_short_mirror_on_events():
    levels = {"r1": 80.5, "r2": 95.0, "s1": 70.0}
    # ND is supply strength and the no-demand retest; UT confirmed by the next down bar.
    assert decide_events(events((30, S.NO_DEMAND), (33, S.NO_DEMAND)), 34, levels=levels, bias=-1).start
    assert decide_events(events((30, S.UPTHRUST), (31, S.UPTHRUST_CONFIRMED)), 31, levels=levels, bias=-1).start
    no_retest = decide_events(events((30, S.UPTHRUST), (31, S.NO_SUPPLY)), 31, levels=levels, bias=-1)
    assert "no ND/UT-confirmation retest after the supply bar in the last 5 bars" in no_retest.reasons
    vetoed = decide_events(events((30, S.UPTHRUST), (31, S.UPTHRUST_CONFIRMED), (31, S.SPRING)), 31,
                           levels=levels | {"s1": 79.5}, bias=-1)
    assert "strength at support: SPRING at bar 31 near S1" in vetoed.reasons


def test_invalid_arguments_are_refused():
    h, lo, c = flat_bars()
    kw = {"s1": 79.5, "s2": 70.0, "r1": 95.0, "r2": 99.0, "tol": TOL, "fire_dir": 0}
    with pytest.raises(InputError, match="squeeze_state"):
        evaluate_start([], h, lo, c, 10, **kw, bias=0, squeeze_state="SIDEWAYS")
    with pytest.raises(InputError, match="bias"):
        evaluate_start([], h, lo, c, 10, **kw, bias=2, squeeze_state="RANGING")
    with pytest.raises(InputError, match="t: expected"):
        evaluate_start([], h, lo, c, 45, **kw, bias=0, squeeze_state="RANGING")
    o, v = np.full(45, 80.0), np.full(45, 1.0)
    tail = vsa_signal_arrays(o, h, lo, c, v, levels=None, tol=TOL, tick=TICK, start=30)
    with pytest.raises(InputError, match="evaluated from bar 30"):
        evaluate_start(tail, h, lo, c, 40, **kw, bias=0, squeeze_state="RANGING")


# ---------------------------------------------------------------------------------- fast path == full path

def random_walk_bars(seed: int, m: int):
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.normal(0, 0.4, m // 25 + 1), 25)[:m]
    close = 100 * np.exp(np.cumsum(drift * 0.01 + rng.normal(0, 0.008, m)))
    open_ = np.r_[close[0], close[:-1]]
    burst = np.where(rng.random(m) < 0.1, 3.0, 1.0)
    high = np.maximum(open_, close) * (1 + rng.exponential(0.003, m) * burst)
    low = np.minimum(open_, close) * (1 - rng.exponential(0.003, m) * burst)
    volume = rng.lognormal(3, 0.5, m) * np.where(rng.random(m) < 0.08, 3.0, 1.0)
    return open_, high, low, close, volume


def levels_at(bars, t: int) -> dict:
    """Levels around bar t taken from the last 40 lows / highs, so setups occur."""
    lo, hi = bars[2][max(0, t - 40): t + 1], bars[1][max(0, t - 40): t + 1]
    return {"s1": float(np.quantile(lo, 0.1)), "s2": float(lo.min()) * 0.99, "r1": float(np.quantile(hi, 0.9)),
            "r2": float(hi.max()) * 1.01}


@settings(max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), state=st.sampled_from(SQUEEZE_STATES), bias=st.sampled_from([-1, 0, 1]),
       fire_dir=st.sampled_from([-1, 0, 1]))
def test_last_bar_evaluation_equals_the_full_run_and_the_event_form(seed, state, bias, fire_dir):
    bars = random_walk_bars(seed, 160)
    o, h, lo, c, v = bars
    for t in range(20, 160, 3):
        levels = levels_at(bars, t)
        tol = float(c[t]) * 0.002
        full = vsa_signal_arrays(*bars, levels=ZoneLevels(**levels), tol=tol, tick=0.01)
        kw = {**levels, "tol": tol, "bias": bias, "squeeze_state": state, "fire_dir": fire_dir}
        expected = evaluate_start(full, h, lo, c, t, **kw)
        assert evaluate_start(full.events(), h, lo, c, t, **kw) == expected
        fast = evaluate_last_bar(*(x[: t + 1] for x in bars), tick=0.01, **kw)
        assert fast.decision == expected
        assert list(fast.events) == full.events(max(0, t - 19), t + 1)
        assert expected.reasons and 0.0 <= expected.strength <= 1.0
        assert expected.start == (expected.direction is not None)
        if expected.direction == "LONG":
            assert bias != -1
        if expected.direction == "SHORT":
            assert bias != 1


def test_random_walks_produce_starts_on_both_sides():
    seen = set()
    for seed in (1, 2):
        bars = random_walk_bars(seed, 400)
        for t in range(40, 130):
            levels = levels_at(bars, t)
            for bias in (1, -1):
                d = evaluate_last_bar(*(x[: t + 1] for x in bars), **levels, tol=float(bars[3][t]) * 0.002,
                                      tick=0.01, bias=bias, squeeze_state="RANGING", fire_dir=0).decision
                if d.start:
                    seen.add(d.direction)
    assert seen == {"LONG", "SHORT"}


# ---------------------------------------------------------------------------------------------------- kernel parity
# The rule's numbers come from kernels/start_rule_nb.py; tests/reference/slow_signals.py keeps the plain-Python rule
# (and evaluate_last_bar) it must equal, texts and floats included.


def _random_rule_case(rng: np.random.Generator):
    n = int(rng.integers(1, 45))
    grid = 0.25 * rng.integers(0, 3, n)  # coarse prices: many bars exactly at a level +- tol
    low = 80.0 + np.cumsum(rng.choice([-0.5, 0.0, 0.5], n)) + grid
    high = low + 0.25 * rng.integers(0, 8, n)
    close = low + (high - low) * rng.choice([0.0, 0.25, 0.5, 1.0], n)
    bits = np.zeros(n, np.int64)
    for s in VsaSignal:
        bits |= np.where(rng.random(n) < rng.uniform(0.0, 0.35), s.bit, 0)
    prices = np.concatenate([low, high, close])

    def level():
        r = rng.random()
        return None if r < 0.15 else (math.nan if r < 0.2 else float(rng.choice(prices) + rng.choice([-0.5, 0, 0.5])))

    strength = int(rng.integers(1, 25))
    params = VsaParams(strength_window=strength, retest_window=int(rng.integers(1, strength + 1)),
                       weak_window=int(rng.integers(1, 25)))
    kw = {"s1": level(), "s2": level(), "r1": level(), "r2": level(), "tol": float(rng.choice([0.0, 0.25, 0.5, 1.0])),
          "bias": int(rng.integers(-1, 2)), "squeeze_state": str(rng.choice(SQUEEZE_STATES)),
          "fire_dir": int(rng.integers(-1, 2)), "params": params}
    return high, low, close, bits, int(rng.integers(0, n)), kw


def test_start_rule_equals_the_plain_python_reference():
    rng = np.random.default_rng(33)
    starts = 0
    for _ in range(3000):
        high, low, close, bits, t, kw = _random_rule_case(rng)
        evs = [SignalEvent(int(b), s, 0) for b in range(bits.size) for s in VsaSignal if bits[b] & s.bit]
        arrays = VsaSignalArrays(bits, *(np.zeros(bits.size) for _ in range(8)), np.zeros(bits.size, bool), start=0)
        for signals in (evs, arrays):
            got = evaluate_start(signals, high, low, close, t, **kw)
            assert got == slow.evaluate_start(signals, high, low, close, t, **kw)
        starts += got.start
    assert starts > 50


def _random_walk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    close = 100.0 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.concatenate([[close[0]], close[:-1]])
    half = rng.uniform(0.05, 1.5, n)
    volume = rng.exponential(100.0, n) * np.where(rng.random(n) < 0.1, 4.0, 1.0)
    return open_, np.maximum(open_, close) + half, np.minimum(open_, close) - half, close, volume


def test_evaluate_last_bars_equals_evaluate_last_bar_per_window():
    rng = np.random.default_rng(44)
    o, h, lo, c, v = _random_walk(rng, 3000)
    params = VsaParams()
    windows, zones, tols, expected = [], [], [], []
    for _ in range(400):
        a = int(rng.integers(0, 2700))
        b = a + int(rng.integers(1, 260))
        near = float(c[b - 1])
        levels = dict(zip(("s2", "s1", "r1", "r2"), sorted(near + rng.normal(0, 2, 4)), strict=True))
        if rng.random() < 0.1:
            levels["r2"] = None
        zone = WindowZone(levels["s1"], levels["s2"], levels["r1"], levels["r2"], int(rng.integers(-1, 2)),
                          str(rng.choice(SQUEEZE_STATES)), int(rng.integers(-1, 2)))
        tol = float(rng.uniform(0, 1.5))
        one = evaluate_last_bar(o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b], **levels, tol=tol, tick=TICK,
                                bias=zone.bias, squeeze_state=zone.squeeze_state, fire_dir=zone.fire_dir,
                                params=params)
        old = slow.evaluate_last_bar(o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b], **levels, tol=tol, tick=TICK,
                                     bias=zone.bias, squeeze_state=zone.squeeze_state, fire_dir=zone.fire_dir,
                                     params=params)
        assert one.decision == old.decision
        windows.append((a, b))
        zones.append(zone)
        tols.append(tol)
        expected.append((one.decision, one.signals.bits_at(b - a - 1)))
    assert evaluate_last_bars(o, h, lo, c, v, windows, zones, tols, tick=TICK, params=params) == expected


def test_evaluate_last_bars_checks_like_evaluate_last_bar():
    o, h, lo, c, v = _random_walk(np.random.default_rng(5), 50)
    zone = WindowZone(95.0, 90.0, 105.0, 110.0, 0, "RANGING", 0)
    with pytest.raises(InputError, match="tol: expected a finite price distance"):
        evaluate_last_bars(o, h, lo, c, v, [(0, 50)], [zone], [math.inf], tick=TICK)
    with pytest.raises(InputError, match="squeeze_state"):
        evaluate_last_bars(o, h, lo, c, v, [(0, 50)], [WindowZone(95.0, 90.0, 105.0, 110.0, 0, "SIDEWAYS", 0)],
                           [0.5], tick=TICK)
    with pytest.raises(InputError, match="levels.s1: expected a finite price"):
        evaluate_last_bars(o, h, lo, c, v, [(0, 50)], [WindowZone(math.inf, 90.0, 105.0, 110.0, 0, "RANGING", 0)],
                           [0.5], tick=TICK)
    assert evaluate_last_bars(o, h, lo, c, v, [], [], [], tick=TICK) == []
