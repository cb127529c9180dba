"""The scanner's picture: candles with the four-peaks box, POC / value area and MA25, the volume profile beside."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gridcore.analysis.indicators import sma  # noqa: E402
from gridcore.analysis.volume_profile import volume_profile  # noqa: E402
from gridcore.bars import Bars  # noqa: E402
from gridcore.timeframes import ms_to_iso  # noqa: E402

LEVEL_STYLE = {"s2": ("#b71c1c", "S2"), "s1": ("#ef5350", "S1"), "r1": ("#66bb6a", "R1"), "r2": ("#1b5e20", "R2")}


def _candles(ax, bars: Bars) -> None:
    x = bars.open_ms.astype("datetime64[ms]")
    width = np.timedelta64(int(bars.interval_ms * 0.7), "ms")
    up = bars.close >= bars.open
    for mask, colour in ((up, "#26a69a"), (~up, "#ef5350")):
        ax.vlines(x[mask], bars.low[mask], bars.high[mask], color=colour, linewidth=0.6)
        ax.bar(x[mask], np.abs(bars.close - bars.open)[mask] + 1e-9, bottom=np.minimum(bars.open, bars.close)[mask],
               width=width, color=colour, linewidth=0)


def zone_figure(zone: dict, profile_bars: Bars, trend_bars: Bars, *, tick: float, rows: int, lookback: int):
    """A figure for one zone (the `scanner --json` dict); candles are the trend interval over the profile window."""
    at = zone["bar_ms"]
    window = profile_bars.closed_by(at).take(slice(-lookback, None))
    trend = trend_bars.closed_by(at)
    shown = trend.slice_ms(int(window.open_ms[0]), None)
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(13, 6.5), sharey=True, gridspec_kw={"width_ratios": [4, 1]})
    _candles(ax, shown)
    ma = sma(trend.close, 25)[-len(shown):]
    ax.plot(shown.open_ms.astype("datetime64[ms]"), ma, color="#ff9800", linewidth=1.4, label="MA25 (4h)")
    prof = volume_profile(window.high, window.low, window.close, window.volume, tick=tick, rows=rows)
    axp.barh(prof.centres, prof.volumes, height=prof.row_height * 0.9, color="#90a4ae")
    for name, (colour, label) in LEVEL_STYLE.items():
        level = zone.get(name)
        if level is not None and math.isfinite(level):
            for a in (ax, axp):
                a.axhline(level, color=colour, linewidth=1.6, linestyle="-")
            x, ha = (0.005, "left") if name.startswith("s") else (0.995, "right")
            va = "top" if name in ("s2", "r1") else "bottom"  # keep the labels of close levels apart
            ax.annotate(f"{label} {level:,.1f}", (x, level), xycoords=("axes fraction", "data"), color=colour,
                        fontsize=9, va=va, ha=ha, backgroundcolor="white")
    if zone.get("poc") is not None:
        for a in (ax, axp):
            a.axhline(zone["poc"], color="#6a1b9a", linewidth=1.2, linestyle="--")
        axp.annotate(f"POC {zone['poc']:,.1f}", (1.0, zone["poc"]), xycoords=("axes fraction", "data"),
                     color="#6a1b9a", fontsize=8, va="bottom", ha="right")
    if zone.get("val") is not None and zone.get("vah") is not None:
        for a in (ax, axp):
            a.axhspan(zone["val"], zone["vah"], color="#ce93d8", alpha=0.12)
    ax.axhline(zone["price"], color="black", linewidth=0.8, linestyle=":")
    verdict = "valid box" if zone["valid"] else "INVALID: " + "; ".join(zone["reasons"])[:120]
    ax.set_title(f"{zone['symbol']} {zone['market']} at {ms_to_iso(at)}: price {zone['price']:,.1f}, "
                 f"squeeze {zone['squeeze_state']}, bias {zone['bias']:+d} | {verdict}", fontsize=10, loc="left")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.2)
    axp.set_title(f"volume profile ({window.interval} x {len(window)}, {rows} rows)\nshaded: value area 70 %",
                  fontsize=9)
    axp.grid(alpha=0.2)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def save_zone_plot(path: Path, fig) -> Path:
    """PNG, or an HTML page with the chart inline as SVG (opens offline)."""
    if path.suffix.lower() == ".html":
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        svg = buf.getvalue()
        path.write_text(f"<!doctype html><meta charset='utf-8'><title>{path.stem}</title>"
                        f"<body style='margin:0'>{svg[svg.index('<svg'):]}</body>", encoding="utf-8")
    elif path.suffix.lower() == ".png":
        fig.savefig(path, dpi=110)
    else:
        raise ValueError(f"expected a .png or .html plot file, was {path.name}")
    plt.close(fig)
    return path


def png_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
