"""Grid levels, spacing, stops and position sizing to a risk budget (algorithms.md §4, §6.1, §6.2).

Conventions (each one a decision of this module):

* Levels: the range ends are snapped *inward* to the tick grid (Lo up, Up down) so no level leaves the box; inner
  levels are rounded to the nearest tick (half-even). If two rounded levels collide, N is reduced by one until
  the levels are strictly increasing. `plan_grid` further reduces N until every rounded interval keeps the
  target spacing (`P_{i+1}/P_i − 1 >= s`), so rounding never makes a cycle cheaper than planned.
* Spacing: `s = max(mult·(r* − 1), pct, ticks·tick/Lo)`; the tick term is taken at Lo, where a tick is the
  largest fraction of the price. The spacing must not exceed `max_spacing_atr·ATR/p0`, with the ATR of the
  execution interval when the caller gives one (`exec_atr`, the §4.2 rule) and the analysis ATR otherwise
  (the analysis interval is coarser, so that bound is looser; callers that know the execution ATR pass it).
* The empty level is the level nearest p0 (the lower one on a tie); BUY at every level below it, SELL above.
* Stops are rounded away from the box (long down, short up). The stop fill is `stop·(1 ∓ s_x)` with the stress
  slippage; fees are `qty·fill price·rate` (§5.5): maker on the grid limits, taker on the initial market order
  and on the stop fill. The initial position of a long (short) grid is modelled at `p0·(1 ± slippage)`.
* Inventory B: a LONG grid can hold its initial long (q per sell level) plus every buy level; a SHORT grid the
  mirror. A NEUTRAL grid holds a long built by its buys below p0 *or* a short built by its sells above p0, never
  both (the net position is one-sided at any price and either stop ends the grid), so each side is sized on its
  own: both sides' worst cases must fit the budget, both liquidation prices must keep the buffer beyond their
  stop (the sell side gets a second stop above R2, `stop_price_short`), and the margin cap uses the larger side.
* q = floor_to_step(min(margin, risk, liquidation, bracket)), where "bracket" keeps the full inventory notional
  inside the brackets that allow the configured leverage. The liquidation cap is found by bisection on whole
  steps: the liquidation price with full inventory only moves towards the entry as the position grows (higher
  brackets), so the sizes that keep the buffer form an interval starting at 0. It is Infinity when every size the
  brackets allow keeps the buffer (in the first bracket the full-inventory LP does not depend on q at all, so
  there a too-high leverage refuses the grid instead of shrinking it).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal

from gridcore.errors import InputError
from gridcore.params import LeverageTier, StrategyParams
from gridcore.risk.margin import liquidation_price
from gridcore.symbols import SymbolRules

LONG, SHORT, NEUTRAL = "LONG", "SHORT", "NEUTRAL"
DIRECTIONS = (LONG, SHORT, NEUTRAL)
BUY, SELL = "BUY", "SELL"
GridKind = Literal["geometric", "arithmetic"]
CAP_ORDER = ("risk", "margin", "bracket", "liquidation")  # reporting order when two caps tie


@dataclass(frozen=True)
class GridLevel:
    index: int
    price: Decimal


@dataclass(frozen=True)
class PlannedOrder:
    level: int
    side: str  # "BUY" | "SELL"
    price: Decimal
    qty: Decimal


@dataclass(frozen=True)
class GridPlan:
    """A sized grid, or a refused one (refused plans carry their reasons and no orders).

    `empty_level` is −1 when the plan was refused before levels were placed. For NEUTRAL grids `stop_price`,
    `worst_case_loss` and `liquidation_price_full` describe the buy (long) side and the `*_short` fields the sell
    side; for LONG and SHORT grids the `*_short` fields are None. `q_caps` are the unrounded size caps by name
    (liquidation: Infinity when it does not bind within the brackets), `binding_cap` the one that set q;
    `initial_price` is the modelled fill of the initial market order.
    """

    direction: str
    levels: tuple[GridLevel, ...]
    empty_level: int
    orders: tuple[PlannedOrder, ...]
    initial_qty: Decimal
    qty_per_level: Decimal
    spacing: Decimal
    stop_price: Decimal
    worst_case_loss: Decimal
    budget: Decimal
    liquidation_price_full: Decimal | None
    leverage: int
    refused: bool
    reasons: tuple[str, ...]
    below_min_notional: tuple[PlannedOrder, ...] = ()
    price: Decimal = Decimal(0)
    kind: str = "geometric"
    initial_price: Decimal | None = None
    stop_price_short: Decimal | None = None
    worst_case_loss_short: Decimal | None = None
    liquidation_price_short_full: Decimal | None = None
    q_caps: tuple[tuple[str, Decimal], ...] = field(default=())
    binding_cap: str | None = None

    @property
    def max_worst_case_loss(self) -> Decimal:
        """The larger worst case of the sides the grid can hold (what must fit the budget)."""
        return max(self.worst_case_loss, self.worst_case_loss_short or Decimal(0))


# --- levels and spacing ------------------------------------------------------------------------------------------


def _positive(name: str, value: Decimal) -> None:
    if not value > 0:
        raise InputError(f"expected {name} > 0, was {value}")


def _to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding=rounding) * tick


def _check_range(lo: Decimal, up: Decimal, kind: str) -> None:
    _positive("Lo", lo)
    if not up > lo:
        raise InputError(f"expected Up > Lo ({lo}), was {up}")
    if kind not in ("geometric", "arithmetic"):
        raise InputError(f"expected kind 'geometric' or 'arithmetic', was {kind!r}")


def raw_grid_levels(lo: Decimal, up: Decimal, n: int, *, kind: GridKind) -> list[Decimal]:
    """§4.1 levels before rounding: P_0 = Lo, P_N = Up, equal step (arithmetic) or equal ratio (geometric)."""
    _check_range(lo, up, kind)
    if n < 1:
        raise InputError(f"expected at least 1 interval, was {n}")
    if kind == "arithmetic":
        d = (up - lo) / n
        out = [lo + i * d for i in range(n)]
    else:
        r = ((up / lo).ln() / n).exp()
        out = [lo * r**i for i in range(n)]
    return out + [up]


def grid_levels(lo: Decimal, up: Decimal, n: int, *, kind: GridKind, tick: Decimal) -> list[Decimal]:
    """§4.1 levels on the tick grid, strictly increasing; N is reduced while rounded levels collide.

    Lo is rounded up and Up down to the tick (the grid stays inside the range), inner levels to the nearest tick.
    The result has len(levels) − 1 intervals, which may be fewer than n.
    """
    _positive("tick", tick)
    _check_range(lo, up, kind)
    lo_t, up_t = _to_tick(lo, tick, ROUND_CEILING), _to_tick(up, tick, ROUND_FLOOR)
    if not up_t > lo_t:
        raise InputError(f"expected a range holding at least two ticks of {tick}, was [{lo}, {up}]")
    for m in range(n, 0, -1):
        raw = raw_grid_levels(lo_t, up_t, m, kind=kind)
        levels = [lo_t] + [_to_tick(p, tick, ROUND_HALF_EVEN) for p in raw[1:-1]] + [up_t]
        if all(a < b for a, b in zip(levels, levels[1:], strict=False)):
            return levels
    raise AssertionError("unreachable: one interval between two distinct ticks never collides")


def intervals_for_spacing(lo: Decimal, up: Decimal, spacing: Decimal, kind: GridKind) -> int:
    """§4.1 N from a target spacing s: geometric floor(ln(Up/Lo)/ln(1+s)), arithmetic floor((Up−Lo)/(s·Up)).

    The floor is checked exactly ((1+s)^N <= Up/Lo, N·s·Up <= Up − Lo), so every interval is at least s.
    """
    _check_range(lo, up, kind)
    _positive("spacing", spacing)
    if kind == "arithmetic":
        width, unit = up - lo, spacing * up
        n = int((width / unit).to_integral_value(rounding=ROUND_FLOOR))
        while (n + 1) * unit <= width:
            n += 1
        while n > 0 and n * unit > width:
            n -= 1
        return n
    ratio, step = up / lo, 1 + spacing
    n = int((ratio.ln() / step.ln()).to_integral_value(rounding=ROUND_FLOOR))
    while step ** (n + 1) <= ratio:
        n += 1
    while n > 0 and step**n > ratio:
        n -= 1
    return n


def breakeven_ratio(f_b: Decimal, f_s: Decimal) -> Decimal:
    """r* = (1 + f_b)/(1 − f_s): a buy→sell cycle earns more than its fees iff P_{i+1}/P_i > r*."""
    if not (0 <= f_b < 1 and 0 <= f_s < 1):
        raise InputError(f"expected fee rates in [0, 1), was f_b = {f_b}, f_s = {f_s}")
    return (1 + f_b) / (1 - f_s)


def cycle_return(p_lo: Decimal, p_hi: Decimal, f_b: Decimal, f_s: Decimal) -> Decimal:
    """ρ = net/(q·P_lo) = (P_hi/P_lo)·(1 − f_s) − (1 + f_b) of §4.2."""
    return (p_hi / p_lo) * (1 - f_s) - (1 + f_b)


def pair_net(q: Decimal, p_lo: Decimal, p_hi: Decimal, f_b: Decimal, f_s: Decimal) -> Decimal:
    """Realised PnL of one buy q at p_lo → sell q at p_hi: q·(p_hi − p_lo) − q·(f_b·p_lo + f_s·p_hi)."""
    return q * (p_hi - p_lo) - q * (f_b * p_lo + f_s * p_hi)


def breakeven_fees(params: StrategyParams) -> tuple[Decimal, Decimal]:
    """(f_b, f_s) of params.grid.breakeven_fees."""
    m, t = params.costs.maker_fee, params.costs.taker_fee
    return {"maker_maker": (m, m), "maker_taker": (m, t), "taker_taker": (t, t)}[params.grid.breakeven_fees]


def min_spacing(price: Decimal, *, params: StrategyParams, tick: Decimal) -> Decimal:
    """§4.2 s_min = max(mult·(r* − 1), pct, ticks·tick/price)."""
    _positive("price", price)
    g = params.grid
    r_star = breakeven_ratio(*breakeven_fees(params))
    return max(g.min_spacing_breakeven_mult * (r_star - 1), g.min_spacing_pct, g.min_spacing_ticks * tick / price)


def _dec(name: str, x: float | Decimal) -> Decimal:
    """A positive analysis value as Decimal (floats through their shortest repr)."""
    if isinstance(x, Decimal) and x.is_finite() and x > 0:
        return x
    if not (isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0):
        raise InputError(f"expected {name} to be a finite number > 0, was {x!r}")
    return Decimal(repr(float(x)))


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise InputError(f"expected direction LONG, SHORT or NEUTRAL, was {direction!r}")


def stop_price(direction: str, *, s2: Decimal, r2: Decimal, atr: float, params: StrategyParams,
               tick: Decimal) -> Decimal:
    """§6.1: long/neutral S2 − max(buf_atr·ATR, buf_pct·S2) rounded down; short R2 + max(...·R2) rounded up."""
    _check_direction(direction)
    a = _dec("atr", atr)
    r = params.risk
    buf_atr = Decimal(repr(float(r.stop_buffer_atr))) * a
    if direction == SHORT:
        return _to_tick(r2 + max(buf_atr, r.stop_buffer_pct * r2), tick, ROUND_CEILING)
    stop = _to_tick(s2 - max(buf_atr, r.stop_buffer_pct * s2), tick, ROUND_FLOOR)
    if not stop > 0:
        raise InputError(f"expected a stop above 0 (S2 {s2} minus the buffer), was {stop}")
    return stop


# --- risk ---------------------------------------------------------------------------------------------------------


def worst_case_loss(q: Decimal, prices: Sequence[Decimal], stop: Decimal, *, initial_price: Decimal,
                    initial_qty_levels: int, f_maker: Decimal, f_taker: Decimal, stress_slippage: Decimal,
                    side: int = 1) -> Decimal:
    """§6.2 loss(q): every inventory level filled (maker), plus the initial position (taker at initial_price,
    initial_qty_levels × q), then all of it closed by the stop at stop·(1 ∓ s_x) (taker on the fill price).

    prices: the buy levels of a long (side +1) or the sell levels of a short (side −1). Linear in q.
    """
    if side not in (1, -1):
        raise InputError(f"expected side +1 (long) or -1 (short), was {side}")
    if initial_qty_levels < 0:
        raise InputError(f"expected initial_qty_levels >= 0, was {initial_qty_levels}")
    fill = stop * (1 - side * stress_slippage)
    k = initial_qty_levels
    adverse = sum((side * (p - fill) for p in prices), Decimal(0)) + k * side * (initial_price - fill)
    fees = f_maker * sum(prices, Decimal(0)) + f_taker * k * initial_price + f_taker * (len(prices) + k) * fill
    return q * (adverse + fees)


def risk_budget(equity: Decimal, peak_equity: Decimal, params: StrategyParams) -> Decimal:
    """§6.2 budget = budget_fraction·(max_drawdown − DD_now)·peak_equity, DD_now = 1 − equity/peak (may be <= 0)."""
    _positive("equity", equity)
    if peak_equity < equity:
        raise InputError(f"expected peak_equity >= equity ({equity}), was {peak_equity}")
    r = params.risk
    return r.budget_fraction * (r.max_drawdown - (1 - equity / peak_equity)) * peak_equity


@dataclass(frozen=True)
class _Side:
    """One inventory side: its grid levels, the initial position and the stop that closes it."""

    sign: int
    prices: tuple[Decimal, ...]  # the grid levels that add to this side's inventory
    k: int  # initial position, in units of q
    initial_price: Decimal
    stop: Decimal

    @property
    def count(self) -> int:
        return len(self.prices) + self.k

    @property
    def notional(self) -> Decimal:
        """Σ_{i∈B} P_i per unit of q (the initial position at its modelled entry)."""
        return sum(self.prices, Decimal(0)) + self.k * self.initial_price

    def unit_loss(self, params: StrategyParams) -> Decimal:
        c = params.costs
        return worst_case_loss(Decimal(1), self.prices, self.stop, initial_price=self.initial_price,
                               initial_qty_levels=self.k, f_maker=c.maker_fee, f_taker=c.taker_fee,
                               stress_slippage=c.stress_slippage, side=self.sign)

    def liq_price(self, q: Decimal, leverage: int, tiers: Sequence[LeverageTier]) -> Decimal | None:
        """LP with full inventory: Q = q·|B|, EP = mean of B, WB = q·ΣP/λ (None for an empty side or q = 0)."""
        size = q * self.count
        if size == 0:
            return None
        return liquidation_price(self.sign, size, q * self.notional / size, q * self.notional / leverage, tiers)

    def liq_ok(self, q: Decimal, leverage: int, tiers: Sequence[LeverageTier], buf: Decimal) -> bool:
        if self.count == 0:
            return True
        lp = self.liq_price(q, leverage, tiers)
        if self.sign == 1:
            return lp is None or lp <= self.stop * (1 - buf)
        return lp is not None and lp >= self.stop * (1 + buf)


def _bracket_cap(leverage: int, tiers: Sequence[LeverageTier]) -> Decimal:
    """Largest notional whose bracket still allows `leverage` (0 when even the first does not)."""
    allowed = [t.cap for t in tiers if t.max_leverage >= leverage]
    return max(allowed) if allowed else Decimal(0)


def _q_liq(side: _Side, params: StrategyParams, step: Decimal, max_steps: int) -> Decimal:
    """Largest whole-step q whose full-inventory LP keeps the buffer beyond the stop; Infinity when every size
    the brackets allow (up to max_steps·step) keeps it."""
    acc = params.account
    ok = lambda k: side.liq_ok(k * step, acc.leverage, acc.brackets.tiers, params.risk.liq_buffer)
    if max_steps == 0 or ok(max_steps):
        return Decimal("Infinity")
    lo, hi = 0, max_steps - 1  # invariant: lo steps keep the buffer (0 trivially); everything above hi fails
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo * step


# --- planning -----------------------------------------------------------------------------------------------------


def _check_box(price: Decimal, s1: Decimal, s2: Decimal, r1: Decimal, r2: Decimal) -> None:
    _positive("S2", s2)
    if not s2 < s1 < price < r1 < r2:
        raise InputError(f"expected S2 < S1 < price < R1 < R2, was S2 {s2}, S1 {s1}, price {price}, R1 {r1}, "
                         f"R2 {r2}")


@functools.lru_cache(maxsize=4096)
def _sized_levels(lo: Decimal, up: Decimal, s: Decimal, kind: GridKind, tick: Decimal) -> tuple[Decimal, ...]:
    """Tick-rounded levels with N from the spacing, reducing N until every rounded interval is >= s. Pure, and the
    costliest step of a plan: cached, since a zone's signals (and a sweep's configurations) ask for the same."""
    lo_t, up_t = _to_tick(lo, tick, ROUND_CEILING), _to_tick(up, tick, ROUND_FLOOR)
    if not up_t > lo_t:
        return (lo_t,)
    n = intervals_for_spacing(lo_t, up_t, s, kind)
    while n >= 1:
        levels = grid_levels(lo_t, up_t, n, kind=kind, tick=tick)
        if all(b / a - 1 >= s for a, b in zip(levels, levels[1:], strict=False)):
            return tuple(levels)
        n = len(levels) - 2
    return (lo_t,)


def _nearest(prices: Sequence[Decimal], price: Decimal) -> int:
    """The index of the level nearest to price (the lower one on a tie); prices ascending."""
    j = bisect.bisect_left(prices, price)
    if j == 0:
        return 0
    if j == len(prices):
        return j - 1
    return j - 1 if price - prices[j - 1] <= prices[j] - price else j


@functools.lru_cache(maxsize=4096)
def _grid_levels_of(prices: tuple[Decimal, ...]) -> tuple[GridLevel, ...]:
    return tuple(GridLevel(i, p) for i, p in enumerate(prices))


@functools.lru_cache(maxsize=4096)
def _realised_spacing(levels: tuple[Decimal, ...], kind: str) -> Decimal:
    if len(levels) < 2:
        return Decimal(0)
    n = len(levels) - 1
    if kind == "arithmetic":
        return (levels[-1] - levels[0]) / n / levels[-1]
    return ((levels[-1] / levels[0]).ln() / n).exp() - 1


def _sides(direction: str, prices: Sequence[Decimal], e: int, p0: Decimal, stop: Decimal,
           stop_short: Decimal | None, slippage: Decimal) -> list[_Side]:
    buys, sells = tuple(prices[:e]), tuple(prices[e + 1:])
    if direction == LONG:
        return [_Side(1, buys, len(sells), p0 * (1 + slippage), stop)]
    if direction == SHORT:
        return [_Side(-1, sells, len(buys), p0 * (1 - slippage), stop)]
    assert stop_short is not None
    return [_Side(1, buys, 0, p0, stop), _Side(-1, sells, 0, p0, stop_short)]


def _size(sides: list[_Side], unit_losses: list[Decimal], budget: Decimal, equity: Decimal, rules: SymbolRules,
          params: StrategyParams) -> tuple[Decimal, str, dict[str, Decimal]]:
    """q = floor_to_step(min of the caps), the binding cap's name, and every cap (unrounded)."""
    acc = params.account
    lev = Decimal(acc.leverage)
    widest = max(s.notional for s in sides)
    caps = {
        "risk": budget / max(unit_losses),
        "margin": acc.margin_fraction * equity * lev / widest,
        "bracket": _bracket_cap(acc.leverage, acc.brackets.tiers) / widest,
    }
    cheap = min(CAP_ORDER[:3], key=lambda name: caps[name])
    if rules.floor_qty(caps[cheap]) < rules.min_qty:
        # refused whatever the liquidation cap allows: skip its search, the costliest part of a plan (a sweep
        # meets thousands of such signals); the reasons then name the smallest of the other caps
        return rules.floor_qty(caps[cheap]), cheap, caps
    max_steps = int((caps["bracket"] / rules.step_size).to_integral_value(rounding=ROUND_FLOOR))
    caps["liquidation"] = min(_q_liq(s, params, rules.step_size, max_steps) for s in sides)
    binding = min(CAP_ORDER, key=lambda name: caps[name])
    return rules.floor_qty(caps[binding]), binding, caps


