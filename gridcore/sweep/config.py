"""One sweep configuration and its kernel parameters.

A configuration is what run_backtest takes besides the market: the full StrategyParams (grid levels and spacing,
range, costs, fills, risk, account), the fill policy (headline / optimistic) and the slippage mode (§5.4). All
configurations of one sweep share the scanner/trigger replay, so they must agree on the parameters the replay
depends on (`REPLAY_GROUPS`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np

from gridcore.bars import SCALE, decimal_units
from gridcore.errors import InputError
from gridcore.params import StrategyParams, merge_dicts, params_from_dict, params_to_dict, set_dotted
from gridcore.sim.matching import slippage_for
from gridcore.sim.path import SimBar
from gridcore.strategy.engine import FillPolicyName
from gridcore.sweep.layout import (
    M_H,
    M_L,
    M_O,
    NP,
    NQ,
    P_DEFRATE,
    P_LEV,
    P_LIQFEE,
    P_MAKER,
    P_MAXDD,
    P_QP,
    P_STEP,
    P_TAKER,
    PATH_RULES,
    Q_ADVERSE,
    Q_BEYOND,
    Q_CAP,
    Q_FAST,
    Q_HISTFUND,
    Q_LIQ,
    Q_MINNOT,
    Q_MINQTY,
    Q_PATH,
    Q_RBC,
    Q_SAMEBAR,
    Q_THETA,
    Q_TICK,
)
from gridcore.sweep.market import SweepMarket
from gridcore.symbols import SymbolRules

REPLAY_GROUPS = ("timeframes", "volume_profile", "box", "ma", "squeeze", "vsa")
POLICIES = ("headline", "optimistic")


@dataclass(frozen=True)
class SweepConfig:
    """run_backtest's per-run choices: the parameters, the fill policy, the slippage mode; `label` names it."""

    params: StrategyParams
    policy: FillPolicyName = "headline"
    slippage_mode: str = "normal"
    label: str = ""


def config_grid(base: StrategyParams, axes: Mapping[str, Sequence[Any]], *,
                slippage_mode: str = "normal") -> list[SweepConfig]:
    """The cartesian product of dotted parameter values (`"grid.min_spacing_pct": [...]`); the pseudo-keys
    `policy` and `slippage_mode` choose the fill policy and the slippage mode. Labels list the chosen values."""
    keys = list(axes)
    base_dict = params_to_dict(base)
    out = []
    for values in itertools.product(*(axes[k] for k in keys)):
        chosen = dict(zip(keys, values, strict=True))
        policy = chosen.pop("policy", "headline")
        mode = chosen.pop("slippage_mode", slippage_mode)
        overlay: dict[str, Any] = {}
        for key, value in chosen.items():
            set_dotted(overlay, key, value)
        params = params_from_dict(merge_dicts(base_dict, overlay))
        label = " ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        out.append(SweepConfig(params, policy, mode, label))
    return out


def check_configs(configs: Iterable[SweepConfig]) -> None:
    """Every configuration shares the replay's parameters; policies and slippage modes are known."""
    configs = list(configs)
    if not configs:
        raise InputError("expected at least one configuration, was none")
    first = configs[0].params
    for i, cfg in enumerate(configs):
        if cfg.policy not in POLICIES:
            raise InputError(f"configuration {i}: expected policy headline or optimistic, was {cfg.policy!r}")
        slippage_for(cfg.params.costs, cfg.slippage_mode)  # type: ignore[arg-type]
        for g in REPLAY_GROUPS:
            if getattr(cfg.params, g) != getattr(first, g):
                raise InputError(f"configuration {i}: expected the {g} parameters of configuration 0 (one shared "
                                 f"scanner/trigger replay), were different")


