"""Independent cross-check of the backtest's accounting (issue 6): vectorbt replays the backtest's fills and must
reproduce its equity curve without funding within 1e-6 relative, at the close of every execution bar.

What is compared. The engine books a futures account (algorithms.md §5.8, gridcore/sim/ledger.py):
equity = deposit + realised − fees + funding + position·(mark − entry), in Decimal. Without funding this equals a
cash account: cash = deposit − Σ signed_qty·price − Σ fee and value = cash + position·close, which is what
vectorbt's Portfolio computes, in float64, from its own order execution. So vectorbt gets only the fills (signed
size, the executed price incl. slippage, the exact fee in USDT as `fixed_fees`, no percentage fee, no slippage of
its own) and the bars' closes, and its `value()` is compared with float(EquityPoint.equity) for every bar.

The case: spot markets, where the engine books no funding and simulates no liquidation (a liquidation loses the
isolated margin, which a cash account cannot represent); the test asserts neither happened. The EquityPoint's mark
is the bar's close there (no mark bars), and the test asserts that too.

Several fills per bar. `Portfolio.from_orders` executes at most one order per row and column, and a bar often has
several fills (a fast bar crosses several grid levels). The fills are therefore expanded to one row per fill:
a bar with k fills becomes k consecutive rows, all with the bar's close, and a bar without fills one row with no
order (size NaN); the bar's value is read at its last row, after all its fills in the engine's order. Rows inside a
bar are never read: vectorbt's value between the fills of one bar is not compared with anything. vectorbt's own
answer to several orders per bar is the flexible order function (`Portfolio.from_order_func(..., flexible=True)`,
one row per bar, the function called again, call_idx = 0, 1, ..., until it returns column -1); the generated-market
test runs both mappings and requires both to match. That one runs with use_numba=False (the same simulation code
as Python around vectorbt's jitted order execution): the numba build of a flexible simulation with a test-defined
callback is recompiled in every process (~10 s), the Python run costs ~5 s on first use in a process (vectorbt's
helpers compile for Python-typed arguments) and well under a second after that on a few thousand bars.

Cash. The grid is leveraged (isolated margin), so the equivalent cash account goes below zero, and vectorbt
resizes or refuses a buy it cannot pay (cash >= qty·price + fee before the buy). The initial cash is therefore the
deposit plus a buffer B = ceil(max(0, −min cash)) + deposit, min over the exact cash path after each fill, which
keeps vectorbt's cash >= 0 throughout; B is subtracted from vectorbt's value afterwards (value is linear in the
initial cash). Orders run with allow_partial=False and raise_reject=True, and the order records must match the
fills one to one (row, side, size, price, fee), so no order was refused or resized. Shorts are not limited by cash
in vectorbt (lock_cash=False).
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import ROUND_CEILING, Decimal

import numpy as np
import pytest

from gridcore.backtest.runner import BacktestResult, run_backtest
from gridcore.bars import CLOSE, SCALE, Bars, resample
from gridcore.domain.orders import Fill, OrderSide
from gridcore.kline_files import identify, read_klines
from gridcore.params import default_params
from gridcore.symbols import default_registry
from gridcore.synthetic import generated_bars
from gridcore.timeframes import DAY_MS, HOUR_MS, parse_utc
from tests.conftest import shared_file

RULES = default_registry().rules("BTC")
REL_TOL = 1e-6


@pytest.fixture(scope="module")
def vbt():
    return pytest.importorskip("vectorbt", reason="vectorbt is an optional test-only extra (requirements-extra.txt)")


# --- the backtest side --------------------------------------------------------------------------------------------


def _exec_window(res: BacktestResult, exec_bars: Bars) -> Bars:
    """The execution bars of the equity curve, checked one to one, with the mark at each bar's close."""
    bars = exec_bars.slice_ms(res.equity[0].bar_ms, res.equity[-1].bar_ms + 1)
    assert bars.open_ms.tolist() == [p.bar_ms for p in res.equity]
    closes = [Decimal(int(u)) / SCALE for u in bars.units[:, CLOSE].tolist()]
    off = [(p.bar_ms, p.mark, c) for p, c in zip(res.equity, closes, strict=True) if p.mark not in (None, c)]
    assert not off, f"the equity is not marked at the bar's close: {off[:3]}"
    return bars


def _assert_cash_account_case(res: BacktestResult) -> None:
    led = res.final.ledger
    assert res.market == "spot"
    assert led.funding == 0 and led.liquidation_count == 0 and "Liquidated" not in res.event_counts
    assert all(p.equity > 0 for p in res.equity)
    assert len(res.fills) == led.fill_count > 0