def _preflight(rules: SymbolRules, params: StrategyParams) -> list[str]:
    """Reasons that refuse any grid before levels are built (leverage and brackets)."""
    out: list[str] = []
    acc = params.account
    tiers = acc.brackets.tiers
    if acc.brackets.symbol != rules.symbol:
        out.append(f"expected leverage brackets for {rules.symbol}, was a table for {acc.brackets.symbol} "
                   f"(§8.7: other symbols need their own table)")
    if tiers and acc.leverage > tiers[0].max_leverage:
        out.append(f"expected leverage <= the first bracket's max leverage {tiers[0].max_leverage}x, was "
                   f"{acc.leverage}x")
    return out


def plan_grid(*, direction: str, price: Decimal, s1: Decimal, s2: Decimal, r1: Decimal, r2: Decimal, atr: float,
              equity: Decimal, peak_equity: Decimal, rules: SymbolRules, params: StrategyParams,
              exec_atr: float | None = None) -> GridPlan:
    """Levels (§4.1), spacing (§4.2), orders (§4.5), stop (§6.1) and q sized to margin, risk and liquidation
    (§4.3, §6.2); a refused plan says why and carries no orders."""
    _check_direction(direction)
    _check_box(price, s1, s2, r1, r2)
    atr_d = _dec("atr", atr)
    bound_atr = atr_d if exec_atr is None else _dec("exec_atr", exec_atr)
    tick, g = rules.tick_size, params.grid
    budget = risk_budget(equity, peak_equity, params)
    stop = stop_price(direction, s2=s2, r2=r2, atr=atr, params=params, tick=tick)
    stop_short = stop_price(SHORT, s2=s2, r2=r2, atr=atr, params=params, tick=tick) if direction == NEUTRAL else None
    lo, up = (s1, r1) if g.range_mode == "s1_r1" else (s2, r2)
    base = dict(direction=direction, empty_level=-1, orders=(), initial_qty=Decimal(0), qty_per_level=Decimal(0),
                stop_price=stop, worst_case_loss=Decimal(0), budget=budget, liquidation_price_full=None,
                leverage=params.account.leverage, price=price, kind=g.grid_type, stop_price_short=stop_short)

    reasons = _preflight(rules, params)
    s = min_spacing(lo, params=params, tick=tick)
    limit = Decimal(repr(float(g.max_spacing_atr))) * bound_atr / price
    if s > limit:
        which = "execution" if exec_atr is not None else "analysis"
        reasons.append(f"expected spacing {s:.6f} <= {g.max_spacing_atr} x {which} ATR {bound_atr} / price {price} "
                       f"= {limit:.6f} (levels would not fill), was larger")
    if budget <= 0:
        reasons.append(f"expected drawdown 1 - {equity}/{peak_equity} below max_drawdown {params.risk.max_drawdown}, "
                       f"was at or beyond it (risk budget {budget:.2f})")
    prices = _sized_levels(lo, up, s, g.grid_type, tick)
    levels = _grid_levels_of(prices)
    base.update(levels=levels, spacing=_realised_spacing(prices, g.grid_type))
    if len(prices) - 1 < 2:
        reasons.append(f"expected at least 2 intervals of spacing {s:.6f} in [{lo}, {up}], was {len(prices) - 1}")
    if reasons:
        return GridPlan(**base, refused=True, reasons=tuple(reasons))

    e = _nearest(prices, price)
    sides = _sides(direction, prices, e, price, stop, stop_short, params.costs.slippage)
    unit_losses = [sd.unit_loss(params) for sd in sides]
    q, binding, caps = _size(sides, unit_losses, budget, equity, rules, params)
    orders = tuple(PlannedOrder(i, BUY if i < e else SELL, p, q) for i, p in enumerate(prices) if i != e)
    if q < rules.min_qty:  # every order is below the minimums
        below = orders
    else:
        below = tuple(o for o in orders if o.qty < rules.min_qty or o.qty * o.price < rules.min_notional)
    losses = [u * q for u in unit_losses]
    lps = [s.liq_price(q, params.account.leverage, params.account.brackets.tiers) for s in sides]
    base.update(empty_level=e, qty_per_level=q, worst_case_loss=losses[0], liquidation_price_full=lps[0],
                initial_price=sides[0].initial_price if direction != NEUTRAL else None,
                q_caps=tuple((name, caps[name]) for name in CAP_ORDER if name in caps), binding_cap=binding,
                below_min_notional=below)
    if direction == NEUTRAL:
        base.update(worst_case_loss_short=losses[1], liquidation_price_short_full=lps[1])
    reasons = _min_size_reasons(q, prices[0], below, binding, caps[binding], rules)
    if "liquidation" in caps and caps["liquidation"] < rules.min_qty:
        reasons.extend(_liquidation_reasons(sides, params, rules.min_qty))
    if reasons:
        return GridPlan(**base, refused=True, reasons=tuple(reasons))
    k = sides[0].k
    initial = q * k if direction == LONG else -q * k if direction == SHORT else Decimal(0)
    return GridPlan(**base | dict(orders=orders, initial_qty=initial), refused=False, reasons=())


