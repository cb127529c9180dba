"""Starting a grid, in Python with the engine's own code (grids start rarely; planning needs exact Decimals).

At a bar where the kernel reports a NEW signal in force while IDLE, `decide` runs what on_bar's maybe_start
runs before `start`: the StartSignal from the zone's stored numbers and the last settled funding rate (as
run_backtest's _start_signal), the §6.5 guards (engine._Run.guard_problems: funding against the side, stale data
after a gap), the planner at p0 = the bar's open with the equity and peak of that moment
(engine.plan_with_planner; an InputError refuses), and the exchange-rule check of the plan
(engine._Run.plan_problems). The guard and rule checks are the engine's methods called on a small view holding the
attributes they read, so any change to them applies here too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import numpy as np

from gridcore.backtest import inputs
from gridcore.backtest.runner import BacktestSignal
from gridcore.bars import decimal_units
from gridcore.errors import InputError
from gridcore.params import StrategyParams
from gridcore.strategy import engine as eng
from gridcore.strategy.grid_planner import GridPlan
from gridcore.sweep.config import to_steps, zone_bounds
from gridcore.sweep.layout import (
    BUY,
    H_DIR,
    H_INITIAL,
    H_NLEV,
    H_NORD,
    H_R1F,
    H_R2F,
    H_S1C,
    H_S2C,
    H_STOP,
    H_STOP_SHORT,
    LONG,
    NEUTRAL,
    NH,
    SELL,
    SHORT,
)
from gridcore.symbols import SymbolRules

DIRECTIONS = {"LONG": LONG, "SHORT": SHORT, "NEUTRAL": NEUTRAL}


class _EngineView:
    """What engine._Run.guard_problems / plan_problems / rule_problem read: params, gap_bars, rules."""

    def __init__(self, params: StrategyParams, rules: SymbolRules, gap_bars: int):
        self.params, self.rules, self.gap_bars = params, rules, gap_bars

    def rule_problem(self, order, ref_price):
        return eng._Run.rule_problem(self, order, ref_price)  # type: ignore[arg-type]


class Decision(NamedTuple):
    signal: eng.StartSignal
    plan: GridPlan | None  # None: refused
    reasons: tuple[str, ...]


def start_signal(sig: BacktestSignal, open_ms: int, market: str, f_ms: list[int],
                 f_rates: list[Decimal]) -> eng.StartSignal:
    """run_backtest's StartSignal: the zone's stored numbers, the last settled funding rate on the perpetual."""
    z = sig.zone
    rate = inputs.funding_rate_at(f_ms, f_rates, open_ms) if market == "perp" else None
    return inputs.start_signal(ref=str(sig.id), direction=sig.direction, s1=inputs.zone_decimal(z.s1),
                               s2=inputs.zone_decimal(z.s2), r1=inputs.zone_decimal(z.r1),
                               r2=inputs.zone_decimal(z.r2), atr=inputs.zone_atr_decimal(z.atr), funding_rate=rate)


def decide(signal: eng.StartSignal, *, open_units: int, gap_bars: int, equity: Decimal, peak: Decimal,
           params: StrategyParams, rules: SymbolRules) -> Decision:
    """maybe_start up to `start`: refused (with the engine's reasons) or the plan to start."""
    view = _EngineView(params, rules, gap_bars)
    guarded = eng._Run.guard_problems(view, signal)  # type: ignore[arg-type]
    if guarded:
        return Decision(signal, None, tuple(guarded))
    price = Decimal(int(open_units)).scaleb(-8)
    try:
        plan = eng.plan_with_planner(signal, price, equity, peak, params, rules)
    except InputError as e:
        return Decision(signal, None, (str(e),))
    problems = list(plan.reasons) if plan.refused else eng._Run.plan_problems(view, plan, price)  # type: ignore
    if plan.refused or problems:
        return Decision(signal, None, tuple(problems) or ("refused without a reason",))
    return Decision(signal, plan, ())


def plan_arrays(decision: Decision, rules: SymbolRules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(header, orders [level, side, price units, qty steps], level prices in units) of a plan to start."""
    plan, sig = decision.plan, decision.signal
    assert plan is not None
    step = rules.step_size
    levels = np.array([decimal_units(lv.price, what="a grid level") for lv in plan.levels], np.int64)
    orders = np.array([[po.level, BUY if po.side == "BUY" else SELL, decimal_units(po.price, what="an order price"),
                        to_steps(po.qty, step, "an order quantity")] for po in plan.orders], np.int64).reshape(-1, 4)
    stop = plan.stop_price if plan.stop_price is not None else sig.stop
    short = plan.stop_price_short if plan.direction == "NEUTRAL" else None
    hdr = np.zeros(NH, np.int64)
    hdr[H_DIR] = DIRECTIONS[plan.direction]
    hdr[H_INITIAL] = to_steps(plan.initial_qty, step, "the initial position")
    hdr[H_STOP] = -1 if stop is None else decimal_units(stop, what="the stop price")
    hdr[H_STOP_SHORT] = -1 if short is None else decimal_units(short, what="the short stop price")
    hdr[H_S1C], hdr[H_S2C], hdr[H_R1F], hdr[H_R2F] = zone_bounds(sig.s1, sig.s2, sig.r1, sig.r2)
    hdr[H_NLEV], hdr[H_NORD] = levels.size, orders.shape[0]
    return hdr, orders, levels


def money_decimal(x: float) -> Decimal:
    """A float money figure of the kernel as the Decimal the planner takes (its shortest repr)."""
    return Decimal(repr(float(x)))

