"""`demo`: the most complete pipeline that works today, end to end, with a readable summary and an HTML report.

Market data: real Binance klines from ../shared/data (or already in the store), else downloaded with ccxt when
online, else a generated market that is labelled as such everywhere.
"""

from __future__ import annotations

import html
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from grid_trading.management.commands._base import GridCommand
from grid_trading.services.configs import config_default, config_params
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import klines_import_file
from grid_trading.services.scanner import zone_as_dict, zone_scan
from grid_trading.services.symbols import symbol_registry
from gridcore.bars import resample
from gridcore.errors import GridError
from gridcore.strategy.scanner import scan_times, sweep_zones
from gridcore.synthetic import GENERATED_LABEL, generated_hourly_bars
from gridcore.timeframes import DAY_MS, ms_to_iso, parse_utc

SYMBOL = "BTCUSDT"
DEMO_FILES = ("BTCUSDT-1h-perp-2019-09-08_2023-12-31.csv.gz", "BTCUSDT-fundingRate-perp-2019-09-10_2023-12-31.csv.gz")


class Command(GridCommand):
    help = "Run the pipeline end to end on real (or, offline, generated) data and write an HTML report."

    def add_arguments(self, parser):
        parser.add_argument("--start", default="2020-01-01", help="first scan (UTC) when real data is used")
        parser.add_argument("--end", default="2020-12-31T20:00Z", help="last scan (UTC) when real data is used")
        parser.add_argument("--report", type=Path, help="report file (default var/reports/demo-<time>.html)")
        super().add_arguments(parser)

    def handle(self, *args, **o):
        t0 = time.perf_counter()
        config = config_default()
        params = config_params(config)
        self.progress(f"[1/4] market data for {SYMBOL} perpetual")
        bars, source = self._market_data()
        self.progress(f"      {source}: {len(bars):,} 1h bars {ms_to_iso(int(bars.open_ms[0]))} .. "
                      f"{ms_to_iso(int(bars.open_ms[-1]))}")
        self.progress(f"[2/4] strategy config {config.name}@{config.version} ({config.config_hash[:12]})")
        generated = source == GENERATED_LABEL
        if generated:
            start, end = int(bars.open_ms[0]) + 31 * DAY_MS, int(bars.close_ms[-1])
        else:
            start, end = parse_utc(o["start"]), parse_utc(o["end"])
        times = scan_times(start, end, params)
        self.progress(f"[3/4] scanner: {len(times):,} scans at every 4h close {ms_to_iso(times[0])} .. "
                      f"{ms_to_iso(times[-1])}")
        tick = symbol_registry().rules(SYMBOL).tick_size
        trend = resample(bars, params.timeframes.analysis_interval)
        sweep = sweep_zones(profile_bars=bars, trend_bars=trend, times=times, params=params, tick=tick,
                            progress=lambda i, n: self.progress(f"      {i:,}/{n:,} scans"))
        stats = _sweep_stats(sweep)
        focus = _focus_time(times, generated)
        self.progress(f"[4/4] zone at {ms_to_iso(focus)}, chart and report")
        if generated:
            zone = next(z.as_dict() for z in sweep.zones if z.bar_ms == focus)
            zone.update(id=None, status="not stored (generated market)", config_hash=config.config_hash)
        else:
            zone = zone_as_dict(zone_scan(symbol=SYMBOL, market="perp", at_ms=focus, config=config).zone)
        report = o["report"] or Path(settings.VAR_DIR) / "reports" / (
            f"demo-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.html")
        report.parent.mkdir(parents=True, exist_ok=True)
        _write_report(report, source, config, stats, zone, bars, trend, focus, params, float(tick))
        summary = {"source": source, "config": f"{config.name}@{config.version}", "config_hash": config.config_hash,
                   "scans": len(times), **stats, "zone": {k: zone[k] for k in ("bar_time", "price", "valid", "s2",
                                                                              "s1", "r1", "r2", "squeeze_state")},
                   "report": str(report), "elapsed_s": round(time.perf_counter() - t0, 1)}
        self.emit(o, summary, text=_summary_text(summary))

    def _market_data(self):
        store = DjangoKlineStore()
        files = [settings.DATA_DIR / name for name in DEMO_FILES]
        if all(f.exists() for f in files):
            for f in files:
                klines_import_file(path=f, store=store)
            return store.load_bars(SYMBOL, "perp", "1h"), f"real Binance klines from {settings.DATA_DIR}"
        cached = store.load_bars(SYMBOL, "perp", "1h")
        if len(cached) > 24 * 60:
            return cached, "real Binance klines cached in the database"
        try:
            from grid_trading.services.fetch import klines_fetch

            now = int(time.time() * 1000)
            klines_fetch(symbol=SYMBOL, market="perp", interval="1h", start_ms=now - 400 * DAY_MS, end_ms=now,
                         progress=self.progress)
            return store.load_bars(SYMBOL, "perp", "1h"), "real Binance klines downloaded with klines fetch"
        except GridError as e:
            self.progress(f"      offline ({str(e).splitlines()[0][:100]}): using a generated market")
        start = parse_utc("2024-01-01")
        return generated_hourly_bars(start_ms=start, hours=24 * 240), GENERATED_LABEL


def _focus_time(times: list[int], generated: bool) -> int:
    wanted = parse_utc("2020-03-10T00:00Z")
    return wanted if not generated and wanted in times else times[-1]


def _sweep_stats(sweep) -> dict:
    zones = sweep.zones
    valid = [z for z in zones if z.valid]
    widths = [(z.r1 - z.s1) / z.price * 100 for z in valid]
    return {"zones": len(zones), "skipped": len(sweep.skipped), "valid": len(valid),
            "valid_share_pct": round(100 * len(valid) / len(zones), 1) if zones else 0.0,
            "median_width_pct": round(statistics.median(widths), 2) if widths else None}


def _summary_text(s: dict) -> str:
    z = s["zone"]
    lv = lambda k: "-" if z[k] is None else f"{z[k]:,.1f}"  # noqa: E731
    return "\n".join([
        "autogrid demo",
        f"  data        {s['source']}",
        f"  config      {s['config']} ({s['config_hash'][:12]})",
        f"  scanner     {s['scans']:,} scans: {s['valid']:,} valid boxes ({s['valid_share_pct']} %), "
        f"median S1..R1 width {s['median_width_pct']} % of price, {s['skipped']} skipped (short history)",
        f"  zone        {z['bar_time']}: S2 {lv('s2')} < S1 {lv('s1')} < price {z['price']:,.2f} < R1 {lv('r1')} "
        f"< R2 {lv('r2')}, squeeze {z['squeeze_state']}, {'valid' if z['valid'] else 'invalid'}",
        f"  report      {s['report']}",
        f"  took        {s['elapsed_s']} s",
    ])


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
<h2>Scanner sweep</h2><table>{rows}</table>
<h2>Zone at {ms_to_iso(focus)}</h2><img src="{img}" style="max-width:100%"><table>{zone_rows}</table>
""", encoding="utf-8")