def _min_size_reasons(q: Decimal, p_low: Decimal, below: tuple[PlannedOrder, ...], binding: str, cap: Decimal,
                      rules: SymbolRules) -> list[str]:
    out: list[str] = []
    why = f"(binding cap: {binding}, {cap:.8f})"
    if q < rules.min_qty:
        out.append(f"expected q >= minQty {rules.min_qty}, was {q} {why}")
    if q * p_low < rules.min_notional:
        out.append(f"expected q·P_0 = {q * p_low} >= minNotional {rules.min_notional}, was below {why}")
    if below:
        shown = below if len(below) <= 6 else (*below[:3], None, *below[-3:])
        listed = ", ".join("..." if o is None else f"{o.side} {o.qty} @ {o.price} (level {o.level})" for o in shown)
        listed += f" ({len(below)} orders)"
        out.append(f"expected every order >= minQty {rules.min_qty} and minNotional {rules.min_notional}, "
                   f"was below for: {listed}")
    return out


def _liquidation_reasons(sides: list[_Side], params: StrategyParams, q: Decimal) -> list[str]:
    """Why no tradable size keeps the liquidation buffer: each failing side's LP at q (the smallest size)."""
    acc, buf = params.account, params.risk.liq_buffer
    out: list[str] = []
    for sd in sides:
        if sd.liq_ok(q, acc.leverage, acc.brackets.tiers, buf):
            continue
        lp = sd.liq_price(q, acc.leverage, acc.brackets.tiers)
        lp_text = "none" if lp is None else f"{lp:.2f}"
        if sd.sign == 1:
            want = f"<= stop {sd.stop} x (1 - {buf}) = {sd.stop * (1 - buf):.2f}"
        else:
            want = f">= stop {sd.stop} x (1 + {buf}) = {sd.stop * (1 + buf):.2f}"
        out.append(f"expected the full-inventory liquidation price {want} at {acc.leverage}x, was {lp_text} "
                   f"already at q = {q} (lower the leverage)")
    return out


