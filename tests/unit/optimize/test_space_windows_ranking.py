"""The search's pieces that do not run markets: spaces, walk-forward windows and the ranking rules."""

from __future__ import annotations

import pytest

from gridcore.errors import ConfigError, InputError
from gridcore.optimize.ranking import crash_verdict, rank
from gridcore.optimize.space import DEFAULT_SPACE, check_space, load_space, point_params, space_points, space_size
from gridcore.optimize.windows import parse_walk_forward, walk_forward
from gridcore.params import default_params
from gridcore.timeframes import DAY_MS, parse_utc


def test_default_space_is_valid_and_holds_at_least_a_thousand_configurations():
    space = check_space(DEFAULT_SPACE, base=default_params())
    assert space_size(space) >= 1000
    points = space_points(space)
    assert len(points) == space_size(space) and len({tuple(sorted(p.items())) for p in points}) == len(points)
    p = point_params(default_params(), points[-1])
    assert str(p.grid.min_spacing_pct) == DEFAULT_SPACE["grid.min_spacing_pct"][-1]
    assert p.account.leverage == DEFAULT_SPACE["account.leverage"][-1]


def test_space_problems_are_all_reported_and_replay_keys_are_refused():
    with pytest.raises(ConfigError) as e:
        check_space({"grid.min_spacing_pct": ["-1"], "account.leverage": [], "vsa.strength_window": [5, 10],
                     "grid.nope": [1], "policy": ["sometimes"]}, base=default_params())
    msg = str(e.value)
    for part in ("grid.min_spacing_pct = '-1'", "account.leverage: expected a non-empty list", "vsa.strength_window",
                 "shares one scanner/trigger replay", "grid.nope", "policy: expected headline or optimistic"):
        assert part in msg, part


@pytest.mark.parametrize("suffix,text", [
    (".toml", '"grid.min_spacing_pct" = ["0.003", "0.006"]\n[account]\nleverage = [2, 5]\n'),
    (".yaml", "grid.min_spacing_pct: ['0.003', '0.006']\naccount:\n  leverage: [2, 5]\n"),
    (".json", '{"grid.min_spacing_pct": ["0.003", "0.006"], "account": {"leverage": [2, 5]}}'),
])
def test_space_files_in_three_formats_give_the_same_space(tmp_path, suffix, text):
    path = tmp_path / f"space{suffix}"
    path.write_text(text)
    assert load_space(path) == {"grid.min_spacing_pct": ["0.003", "0.006"], "account.leverage": [2, 5]}


def test_walk_forward_folds_roll_by_the_test_length_and_stay_inside_the_period():
    start, end = parse_utc("2021-01-01"), parse_utc("2024-01-01")
    train, test = parse_walk_forward("365d/90d")
    folds = walk_forward(start, end, train, test)
    assert len(folds) == (end - start - train) // test
    for k, f in enumerate(folds):
        assert f.train == (start + k * test, start + k * test + train)
        assert f.test[0] == f.train[1] and f.test[1] - f.test[0] == test and f.test[1] <= end
    assert parse_walk_forward("12M/3M") == (360 * DAY_MS, 90 * DAY_MS)
    with pytest.raises(InputError, match="TRAIN/TEST"):
        parse_walk_forward("365d")
    with pytest.raises(InputError, match="fit"):
        walk_forward(start, start + 100 * DAY_MS, train, test)


def _row(score, dd=0.02, liq=0, curve=None):
    row = {"score": score, "return": 0.0, "max_drawdown": dd, "liquidations": liq, "grids": 1, "fills": 1,
           "exits": {}, "status": "IDLE", "fees": 0.0, "grid_profit": 0.0, "funding": 0.0, "initial_equity": 100.0}
    if curve is not None:
        row["daily_ms"], row["daily_equity"] = [d * DAY_MS for d in range(len(curve))], curve
    return row


def test_window_scores_come_from_the_daily_equity_inside_each_window():
    from gridcore.optimize.search import window_score

    ms = [d * DAY_MS for d in range(6)]
    eq = [101.0, 102.0, 100.0, 103.0, 103.0, 99.0]
    assert window_score(ms, eq, 0, 2 * DAY_MS, initial=100, max_drawdown=None, objective="return") == \
        pytest.approx(0.02)
    assert window_score(ms, eq, 2 * DAY_MS, 5 * DAY_MS, initial=100, max_drawdown=None, objective="return") == \
        pytest.approx(103 / 102 - 1)  # against the close of the day before the window
    assert window_score(ms, eq, 1 * DAY_MS, 4 * DAY_MS, initial=100, max_drawdown=None, objective="return_dd") == \
        pytest.approx((103 / 101 - 1) / max(1 - 100 / 102, 0.01))
    assert window_score(ms, eq, 9 * DAY_MS, 10 * DAY_MS, initial=100, max_drawdown=None, objective="sharpe") is None


def test_crash_gate_and_ranking_by_out_of_sample_scores():
    day = DAY_MS
    folds = walk_forward(0, 8 * day, 4 * day, 2 * day)  # train 4 days, test 2, two folds
    assert len(folds) == 2
    curves = {0: [101, 102, 103, 104, 104.5, 105, 105.5, 106],   # steady: best on train, good on test
              1: [100, 100, 100, 100.5, 103, 106, 109, 112],     # weak train, best test
              2: [100, 99, 98, 97, 96, 95, 94, 93],              # loses (out at the crash gate anyway)
              3: [110, 120, 130, 140, 150, 160, 170, 180]}       # best of all, but out at the crash gate
    results = {"period": {i: _row(0.0, curve=[float(x) for x in c]) for i, c in curves.items()}}
    results["crash-a"] = {0: _row(0, 0.05), 1: _row(0, 0.05), 2: _row(0, 0.05), 3: _row(0, 0.12)}
    results["crash-b"] = {0: _row(0, 0.01), 1: _row(0, 0.01), 2: _row(0, 0.01, liq=1), 3: _row(0, 0.01)}
    points = [{"x": i} for i in range(4)]
    out = rank(points=points, folds=folds, results=results, crash_names=["a", "b"], max_drawdown=0.10,
               objective="return")
    order = [r["config"] for r in out["results"]]
    assert order[:2] == [1, 0] and set(order[2:]) == {2, 3} and out["passed_crash_gate"] == 2
    assert [p["pick"] for p in out["walk_forward"]] == [0, 1]  # the best surviving config on each train window
    ok, why = crash_verdict({"a": results["crash-a"][3], "b": results["crash-b"][3]}, 0.10)
    assert not ok and "a: drawdown 12.00 %" in why[0]
