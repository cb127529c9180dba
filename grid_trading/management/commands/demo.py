"""`demo`: the most complete pipeline that works today, end to end, with a readable summary and an HTML report.

Market data: real Binance klines from ../shared/data (or already in the store), else downloaded with ccxt when
online, else a generated market that is labelled as such everywhere. The Scanner and the Trigger are replayed over
a period with the same pure functions the commands run; one zone is stored and drawn.
"""

from __future__ import annotations

import html
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.configs import config_default, config_params
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import bars_for_analysis, klines_import_file
from grid_trading.services.scanner import zone_as_dict, zone_scan
from grid_trading.services.symbols import symbol_registry
from gridcore.bars import resample
from gridcore.errors import GridError
from gridcore.strategy.replay import replay_signals
from gridcore.synthetic import GENERATED_LABEL, generated_bars
from gridcore.timeframes import DAY_MS, interval_ms, ms_to_iso, parse_utc

SYMBOL = "BTCUSDT"
DEMO_FILES = ("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz", "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz",
              "BTCUSDT-5m-perp-2023-01-01_2023-12-31.csv.gz")
FOCUS = "2020-03-10T00:00Z"  # two days before the March 2020 crash
PAPER_WEEK = ("2023-01-02", "2023-01-09")  # the paper executor's week on stored 5m perpetual bars


