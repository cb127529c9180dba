"""Scanner + Trigger replayed over history with the same pure functions the commands use.

At each 4h close the scan runs first, then the trigger of that same close sees the new zone (the order the cron jobs
are given in the README). A zone is in force from its scan until its valid_until or the next scan; an invalid
scan leaves no zone in force.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from gridcore.bars import Bars
from gridcore.errors import DataError
from gridcore.params import StrategyParams
from gridcore.strategy.scanner import ZoneScan, scan_zone
from gridcore.strategy.trigger import TriggerEvaluation, ZoneContext, evaluate_trigger
from gridcore.timeframes import interval_ms, ms_to_iso


@dataclass
class ReplayResult:
    zones: list[ZoneScan] = field(default_factory=list)
    evaluations: list[tuple[ZoneScan, TriggerEvaluation]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (time, why): data the stage could not use

    def monthly(self) -> dict[str, Counter]:
        """Per month (YYYY-MM): each VSA signal seen at evaluated bars, evaluations, starts by direction."""
        out: dict[str, Counter] = {}
        for _, ev in self.evaluations:
            c = out.setdefault(ms_to_iso(ev.bar_ms)[:7], Counter())
            c["evaluations"] += 1
            c.update(ev.signals)
            if ev.start:
                c["starts"] += 1
                c[f"start_{ev.direction}"] += 1
        return out


def zone_context(z: ZoneScan) -> ZoneContext:
    return ZoneContext(s2=z.s2, s1=z.s1, r1=z.r1, r2=z.r2, atr=z.atr, bias=z.bias, squeeze_state=z.squeeze_state,
                       fire_dir=z.fire_dir)


def replay_signals(*, profile_bars: Bars, trend_bars: Bars, trigger_bars: Bars, start_ms: int, end_ms: int,
                   params: StrategyParams, tick: Decimal, progress=None) -> ReplayResult:
    res = ReplayResult()
    scan_step = interval_ms(params.timeframes.scan_interval)
    step = interval_ms(params.timeframes.trigger_interval)
    zone: ZoneScan | None = None
    first = -(-start_ms // step) * step
    times = range(first, end_ms + 1, step)
    for i, t in enumerate(times):
        if t % scan_step == 0:
            try:
                scan = scan_zone(profile_bars=profile_bars, trend_bars=trend_bars, at_ms=t, params=params, tick=tick)
                res.zones.append(scan)
                zone = scan if scan.valid else None
            except DataError as e:
                res.skipped.append((t, f"scanner: {e}"))
                zone = None
        if zone is not None and t >= zone.valid_until_ms:
            zone = None
        if zone is not None:
            try:
                ev = evaluate_trigger(bars=trigger_bars, at_ms=t, zone=zone_context(zone), params=params,
                                      tick=float(tick))
                res.evaluations.append((zone, ev))
            except DataError as e:
                res.skipped.append((t, f"trigger: {e}"))
        if progress is not None and (i + 1) % 5000 == 0:
            progress(i + 1, len(times))
    return res
