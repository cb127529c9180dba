"""`demo [--start 2023-01-01] [--end 2023-04-01] [--report FILE.html] [--json]`: the main job end to end. A backtest
of the BTCUSDT perpetual (scanner, trigger and executor replayed over history, both fill policies) through the same
service as the `backtest` command, recorded as a BacktestRun, with the same summary and an offline HTML report.

Market data, the first that works:
1. real Binance klines already in the database (1h for the scanner, 5m execution bars, funding);
2. real Binance klines from ../shared/data (AUTOGRID_DATA_DIR), imported into the database;
3. real Binance klines downloaded with `klines fetch`, after a quick probe (short timeout, one retry), so an
   offline machine falls through in seconds;
4. offline with nothing cached: a generated market (gridcore.synthetic), labelled GENERATED MARKET in the output
   and in the report. Its bars live in a scratch in-memory store only: never written to the database, never
   recorded as a BacktestRun, so they cannot be taken for real klines later.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from grid_trading.management.commands._base import GridCommand
from grid_trading.management.commands.backtest import progress_printer, summary
from grid_trading.services.backtest import backtest_run
from grid_trading.services.configs import config_default, config_params
from grid_trading.services.fetch import exchange_reachable, klines_fetch
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import klines_import_file
from gridcore.bars import Bars
from gridcore.errors import GridError
from gridcore.params import StrategyParams
from gridcore.runtime import tune_collector_for_batch
from gridcore.store_memory import MemoryKlineStore
from gridcore.strategy.scanner import TREND_WINDOW_BARS
from gridcore.strategy.trigger import TRIGGER_WINDOW_BARS
from gridcore.synthetic import GENERATED_LABEL, generated_bars
from gridcore.timeframes import DAY_MS, interval_ms, ms_to_iso, parse_utc

SYMBOL, MARKET = "BTCUSDT", "perp"
EXEC_INTERVAL = "5m"  # real data: 5m perpetual execution bars (the 1h series feeds the scanner)
DEMO_FILES = ("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz", "BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz",
              "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz")
GENERATED_START, GENERATED_WARMUP_DAYS, GENERATED_DAYS = "2024-01-01", 31, 90  # 15m bars, 31 days of warm-up
GENERATED_EXEC_INTERVAL = "15m"


class Command(GridCommand):
    help = ("Backtest BTCUSDT perpetual end to end on real Binance klines (cached, ../shared/data or downloaded; "
            "offline with nothing cached: a labelled generated market), print a summary and write an HTML report.")

    def add_arguments(self, parser):
        parser.add_argument("--start", default="2023-01-01", help="backtest start (UTC) on real data")
        parser.add_argument("--end", default="2023-04-01", help="backtest end (UTC, exclusive) on real data")
        parser.add_argument("--report", type=Path, help="report file (default var/reports/demo-<time>.html)")
        super().add_arguments(parser)

    def handle(self, *args, **o):
        tune_collector_for_batch()
        t0 = time.perf_counter()
        config = config_default()
        params = config_params(config)
        start, end = parse_utc(o["start"]), parse_utc(o["end"])
        if end <= start:
            raise CommandError(f"--end: expected a time after --start {o['start']}, was {o['end']}")
        self.progress(f"[1/2] market data: {SYMBOL} {MARKET}, {ms_to_iso(start)} .. {ms_to_iso(end)}")
        source, store = self._market_data(params, start, end)
        generated = source == GENERATED_LABEL
        exec_interval = EXEC_INTERVAL
        if generated:
            start = parse_utc(GENERATED_START) + GENERATED_WARMUP_DAYS * DAY_MS
            end = start + GENERATED_DAYS * DAY_MS
            exec_interval = GENERATED_EXEC_INTERVAL
            self.progress(f"      {GENERATED_LABEL}: {GENERATED_WARMUP_DAYS + GENERATED_DAYS} days of 15m bars in "
                          f"a scratch in-memory store (not in the database, not recorded)")
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        report = o["report"] or Path(settings.VAR_DIR) / "reports" / (
            f"demo-generated-{stamp}.html" if generated else f"demo-{stamp}.html")
        report.parent.mkdir(parents=True, exist_ok=True)
        self.progress(f"[2/2] backtest {ms_to_iso(start)} .. {ms_to_iso(end)} on {exec_interval} bars, config "
                      f"{config.ref}, both fill policies, then the report")
        run, _, doc = backtest_run(symbol=SYMBOL, market=MARKET, start_ms=start, end_ms=end, config=config,
                                   exec_interval=exec_interval, fill_policy="conservative",
                                   progress=progress_printer(lambda m: self.progress(f"      {m}")),
                                   record=not generated, report=report, store=store, data_label=source)
        elapsed = round(time.perf_counter() - t0, 1)
        warn = [f"*** {GENERATED_LABEL}: not a real market result ***"] if generated else []
        text = "\n".join(["autogrid demo", *warn, summary(doc),
                          f"recorded    BacktestRun {run.pk}" if run else "recorded    nothing (generated market)",
                          f"report      {report}", f"took        {elapsed} s", *warn])
        payload = {"data": source, "generated": generated, "run_id": run.pk if run else None, "report": str(report),
                   "elapsed_s": elapsed,
                   "backtest": {k: v for k, v in doc.items() if k not in ("trades", "equity_curve", "grids")}}
        self.emit(o, payload, text=text)

    # ----- market data -----

    def _market_data(self, params: StrategyParams, start: int, end: int) -> tuple[str, MemoryKlineStore | None]:
        """(what the data is, the store to read: None = the database)."""
        store = DjangoKlineStore()
        missing = _missing(store, params, start, end)
        if missing is None:
            return "real Binance klines cached in the database", None
        self.progress(f"      not in the database: {missing}")
        files = [Path(settings.DATA_DIR) / name for name in DEMO_FILES]
        if all(f.exists() for f in files):
            for f in files:
                t = time.perf_counter()
                r = klines_import_file(path=f, store=store)
                self.progress(f"      imported {f.name}: {r.rows:,} rows ({r.inserted:,} new) in "
                              f"{time.perf_counter() - t:.1f} s")
            missing = _missing(store, params, start, end)
            if missing is None:
                return f"real Binance klines from {settings.DATA_DIR} (imported into the database)", None
            self.progress(f"      the files of {settings.DATA_DIR} do not cover the period: {missing}")
        else:
            self.progress(f"      {settings.DATA_DIR} lacks {', '.join(f.name for f in files if not f.exists())}")
        why = self._download(params, start, end)
        if why is None:
            where = settings.BINANCE_BASE_URL or "Binance"
            return f"real Binance klines downloaded with klines fetch from {where}", None
        self.progress(f"      offline ({why[:160]}): falling back to a {GENERATED_LABEL}")
        mem = MemoryKlineStore()
        mem.upsert_bars(generated_bars(symbol=SYMBOL, market=MARKET, start_ms=parse_utc(GENERATED_START),
                                       days=GENERATED_WARMUP_DAYS + GENERATED_DAYS))
        return GENERATED_LABEL, mem

    def _download(self, params: StrategyParams, start: int, end: int) -> str | None:
        """`klines fetch` of what the backtest reads; None when done, else why not."""
        where = settings.BINANCE_BASE_URL or "Binance"
        self.progress(f"      asking {where} (5 s timeout, one retry)")
        why = exchange_reachable(timeout_ms=5_000, retries=1)
        if why is not None:
            return why
        profile_from, trigger_from = _warmup_starts(params, start)
        say = lambda m: self.progress(f"    {m}")  # noqa: E731  (fetch progress lines start with two spaces)
        try:
            klines_fetch(symbol=SYMBOL, market=MARKET, interval=EXEC_INTERVAL, start_ms=trigger_from, end_ms=end,
                         with_funding=True, progress=say)  # also mark-price klines and funding
            klines_fetch(symbol=SYMBOL, market=MARKET, interval=params.volume_profile.interval,
                         start_ms=profile_from, end_ms=end, with_funding=False, progress=say)
        except GridError as e:
            return str(e).splitlines()[0]
        missing = _missing(DjangoKlineStore(), params, start, end)
        return None if missing is None else f"the download does not cover the period: {missing}"


def _warmup_starts(params: StrategyParams, start: int) -> tuple[int, int]:
    """Where the profile/trend series (volume_profile.interval) and the trigger's finer bars must begin."""
    vp, tf = params.volume_profile, params.timeframes
    slack = params.execution.stale_data_intervals + 2
    profile = start - max((vp.lookback_bars + slack) * interval_ms(vp.interval),
                          (TREND_WINDOW_BARS + slack) * interval_ms(tf.analysis_interval))
    return profile, start - (TRIGGER_WINDOW_BARS + slack) * interval_ms(tf.trigger_interval)


def _covers(b: Bars, start: int, end: int) -> bool:
    return bool(len(b)) and int(b.open_ms[0]) - start < DAY_MS and end - int(b.close_ms[-1]) < DAY_MS


def _missing(store: DjangoKlineStore, params: StrategyParams, start: int, end: int) -> str | None:
    """None when the store holds what the demo's backtest reads, else what is missing."""
    profile_from, _ = _warmup_starts(params, start)
    iv = params.volume_profile.interval
    out = []
    if not _covers(store.load_bars(SYMBOL, MARKET, iv, profile_from, end), profile_from, end):
        out.append(f"{iv} bars {ms_to_iso(profile_from)} .. {ms_to_iso(end)}")
    if not _covers(store.load_bars(SYMBOL, MARKET, EXEC_INTERVAL, start, end), start, end):
        out.append(f"{EXEC_INTERVAL} bars {ms_to_iso(start)} .. {ms_to_iso(end)}")
    f_ms, _ = store.load_funding(SYMBOL, start, end)
    if not f_ms.size or int(f_ms[0]) - start >= DAY_MS or end - int(f_ms[-1]) >= DAY_MS:
        out.append(f"funding {ms_to_iso(start)} .. {ms_to_iso(end)}")
    return "; ".join(out) or None
