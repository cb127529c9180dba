"""Scanner service: one scan of one symbol at one 4h close -> a GridZone row (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from grid_trading.models import GridStrategyConfig, GridZone
from grid_trading.services.configs import config_params
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.klines import bars_for_analysis
from grid_trading.services.provenance import code_version
from grid_trading.services.symbols import symbol_registry
from grid_trading.services.transitions import zone_transition
from gridcore.domain.transitions import ZoneStatus, ZoneTrigger
from gridcore.params import StrategyParams
from gridcore.strategy.scanner import TREND_WINDOW_BARS, ZoneScan, scan_zone, zone_atr_decimal, zone_decimal
from gridcore.timeframes import floor_to, interval_ms, ms_to_dt


@dataclass(frozen=True)
class ScanOutcome:
    zone: GridZone
    scan: ZoneScan | None  # None when the zone already existed (idempotent re-run)
    created: bool


def last_scan_time(now_ms: int, params: StrategyParams) -> int:
    """The latest scan-interval close at or before now."""
    return floor_to(now_ms, interval_ms(params.timeframes.scan_interval))


def zone_compute(*, symbol: str, market: str, at_ms: int, params: StrategyParams,
                 store: DjangoKlineStore | None = None) -> ZoneScan:
    """Load just the windows the scan reads and run the pure scan (no database writes)."""
    store = store or DjangoKlineStore()
    vp = params.volume_profile
    prof_iv = interval_ms(vp.interval)
    trend_iv = interval_ms(params.timeframes.analysis_interval)
    slack = params.execution.stale_data_intervals + 2
    profile = bars_for_analysis(symbol=symbol, market=market, interval=vp.interval,
                                start_ms=at_ms - (vp.lookback_bars + slack) * prof_iv, end_ms=at_ms, store=store)
    trend = bars_for_analysis(symbol=symbol, market=market, interval=params.timeframes.analysis_interval,
                              start_ms=at_ms - (TREND_WINDOW_BARS + slack) * trend_iv, end_ms=at_ms, store=store)
    ltf = None
    if vp.distribution == "ltf":
        ltf = bars_for_analysis(symbol=symbol, market=market, interval=vp.ltf_interval,
                                start_ms=at_ms - vp.lookback_bars * prof_iv, end_ms=at_ms, store=store)
    tick = symbol_registry().rules(symbol).tick_size
    return scan_zone(profile_bars=profile, trend_bars=trend, at_ms=at_ms, params=params, tick=tick, ltf_bars=ltf)


def zone_scan(*, symbol: str, market: str, at_ms: int, config: GridStrategyConfig) -> ScanOutcome:
    """Scan and persist. The same (symbol, market, bar, config) returns the stored zone; a newer zone supersedes
    the active one; a scan older than the active zone is stored as already SUPERSEDED."""
    bar_time = ms_to_dt(at_ms)
    existing = GridZone.objects.filter(symbol=symbol, market=market, bar_time=bar_time, config=config).first()
    if existing is not None:
        return ScanOutcome(existing, None, False)
    scan = zone_compute(symbol=symbol, market=market, at_ms=at_ms, params=config_params(config))
    with transaction.atomic():
        active = (GridZone.objects.select_for_update()
                  .filter(symbol=symbol, market=market, config=config, status=ZoneStatus.ACTIVE).first())
        newest = active is None or active.bar_time < bar_time
        status = ZoneStatus.INVALID if not scan.valid else (ZoneStatus.ACTIVE if newest else ZoneStatus.SUPERSEDED)
        if active is not None and newest:
            zone_transition(active, trigger=ZoneTrigger.SUPERSEDE)
        zone = GridZone.objects.create(
            symbol=symbol, market=market, bar_time=bar_time, config=config, config_hash=config.config_hash,
            code_version=code_version(),
            **{k: zone_decimal(getattr(scan, k)) for k in ("price", "s2", "s1", "r1", "r2", "poc", "vah", "val")},
            ma25=zone_decimal(scan.ma25), atr=zone_atr_decimal(scan.atr), bias=scan.bias,
            squeeze_state=scan.squeeze_state, fire_dir=scan.fire_dir, valid=scan.valid, reasons=list(scan.reasons),
            details=scan.details, valid_until=ms_to_dt(scan.valid_until_ms), status=status,
        )
    return ScanOutcome(zone, scan, True)


def zone_expire_stale(*, symbol: str, market: str, now_ms: int) -> int:
    """ACTIVE zones whose valid_until has passed become EXPIRED. Returns how many."""
    n = 0
    for zone in GridZone.objects.filter(symbol=symbol, market=market, status=ZoneStatus.ACTIVE,
                                        valid_until__lte=ms_to_dt(now_ms)):
        zone_transition(zone, trigger=ZoneTrigger.EXPIRE)
        n += 1
    return n


def zone_as_dict(zone: GridZone) -> dict:
    """The JSON contract of `scanner --json`."""
    f = (lambda d: None if d is None else float(d))
    return {
        "id": zone.pk, "symbol": zone.symbol, "market": zone.market,
        "bar_time": zone.bar_time.strftime("%Y-%m-%dT%H:%MZ"), "price": f(zone.price), "valid": zone.valid,
        "reasons": zone.reasons, "s2": f(zone.s2), "s1": f(zone.s1), "r1": f(zone.r1), "r2": f(zone.r2),
        "poc": f(zone.poc), "vah": f(zone.vah), "val": f(zone.val), "ma25": f(zone.ma25), "atr": f(zone.atr),
        "bias": zone.bias, "squeeze_state": zone.squeeze_state, "fire_dir": zone.fire_dir, "status": zone.status,
        "valid_until": zone.valid_until.strftime("%Y-%m-%dT%H:%MZ"), "config": f"{zone.config.name}@"
        f"{zone.config.version}", "config_hash": zone.config_hash, "code_version": zone.code_version,
        "details": zone.details,
    }
