"""Backtest service: load the series from the store, run gridcore.backtest for both fill policies, record a
BacktestRun (config + hash, checksum of the data used, code version), write the trade log / equity CSV and JSON."""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grid_trading.models import BacktestRun, GridStrategyConfig
from grid_trading.services.configs import config_params
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import bars_for_analysis
from grid_trading.services.provenance import code_version
from grid_trading.services.symbols import symbol_registry
from gridcore.backtest.metrics import backtest_metrics
from gridcore.backtest.runner import BacktestResult, replay_for_backtest, run_backtest
from gridcore.bars import Bars, empty_bars
from gridcore.errors import DataError, InputError
from gridcore.params import StrategyParams
from gridcore.ports import KlineStore
from gridcore.strategy.scanner import TREND_WINDOW_BARS
from gridcore.strategy.trigger import TRIGGER_WINDOW_BARS
from gridcore.synthetic import GENERATED_LABEL
from gridcore.timeframes import DAY_MS, interval_ms, ms_to_dt, ms_to_iso

POLICIES = ("headline", "optimistic")
COVER_SLACK_MS = DAY_MS  # an execution series "covers" the period when it starts and ends within a day of it


@dataclass
class BacktestData:
    profile: Bars
    trend: Bars
    trigger: Bars
    exec: Bars
    mark: Bars | None
    funding: tuple[list[int], list] | None
    series: dict[str, dict[str, Any]]
    checksum: str
    notes: list[str]


def _bars_sha(b: Bars) -> str:
    h = hashlib.sha256()
    h.update(f"{b.symbol}|{b.market}|{b.interval}|{b.source_interval}|".encode())
    h.update(b.open_ms.astype("<i8").tobytes())
    h.update(b.units.astype("<i8").tobytes())
    return h.hexdigest()


def _covers(b: Bars, start_ms: int, end_ms: int) -> bool:
    return bool(len(b)) and int(b.open_ms[0]) - start_ms < COVER_SLACK_MS and \
        end_ms - int(b.close_ms[-1]) < COVER_SLACK_MS


def exec_bars_for(*, symbol: str, market: str, params: StrategyParams, start_ms: int, end_ms: int,
                  interval: str = "auto", store: KlineStore) -> Bars:
    """The execution bars: the finest stored interval of params.execution.intervals that covers the period (auto),
    or the interval asked for (stored, or resampled from a finer stored one)."""
    if interval != "auto":
        return bars_for_analysis(symbol=symbol, market=market, interval=interval, start_ms=start_ms, end_ms=end_ms,
                                 store=store)
    stored = set(store.intervals(symbol, market))
    tried = []
    for iv in sorted(params.execution.intervals, key=interval_ms):
        if iv not in stored:
            continue
        b = store.load_bars(symbol, market, iv, start_ms, end_ms)
        if _covers(b, start_ms, end_ms):
            return b
        tried.append(iv)
    raise DataError(f"expected stored {symbol} {market} klines covering {ms_to_iso(start_ms)} .. {ms_to_iso(end_ms)} "
                    f"in one of {', '.join(params.execution.intervals)}, was "
                    f"{', '.join(sorted(stored)) or 'none stored'}"
                    + (f" ({', '.join(tried)} stored but not covering the period)" if tried else ""))


