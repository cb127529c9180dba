"""Executor service: step the GridEngine over every closed bar since the last one applied, persisting each bar.

Per bar, ONE transaction writes everything the bar changed: the StrategyState (compare-and-swap on `version` and
`last_bar_time`, so a bar is never applied twice and a second writer fails instead of interleaving), the status
changes of the strategy and its orders (each through grid_trading.services.transitions, backed by DB triggers),
the orders placed (keyed by the engine's deterministic order id), the fills (unique per strategy and fill number),
the event journal and the signal it consumed / rejected / let expire. A crash at any moment leaves the database at
a bar boundary; the next run continues from there and, the engine being a pure function, produces the same rows.

A single-instance lock per symbol and market keeps a second executor out: a PostgreSQL advisory lock held on a
dedicated connection (PostgreSQL), an fcntl.flock on var/locks/executor-<symbol>-<market>.lock (SQLite).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from grid_trading.models import (
    FundingRate,
    GridFill,
    GridOrder,
    GridStrategyConfig,
    GridZone,
    KlineChunk,
    TradingSignal,
)
from grid_trading.models.execution import ExecutionEvent, StrategyState
from grid_trading.services.configs import config_params
from grid_trading.services.kline_store import DjangoKlineStore
from grid_trading.services.symbols import symbol_registry
from grid_trading.services.transitions import ConcurrentModification, transition
from grid_trading.services.trigger import signal_transition
from gridcore.backtest import inputs
from gridcore.domain.orders import FundingEvent, Order, to_plain
from gridcore.domain.transitions import (
    ORDER_TRANSITIONS,
    STRATEGY_TRANSITIONS,
    OrderStatus,
    OrderTrigger,
    SignalStatus,
    SignalTrigger,
    StrategyTrigger,
)
from gridcore.errors import DataError, GridError, InputError
from gridcore.params import StrategyParams
from gridcore.strategy import engine as eng
from gridcore.strategy.engine import EngineState, StartSignal
from gridcore.symbols import SymbolRules
from gridcore.timeframes import dt_to_ms, interval_ms, ms_to_dt, ms_to_iso

MARKETS = ("perp", "spot")
_OPEN_ORDER = [s.value for s in (OrderStatus.NEW, OrderStatus.OPEN)]


class ExecutorLocked(GridError):
    """Another executor holds the lock for this symbol and market."""


# --- the single-instance lock -------------------------------------------------------------------------------------


def _lock_key(symbol: str, market: str, config: GridStrategyConfig) -> int:
    digest = hashlib.sha256(f"executor:{symbol}:{market}:{config.config_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def executor_lock(*, symbol: str, market: str, config: GridStrategyConfig) -> Iterator[None]:
    """Held for the life of the block; raises ExecutorLocked naming the holder when another process has it."""
    if connection.vendor == "postgresql":
        with _pg_lock(symbol, market, config):
            yield
    else:
        with _file_lock(symbol, market):
            yield


@contextlib.contextmanager
def _pg_lock(symbol: str, market: str, config: GridStrategyConfig) -> Iterator[None]:
    import psycopg

    db = connection.settings_dict  # the test runner points NAME at the test database here
    app = f"autogrid-executor pid={os.getpid()}"
    conn = psycopg.connect(dbname=db["NAME"], user=db.get("USER") or None,
                           password=db.get("PASSWORD") or None, host=db.get("HOST") or None,
                           port=db.get("PORT") or None, autocommit=True, application_name=app)
    key = _lock_key(symbol, market, config)
    try:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        if not got:
            holder = conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
            pid = holder[0].rpartition("pid=")[2] if holder and "pid=" in (holder[0] or "") else "unknown"
            raise ExecutorLocked(f"another executor is running for {symbol} {market} (pid {pid})")
        yield
    finally:
        conn.close()  # ends the session: the advisory lock goes with it


def lock_path(symbol: str, market: str) -> Path:
    return Path(settings.VAR_DIR) / "locks" / f"executor-{symbol}-{market}.lock"


@contextlib.contextmanager
def _file_lock(symbol: str, market: str) -> Iterator[None]:
    path = lock_path(symbol, market)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ExecutorLocked(f"another executor is running for {symbol} {market} (pid {pid})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock (the kernel also does on SIGKILL)


# --- loading ------------------------------------------------------------------------------------------------------


def _check_market(market: str) -> None:
    if market not in MARKETS:
        raise InputError(f"expected market perp or spot, was {market!r}")


def strategy_id_for(symbol: str, market: str, config: GridStrategyConfig) -> str:
    return f"{symbol}.{market}.{config.config_hash[:10]}"


def execution_interval(*, symbol: str, market: str, params: StrategyParams) -> str:
    """The finest stored interval among params.execution.intervals."""
    stored = set(KlineChunk.objects.filter(symbol=symbol, market=market).order_by().values_list(
        "interval", flat=True).distinct())
    for iv in sorted(params.execution.intervals, key=interval_ms):
        if iv in stored:
            return iv
    raise DataError(f"expected stored {symbol} {market} klines in one of {', '.join(params.execution.intervals)}, "
                    f"was {', '.join(sorted(stored)) or 'none'} (import or fetch them first)")


def _state_row(symbol: str, market: str, config: GridStrategyConfig, *, create: bool) -> StrategyState | None:
    row = StrategyState.objects.filter(symbol=symbol, market=market, config=config).first()
    if row is not None or not create:
        return row
    params = config_params(config)
    interval = execution_interval(symbol=symbol, market=market, params=params)
    state = eng.new_state(strategy_id_for(symbol, market, config), params, liquidation=market == "perp")
    led = state.ledger
    with transaction.atomic():
        row, _ = StrategyState.objects.get_or_create(
            symbol=symbol, market=market, config=config,
            defaults=dict(config_hash=config.config_hash, strategy_id=state.strategy_id, interval=interval,
                          engine_state=state.to_dict(), cash=led.wallet, equity=led.equity,
                          peak_equity=led.peak_equity))
    return row


def _signal_window(sig: TradingSignal) -> tuple[str, int, int]:
    return sig.status, dt_to_ms(sig.bar_time), dt_to_ms(sig.expires_at)


def _start_signal(sig: TradingSignal, open_ms: int, batch: _Batch) -> StartSignal:
    z = sig.zone
    rate = None
    if sig.market == "perp":  # the last settled rate at the bar's open, for the funding guard
        rate = inputs.funding_rate_at(batch.funding_ms, batch.funding_rates, open_ms)
    return inputs.start_signal(ref=str(sig.pk), direction=sig.direction, s1=z.s1, s2=z.s2, r1=z.r1, r2=z.r2,
                               atr=z.atr, funding_rate=rate)


@dataclass
class _Batch:
    """The inputs of one pass, loaded once: bars, mark bars, funding per bar, the pending NEW signals."""

    bars: list[tuple[int, ...]]
    marks: dict[int, tuple[int, ...]]
    funding: dict[int, list[FundingEvent]]
    signals: list[TradingSignal]
    step: int
    notes: list[str] = field(default_factory=list)
    fires: inputs.FireLookup = field(default_factory=lambda: inputs.FireLookup(()))
    funding_ms: list[int] = field(default_factory=list)  # the settled rates from the last one at or before the
    funding_rates: list[Decimal] = field(default_factory=list)  # first bar's open: the funding guard's input

    def fire_dir_at(self, open_ms: int) -> int:
        """The squeeze fire direction of the scan in force at the bar's open (gridcore.backtest.inputs)."""
        return self.fires.at(open_ms)