def _ceil(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_CEILING))


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def kernel_params(cfg: SweepConfig, rules: SymbolRules, market: SweepMarket, *, fast: bool = True):
    """(P, Q, tiers, slippage per bar, participation cap per bar) of one configuration."""
    p, step = cfg.params, rules.step_size
    policy = p.fills.headline if cfg.policy == "headline" else p.fills.optimistic
    P = np.zeros(NP)
    P[P_MAXDD], P[P_MAKER], P[P_TAKER] = float(p.risk.max_drawdown), float(p.costs.maker_fee), float(p.costs.taker_fee)
    P[P_LIQFEE], P[P_DEFRATE] = float(p.costs.liquidation_fee), float(p.costs.default_funding_rate)
    P[P_QP], P[P_LEV], P[P_STEP] = float(step / SCALE), float(p.account.leverage), float(step)
    Q = np.zeros(NQ, np.int64)
    tick = decimal_units(rules.tick_size, what="the tick size")
    Q[Q_THETA], Q[Q_SAMEBAR] = policy.trade_through_ticks * tick, int(policy.same_bar_refill)
    Q[Q_PATH], Q[Q_RBC] = PATH_RULES.index(policy.path), p.risk.range_break_closes
    Q[Q_ADVERSE], Q[Q_BEYOND] = int(p.risk.exit_on_adverse_fire), int(p.risk.exit_beyond_range)
    Q[Q_HISTFUND], Q[Q_LIQ] = int(p.costs.funding_source == "history"), int(market.market == "perp")
    Q[Q_MINQTY], Q[Q_MINNOT] = _ceil(rules.min_qty / step), _ceil(rules.min_notional * SCALE / step)
    Q[Q_CAP], Q[Q_TICK], Q[Q_FAST] = int(p.fills.participation_cap), tick, int(fast)
    tiers = np.array([[float(t.floor), float(t.cap), float(t.mmr), float(t.cum)] for t in p.account.brackets.tiers])
    return P, Q, tiers, bar_slippage(cfg, market), participation_cap(cfg, rules, market)


def bar_slippage(cfg: SweepConfig, market: SweepMarket) -> np.ndarray:
    """slippage_for(costs, mode, bar) of every bar (crash mode depends on the bar's range)."""
    c = cfg.params.costs
    if cfg.slippage_mode != "crash":
        return np.full(market.n, float(slippage_for(c, cfg.slippage_mode)))  # type: ignore[arg-type]
    key = ("crash", c.stress_slippage, c.crash_range_factor)
    if key not in market.cache:
        mk = market.mk
        market.cache[key] = np.array([float(slippage_for(c, "crash", SimBar.from_units(0, o, h, lo, o)))
                                      for o, h, lo in zip(mk[:, M_O].tolist(), mk[:, M_H].tolist(),
                                                          mk[:, M_L].tolist(), strict=True)])
    return market.cache[key]


def participation_cap(cfg: SweepConfig, rules: SymbolRules, market: SweepMarket) -> np.ndarray:
    """floor(participation_rate·volume / step) of every bar (steps), or an empty array without the cap."""
    f = cfg.params.fills
    if not f.participation_cap:
        return np.zeros(0, np.int64)
    key = ("cap", f.participation_rate, rules.step_size)
    if key not in market.cache:
        rate = Decimal(repr(f.participation_rate))
        denom = rules.step_size * SCALE
        market.cache[key] = np.array([_floor(rate * int(v) / denom) for v in market.volume.tolist()], np.int64)
    return market.cache[key]


def zone_bounds(s1: Decimal, s2: Decimal, r1: Decimal, r2: Decimal) -> tuple[int, int, int, int]:
    """Integer unit bounds for the close tests: c < S  <=>  c < ceil(S), c > R  <=>  c > floor(R)."""
    return (decimal_units(s1, ROUND_CEILING), decimal_units(s2, ROUND_CEILING), decimal_units(r1, ROUND_FLOOR),
            decimal_units(r2, ROUND_FLOOR))


def to_steps(q: Decimal, step: Decimal, what: str) -> int:
    s = q / step
    if s != s.to_integral_value():
        raise InputError(f"expected {what} on the step {step}, was {q}")
    return int(s)
