"""The search space of a parameter search: dotted parameter keys, each with the values to try.

A space file (TOML, YAML or JSON) is a table of dotted keys to lists, e.g.

    "grid.min_spacing_pct" = ["0.0015", "0.003", "0.006"]
    "account.leverage" = [2, 3, 5]
    policy = ["headline"]            # optional: the fill policy a configuration is scored with

Only the grid, risk, account, fills and costs groups may vary: every configuration of one search shares the
scanner/trigger replay (gridcore.sweep.config.REPLAY_GROUPS must not change). Every value is checked against the
parameter schema before anything runs, all problems at once.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gridcore.errors import ConfigError
from gridcore.params import (
    StrategyParams,
    merge_dicts,
    params_from_dict,
    params_to_dict,
    parse_toml_dict,
    parse_yaml_dict,
    set_dotted,
)
from gridcore.sweep.config import REPLAY_GROUPS

PSEUDO_KEYS = ("policy",)

# The default space: 2 × 2 × 6 × 4 × 4 × 3 = 1,152 configurations. Spacing and its ATR cap set the number of levels
# (§4.1: levels = range / spacing), the range mode the grid's span, leverage the margin and liquidation distance,
# the stop buffer how far beyond S2/R2 the grid gives up.
DEFAULT_SPACE: dict[str, list[Any]] = {
    "grid.grid_type": ["geometric", "arithmetic"],
    "grid.range_mode": ["s1_r1", "s2_r2"],
    "grid.min_spacing_pct": ["0.0015", "0.0025", "0.004", "0.006", "0.009", "0.013"],
    "grid.max_spacing_atr": [0.5, 1.0, 2.0, 4.0],
    "account.leverage": [2, 3, 5, 10],
    "risk.stop_buffer_atr": [0.25, 0.5, 1.0],
}


def load_space(path: Path) -> dict[str, list[Any]]:
    """A space file by its suffix (.toml, .yaml/.yml, .json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--space: expected a readable file, was {path} ({e.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        data = parse_toml_dict(text)
    elif suffix in (".yaml", ".yml"):
        data = parse_yaml_dict(text)
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: expected valid JSON, was not: {e}") from None
    else:
        raise ConfigError(f"{path}: expected a .toml, .yaml, .yml or .json space file, was {suffix or 'no suffix'}")
    return check_space(_flatten(data), base=params_from_dict({}), source=str(path))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML/YAML tables ({"grid": {"grid_type": [...]}}) and dotted keys both become dotted keys."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def check_space(space: Mapping[str, Any], *, base: StrategyParams, source: str = "space") -> dict[str, list[Any]]:
    """The space with every key and value checked (all problems reported at once)."""
    problems: list[str] = []
    out: dict[str, list[Any]] = {}
    base_dict = params_to_dict(base)
    for key, values in space.items():
        if not isinstance(values, list | tuple) or not values:
            problems.append(f"{key}: expected a non-empty list of values, was {values!r}")
            continue
        if key in PSEUDO_KEYS:
            bad = [v for v in values if v not in ("headline", "optimistic")]
            if bad:
                problems.append(f"{key}: expected headline or optimistic, was {bad}")
            out[key] = list(values)
            continue
        group = key.split(".")[0]
        if group in REPLAY_GROUPS:
            problems.append(f"{key}: expected a key outside {', '.join(REPLAY_GROUPS)} (every configuration of a "
                            f"search shares one scanner/trigger replay), was a {group} key")
            continue
        for v in values:
            probe: dict[str, Any] = {}
            try:
                set_dotted(probe, key, v)
                params_from_dict(merge_dicts(base_dict, probe))
            except ConfigError as e:
                problems.append(f"{key} = {v!r}: {e}")
        out[key] = list(values)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return out


def space_size(space: Mapping[str, Sequence[Any]]) -> int:
    n = 1
    for values in space.values():
        n *= len(values)
    return n


def space_points(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination, as {dotted key: value} in the order of the space's keys (the last key varies fastest)."""
    keys = list(space)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k] for k in keys))]


def point_params(base: StrategyParams, point: Mapping[str, Any]) -> StrategyParams:
    """The base parameters with a point's values set (pseudo-keys left out)."""
    overlay: dict[str, Any] = {}
    for key, value in point.items():
        if key not in PSEUDO_KEYS:
            set_dotted(overlay, key, value)
    return params_from_dict(merge_dicts(params_to_dict(base), overlay))
