"""Trigger service: evaluate one 15m close against the zone active then; write a TradingSignal on a start."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from grid_trading.models import GridStrategyConfig, GridZone, TradingSignal
from grid_trading.services.configs import config_params
from grid_trading.services.klines import bars_for_analysis
from grid_trading.services.provenance import code_version
from grid_trading.services.symbols import symbol_registry
from grid_trading.services.transitions import transition
from gridcore.domain.transitions import SIGNAL_TRANSITIONS, SignalStatus, SignalTrigger
from gridcore.params import StrategyParams
from gridcore.strategy.trigger import TRIGGER_WINDOW_BARS, ZoneContext, evaluate_trigger
from gridcore.timeframes import interval_ms, ms_to_dt, ms_to_iso


def zone_active_at(*, symbol: str, market: str, config: GridStrategyConfig, at_ms: int) -> GridZone | None:
    """The zone in force at `at_ms`: the newest scan at or before it, if that scan found a valid box that has not
    expired. The same question answers live runs and replays (`--at`)."""
    at = ms_to_dt(at_ms)
    zone = (GridZone.objects.filter(symbol=symbol, market=market, config=config, bar_time__lte=at)
            .order_by("-bar_time").first())
    if zone is None or not zone.valid or zone.valid_until <= at:
        return None
    return zone


def _context(zone: GridZone) -> ZoneContext:
    return ZoneContext(s2=float(zone.s2), s1=float(zone.s1), r1=float(zone.r1), r2=float(zone.r2),
                       atr=float(zone.atr), bias=zone.bias, squeeze_state=zone.squeeze_state, fire_dir=zone.fire_dir)


def last_trigger_time(now_ms: int, params: StrategyParams) -> int:
    step = interval_ms(params.timeframes.trigger_interval)
    return (now_ms // step) * step


def signal_trigger(*, symbol: str, market: str, at_ms: int, config: GridStrategyConfig) -> dict:
    """The `trigger --json` document. Idempotent per zone and bar: a start already recorded is returned."""
    params = config_params(config)
    out = {"zone_id": None, "bar_time": ms_to_iso(at_ms), "symbol": symbol, "market": market, "signals": [],
           "setup": [], "start": False, "direction": None, "reasons": [], "signal_id": None,
           "config_hash": config.config_hash}
    zone = zone_active_at(symbol=symbol, market=market, config=config, at_ms=at_ms)
    if zone is None:
        out["reasons"] = [f"no active zone for {symbol} {market} at {ms_to_iso(at_ms)} (config {config.name}@"
                          f"{config.version}): the latest scan found no valid box, expired, or none ran yet"]
        return out
    out["zone_id"] = zone.pk
    step = interval_ms(params.timeframes.trigger_interval)
    bars = bars_for_analysis(symbol=symbol, market=market, interval=params.timeframes.trigger_interval,
                             start_ms=at_ms - (TRIGGER_WINDOW_BARS + 2) * step, end_ms=at_ms)
    tick = float(symbol_registry().rules(symbol).tick_size)
    ev = evaluate_trigger(bars=bars, at_ms=at_ms, zone=_context(zone), params=params, tick=tick)
    out.update(signals=list(ev.signals), setup=list(ev.setup), start=ev.start, direction=ev.direction,
               reasons=list(ev.reasons), strength=ev.strength, price=ev.price)
    if ev.start:
        out["signal_id"] = _record(zone, config, ev, at_ms + params.timeframes.signal_expiry_bars * step).pk
    return out


def _record(zone: GridZone, config: GridStrategyConfig, ev, expires_ms: int) -> TradingSignal:
    with transaction.atomic():
        existing = TradingSignal.objects.filter(zone=zone, bar_time=ms_to_dt(ev.bar_ms)).first()
        if existing is not None:
            return existing
        return TradingSignal.objects.create(
            zone=zone, config=config, config_hash=config.config_hash, code_version=code_version(),
            symbol=zone.symbol, market=zone.market, bar_time=ms_to_dt(ev.bar_ms), price=Decimal(repr(ev.price)),
            direction=ev.direction, signals=list(ev.setup), strength=ev.strength, reasons=list(ev.reasons),
            expires_at=ms_to_dt(expires_ms), status=SignalStatus.NEW,
        )


def signal_transition(signal: TradingSignal, *, trigger: SignalTrigger, reason: str = "") -> str:
    return transition(signal, table=SIGNAL_TRANSITIONS, trigger=trigger, status_reason=reason)
