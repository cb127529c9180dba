"""Backtest metrics from a BacktestResult (or from a bare equity curve for the ratio figures).

Definitions (risk-free rate 0, 365 days a year: the market trades every day):

- total return  = final equity / initial equity − 1.
- max drawdown  = max over the curve of 1 − equity / running peak (the initial equity counts as the first peak),
  on bar closes; the engine's intrabar figure (peak and trough on the bar path) is `max_drawdown_intrabar`.
- daily returns = the equity at the last bar of each UTC day over that of the previous day (the initial equity
  before the first day): r_d = E_d / E_{d−1} − 1.
- Sharpe        = mean(r) / stdev(r) · √365 (sample stdev, n − 1); None with fewer than 2 days or stdev 0.
- Sortino       = mean(r) / downside deviation · √365, downside deviation = √(mean over ALL days of min(r, 0)²);
  None when no day lost.
- Calmar        = annualised return / max drawdown, annualised return = (1 + total return)^(365 / days) − 1 with
  days the span of the curve (bars · interval); None when the drawdown is 0.
- time in market = share of execution bars ending with a position ≠ 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from gridcore.domain.orders import FillReason
from gridcore.timeframes import DAY_MS, interval_ms

DAYS_PER_YEAR = 365


def max_drawdown(initial: float, equity: Sequence[float]) -> float:
    eq = np.asarray(equity, dtype=np.float64)
    if not len(eq):
        return 0.0
    peak = np.maximum.accumulate(np.maximum(eq, initial))
    return max(0.0, float((1 - eq / peak).max()))


def daily_returns(initial: float, bar_ms: Sequence[int], equity: Sequence[float]) -> list[float]:
    """Returns of the end-of-UTC-day equity (the last bar of each day that has bars)."""
    days = np.asarray(bar_ms, dtype=np.int64) // DAY_MS
    eq = np.asarray(equity, dtype=np.float64)
    if len(eq) != len(days):
        raise ValueError(f"expected one time per equity value, was {len(days)} times and {len(eq)} values")
    if not len(eq):
        return []
    closes = eq[np.r_[np.flatnonzero(np.diff(days)), len(eq) - 1]]
    return (closes / np.r_[initial, closes[:-1]] - 1).tolist()


def sharpe(returns: Sequence[float]) -> float | None:
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns) / n
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / (n - 1))
    return None if sd == 0 else mean / sd * math.sqrt(DAYS_PER_YEAR)


def sortino(returns: Sequence[float]) -> float | None:
    n = len(returns)
    if n == 0:
        return None
    down = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n)
    return None if down == 0 else (sum(returns) / n) / down * math.sqrt(DAYS_PER_YEAR)


def annualised_return(total_return: float, days: float) -> float | None:
    if days <= 0 or total_return <= -1:
        return None
    return (1 + total_return) ** (DAYS_PER_YEAR / days) - 1


def calmar(total_return: float, days: float, mdd: float) -> float | None:
    ann = annualised_return(total_return, days)
    return None if ann is None or mdd == 0 else ann / mdd


def curve_metrics(*, initial: float, bar_ms: Sequence[int], equity: Sequence[float], positions: Sequence[float],
                  interval_ms: int) -> dict[str, Any]:
    """The figures of an equity curve alone (floats)."""
    final = float(equity[-1]) if len(equity) else initial
    total = final / initial - 1
    mdd = max_drawdown(initial, equity)
    days = len(equity) * interval_ms / DAY_MS
    rets = daily_returns(initial, bar_ms, equity)
    return {"initial_equity": initial, "final_equity": final, "total_return": total,
            "annualised_return": annualised_return(total, days), "max_drawdown": mdd,
            "sharpe": sharpe(rets), "sortino": sortino(rets), "calmar": calmar(total, days, mdd),
            "days": days, "time_in_market": float(np.count_nonzero(np.asarray(positions))) / len(positions)
            if len(positions) else 0.0}


def backtest_metrics(result) -> dict[str, Any]:
    """Every figure of a BacktestResult; money as exact decimal strings, ratios as floats."""
    led = result.final.ledger
    curve = result.equity.floats()
    out = curve_metrics(initial=float(result.initial_equity), bar_ms=curve["bar_ms"], equity=curve["equity"],
                        positions=curve["position"], interval_ms=interval_ms(result.exec_interval))
    fills = [ev for _, ev in result.fills]
    slippage = sum((ev.fill.slippage_cost for ev in fills), Decimal(0))
    reasons = Counter(ev.fill.reason.value for ev in fills)
    exits = Counter(x.kind for x in result.exits)
    statuses = Counter(str(s.status) for s in result.signals)
    out.update({
        "final_equity_exact": str(led.equity),
        "realised_grid_profit": str(led.realised_grid),
        "realised_other": str(led.realised_other),
        "unrealised_pnl": str(led.unrealised),
        "fees": str(led.fees),
        "funding": str(led.funding),  # booked to the wallet: positive received, negative paid
        "slippage_cost": str(slippage),
        "max_drawdown_intrabar": float(led.max_drawdown_seen),
        "final_position": str(led.position),
        "final_status": str(result.final.status),
        "counts": {
            "bars": result.bars,
            "zones": len(result.zones),
            "valid_zones": sum(1 for z in result.zones if z.valid),
            "signals": len(result.signals),
            "signals_consumed": statuses.get("CONSUMED", 0),
            "signals_rejected": statuses.get("REJECTED", 0),
            "signals_expired": statuses.get("EXPIRED", 0),
            "signals_open": statuses.get("NEW", 0),
            "grids_started": result.final.grids_started,
            "fills": len(fills),
            "grid_fills": reasons.get(FillReason.GRID.value, 0),
            "stops": exits.get("STOP", 0),
            "range_breaks": exits.get("RANGE_BREAK", 0),
            "adverse_fire_exits": exits.get("ADVERSE_FIRE", 0),
            "liquidations": result.event_counts.get("Liquidated", 0),
            "kill_switches": result.event_counts.get("KillSwitch", 0),
            "funding_events": result.event_counts.get("FundingPaid", 0),
        },
    })
    return out
