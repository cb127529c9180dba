"""gridcore.params: defaults of docs/algorithms.md §7/§8, validation, canonical hashing, TOML/YAML round trips."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcore.errors import ConfigError
from gridcore.params import (
    StrategyParams,
    canonical_json,
    default_params,
    diff_params,
    dump_toml,
    dump_yaml,
    flatten_params,
    known_paths,
    load_toml,
    load_yaml,
    merge_dicts,
    params_from_dict,
    params_hash,
    params_to_dict,
    set_dotted,
)

REPO = Path(__file__).resolve().parents[2]
D = Decimal


def problems_of(d: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        params_from_dict(d)
    return info.value.problems


# --- defaults -------------------------------------------------------------------------------------------------


def test_defaults_equal_the_section_7_table():
    p = default_params()
    vp, box, ma, sq, vsa = p.volume_profile, p.box, p.ma, p.squeeze, p.vsa
    # VPVR: 1h / 720 bars / 100 rows; uniform / 0.70 / 2 rows; sigma 1.5 / prominence 0.10 / distance 3
    assert (vp.interval, vp.lookback_bars, vp.rows) == ("1h", 720, 100)
    assert (vp.distribution, vp.va_pct, vp.va_step) == ("uniform", 0.70, 2)
    assert (vp.smooth_sigma, vp.hvn_prominence, vp.hvn_distance) == (1.5, 0.10, 3)
    # Box: split / peak / max(0.5 ATR, 0.3 %) / 5 %
    assert (box.mode, box.level, box.gap_atr, box.gap_pct, box.min_cluster_share) == ("split", "peak", 0.5, 0.003, 0.05)
    # MA25: SMA25 close / max(0.25 ATR, 0.2 %) / slope over 5 bars, +-0.5
    assert (ma.kind, ma.length, ma.tol_atr, ma.tol_pct, ma.slope_lookback, ma.slope_min) == (
        "sma", 25, 0.25, 0.002, 5, 0.5)
    assert ma.atr_len == 14 and ma.confluence_snap is True
    # Squeeze: BB 20, 2.0 / KC 20, 1.5 SMA(TR) / linreg 20 / fire window 5
    assert (sq.bb_len, sq.bb_mult, sq.kc_len, sq.kc_mult, sq.use_true_range) == (20, 2.0, 20, 1.5, True)
    assert (sq.mom_len, sq.fire_window, sq.min_on_bars, sq.bb_ddof) == (20, 5, 3, 0)
    # VSA: N 20 / wide 1.5 / narrow 0.7 / high 1.5 / ultra 2.0 / close 0.7-0.3, windows 20/5
    assert (vsa.lookback, vsa.wide, vsa.narrow, vsa.high_vol, vsa.ultra_vol) == (20, 1.5, 0.7, 1.5, 2.0)
    assert (vsa.close_high, vsa.close_low, vsa.strength_window, vsa.retest_window) == (0.7, 0.3, 20, 5)
    # Grid: geometric / max(3 break-even, 0.15 %, 2 ticks) <= 1 ATR / GTX
    g = p.grid
    assert (g.grid_type, g.min_spacing_breakeven_mult, g.min_spacing_pct, g.min_spacing_ticks) == (
        "geometric", D("3"), D("0.0015"), 2)
    assert (g.max_spacing_atr, g.time_in_force, g.breakeven_fees) == (1.0, "GTX", "maker_maker")
    # Costs: maker 0.02 % / taker 0.05 % / slippage 0.05 % (stress 0.10 %) / funding history, else 0.01 %
    c = p.costs
    assert (c.maker_fee, c.taker_fee, c.slippage, c.stress_slippage) == (D("0.0002"), D("0.0005"), D("0.0005"),
                                                                         D("0.001"))
    assert (c.funding_source, c.default_funding_rate, c.crash_range_factor) == ("history", D("0.0001"), D("0.25"))
    # Risk: stop buffer max(0.5 ATR, 0.5 %) / liq buffer 2 % / max DD 10 %; budget 0.8; funding guard 0.05 %
    r = p.risk
    assert (r.stop_buffer_atr, r.stop_buffer_pct, r.liq_buffer, r.max_drawdown) == (0.5, D("0.005"), D("0.02"),
                                                                                   D("0.10"))
    assert (r.budget_fraction, r.funding_guard, r.range_break_closes, r.max_grids_per_symbol) == (
        D("0.8"), D("0.0005"), 2, 1)
    assert p.execution.stale_data_intervals == 2
    assert all(isinstance(v, float) for v in (vp.va_pct, box.gap_pct, ma.tol_pct, vsa.close_low))
    assert all(isinstance(v, Decimal) for v in (c.maker_fee, c.slippage, r.max_drawdown, p.account.capital))


def test_defaults_follow_the_section_8_decisions():
    p = default_params()
    tf = p.timeframes
    assert (p.volume_profile.interval, tf.analysis_interval, tf.trigger_interval, tf.scan_interval) == (
        "1h", "4h", "15m", "4h")
    assert p.execution.intervals == ("1m", "5m", "1h")
    assert p.box.level == "peak" and p.grid.range_mode == "s1_r1" and p.ma.kind == "sma"
    assert p.squeeze.gating is True
    h, o = p.fills.headline, p.fills.optimistic
    assert (h.path, h.trade_through_ticks, h.same_bar_refill) == ("bar_direction", 1, False)
    assert (o.path, o.trade_through_ticks, o.same_bar_refill) == ("bar_direction", 0, True)
    assert p.fills.report_optimistic is True
    a = p.account
    assert (a.leverage, a.margin_mode, a.capital, a.quote_asset, a.margin_fraction) == (
        3, "isolated", D("10000"), "USDT", D("0.8"))
    assert (a.brackets.symbol, a.brackets.as_of) == ("BTCUSDT", "2021-03-18")
    assert p.costs.liquidation_fee == 0


def test_bracket_table_is_the_2021_03_18_btcusdt_table():
    # §5.7: notional cap / max leverage / MMR / cum, as printed in the reference.
    table = [(50_000, 125, "0.40", 0), (250_000, 100, "0.50", 50), (1_000_000, 50, "1.00", 1_300),
             (10_000_000, 20, "2.50", 16_300), (20_000_000, 10, "5.00", 266_300), (50_000_000, 5, "10", 1_266_300),
             (100_000_000, 4, "12.5", 2_516_300), (200_000_000, 3, "15", 5_016_300),
             (300_000_000, 2, "25", 25_016_300), (500_000_000, 1, "50", 100_016_300)]
    tiers = default_params().account.brackets.tiers
    assert [(t.cap, t.max_leverage, t.mmr * 100, t.cum) for t in tiers] == [
        (D(cap), lev, D(mmr), D(cum)) for cap, lev, mmr, cum in table]
    assert [t.floor for t in tiers] == [D(0)] + [t.cap for t in tiers[:-1]]


def test_tier_cum_is_reproduced_by_the_recurrence():
    tiers = default_params().account.brackets.tiers
    cum, prev_mmr = D(0), D(0)
    for t in tiers:
        cum += t.floor * (t.mmr - prev_mmr)  # cum_n = cum_{n-1} + floor_n (MMR_n - MMR_{n-1})
        prev_mmr = t.mmr
        assert t.cum == cum
    assert tiers[2].cum == 250_000 * (D("0.01") - D("0.005")) + 50 == 1300  # the worked example of §5.7


def test_defaults_pass_validation():
    assert params_from_dict({}) == default_params()
    assert params_from_dict(params_to_dict(default_params())) == default_params()


def test_every_field_is_documented():
    def walk(cls: type) -> None:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                walk(type(default))
            elif isinstance(default, tuple) and default and dataclasses.is_dataclass(default[0]):
                walk(type(default[0]))

    walk(StrategyParams)


# --- validation -----------------------------------------------------------------------------------------------


def test_partial_dict_takes_defaults_for_missing_keys():
    p = params_from_dict({"risk": {"max_drawdown": 0.08}, "grid": {"grid_type": "arithmetic"}})
    assert p.risk.max_drawdown == D("0.08") and p.grid.grid_type == "arithmetic"
    assert dataclasses.replace(p, risk=default_params().risk, grid=default_params().grid) == default_params()


def test_unknown_key_is_rejected_with_its_dotted_path_and_the_closest_key():
    (problem,) = problems_of({"box": {"gap_pcnt": 0.01}})
    assert problem.startswith("box.gap_pcnt:") and "did you mean box.gap_pct?" in problem
    (problem,) = problems_of({"fills": {"headline": {"same_bar_refil": True}}})
    assert problem.startswith("fills.headline.same_bar_refil:") and "fills.headline.same_bar_refill" in problem
    (problem,) = problems_of({"grid": {"maker_fee": "0.0001"}})  # right key, wrong group
    assert "did you mean costs.maker_fee?" in problem
    (problem,) = problems_of({"rsk": {}})
    assert problem.startswith("rsk:") and "did you mean risk?" in problem


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        params_from_dict({
            "box": {"gap_pcnt": 1, "gap_atr": "wide"},
            "vsa": {"close_low": 0.8},
            "costs": {"maker_fee": "0.0006"},
            "account": {"leverage": 0},
            "squeeze": {"bb_len": 1},
            "grid": {"grid_type": "geometrik"},
        })
    problems = info.value.problems
    paths = [p.split(":")[0] for p in problems]
    assert sorted(paths) == sorted(["box.gap_pcnt", "box.gap_atr", "vsa.close_low", "costs.taker_fee",
                                    "account.leverage", "squeeze.bb_len", "grid.grid_type"])
    assert all(" expected " in p and ", was " in p for p in problems)
    assert all(p in str(info.value) for p in problems)
    assert "did you mean 'geometric'?" in next(p for p in problems if p.startswith("grid.grid_type"))


@pytest.mark.parametrize(("d", "path", "fragment"), [
    ({"volume_profile": {"rows": 100.5}}, "volume_profile.rows", "expected an integer, was float 100.5"),
    ({"volume_profile": {"rows": True}}, "volume_profile.rows", "expected a number, was bool True"),
    ({"volume_profile": {"va_pct": 1.5}}, "volume_profile.va_pct", "expected > 0 and <= 1, was 1.5"),
    ({"volume_profile": {"va_step": 3}}, "volume_profile.va_step", "expected one of 1 | 2, was int 3"),
    ({"box": {"gap_atr": float("nan")}}, "box.gap_atr", "expected a finite number"),
    ({"costs": {"slippage": "a lot"}}, "costs.slippage", "expected a decimal number"),
    ({"costs": {"maker_fee": "0.02"}}, "costs.maker_fee", "expected >= 0 and < 0.01, was 0.02"),
    ({"risk": {"max_drawdown": 0}}, "risk.max_drawdown", "expected > 0 and < 1, was 0"),
    ({"squeeze": {"gating": "yes"}}, "squeeze.gating", "expected true or false, was str 'yes'"),
    ({"timeframes": {"trigger_interval": "10m"}}, "timeframes.trigger_interval", "expected one of '1m'"),
    ({"risk": 5}, "risk", "expected a table of keys (RiskParams), was int 5"),
    ({"execution": {"intervals": "1m"}}, "execution.intervals", "expected a list, was str '1m'"),
    ({"account": {"brackets": {"as_of": "18.03.2021"}}}, "account.brackets.as_of", "expected an ISO date"),
])
def test_wrong_types_and_out_of_range_values_are_rejected(d, path, fragment):
    (problem,) = problems_of(d)
    assert problem.startswith(path + ":") and fragment in problem


@pytest.mark.parametrize(("d", "path"), [
    ({"vsa": {"close_low": 0.7, "close_high": 0.7}}, "vsa.close_low"),
    ({"vsa": {"narrow": 1.6}}, "vsa.narrow"),
    ({"vsa": {"ultra_vol": 1.2}}, "vsa.ultra_vol"),
    ({"vsa": {"retest_window": 21}}, "vsa.retest_window"),
    ({"costs": {"taker_fee": "0.0001"}}, "costs.taker_fee"),
    ({"costs": {"stress_slippage": "0.0004"}}, "costs.stress_slippage"),
    ({"account": {"leverage": 126}}, "account.leverage"),
    ({"timeframes": {"trigger_interval": "1d"}}, "timeframes.trigger_interval"),
    ({"volume_profile": {"distribution": "ltf", "ltf_interval": "1h"}}, "volume_profile.ltf_interval"),
    ({"execution": {"intervals": ["5m", "1m"]}}, "execution.intervals"),
    ({"fills": {"optimistic": {"trade_through_ticks": 2}}}, "fills.optimistic.trade_through_ticks"),
    ({"fills": {"headline": {"same_bar_refill": True}, "optimistic": {"same_bar_refill": False}}},
     "fills.optimistic.same_bar_refill"),
])
def test_cross_field_checks(d, path):
    (problem,) = problems_of(d)
    assert problem.startswith(path + ":") and "expected" in problem


def test_cross_checks_are_skipped_when_a_field_they_read_is_already_wrong():
    (problem,) = problems_of({"costs": {"maker_fee": "x", "taker_fee": "0.0001"}})
    assert problem.startswith("costs.maker_fee:")


def _tiers() -> list[dict[str, Any]]:
    return params_to_dict(default_params())["account"]["brackets"]["tiers"]


def test_a_wrong_cum_is_caught_by_the_recurrence():
    tiers = _tiers()
    tiers[2]["cum"] = "1200"
    (problem,) = problems_of({"account": {"brackets": {"tiers": tiers}}})
    assert problem == "account.brackets.tiers[2].cum: expected 1300 by the §5.7 recurrence, was 1200"


def test_unsorted_or_gappy_tiers_are_rejected():
    tiers = _tiers()
    tiers[3], tiers[4] = tiers[4], tiers[3]
    problems = problems_of({"account": {"brackets": {"tiers": tiers}}})
    assert any(p.startswith("account.brackets.tiers[3].floor:") for p in problems)
    assert problems_of({"account": {"brackets": {"tiers": []}}}) == [
        "account.brackets.tiers: expected at least one bracket, was an empty list"]
    (problem,) = problems_of({"account": {"brackets": {"tiers": [{"floor": 0, "cap": 5, "mmr": "0.01", "cum": 0}]}}})
    assert problem.startswith("account.brackets.tiers[0].max_leverage:") and "missing" in problem


def test_a_smaller_valid_table_is_accepted():
    tiers = [{"floor": 0, "cap": 50000, "max_leverage": 20, "mmr": "0.01", "cum": 0},
             {"floor": 50000, "cap": 100000, "max_leverage": 10, "mmr": "0.02", "cum": 500}]
    p = params_from_dict({"account": {"leverage": 20, "brackets": {"symbol": "ETHUSDT", "tiers": tiers}}})
    assert p.account.brackets.tiers[1].cum == 500


def test_decimals_accept_text_ints_and_floats_and_normalise():
    a = params_from_dict({"costs": {"slippage": "0.00050"}})
    b = params_from_dict({"costs": {"slippage": 0.0005}})
    c = params_from_dict({"costs": {"slippage": "5E-4"}})
    assert a == b == c and params_hash(a) == params_hash(b) == params_hash(c) == params_hash(default_params())
    assert params_to_dict(a)["costs"]["slippage"] == "0.0005"
    assert params_to_dict(default_params())["account"]["capital"] == "10000"
    assert params_from_dict({"risk": {"max_drawdown": 0.08}}).risk.max_drawdown == D("0.08")


def test_an_integer_for_a_float_knob_hashes_like_the_float():
    assert params_hash(params_from_dict({"squeeze": {"bb_mult": 2}})) == params_hash(default_params())


# --- hashing and canonical JSON -------------------------------------------------------------------------------


def test_hash_is_the_sha256_of_the_canonical_json():
    p = default_params()
    text = canonical_json(p)
    assert params_hash(p) == hashlib.sha256(text.encode()).hexdigest()
    assert " " not in text.replace("Binance announcement 'Updates to Leverage and Margin Tiers' 2021-03-18 [S2b]", "")
    assert json.loads(text) == params_to_dict(p)
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_hash_is_stable_across_processes():
    code = "from gridcore.params import default_params, params_hash; print(params_hash(default_params()))"
    seen = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        seen.add(subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                                check=True).stdout.strip())
    assert seen == {params_hash(default_params())}


def _replace_at(p: Any, path: str, value: Any) -> Any:
    """dataclasses.replace along a dotted path (with [i] for list items), without validation."""
    head, _, rest = path.partition(".")
    m = re.fullmatch(r"(\w+)\[(\d+)\]", head)
    if m:
        name, i = m.group(1), int(m.group(2))
        items = list(getattr(p, name))
        items[i] = _replace_at(items[i], rest, value)
        return dataclasses.replace(p, **{name: tuple(items)})
    if not rest:
        return dataclasses.replace(p, **{head: value})
    return dataclasses.replace(p, **{head: _replace_at(getattr(p, head), rest, value)})


LEAVES = flatten_params(default_params())


def _other_value(current: Any) -> st.SearchStrategy[Any]:
    if isinstance(current, bool):
        return st.just(not current)
    if isinstance(current, int):
        return st.integers(-10**6, 10**6).filter(lambda v: v != current)
    if isinstance(current, float):
        return st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != current)
    if isinstance(current, Decimal):
        return st.decimals(allow_nan=False, allow_infinity=False).filter(lambda v: v != current)
    if isinstance(current, str):
        return st.text(max_size=12).filter(lambda v: v != current)
    if isinstance(current, tuple):
        return st.lists(st.sampled_from(["1m", "5m", "15m", "1h", "4h"]), max_size=4).map(tuple).filter(
            lambda v: v != current)
    raise AssertionError(f"no strategy for {current!r}")


@given(st.sampled_from(sorted(LEAVES)).flatmap(lambda path: st.tuples(st.just(path), _other_value(LEAVES[path]))))
def test_hash_changes_when_any_value_changes(change):
    path, value = change
    base = default_params()
    changed = _replace_at(base, path, value)
    assert flatten_params(changed)[path] == value
    assert params_hash(changed) != params_hash(base)
    assert [k for k, _, _ in diff_params(base, changed)] == [path]


def _shuffled(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@given(st.randoms(use_true_random=False))
def test_canonical_json_does_not_depend_on_dict_order(rnd):
    d = params_to_dict(params_from_dict({"risk": {"max_drawdown": "0.08"}, "grid": {"grid_type": "arithmetic"}}))
    shuffled = _shuffled(d, rnd)
    p = params_from_dict(shuffled)
    assert canonical_json(p) == canonical_json(params_from_dict(d))
    assert params_hash(p) == params_hash(params_from_dict(d))


# --- round trips ----------------------------------------------------------------------------------------------

varied = st.fixed_dictionaries({
    "box": st.fixed_dictionaries({"gap_atr": st.floats(0, 1e6, allow_nan=False),
                                  "gap_pct": st.floats(0, 0.999)}),
    "volume_profile": st.fixed_dictionaries({"va_pct": st.floats(0.01, 1.0), "rows": st.integers(2, 5000)}),
    "costs": st.fixed_dictionaries({"maker_fee": st.decimals("0", "0.0004", places=8),
                                    "slippage": st.decimals("0", "0.001", places=10)}),
    "grid": st.fixed_dictionaries({"grid_type": st.sampled_from(["geometric", "arithmetic"])}),
    "fills": st.fixed_dictionaries({"headline": st.fixed_dictionaries({"same_bar_refill": st.booleans()})}),
    "account": st.fixed_dictionaries({"capital": st.decimals("0.01", "1e9", places=2)}),
})


def _valid(d: dict[str, Any]) -> StrategyParams:
    if d["fills"]["headline"]["same_bar_refill"]:
        d["fills"]["optimistic"] = {"same_bar_refill": True}
    return params_from_dict(d)


@given(varied)
def test_toml_round_trip_is_exact(d):
    p = _valid(d)
    back = load_toml(dump_toml(p))
    assert back == p and params_hash(back) == params_hash(p) and canonical_json(back) == canonical_json(p)


@given(varied)
def test_yaml_round_trip_is_exact(d):
    p = _valid(d)
    back = load_yaml(dump_yaml(p))
    assert back == p and params_hash(back) == params_hash(p) and canonical_json(back) == canonical_json(p)


def test_round_trips_of_the_defaults_and_awkward_floats():
    p = params_from_dict({"box": {"gap_atr": 0.1 + 0.2, "gap_pct": 1e-7}, "volume_profile": {"smooth_sigma": 1e-300}})
    for dump, load in ((dump_toml, load_toml), (dump_yaml, load_yaml)):
        assert load(dump(default_params())) == default_params()
        back = load(dump(p))
        assert back == p and back.box.gap_atr == 0.1 + 0.2 and params_hash(back) == params_hash(p)


def test_toml_and_yaml_accept_an_unquoted_date():
    text = dump_toml(default_params()).replace('as_of = "2021-03-18"', "as_of = 2021-03-18")
    assert "as_of = 2021-03-18" in text and load_toml(text) == default_params()
    assert load_yaml("account:\n  brackets:\n    as_of: 2021-03-18\n") == default_params()


def test_loaders_report_syntax_errors_and_unknown_keys():
    with pytest.raises(ConfigError, match="expected valid TOML"):
        load_toml("[risk\nmax_drawdown = 1")
    with pytest.raises(ConfigError, match="expected a YAML mapping"):
        load_yaml("- 1\n- 2\n")
    with pytest.raises(ConfigError) as info:
        load_yaml("risk:\n  max_drawdwn: 0.2\n")
    assert info.value.problems[0].startswith("risk.max_drawdwn:")


# --- diff and dict helpers ------------------------------------------------------------------------------------


def test_diff_lists_exactly_the_changed_paths():
    a = default_params()
    b = params_from_dict({"risk": {"max_drawdown": "0.08"}, "fills": {"headline": {"path": "adaptive"}},
                          "grid": {"grid_type": "arithmetic"}})
    assert diff_params(a, b) == [("grid.grid_type", "geometric", "arithmetic"),
                                 ("fills.headline.path", "bar_direction", "adaptive"),
                                 ("risk.max_drawdown", D("0.10"), D("0.08"))]
    assert diff_params(a, a) == [] and diff_params(b, b) == []


def test_diff_reports_list_items_by_index():
    tiers = [{"floor": 0, "cap": 50000, "max_leverage": 20, "mmr": "0.01", "cum": 0}]
    b = params_from_dict({"account": {"leverage": 3, "brackets": {"tiers": tiers}}})
    changes = {k: (x, y) for k, x, y in diff_params(default_params(), b)}
    assert changes["account.brackets.tiers[0].mmr"] == (D("0.004"), D("0.01"))
    assert changes["account.brackets.tiers[9].cum"] == (D("100016300"), None)


def test_set_dotted_and_merge():
    d = params_to_dict(default_params())
    set_dotted(d, "risk.max_drawdown", 0.08)
    set_dotted(d, "account.brackets.tiers[0].max_leverage", 100)
    p = params_from_dict(d)
    assert p.risk.max_drawdown == D("0.08") and p.account.brackets.tiers[0].max_leverage == 100
    assert merge_dicts({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}, "c": 4}) == {"a": {"x": 1, "y": 3}, "b": 1,
                                                                                     "c": 4}
    with pytest.raises(ConfigError, match="expected a dotted key"):
        set_dotted(d, "risk..x", 1)


def test_known_paths_cover_every_leaf():
    leaf_paths = {re.sub(r"\[\d+\]", "[]", k) for k in LEAVES}
    assert leaf_paths <= set(known_paths())