def backtest_load(*, symbol: str, market: str, params: StrategyParams, start_ms: int, end_ms: int,
                  exec_interval: str = "auto", store: KlineStore | None = None) -> BacktestData:
    """Every series the backtest reads, with the warm-up windows the scanner and trigger need before start."""
    store = store or DjangoKlineStore()
    if params.volume_profile.distribution == "ltf":
        raise InputError("expected a volume_profile.distribution the replay supports, was 'ltf'")
    vp, tf = params.volume_profile, params.timeframes
    slack = params.execution.stale_data_intervals + 2
    profile = bars_for_analysis(symbol=symbol, market=market, interval=vp.interval,
                                start_ms=start_ms - (vp.lookback_bars + slack) * interval_ms(vp.interval),
                                end_ms=end_ms, store=store)
    trend = bars_for_analysis(symbol=symbol, market=market, interval=tf.analysis_interval,
                              start_ms=start_ms - (TREND_WINDOW_BARS + slack) * interval_ms(tf.analysis_interval),
                              end_ms=end_ms, store=store)
    notes: list[str] = []
    try:
        trigger = bars_for_analysis(symbol=symbol, market=market, interval=tf.trigger_interval,
                                    start_ms=start_ms - (TRIGGER_WINDOW_BARS + slack) * interval_ms(
                                        tf.trigger_interval), end_ms=end_ms, store=store)
    except DataError as e:  # the trigger cannot run: an honest backtest with no signals, said so in the notes
        trigger = empty_bars(symbol, market, tf.trigger_interval)
        notes.append(f"trigger: {e}; no signal could be evaluated")
    ex = exec_bars_for(symbol=symbol, market=market, params=params, start_ms=start_ms, end_ms=end_ms,
                       interval=exec_interval, store=store)
    mark = None
    funding = None
    series = {"profile": profile, "trend": trend, "trigger": trigger, "exec": ex}
    if market == "perp":
        m = store.load_bars(symbol, "mark", ex.interval, start_ms, end_ms)
        if len(m):
            mark = m
            series["mark"] = m
        f_ms, f_rates = store.load_funding(symbol, start_ms - 7 * DAY_MS, end_ms)
        funding = (f_ms.tolist(), f_rates)
    info: dict[str, dict[str, Any]] = {}
    for name, b in series.items():
        info[name] = {"interval": b.interval, "source_interval": b.source_interval, "bars": len(b),
                      "first": ms_to_iso(int(b.open_ms[0])) if len(b) else None,
                      "last": ms_to_iso(int(b.open_ms[-1])) if len(b) else None, "sha256": _bars_sha(b)}
    if funding is not None:
        h = hashlib.sha256("|".join(f"{t}:{r}" for t, r in zip(*funding, strict=True)).encode())
        info["funding"] = {"events": len(funding[0]), "sha256": h.hexdigest()}
    total = hashlib.sha256("|".join(f"{k}={v['sha256']}" for k, v in sorted(info.items())).encode()).hexdigest()
    return BacktestData(profile, trend, trigger, ex, mark, funding, info, total, notes)


