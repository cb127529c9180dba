"""From the runs of a search to its verdict: the crash gate, walk-forward scores and the ranked table.

- Crash gate: a configuration is out when, in any crash scenario, its drawdown reached the limit
  (risk.max_drawdown, the kill switch's level) or it was liquidated.
- Walk-forward: every configuration runs the whole period once, continuously (as it would live); each fold scores
  its train and its test window on that run's daily equity. The fold's pick is the best surviving configuration on
  train; its test score is what the search would have earned out of sample (`walk_forward` in the output).
- Rank: surviving configurations by the mean of their test scores (out of sample), then by the worst test score;
  undefined scores (no trade) count as the worst.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from gridcore.optimize.cases import PERIOD
from gridcore.optimize.search import window_score
from gridcore.optimize.windows import Fold

WORST = float("-inf")


def _score(row: dict[str, Any] | None) -> float:
    if row is None or row.get("score") is None:
        return WORST
    return float(row["score"])


def crash_verdict(rows: dict[str, dict[str, Any]], max_drawdown: float) -> tuple[bool, list[str]]:
    """(passed, why not) over one configuration's crash runs."""
    why = []
    for name, r in rows.items():
        if r["max_drawdown"] >= max_drawdown:
            why.append(f"{name}: drawdown {100 * r['max_drawdown']:.2f} % >= {100 * max_drawdown:.0f} %")
        if r["liquidations"]:
            why.append(f"{name}: liquidated")
    return not why, why


def fold_scores(run: dict[str, Any], folds: Sequence[Fold], objective: str) -> list[dict[str, Any]]:
    """Train and test scores of one configuration's period run, per fold."""
    out = []
    for f in folds:
        kw = dict(initial=run["initial_equity"], max_drawdown=None, objective=objective)
        out.append({"fold": f.index, "train": window_score(run["daily_ms"], run["daily_equity"], *f.train, **kw),
                    "test": window_score(run["daily_ms"], run["daily_equity"], *f.test, **kw)})
    return out


def rank(*, points: Sequence[dict[str, Any]], folds: Sequence[Fold], results: dict[str, dict[int, dict[str, Any]]],
         crash_names: Sequence[str], max_drawdown: float, objective: str) -> dict[str, Any]:
    table = []
    scores: dict[int, list[dict[str, Any]]] = {}
    for i, point in enumerate(points):
        run = results[PERIOD][i]
        scores[i] = fold_scores(run, folds, objective)
        crashes = {name: results[f"crash-{name}"][i] for name in crash_names}
        passed, why = crash_verdict(crashes, max_drawdown)
        tests = [WORST if w["test"] is None else w["test"] for w in scores[i]]
        table.append({"config": i, "params": point, "passed_crash_gate": passed, "crash_failures": why,
                      "mean_test_score": statistics.fmean(tests) if tests and WORST not in tests else None,
                      "worst_test_score": min(tests) if tests and min(tests) != WORST else None,
                      "windows": scores[i],
                      "period": {k: run[k] for k in ("return", "max_drawdown", "grids", "fills", "fees",
                                                     "grid_profit", "funding", "exits", "liquidations", "status",
                                                     "score")},
                      "crashes": {n: {k: r[k] for k in ("return", "max_drawdown", "grids", "fills", "exits",
                                                         "liquidations", "status")} for n, r in crashes.items()}})

    def key(row: dict[str, Any]) -> tuple:
        mean = row["mean_test_score"]
        worst = row["worst_test_score"]
        return (not row["passed_crash_gate"], -(mean if mean is not None else WORST),
                -(worst if worst is not None else WORST), row["config"])

    ranked = sorted(table, key=key)
    for n, row in enumerate(ranked, 1):
        row["rank"] = n
    picks = []
    survivors = [r["config"] for r in table if r["passed_crash_gate"]]
    for k, f in enumerate(folds):
        if not survivors:
            picks.append({**f.as_dict(), "pick": None, "train_score": None, "test_score": None})
            continue
        best = max(survivors, key=lambda i: (_score({"score": scores[i][k]["train"]}), -i))
        picks.append({**f.as_dict(), "pick": best, "params": points[best], "train_score": scores[best][k]["train"],
                      "test_score": scores[best][k]["test"]})
    return {"results": ranked, "walk_forward": picks,
            "passed_crash_gate": sum(1 for r in table if r["passed_crash_gate"])}
