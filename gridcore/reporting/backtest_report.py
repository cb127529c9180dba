"""The backtest report: one offline HTML page (figures inline as base64 PNG) with candles, zone boxes, grid levels
and fills, the equity curve and drawdown below, and the metrics table conservative vs optimistic."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from gridcore.bars import Bars, resample  # noqa: E402
from gridcore.reporting.zone_plot import _candles, png_data_uri  # noqa: E402
from gridcore.timeframes import interval_ms  # noqa: E402

MAX_CANDLES = 1500


def _chart_bars(bars: Bars) -> Bars:
    for iv in ("1h", "4h", "1d"):
        if len(bars) <= MAX_CANDLES:
            return bars
        if interval_ms(iv) > bars.interval_ms:
            bars = resample(bars, iv)
    return bars


def _t(ms) -> np.datetime64:
    return np.datetime64(int(ms), "ms")


def backtest_figure(result, exec_bars: Bars, label: str | None = None):
    """The chart; `label` (a generated market's) heads the title, so the picture alone says it too."""
    bars = _chart_bars(exec_bars.slice_ms(result.start_ms, result.end_ms))
    fig, (ax, ax_eq, ax_dd) = plt.subplots(3, 1, figsize=(14, 10), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 1.2, 0.8]})
    if len(bars):
        _candles(ax, bars)
    # One collection per kind (not one artist per zone): hundreds of zones draw in a fraction of a second.
    valid = [z for z in result.zones if z.valid]
    if valid:
        t0 = np.array([z.bar_ms for z in valid], "datetime64[ms]")
        t1 = np.array([z.valid_until_ms for z in valid], "datetime64[ms]")
        x0, x1 = mdates.date2num(t0), mdates.date2num(t1)
        boxes = [[(a, z.s1), (b, z.s1), (b, z.r1), (a, z.r1)] for a, b, z in zip(x0, x1, valid, strict=True)]
        ax.add_collection(PolyCollection(boxes, facecolors="#90caf9", alpha=0.15, linewidths=0))
        ax.hlines([z.s2 for z in valid] + [z.r2 for z in valid], np.r_[t0, t0], np.r_[t1, t1], colors="#5c6bc0",
                  linewidth=0.5, alpha=0.6)
        ax.autoscale_view()
    levels = [(float(x), g.started_ms, g.ended_ms if g.ended_ms is not None else result.end_ms)
              for g in result.grids for x in g.levels]
    if levels:
        ax.hlines([y for y, _, _ in levels], [_t(a) for _, a, _ in levels], [_t(b) for _, _, b in levels],
                  colors="#ff9800", linewidth=0.6)
    for side, marker, colour in (("BUY", "^", "#00897b"), ("SELL", "v", "#d81b60")):
        pts = [(f.fill.ts_ms, float(f.fill.price)) for _, f in result.fills if f.fill.side.value == side]
        if pts:
            ax.scatter([_t(t) for t, _ in pts], [p for _, p in pts], marker=marker, s=22, color=colour,
                       zorder=5, label=f"{side.lower()} fills")
    ax.set_title((f"{label}\n" if label else "") +
                 f"{result.symbol} {result.market}: candles, zones (S1..R1 boxes, S2/R2 lines), grid levels, fills")
    if result.fills:
        ax.legend(loc="upper left")
    curve = result.equity.floats()
    xs = [_t(ms) for ms in curve["bar_ms"].tolist()]
    ax_eq.plot(xs, curve["equity"], color="#3949ab", linewidth=0.9)
    ax_eq.set_ylabel("equity (USDT)")
    ax_dd.fill_between(xs, -100 * curve["drawdown"], 0, color="#e53935", alpha=0.5)
    ax_dd.set_ylabel("drawdown %")
    fig.tight_layout()
    return fig


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape("n/a" if v is None else str(v))


def write_backtest_report(path: Path, *, doc: dict, result, exec_bars: Bars) -> Path:
    fig = backtest_figure(result, exec_bars, label=doc.get("data_label") if doc.get("generated") else None)
    uri = png_data_uri(fig)
    plt.close(fig)
    a, b = doc["results"]["headline"], doc["results"]["optimistic"]
    keys = [k for k in a if k != "counts"]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_cell(a[k])}</td><td>{_cell(b[k])}</td></tr>" for k in keys)
    rows += "".join(f"<tr><td>{html.escape(k)}</td><td>{a['counts'][k]}</td><td>{b['counts'][k]}</td></tr>"
                    for k in a["counts"])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in doc.get("notes", []))
    title = f"backtest {doc['symbol']} {doc['market']} {doc['start']} .. {doc['end']}"
    label = doc.get("data_label")
    data = ""
    if doc.get("generated"):
        title = f"{label}: {title}"
        data = (f"<p style='background:#fff3cd;padding:8px;border:1px solid #e0a800'><b>{html.escape(label)}</b>"
                " &mdash; generated bars, nothing here is a real market result.</p>")
    elif label:
        data = f"<p>data: {html.escape(label)}</p>"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>{data}"
            f"<p>execution {doc['exec_interval']} bars; config {html.escape(doc['config'])} "
            f"({doc['config_hash'][:12]}); code {html.escape(doc['code_version'])}; data {doc['data_checksum'][:16]}"
            f"</p><img alt='chart' style='max-width:100%' src='{uri}'>"
            "<table><tr><th>metric</th><th>conservative (headline)</th><th>optimistic</th></tr>"
            f"{rows}</table><ul>{notes}</ul></body></html>")
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
