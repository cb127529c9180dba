"""The sweep kernel against the reference engine, configuration by configuration.

`reference(cfg, ...)` runs gridcore.backtest.runner.run_backtest (the backtest's own executor path) for one
configuration with the shared replay; `differences(result, reference)` lists every way a SweepResult differs:

* identical: the fills' bar, side, quantity, reason, liquidity, level, and the price of maker fills (on the tick);
  the exits (bar, kind); grids started (bar, direction, levels — run_backtest keeps no levels for a grid that ends
  in its start bar); fill and liquidation counts; the final status and position;
* within `rel` (default 1e-9) relative to the initial equity: every money figure (equity at each sampled bar,
  wallet, realised grid/other, fees, funding, slippage cost, peak); within `rel` relative: taker fill prices
  (reference·(1 ± slippage) is a 28-digit Decimal there, float64 here) and their references; the maximum
  drawdown within `rel` absolute.
"""

from __future__ import annotations

from decimal import Decimal

from gridcore.backtest.runner import BacktestResult, run_backtest
from gridcore.bars import SCALE, Bars
from gridcore.domain.orders import Liquidity
from gridcore.strategy.replay import ReplayResult
from gridcore.sweep.config import SweepConfig
from gridcore.sweep.driver import SweepResult
from gridcore.sweep.layout import (
    FF_FEE,
    FF_PRICE,
    FF_REF,
    FI_LEVEL,
    FI_QTY,
    FI_REASON,
    FI_SIDE,
    FI_TAKER,
    REASONS,
)
from gridcore.symbols import SymbolRules


def reference(cfg: SweepConfig, *, exec_bars: Bars, mark_bars: Bars | None = None, funding: tuple | None = None,
              replay: ReplayResult, start_ms: int, end_ms: int, rules: SymbolRules, **options) -> BacktestResult:
    """run_backtest of one configuration (the replay is given, so the scanner/trigger bars are not read);
    `options` go to run_backtest as they are (e.g. fast=False: every bar through on_bar)."""
    return run_backtest(profile_bars=exec_bars, trend_bars=exec_bars, trigger_bars=exec_bars, exec_bars=exec_bars,
                        mark_bars=mark_bars, funding=funding, start_ms=start_ms, end_ms=end_ms, params=cfg.params,
                        rules=rules, policy=cfg.policy, replay=replay, slippage_mode=cfg.slippage_mode, **options)


def _close(a: float, b: Decimal | float, tol: float) -> bool:
    return abs(a - float(b)) <= tol


def _fill_problems(res: SweepResult, ref: BacktestResult, step: Decimal, rel: float) -> list[str]:
    out = []
    if len(ref.fills) != res.fill_count:
        out.append(f"fills: expected {len(ref.fills)}, was {res.fill_count}")
    money = rel * res.initial_equity
    for k, (ms, ev) in enumerate(ref.fills[:res.fill_count]):
        f, fi, ff = ev.fill, res.fills_i[k], res.fills_f[k]
        got = (int(res.fill_ms[k]), "BUY" if fi[FI_SIDE] == 1 else "SELL", int(fi[FI_QTY]) * step,
               REASONS[fi[FI_REASON]], "TAKER" if fi[FI_TAKER] else "MAKER", None if fi[FI_LEVEL] < 0 else
               int(fi[FI_LEVEL]))
        want = (ms, str(f.side), f.qty, str(f.reason), str(f.liquidity), f.level)
        price = float(f.price * SCALE)
        if f.liquidity is Liquidity.MAKER:
            price_ok = ff[FF_PRICE] == price
        else:
            price_ok = (abs(ff[FF_PRICE] - price) <= rel * price
                        and abs(ff[FF_REF] - float(f.reference_price * SCALE)) <= rel * price)
        if got != want or not price_ok or not _close(ff[FF_FEE], f.fee, money):
            out.append(f"fill {k}: expected {want} @ {f.price} fee {f.fee}, was {got} @ {ff[FF_PRICE] / SCALE} "
                       f"fee {ff[FF_FEE]}")
            break
    return out


def differences(res: SweepResult, ref: BacktestResult, rules: SymbolRules, *, rel: float = 1e-9) -> list[str]:
    """Every difference beyond the tolerances of the module docstring (empty: equal)."""
    out = _fill_problems(res, ref, rules.step_size, rel)
    exits = [(e.bar_ms, e.kind) for e in ref.exits]
    if exits != res.exits:
        out.append(f"exits: expected {exits}, was {res.exits}")
    # run_backtest records a grid that started and ended in one bar without its levels (the engine's state no
    # longer holds the grid after that bar): its level count is then unknown.
    starts = [(g.started_ms, g.direction, len(g.levels)) for g in ref.grids]
    got = [(g.bar_ms, g.direction, g.levels if ref_g.levels else 0)
           for g, ref_g in zip(res.grids, ref.grids, strict=False)] + [
        (g.bar_ms, g.direction, g.levels) for g in res.grids[len(ref.grids):]]
    if starts != got:
        out.append(f"grids: expected {starts}, was {got}")
    led = ref.final.ledger
    money = rel * res.initial_equity
    for name, want, have in (("equity", led.equity, res.final_equity), ("wallet", led.wallet, res.wallet),
                             ("realised_grid", led.realised_grid, res.realised_grid),
                             ("realised_other", led.realised_other, res.realised_other), ("fees", led.fees, res.fees),
                             ("funding", led.funding, res.funding), ("slippage", led.slippage_cost,
                                                                     res.slippage_cost),
                             ("peak", led.peak_equity, res.peak_equity)):
        if not _close(have, want, money):
            out.append(f"{name}: expected {want}, was {have}")
    if not _close(res.max_drawdown, led.max_drawdown_seen, rel):
        out.append(f"max drawdown: expected {led.max_drawdown_seen}, was {res.max_drawdown}")
    if (led.fill_count, led.liquidation_count) != (res.fill_count, res.liquidation_count):
        out.append(f"counts: expected {(led.fill_count, led.liquidation_count)}, was "
                   f"{(res.fill_count, res.liquidation_count)}")
    if str(ref.final.status) != res.status or led.position != res.position_steps * rules.step_size:
        out.append(f"final: expected {ref.final.status} {led.position}, was {res.status} {res.position_steps}")
    out.extend(_equity_problems(res, ref, money))
    return out


def _reference_equity(ref: BacktestResult) -> dict[int, float]:
    curve = ref.equity
    if hasattr(curve, "floats"):  # gridcore.backtest.equity.EquityCurve
        f = curve.floats()
        return dict(zip(f["bar_ms"].tolist(), f["equity"].tolist(), strict=True))
    return {p.bar_ms: float(p.equity) for p in curve}


def _equity_problems(res: SweepResult, ref: BacktestResult, tol: float) -> list[str]:
    if not res.equity_ms.size:
        return []
    by_ms = _reference_equity(ref)
    for ms, eq in zip(res.equity_ms.tolist(), res.equity.tolist(), strict=True):
        want = by_ms.get(ms)
        if want is None or not _close(eq, want, tol):
            return [f"equity at {ms}: expected {want}, was {eq}"]
    return []