def _fills_by_bar(res: BacktestResult) -> dict[int, list[Fill]]:
    out: dict[int, list[Fill]] = {}
    for ms, ev in res.fills:
        out.setdefault(ms, []).append(ev.fill)
    return out


def _cash_buffer(res: BacktestResult) -> float:
    """B = ceil(max(0, −min cash)) + deposit over the exact cash path after each fill (module docstring)."""
    cash = low = res.initial_equity
    for _, ev in res.fills:
        cash -= ev.fill.signed_qty * ev.fill.price + ev.fill.fee
        low = min(low, cash)
    return float(max(Decimal(0), -low).to_integral_value(rounding=ROUND_CEILING) + res.initial_equity)


# --- the vectorbt side ----------------------------------------------------------------------------------------------


def _from_orders_expanded(vbt, res: BacktestResult, bars: Bars, buffer: float):
    """Portfolio.from_orders on one row per fill (a bar without fills: one row, no order); returns the portfolio,
    the row of each bar's close and the bar index of every row."""
    by_bar = _fills_by_bar(res)
    close, size, price, fee, row_bar, last_row = [], [], [], [], [], []
    for i, (ms, c) in enumerate(zip(bars.open_ms.tolist(), bars.close.tolist(), strict=True)):
        fills = by_bar.get(ms, [])
        for f in fills:
            close.append(c)
            size.append(float(f.signed_qty))
            price.append(float(f.price))
            fee.append(float(f.fee))
            row_bar.append(i)
        if not fills:
            close.append(c)
            size.append(np.nan)  # no order in this row
            price.append(np.inf)
            fee.append(0.0)
            row_bar.append(i)
        last_row.append(len(close) - 1)
    pf = vbt.Portfolio.from_orders(
        np.array(close), np.array(size), size_type="amount", direction="both", price=np.array(price), fees=0.0,
        fixed_fees=np.array(fee), slippage=0.0, allow_partial=False, raise_reject=True, lock_cash=False,
        init_cash=float(res.initial_equity) + buffer, cash_sharing=False)
    return pf, np.array(last_row), np.array(row_bar)


def _flex_fill_order_func(c, first, count, size, price, fee):
    """Flexible order function: the call_idx-th fill of bar c.i, then -1 (no more orders in this bar)."""
    from vectorbt.portfolio import nb
    from vectorbt.portfolio.enums import NoOrder

    if c.call_idx < count[c.i]:
        k = first[c.i] + c.call_idx
        return c.from_col, nb.order_nb(size=size[k], price=price[k], fixed_fees=fee[k], allow_partial=False,
                                       raise_reject=True)
    return -1, NoOrder


def _from_flexible_order_func(vbt, res: BacktestResult, bars: Bars, buffer: float):
    """Portfolio.from_order_func(flexible=True) on one row per bar, the bar's fills in the engine's order."""
    index = {ms: i for i, ms in enumerate(bars.open_ms.tolist())}
    count = np.zeros(len(bars), dtype=np.int64)
    for ms, _ in res.fills:
        count[index[ms]] += 1
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    fills = [ev.fill for _, ev in res.fills]
    pf = vbt.Portfolio.from_order_func(
        bars.close.astype(np.float64), _flex_fill_order_func, first, count,
        np.array([float(f.signed_qty) for f in fills]), np.array([float(f.price) for f in fills]),
        np.array([float(f.fee) for f in fills]), flexible=True, use_numba=False,
        init_cash=float(res.initial_equity) + buffer, max_orders=len(fills))
    return pf, np.arange(len(bars)), np.arange(len(bars))


# --- the comparison -------------------------------------------------------------------------------------------------


def _assert_orders_are_the_fills(pf, res: BacktestResult, bars: Bars, row_bar: np.ndarray) -> None:
    rec = pf.orders.values  # the structured record array (`.records` is a DataFrame in vectorbt 1.x)
    fills = [(ms, ev.fill) for ms, ev in res.fills]
    assert len(rec) == len(fills), f"vectorbt executed {len(rec)} orders for {len(fills)} fills"
    bar_of = {ms: i for i, ms in enumerate(bars.open_ms.tolist())}
    assert row_bar[rec["idx"]].tolist() == [bar_of[ms] for ms, _ in fills]
    assert rec["side"].tolist() == [0 if f.side is OrderSide.BUY else 1 for _, f in fills]  # OrderSide.Buy/Sell
    np.testing.assert_array_equal(rec["size"], [float(f.qty) for _, f in fills])
    np.testing.assert_array_equal(rec["price"], [float(f.price) for _, f in fills])
    np.testing.assert_array_equal(rec["fees"], [float(f.fee) for _, f in fills])


