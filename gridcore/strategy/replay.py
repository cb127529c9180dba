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
from gridcore.strategy.scanner import ZoneScan, ZoneScanner
from gridcore.strategy.trigger import TriggerEvaluation, TriggerEvaluator, ZoneContext
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


FLUSH_EVERY = 5000  # trigger evaluations batched per kernel call (bounds the batch's memory on long replays)


def replay_signals(*, profile_bars: Bars, trend_bars: Bars, trigger_bars: Bars, start_ms: int, end_ms: int,
                   params: StrategyParams, tick: Decimal, progress=None) -> ReplayResult:
    """scan_zone at every scan close and evaluate_trigger at every trigger close with a zone in force, in time order.

    The scans run one by one (ZoneScanner, as scan_zone); the evaluations they allow are queued and run in batches
    (TriggerEvaluator, as evaluate_trigger). A batch is flushed before anything that must come after its
    evaluations (a scanner skip, an error, a progress report, the end), so the result, the order of `skipped` and
    the first error raised are those of one call per time.
    """
    res = ReplayResult()
    scan_step = interval_ms(params.timeframes.scan_interval)
    step = interval_ms(params.timeframes.trigger_interval)
    scanner = ZoneScanner(profile_bars=profile_bars.warm(), trend_bars=trend_bars.warm(), params=params, tick=tick)
    trigger = TriggerEvaluator(bars=trigger_bars.warm(), params=params, tick=float(tick))
    zone: ZoneScan | None = None
    context: ZoneContext | None = None
    pending: list[tuple[int, ZoneScan, ZoneContext]] = []

    def flush() -> None:
        if not pending:
            return
        results = trigger.evaluate([t for t, _, _ in pending], [c for _, _, c in pending])
        for (t, z, _), ev in zip(pending, results, strict=True):
            if isinstance(ev, DataError):
                res.skipped.append((t, f"trigger: {ev}"))
            else:
                res.evaluations.append((z, ev))
        pending.clear()

    first = -(-start_ms // step) * step
    times = range(first, end_ms + 1, step)
    for i, t in enumerate(times):
        if t % scan_step == 0:
            try:
                scan = scanner.scan(t)
                res.zones.append(scan)
                zone = scan if scan.valid else None
                context = None if zone is None else zone_context(zone)
            except DataError as e:
                flush()
                res.skipped.append((t, f"scanner: {e}"))
                zone = None
            except BaseException:
                flush()
                raise
        if zone is not None and t >= zone.valid_until_ms:
            zone = None
        if zone is not None:
            pending.append((t, zone, context))
            if len(pending) >= FLUSH_EVERY:
                flush()
        if progress is not None and (i + 1) % 5000 == 0:
            flush()
            progress(i + 1, len(times))
    flush()
    return res