class Command(GridCommand):
    help = "Run the pipeline end to end on real (or, offline, generated) data and write an HTML report."

    def add_arguments(self, parser):
        parser.add_argument("--start", default="2023-01-01", help="replay start (UTC) when real data is used")
        parser.add_argument("--end", default="2023-12-31T23:45Z", help="replay end (UTC) when real data is used")
        parser.add_argument("--report", type=Path, help="report file (default var/reports/demo-<time>.html)")
        super().add_arguments(parser)

    def handle(self, *args, **o):
        t0 = time.perf_counter()
        config = config_default()
        params = config_params(config)
        self.progress(f"[1/5] market data for {SYMBOL} perpetual")
        hourly, quarter, source = self._market_data(o)
        generated = source == GENERATED_LABEL
        self.progress(f"      {source}: {len(hourly):,} 1h bars {ms_to_iso(int(hourly.open_ms[0]))} .. "
                      f"{ms_to_iso(int(hourly.open_ms[-1]))}, {len(quarter):,} 15m bars")
        self.progress(f"[2/5] strategy config {config.name}@{config.version} ({config.config_hash[:12]})")
        start = int(quarter.open_ms[0]) + 31 * DAY_MS if generated else parse_utc(o["start"])
        end = int(quarter.close_ms[-1]) if generated else parse_utc(o["end"])
        self.progress(f"[3/5] scanner every 4h and trigger every 15m, {ms_to_iso(start)} .. {ms_to_iso(end)}")
        tick = symbol_registry().rules(SYMBOL).tick_size
        trend = resample(hourly, params.timeframes.analysis_interval)
        replay = replay_signals(profile_bars=hourly, trend_bars=trend, trigger_bars=quarter, start_ms=start,
                                end_ms=end, params=params, tick=tick,
                                progress=lambda i, n: self.progress(f"      {i:,}/{n:,} 15m closes"))
        stats = _stats(replay)
        focus = replay.zones[-1].bar_ms if generated else parse_utc(FOCUS)
        paper = None if generated else self._paper_week(config, params)
        self.progress(f"[5/5] zone at {ms_to_iso(focus)}, chart and report")
        if generated:
            zone = next(z.as_dict() for z in replay.zones if z.bar_ms == focus)
            zone.update(id=None, status="not stored (generated market)", config_hash=config.config_hash)
        else:
            zone = zone_as_dict(zone_scan(symbol=SYMBOL, market="perp", at_ms=focus, config=config).zone)
        report = o["report"] or Path(settings.VAR_DIR) / "reports" / f"demo-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        _write_report(report, source, config, dict(stats, paper_week=paper), zone, hourly, trend, focus, params,
                      float(tick))
        summary = {"source": source, "config": f"{config.name}@{config.version}", "config_hash": config.config_hash,
                   "period": f"{ms_to_iso(start)} .. {ms_to_iso(end)}", **stats, "paper_week": paper,
                   "zone": {k: zone[k] for k in ("bar_time", "price", "valid", "s2", "s1", "r1", "r2",
                                                 "squeeze_state")},
                   "report": str(report), "elapsed_s": round(time.perf_counter() - t0, 1)}
        self.emit(o, summary, text=_summary_text(summary))

    def _paper_week(self, config, params) -> dict:
        """The database pipeline on stored bars: scans, triggers and the paper executor over one week."""
        from grid_trading.services.executor import executor_run_once
        from grid_trading.services.trigger import signal_trigger

        start, end = parse_utc(PAPER_WEEK[0]), parse_utc(PAPER_WEEK[1])
        self.progress(f"[4/5] paper trading {PAPER_WEEK[0]} .. {PAPER_WEEK[1]}: scanner, trigger and executor on the "
                      f"stored bars")
        scan_step = interval_ms(params.timeframes.scan_interval)
        step = interval_ms(params.timeframes.trigger_interval)
        for t in range(start, end + 1, step):
            if t % scan_step == 0:
                zone_scan(symbol=SYMBOL, market="perp", at_ms=t, config=config)
            signal_trigger(symbol=SYMBOL, market="perp", at_ms=t, config=config)
        res = executor_run_once(symbol=SYMBOL, market="perp", config=config, until_ms=end, start_ms=start)
        st = res["status"]
        # A re-run finds the week already applied (the executor never applies a bar twice): report the state.
        return {"period": f"{PAPER_WEEK[0]} .. {PAPER_WEEK[1]}", "bars_this_run": res["bars_processed"],
                "interval": st["interval"], "last_bar": st["last_bar"], "fills": st["fills"],
                "grids_started": st.get("grids_started"), "open_orders": len(st["open_orders"]),
                "state": st["state"], "equity": st["equity"], "realised_grid_profit": st["realised_grid_profit"],
                "unrealised_pnl": st["unrealised_pnl"], "fees": st["fees"], "funding": st["funding"]}

    def _market_data(self, o):
        store = DjangoKlineStore()
        files = [settings.DATA_DIR / name for name in DEMO_FILES]
        if all(f.exists() for f in files):
            for f in files:
                klines_import_file(path=f, store=store)
            source = f"real Binance klines from {settings.DATA_DIR}"
        elif len(store.load_bars(SYMBOL, "perp", "1h")) < 24 * 60:
            try:
                from grid_trading.services.fetch import klines_fetch

                for interval in ("1h", "15m"):
                    klines_fetch(symbol=SYMBOL, market="perp", interval=interval, start_ms=parse_utc(o["start"]) -
                                 40 * DAY_MS, end_ms=parse_utc(o["end"]), progress=self.progress)
                source = "real Binance klines downloaded with klines fetch"
            except GridError as e:
                self.progress(f"      offline ({str(e).splitlines()[0][:100]}): using a generated market")
                quarter = generated_bars(start_ms=parse_utc("2024-01-01"), days=240)
                return resample(quarter, "1h"), quarter, GENERATED_LABEL
        else:
            source = "real Binance klines cached in the database"
        hourly = store.load_bars(SYMBOL, "perp", "1h")
        quarter = bars_for_analysis(symbol=SYMBOL, market="perp", interval="15m",
                                    start_ms=parse_utc(o["start"]) - 3 * DAY_MS, end_ms=parse_utc(o["end"]))
        return hourly, quarter, source


def _stats(replay) -> dict:
    zones = replay.zones
    valid = [z for z in zones if z.valid]
    widths = [(z.r1 - z.s1) / z.price * 100 for z in valid]
    starts = Counter(ev.direction for _, ev in replay.evaluations if ev.start)
    seen = Counter(s for _, ev in replay.evaluations for s in ev.signals)
    return {"scans": len(zones), "valid_zones": len(valid),
            "valid_share_pct": round(100 * len(valid) / len(zones), 1) if zones else 0.0,
            "median_width_pct": round(statistics.median(widths), 2) if widths else None,
            "trigger_evaluations": len(replay.evaluations), "start_signals": dict(sorted(starts.items())),
            "vsa_signals_seen": dict(seen.most_common()), "skipped_for_missing_data": len(replay.skipped)}