def _max_rel_error(pf, res: BacktestResult, last_row: np.ndarray, buffer: float) -> tuple[float, int]:
    value = pf.value().to_numpy()[last_row] - buffer
    equity = np.array([float(p.equity) for p in res.equity])
    err = np.abs(value - equity) / np.abs(equity)
    worst = int(np.argmax(err))
    return float(err[worst]), res.equity[worst].bar_ms


def _crosscheck(vbt, res: BacktestResult, exec_bars: Bars, mapping) -> tuple[float, int]:
    bars = _exec_window(res, exec_bars)
    buffer = _cash_buffer(res)
    pf, last_row, row_bar = mapping(vbt, res, bars, buffer)
    _assert_orders_are_the_fills(pf, res, bars, row_bar)
    err, at_ms = _max_rel_error(pf, res, last_row, buffer)
    assert err <= REL_TOL, f"vectorbt's value is {err:.3g} relative off the engine's equity at {at_ms}"
    return err, at_ms


# --- the tests ------------------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_vectorbt_reproduces_the_real_spot_backtest(vbt):
    """Nov-Dec 2021 on the real 1m spot bars (the scanner on the real 1h spot file): ~1,400 fills in 5 grids."""
    def read(name: str) -> Bars:
        path = shared_file(name)
        return read_klines(path, identify(path)).bars

    h1 = read("BTCUSDT-1h-spot-2017-08-17_2023-12-31.csv.gz")
    m1 = read("BTCUSDT-1m-spot-2021-10-30_2021-12-11.csv.gz")
    start = -(-(int(m1.open_ms[0]) + DAY_MS) // (4 * HOUR_MS)) * 4 * HOUR_MS  # the first 4h close a day in
    end = int(m1.close_ms[-1]) // HOUR_MS * HOUR_MS
    t0 = time.perf_counter()
    res = run_backtest(profile_bars=h1, trend_bars=resample(h1, "4h"), trigger_bars=resample(m1, "15m"),
                       exec_bars=m1, start_ms=start, end_ms=end, params=default_params(), rules=RULES)
    t1 = time.perf_counter()
    _assert_cash_account_case(res)
    per_bar = Counter(ms for ms, _ in res.fills)
    assert len(res.fills) > 1000 and len(res.grids) >= 3 and max(per_bar.values()) > 1
    err, at_ms = _crosscheck(vbt, res, m1, _from_orders_expanded)
    # the buffer is needed (the cash account goes below zero), and a refused or resized order raises
    from vectorbt.portfolio.enums import RejectedOrderError

    assert _cash_buffer(res) > float(res.initial_equity)
    with pytest.raises(RejectedOrderError):
        _from_orders_expanded(vbt, res, _exec_window(res, m1), 0.0)
    print(f"vectorbt from_orders vs backtest, {res.bars} 1m bars, {len(res.fills)} fills "
          f"({sum(1 for n in per_bar.values() if n > 1)} bars with several), {len(res.grids)} grids: "
          f"max relative error {err:.3g} (at {at_ms}); backtest {t1 - t0:.1f} s, vectorbt "
          f"{time.perf_counter() - t1:.1f} s")


@pytest.mark.parametrize(("policy", "slippage_mode"), [("headline", "normal"), ("optimistic", "crash")])
def test_vectorbt_reproduces_a_generated_market_backtest(vbt, policy, slippage_mode):
    """60 days of the generated spot market on 15m bars (up to ~10 fills in one bar, a stop): both mappings."""
    t0 = parse_utc("2024-01-01")
    q = generated_bars(market="spot", start_ms=t0, days=60, seed=42)
    h1 = resample(q, "1h")
    res = run_backtest(profile_bars=h1, trend_bars=resample(h1, "4h"), trigger_bars=q, exec_bars=q,
                       start_ms=t0 + 30 * DAY_MS, end_ms=int(q.close_ms[-1]), params=default_params(), rules=RULES,
                       policy=policy, slippage_mode=slippage_mode)
    _assert_cash_account_case(res)
    assert max(Counter(ms for ms, _ in res.fills).values()) > 1
    errors = [_crosscheck(vbt, res, q, m)[0] for m in (_from_orders_expanded, _from_flexible_order_func)]
    print(f"generated market {policy}/{slippage_mode}: {len(res.fills)} fills, max relative error "
          f"from_orders {errors[0]:.3g}, flexible order function {errors[1]:.3g}")