def _first_bar_ms(row: StrategyState, step: int, config: GridStrategyConfig, start_ms: int | None) -> int | None:
    es = row.engine_state
    if es.get("last_bar_ms") is not None:
        return int(es["last_bar_ms"]) + step
    if start_ms is not None:
        return start_ms
    first = (TradingSignal.objects.filter(symbol=row.symbol, market=row.market, config=config,
                                          status=SignalStatus.NEW).order_by("bar_time")
             .values_list("bar_time", flat=True).first())
    return None if first is None else dt_to_ms(first)


def _load_batch(row: StrategyState, config: GridStrategyConfig, *, bound_ms: int, start_ms: int | None) -> _Batch:
    step = interval_ms(row.interval)
    store = DjangoKlineStore()
    first = _first_bar_ms(row, step, config, start_ms)
    if first is None:  # a fresh strategy with nothing to act on: start at the newest closed bar
        last = store.last_open_ms(row.symbol, row.market, row.interval)
        if last is None:
            return _Batch([], {}, {}, [], step)
        first = min(last, bound_ms - step)
    first = -(-first // step) * step
    end = bound_ms - step + 1  # bars whose close (open + step) is at or before the bound
    if end <= first:
        return _Batch([], {}, {}, [], step)
    bars = store.load_bars(row.symbol, row.market, row.interval, first, end)
    rows = [tuple(int(x) for x in (ms, *u)) for ms, u in zip(bars.open_ms.tolist(), bars.units.tolist(),
                                                                strict=True)]
    marks: dict[int, tuple[int, ...]] = {}
    funding: dict[int, list[FundingEvent]] = {}
    f_ms: list[int] = []
    f_rates: list[Decimal] = []
    if row.market == "perp" and rows:
        mb = store.load_bars(row.symbol, "mark", row.interval, first, end)
        marks = {int(ms): (int(ms), *(int(x) for x in u)) for ms, u in zip(mb.open_ms.tolist(), mb.units.tolist(),
                                                                             strict=True)}
        funding_rows = FundingRate.objects.filter(symbol=row.symbol)
        before = (funding_rows.filter(funding_time__lte=ms_to_dt(first)).order_by("-funding_time")
                  .values_list("funding_time", flat=True).first())
        for t, rate in funding_rows.filter(
                funding_time__gte=before if before is not None else ms_to_dt(first),
                funding_time__lt=ms_to_dt(rows[-1][0] + step)).order_by("funding_time").values_list(
                "funding_time", "rate"):
            f_ms.append(dt_to_ms(t))
            f_rates.append(Decimal(rate))
        funding = inputs.group_funding(f_ms, f_rates, first_ms=first, step=step, bar_open_ms=[r[0] for r in rows])
    signals = []
    if rows:
        signals = list(TradingSignal.objects.select_related("zone").filter(
            symbol=row.symbol, market=row.market, config=config, status=SignalStatus.NEW,
            bar_time__lte=ms_to_dt(rows[-1][0])).order_by("bar_time", "pk"))
    fires = [(dt_to_ms(t), dt_to_ms(u), d) for t, u, d in GridZone.objects.filter(
        symbol=row.symbol, market=row.market, config=config, bar_time__lte=ms_to_dt(rows[-1][0]),
        valid_until__gt=ms_to_dt(first)).order_by("bar_time").values_list("bar_time", "valid_until", "fire_dir")] \
        if rows else []
    return _Batch(rows, marks, funding, signals, step, fires=inputs.FireLookup(fires), funding_ms=f_ms,
                  funding_rates=f_rates)


# --- one bar ------------------------------------------------------------------------------------------------------


def _ledger_fields(state: EngineState) -> dict[str, Any]:
    s = state.ledger
    return dict(cash=s.wallet, position=s.position, entry_price=s.entry, mark_price=s.mark, equity=s.equity,
                realised_grid_profit=s.realised_grid, realised_other=s.realised_other, fees=s.fees,
                funding=s.funding, peak_equity=s.peak_equity)


class _Persister:
    """Writes one bar's outcome; keeps the open GridOrder rows of the strategy in memory between bars."""

    def __init__(self, row: StrategyState):
        self.row = row
        self._plain_orders: dict[int, tuple[Order, Any]] = {}
        self.open_rows: dict[str, GridOrder] = {o.order_id: o for o in GridOrder.objects.filter(
            strategy=row, status__in=_OPEN_ORDER)}

    def _order_row(self, oid: str) -> GridOrder:
        r = self.open_rows.get(oid)
        if r is None:
            r = GridOrder.objects.get(strategy=self.row, order_id=oid)
            self.open_rows[oid] = r
        return r

    def _create_order(self, o: Order, ts) -> GridOrder:
        r = GridOrder.objects.create(
            strategy=self.row, order_id=o.id, side=o.side.value, kind=o.kind.value, purpose=o.purpose.value,
            price=o.price, qty=o.qty, level=o.level, reduce_only=o.reduce_only, close_position=o.close_position,
            opens=o.opens, pair_price=o.pair_price, active_from_ms=o.active_from_ms, placed_at=ts)
        self.open_rows[o.id] = r
        return r

    def _order_move(self, r: GridOrder, trigger: OrderTrigger, **fields: Any) -> None:
        new = transition(r, table=ORDER_TRANSITIONS, trigger=trigger, **fields)
        if new not in _OPEN_ORDER:
            self.open_rows.pop(r.order_id, None)

    def _state_json(self, state: EngineState) -> str:
        """EngineState.to_dict() as JSON, reusing the plain form of orders unchanged since the last bar."""
        cache = {}
        orders = []
        for o in state.orders:
            hit = self._plain_orders.get(id(o))
            plain = hit[1] if hit is not None and hit[0] is o else to_plain(o)
            cache[id(o)] = (o, plain)
            orders.append(plain)
        self._plain_orders = cache
        d = to_plain(dataclasses.replace(state, orders=()))
        d["orders"] = orders
        return json.dumps(d, separators=(",", ":"))

    def _cas(self, new: EngineState, ts, prev_last, fill_count: int, event_count: int) -> int:
        """The compare-and-swap UPDATE of the state row (raw SQL: the hot path of every bar)."""
        row = self.row
        f = _ledger_fields(new)
        cols = ["version", "engine_state", "last_bar_time", "fill_count", "event_count", "updated_at", *f]
        vals = [row.version + 1, self._state_json(new), ts, fill_count, event_count, timezone.now(), *f.values()]
        jsonb = "::jsonb" if connection.vendor == "postgresql" else ""
        sets = ", ".join(f"{c} = %s{jsonb if c == 'engine_state' else ''}" for c in cols)
        where = "id = %s AND version = %s AND " + ("last_bar_time IS NULL" if prev_last is None
                                                   else "last_bar_time = %s")
        params = [*vals, row.pk, row.version] + ([] if prev_last is None else [prev_last])
        ops = connection.ops
        params = [ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v for v in params]
        with connection.cursor() as cur:
            cur.execute(f"UPDATE {StrategyState._meta.db_table} SET {sets} WHERE {where}", params)
            return cur.rowcount

    def write(self, prev: EngineState, new: EngineState, events: list, bar_ms: int,
              signal: TradingSignal | None, expired: list[TradingSignal]) -> dict[str, int]:
        row, ts = self.row, ms_to_dt(bar_ms)
        counts = {"fills": 0, "placed": 0, "consumed": 0, "rejected": 0, "expired": 0}
        prev_last = row.last_bar_time
        fill_seq, event_seq = row.fill_count, row.event_count
        outcome = inputs.signal_outcome(events, None if signal is None else str(signal.pk))
        with transaction.atomic():
            n = self._cas(new, ts, prev_last, fill_seq + sum(isinstance(e, eng.OrderFilled) for e in events),
                          event_seq + len(events))
            if n != 1:
                raise ConcurrentModification(
                    f"StrategyState {row.pk}: expected version {row.version} at bar {ms_to_iso(bar_ms)}, but "
                    f"another process wrote it (is a second executor running?)")
            domain = {o.id: o for o in prev.orders}
            fills, journal = [], []
            for ev in events:
                event_seq += 1
                journal.append(ExecutionEvent(strategy=row, seq=event_seq, bar_time=ts, type=type(ev).__name__,
                                              data=eng.event_to_dict(ev)))
                if isinstance(ev, eng.OrderPlaced):
                    domain[ev.order.id] = ev.order
                    self._order_move(self._create_order(ev.order, ts), OrderTrigger.ACCEPT)
                    counts["placed"] += 1
                elif isinstance(ev, eng.OrderRejected):
                    self._order_move(self._create_order(ev.order, ts), OrderTrigger.REJECT, reason=ev.order.reason,
                                     closed_at=ts)
                elif isinstance(ev, eng.OrderFilled):
                    f = ev.fill
                    after = domain[f.order_id].fill(f.qty)
                    domain[f.order_id] = after
                    r = self._order_row(f.order_id)
                    done = after.status is OrderStatus.FILLED
                    self._order_move(r, OrderTrigger.FILL if done else OrderTrigger.PARTIAL_FILL,
                                     filled_qty=after.filled_qty, closed_at=ts if done else None)
                    fill_seq += 1
                    fills.append(GridFill(strategy=row, order=r, seq=fill_seq, ts=ts, side=f.side.value,
                                          price=f.price, qty=f.qty, fee=f.fee, liquidity=f.liquidity.value,
                                          reason=f.reason.value, reference_price=f.reference_price,
                                          slippage_cost=f.slippage_cost, level=f.level, realised=ev.realised,
                                          grid_profit=ev.grid_profit, position_after=ev.position,
                                          equity_after=ev.equity))
                    counts["fills"] += 1
                elif isinstance(ev, eng.OrderCanceled):
                    domain.pop(ev.order_id, None)
                    self._order_move(self._order_row(ev.order_id), OrderTrigger.CANCEL, reason=ev.reason,
                                     closed_at=ts)
                elif isinstance(ev, eng.StateChanged):
                    transition(row, table=STRATEGY_TRANSITIONS, trigger=ev.trigger)
                    if ev.trigger is StrategyTrigger.START and outcome is SignalTrigger.CONSUME and signal:
                        signal_transition(signal, trigger=SignalTrigger.CONSUME, reason=ev.reason)
                        counts["consumed"] += 1
                elif isinstance(ev, eng.GridRefused) and outcome is SignalTrigger.REJECT and signal is not None \
                        and ev.signal_ref == str(signal.pk):
                    signal_transition(signal, trigger=SignalTrigger.REJECT, reason="; ".join(ev.reasons))
                    counts["rejected"] += 1
            if fills:
                GridFill.objects.bulk_create(fills)
            if journal:
                ExecutionEvent.objects.bulk_create(journal)
            for sig in expired:
                signal_transition(sig, trigger=SignalTrigger.EXPIRE,
                                  reason=f"expired at {ms_to_iso(dt_to_ms(sig.expires_at))} before a grid could "
                                         f"start (strategy {row.status})")
                counts["expired"] += 1
        row.version += 1
        row.last_bar_time, row.fill_count, row.event_count = ts, fill_seq, event_seq
        row.engine_state = None  # the in-memory EngineState is the truth from here; reload with from_dict
        return counts


# --- the service --------------------------------------------------------------------------------------------------


def _resolve(symbol: str, market: str, config: GridStrategyConfig) -> tuple[StrategyParams, SymbolRules]:
    _check_market(market)
    return config_params(config), symbol_registry().rules(symbol)


def executor_run_once(*, symbol: str, market: str, config: GridStrategyConfig, until_ms: int | None = None,
                      now_ms: int | None = None, start_ms: int | None = None,
                      progress: Callable[[str], None] | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      bar_timer: Callable[[int, dict[str, int], float], None] | None = None) -> dict[str, Any]:
    """Apply every closed bar after the last one applied (up to until_ms / now_ms, bar closes), one transaction a
    bar. Returns what was done and the status after it. `bar_timer(open_ms, counts, seconds)` gets the wall time
    of each bar (signal pick, engine and the committed transaction)."""
    params, rules = _resolve(symbol, market, config)
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        # WAL + synchronous=NORMAL: a commit survives any crash of this process (SIGKILL included); only an OS
        # crash or power loss may lose the last commits, never consistency. Saves an fsync per bar.
        with connection.cursor() as cur:
            cur.execute("PRAGMA synchronous=NORMAL")
    elif connection.vendor == "postgresql" and not connection.in_atomic_block:
        # The same trade on PostgreSQL: a commit is not waited for on disk; a server crash may lose the last bars'
        # commits (the executor then re-applies them identically), a crash of this process loses nothing.
        with connection.cursor() as cur:
            cur.execute("SET synchronous_commit TO OFF")
    row = _state_row(symbol, market, config, create=True)
    assert row is not None
    bound = min(x for x in (until_ms, now_ms, 2**62) if x is not None)
    batch = _load_batch(row, config, bound_ms=bound, start_ms=start_ms)
    state = EngineState.from_dict(row.engine_state)
    persister = _Persister(row)
    totals = {"bars": 0, "fills": 0, "placed": 0, "consumed": 0, "rejected": 0, "expired": 0}
    first_bar = None
    stopped = False
    for i, bar in enumerate(batch.bars):
        if should_stop is not None and should_stop():
            stopped = True
            break
        open_ms = bar[0]
        t0 = time.perf_counter()
        sig, expired = inputs.signal_for_bar(batch.signals, open_ms, state.status, window=_signal_window)
        new, events = eng.on_bar(state, bar, mark_bar=batch.marks.get(open_ms),
                                 funding_events=batch.funding.get(open_ms, ()),
                                 signal=None if sig is None else _start_signal(sig, open_ms, batch), params=params,
                                 rules=rules, interval_ms=batch.step, fire_dir=batch.fire_dir_at(open_ms))
        counts = persister.write(state, new, events, open_ms, sig, expired)
        state = new
        if bar_timer is not None:
            bar_timer(open_ms, counts, time.perf_counter() - t0)
        for k, v in counts.items():
            totals[k] += v
        totals["bars"] += 1
        first_bar = first_bar or open_ms
        if progress is not None and (i + 1) % 1000 == 0:
            progress(f"{symbol} {market}: {i + 1}/{len(batch.bars)} bars, up to {ms_to_iso(open_ms)}")
    out = {"bars_processed": totals["bars"], "first_bar": None if first_bar is None else ms_to_iso(first_bar),
           "fills": totals["fills"], "orders_placed": totals["placed"], "signals_consumed": totals["consumed"],
           "signals_rejected": totals["rejected"], "signals_expired": totals["expired"], "stopped": stopped}
    out["status"] = executor_status(symbol=symbol, market=market, config=config)
    return out


def executor_status(*, symbol: str, market: str, config: GridStrategyConfig) -> dict[str, Any]:
    """The `executor --status --json` document."""
    _check_market(market)
    row = _state_row(symbol, market, config, create=False)
    notes = (["spot history: no funding is booked (spot has no funding rates)",
              "spot history: no liquidation is modelled (no margin on spot); the kill switch and stops still act"]
             if market == "spot" else [])
    base = {"symbol": symbol, "market": market, "config": config.ref, "config_hash": config.config_hash,
            "funding_modelled": market == "perp", "liquidation_modelled": market == "perp", "notes": notes}
    if row is None:
        return {**base, "state": None, "position": "0", "entry_price": None, "equity": None, "cash": None,
                "realised_grid_profit": "0", "unrealised_pnl": "0", "fees": "0", "funding": "0",
                "peak_equity": None, "drawdown": None, "open_orders": [], "last_bar": None, "fills": 0,
                "interval": None, "version": 0}
    st = EngineState.from_dict(row.engine_state)
    s = st.ledger
    orders = [{"order_id": o.id, "side": o.side.value, "kind": o.kind.value, "price": _s(o.price),
               "qty": str(o.qty), "filled_qty": str(o.filled_qty), "level": o.level, "purpose": o.purpose.value,
               "status": o.status.value} for o in st.orders]
    return {**base, "state": row.status, "position": str(s.position),
            "entry_price": _s(s.entry if s.position != 0 else None), "equity": str(s.equity), "cash": str(s.wallet),
            "realised_grid_profit": str(s.realised_grid), "realised_other": str(s.realised_other),
            "unrealised_pnl": str(s.unrealised), "fees": str(s.fees), "funding": str(s.funding),
            "peak_equity": str(s.peak_equity), "drawdown": str(s.drawdown), "mark_price": _s(s.mark),
            "open_orders": orders, "last_bar": None if st.last_bar_ms is None else ms_to_iso(st.last_bar_ms),
            "fills": row.fill_count, "grids_started": st.grids_started, "interval": row.interval,
            "version": row.version, "strategy_id": row.strategy_id}


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


def executor_reset(*, symbol: str, market: str, config: GridStrategyConfig, reason: str = "operator reset") -> dict:
    """Leave HALTED (the engine's reset: IDLE, current equity becomes the peak), in one transaction."""
    _check_market(market)
    row = _state_row(symbol, market, config, create=False)
    if row is None:
        raise InputError(f"expected a strategy state for {symbol} {market} {config.ref} to reset, was none")
    state = EngineState.from_dict(row.engine_state)
    new, events = eng.reset(state, reason)  # raises InvalidTransition unless HALTED
    with transaction.atomic():
        n = StrategyState.objects.filter(pk=row.pk, version=row.version).update(
            version=row.version + 1, engine_state=new.to_dict(), event_count=row.event_count + len(events),
            **_ledger_fields(new))
        if n != 1:
            raise ConcurrentModification(f"StrategyState {row.pk}: expected version {row.version}, but it changed")
        for ev in events:
            transition(row, table=STRATEGY_TRANSITIONS, trigger=ev.trigger)
        ExecutionEvent.objects.bulk_create([
            ExecutionEvent(strategy=row, seq=row.event_count + i + 1,
                           bar_time=ms_to_dt(new.last_bar_ms or 0), type=type(ev).__name__,
                           data=eng.event_to_dict(ev)) for i, ev in enumerate(events)])
    return executor_status(symbol=symbol, market=market, config=config)