def _summary_text(s: dict) -> str:
    z = s["zone"]
    lv = lambda k: "-" if z[k] is None else f"{z[k]:,.1f}"  # noqa: E731
    top = ", ".join(f"{k} {v}" for k, v in list(s["vsa_signals_seen"].items())[:5])
    return "\n".join([
        "autogrid demo",
        f"  data        {s['source']}",
        f"  config      {s['config']} ({s['config_hash'][:12]})",
        f"  period      {s['period']}",
        f"  scanner     {s['scans']:,} scans: {s['valid_zones']:,} valid boxes ({s['valid_share_pct']} %), "
        f"median S1..R1 width {s['median_width_pct']} % of price",
        f"  trigger     {s['trigger_evaluations']:,} 15m closes with a zone; start signals {s['start_signals']}",
        f"              most seen VSA signals: {top}",
        f"  zone        {z['bar_time']}: S2 {lv('s2')} < S1 {lv('s1')} < price {z['price']:,.2f} < R1 {lv('r1')} "
        f"< R2 {lv('r2')}, squeeze {z['squeeze_state']}, {'valid' if z['valid'] else 'invalid'}",
        _paper_text(s["paper_week"]),
        f"  report      {s['report']}",
        f"  took        {s['elapsed_s']} s",
    ])


def _paper_text(p: dict | None) -> str:
    if p is None:
        return "  executor    not run on a generated market (it replays stored bars)"
    return (f"  executor    {p['period']} on {p['interval']} bars (up to {p['last_bar']}): "
            f"{p['grids_started']} grid(s), {p['fills']} fills, {p['open_orders']} open orders, state {p['state']}, "
            f"equity {float(p['equity']):,.2f} USDT (grid profit "
            f"{float(p['realised_grid_profit']):,.2f}, unrealised {float(p['unrealised_pnl']):,.2f}, fees "
            f"{float(p['fees']):,.2f}, funding {float(p['funding']):,.2f})")


def _write_report(path, source, config, stats, zone, bars, trend, focus, params, tick) -> None:
    from gridcore.reporting.zone_plot import png_data_uri, zone_figure

    fig = zone_figure(dict(zone, bar_ms=focus), bars, trend, tick=tick, rows=params.volume_profile.rows,
                      lookback=params.volume_profile.lookback_bars)
    img = png_data_uri(fig)
    banner = (f"<p style='background:#fff3cd;padding:8px;border:1px solid #e0a800'><b>{html.escape(source)}</b>"
              f" &mdash; nothing here is a real market result.</p>") if source == GENERATED_LABEL else ""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in stats.items())
    zone_rows = "".join(f"<tr><th>{k}</th><td>{html.escape(str(zone.get(k)))}</td></tr>" for k in (
        "bar_time", "price", "valid", "reasons", "s2", "s1", "r1", "r2", "poc", "val", "vah", "ma25", "atr", "bias",
        "squeeze_state", "status"))
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>autogrid demo</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:20px auto}}td,th{{text-align:left;padding:2px 10px}}</style>
<h1>autogrid demo: {SYMBOL} perpetual</h1>{banner}
<p>data: {html.escape(source)}<br>config: {config.name}@{config.version} <code>{config.config_hash}</code><br>
code: <code>{html.escape(config.code_version)}</code></p>
<h2>Scanner and trigger replay</h2><table>{rows}</table>
<h2>Paper executor</h2><p>{html.escape(_paper_text(stats.get("paper_week")))}</p>
<h2>Zone at {ms_to_iso(focus)}</h2><img src="{img}" style="max-width:100%"><table>{zone_rows}</table>
""", encoding="utf-8")