def backtest_run(*, symbol: str, market: str, start_ms: int, end_ms: int, config: GridStrategyConfig,
                 exec_interval: str = "auto", fill_policy: str = "headline",
                 progress: Callable[[str, int, int], None] | None = None,
                 record: bool = True, report: Path | None = None, slippage_mode: str = "normal",
                 store: KlineStore | None = None, data_label: str | None = None,
                 ) -> tuple[BacktestRun | None, dict[str, BacktestResult], dict[str, Any]]:
    """Run both fill policies (the asked one is the headline of the summary); returns (run, results, document).

    `store` is where the bars are read (default the database); `data_label` says what they are (shown in the
    summary and the report). A generated market (data_label GENERATED_LABEL, in a scratch store) is never recorded:
    a BacktestRun always describes real klines."""
    generated = data_label == GENERATED_LABEL
    if generated and record:
        raise InputError("expected record=False for a generated market: a BacktestRun records real klines only")
    if market not in ("perp", "spot"):
        raise InputError(f"expected market perp or spot, was {market!r}")
    if fill_policy not in ("conservative", "optimistic", "headline"):
        raise InputError(f"expected fill policy conservative or optimistic, was {fill_policy!r}")
    headline = "optimistic" if fill_policy == "optimistic" else "headline"
    t0 = time.perf_counter()
    params = config_params(config)
    rules = symbol_registry().rules(symbol)
    data = backtest_load(symbol=symbol, market=market, params=params, start_ms=start_ms, end_ms=end_ms,
                         exec_interval=exec_interval, store=store)
    replay = replay_for_backtest(profile_bars=data.profile, trend_bars=data.trend, trigger_bars=data.trigger,
                                 start_ms=start_ms, end_ms=end_ms, params=params, rules=rules, progress=progress)
    results = {p: run_backtest(profile_bars=data.profile, trend_bars=data.trend, trigger_bars=data.trigger,
                               exec_bars=data.exec, mark_bars=data.mark, funding=data.funding, start_ms=start_ms,
                               end_ms=end_ms, params=params, rules=rules, policy=p, progress=progress,
                               replay=replay, slippage_mode=slippage_mode) for p in POLICIES}
    runtime = time.perf_counter() - t0
    metrics = {p: backtest_metrics(r) for p, r in results.items()}
    doc: dict[str, Any] = {
        "symbol": symbol, "market": market, "start": ms_to_iso(start_ms), "end": ms_to_iso(end_ms),
        "data_label": data_label, "generated": generated,
        "exec_interval": data.exec.interval, "headline_policy": headline, "config": config.ref,
        "slippage_mode": slippage_mode,
        "config_hash": config.config_hash, "code_version": code_version(), "data_checksum": data.checksum,
        "data_series": data.series, "runtime_s": round(runtime, 3), "bars_per_s": round(
            sum(r.bars for r in results.values()) / runtime, 1) if runtime > 0 else None,
        "notes": data.notes + ([] if market == "perp" else ["spot: no funding and no liquidation are modelled"])
        + ([] if data.mark is not None or market == "spot" else
           ["no mark-price klines stored: the mark path is the trade path (liquidation and kill on last price)"]),
        "results": metrics,
        "skipped": _skipped(replay.skipped),
    }
    run = None
    if record:
        run = BacktestRun.objects.create(
            symbol=symbol, market=market, start=ms_to_dt(start_ms), end=ms_to_dt(end_ms),
            exec_interval=data.exec.interval, policy=headline, config=config, config_hash=config.config_hash,
            data_checksum=data.checksum, data_series=data.series, code_version=doc["code_version"],
            results=metrics, runtime_s=runtime)
        doc["run_id"] = run.pk
    r = results[headline]
    doc["grids"] = [{"grid_no": g.grid_no, "direction": g.direction, "started": ms_to_iso(g.started_ms),
                     "ended": None if g.ended_ms is None else ms_to_iso(g.ended_ms), "exit": g.exit,
                     "levels": [str(x) for x in g.levels], "s1": str(g.s1), "s2": str(g.s2), "r1": str(g.r1),
                     "r2": str(g.r2)} for g in r.grids]
    doc["trades"] = trade_rows(r)
    doc["equity_curve"] = [[ms_to_iso(p.bar_ms), str(p.equity), str(p.drawdown), str(p.position)]
                           for p in r.equity]
    if report is not None:
        from gridcore.reporting.backtest_report import write_backtest_report

        write_backtest_report(Path(report), doc=doc, result=r, exec_bars=data.exec)
    return run, results, doc


def _skipped(skipped: list[tuple[int, str]]) -> dict[str, Any]:
    """How many scans / trigger evaluations the data did not allow, with the first reason of each stage."""
    out: dict[str, Any] = {}
    for t, why in skipped:
        stage = why.partition(":")[0]
        d = out.setdefault(stage, {"count": 0, "first": ms_to_iso(t), "reason": why})
        d["count"] += 1
    return out


TRADE_FIELDS = ("bar_time", "fill_time", "order_id", "side", "qty", "price", "reference_price", "fee",
                "slippage_cost", "liquidity", "reason", "level", "realised", "grid_profit", "position_after",
                "equity_after")


def trade_rows(result: BacktestResult) -> list[dict[str, Any]]:
    out = []
    for bar_ms, ev in result.fills:
        f = ev.fill
        out.append({"bar_time": ms_to_iso(bar_ms), "fill_time": ms_to_iso(f.ts_ms), "order_id": f.order_id,
                    "side": f.side.value, "qty": str(f.qty), "price": str(f.price),
                    "reference_price": str(f.reference_price), "fee": str(f.fee),
                    "slippage_cost": str(f.slippage_cost), "liquidity": f.liquidity.value, "reason": f.reason.value,
                    "level": "" if f.level is None else f.level, "realised": str(ev.realised),
                    "grid_profit": str(ev.grid_profit), "position_after": str(ev.position),
                    "equity_after": str(ev.equity)})
    return out


def write_trade_log(result: BacktestResult, path: Path) -> int:
    rows = trade_rows(result)
    with Path(path).open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=TRADE_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def write_equity_csv(result: BacktestResult, path: Path) -> int:
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["bar_time", "equity", "drawdown", "position", "mark"])
        for p in result.equity:
            w.writerow([ms_to_iso(p.bar_ms), p.equity, p.drawdown, p.position, "" if p.mark is None else p.mark])
    return len(result.equity)