# --- reference walk (§4.4, §4.5) ------------------------------------------------------------------------------------


def _walk(plan: GridPlan, p: Decimal) -> tuple[Decimal, dict[int, str]]:
    """Fill the plan's orders along a monotone path from the plan's price to p (touch), re-placing by §4.5."""
    pos = plan.initial_qty
    book = {o.level: o.side for o in plan.orders}
    prices = [lv.price for lv in plan.levels]
    n, q = len(prices) - 1, plan.qty_per_level
    falling = p < plan.price
    while True:
        if falling:
            hits = [i for i, side in book.items() if side == BUY and prices[i] >= p]
        else:
            hits = [i for i, side in book.items() if side == SELL and prices[i] <= p]
        if not hits:
            return pos, book
        i = max(hits) if falling else min(hits)  # nearest to the path start fills first
        del book[i]
        if falling:
            pos += q
            if i + 1 <= n:
                book[i + 1] = SELL
        else:
            pos -= q
            if i - 1 >= 0:
                book[i - 1] = BUY


def position_after_path(plan: GridPlan, p: Decimal) -> Decimal:
    """Net position (signed) after a monotone path from plan.price to p: the reference for the paper simulator."""
    return _walk(plan, p)[0]


def orders_after_path(plan: GridPlan, p: Decimal) -> dict[int, str]:
    """Open orders (level -> side) after a monotone path from plan.price to p."""
    return _walk(plan, p)[1]
