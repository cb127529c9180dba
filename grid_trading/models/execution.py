"""Execution: the running grid per (symbol, market, config), its orders, fills and an append-only event journal.

StrategyState holds the engine's whole state (`engine_state`, gridcore.strategy.engine.EngineState.to_dict) and a
denormalised copy of the ledger for queries and the admin; `version` is bumped by every write (compare-and-swap).
Status columns change only through grid_trading.services.transitions and are guarded by database triggers generated
from gridcore.domain.transitions (STRATEGY_TRANSITIONS, ORDER_TRANSITIONS).
"""

from django.db import models

from grid_trading.models.market_data import MARKET_CHOICES
from gridcore.domain.transitions import OrderStatus, StrategyStatus

MONEY = dict(max_digits=30, decimal_places=10)
PRICE = dict(max_digits=24, decimal_places=10)
QTY = dict(max_digits=24, decimal_places=8)


class StrategyState(models.Model):
    Status = models.TextChoices("Status", [(s.value, s.value) for s in StrategyStatus])

    symbol = models.CharField(max_length=20)
    market = models.CharField(max_length=4, choices=MARKET_CHOICES[:2])
    config = models.ForeignKey("grid_trading.GridStrategyConfig", on_delete=models.PROTECT, related_name="states")
    config_hash = models.CharField(max_length=64)
    strategy_id = models.CharField(max_length=64, help_text="the engine's strategy id (prefix of every order id)")
    interval = models.CharField(max_length=4, help_text="the bar interval the executor steps on")
    status = models.CharField(max_length=8, choices=Status.choices, default=StrategyStatus.IDLE.value)
    engine_state = models.JSONField(help_text="EngineState.to_dict(): everything needed to continue")
    cash = models.DecimalField(**MONEY, help_text="wallet balance: deposit + realised - fees + funding")
    position = models.DecimalField(**QTY, default=0, help_text="signed base quantity")
    entry_price = models.DecimalField(**PRICE, default=0)
    mark_price = models.DecimalField(**PRICE, null=True, blank=True)
    equity = models.DecimalField(**MONEY)
    realised_grid_profit = models.DecimalField(**MONEY, default=0)
    realised_other = models.DecimalField(**MONEY, default=0)
    fees = models.DecimalField(**MONEY, default=0)
    funding = models.DecimalField(**MONEY, default=0)
    peak_equity = models.DecimalField(**MONEY)
    last_bar_time = models.DateTimeField(null=True, blank=True, help_text="open time of the last bar applied")
    fill_count = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=0, help_text="bumped by every write (compare-and-swap)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "market", "config"], name="strategy_state_unique"),
            models.CheckConstraint(condition=models.Q(status__in=[s.value for s in StrategyStatus]),
                                   name="strategy_state_status"),
            models.CheckConstraint(condition=models.Q(peak_equity__gt=0), name="strategy_state_peak_positive"),
        ]
        ordering = ["symbol", "market", "config"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.market} {self.config_hash[:8]} {self.status}"


class GridOrder(models.Model):
    Status = models.TextChoices("Status", [(s.value, s.value) for s in OrderStatus])

    strategy = models.ForeignKey(StrategyState, on_delete=models.CASCADE, related_name="orders")
    order_id = models.CharField(max_length=100, help_text="the engine's deterministic id")
    side = models.CharField(max_length=4, choices=[("BUY", "BUY"), ("SELL", "SELL")])
    kind = models.CharField(max_length=11, choices=[(k, k) for k in ("LIMIT", "MARKET", "STOP_MARKET")])
    purpose = models.CharField(max_length=12)
    price = models.DecimalField(**PRICE, null=True, blank=True, help_text="limit or stop price; null for MARKET")
    qty = models.DecimalField(**QTY)
    filled_qty = models.DecimalField(**QTY, default=0)
    level = models.IntegerField(null=True, blank=True)
    reduce_only = models.BooleanField(default=False)
    close_position = models.BooleanField(default=False)
    opens = models.BooleanField(default=True)
    pair_price = models.DecimalField(**PRICE, null=True, blank=True)
    active_from_ms = models.BigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=OrderStatus.NEW.value)
    reason = models.TextField(blank=True, default="")
    placed_at = models.DateTimeField(help_text="open time of the bar it was placed in")
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["strategy", "order_id"], name="grid_order_unique_id"),
            models.CheckConstraint(condition=models.Q(status__in=[s.value for s in OrderStatus]),
                                   name="grid_order_status"),
            models.CheckConstraint(condition=models.Q(side__in=["BUY", "SELL"]), name="grid_order_side"),
            models.CheckConstraint(condition=models.Q(filled_qty__gte=0), name="grid_order_filled_nonneg"),
        ]
        indexes = [models.Index(fields=["strategy", "status"], name="grid_order_strategy_status")]
        ordering = ["strategy", "id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.side} {self.kind} {self.qty} @ {self.price} {self.status}"


class GridFill(models.Model):
    strategy = models.ForeignKey(StrategyState, on_delete=models.CASCADE, related_name="fills")
    order = models.ForeignKey(GridOrder, on_delete=models.CASCADE, related_name="fills")
    seq = models.PositiveIntegerField(help_text="fill number within the strategy (1, 2, ...)")
    ts = models.DateTimeField(help_text="open time of the bar it filled in")
    side = models.CharField(max_length=4)
    price = models.DecimalField(**PRICE)
    qty = models.DecimalField(**QTY)
    fee = models.DecimalField(**MONEY)
    liquidity = models.CharField(max_length=5)
    reason = models.CharField(max_length=12)
    reference_price = models.DecimalField(**PRICE)
    slippage_cost = models.DecimalField(**MONEY, default=0)
    level = models.IntegerField(null=True, blank=True)
    realised = models.DecimalField(**MONEY, help_text="realised PnL booked by this fill")
    grid_profit = models.DecimalField(**MONEY, help_text="of which matched-pair grid profit")
    position_after = models.DecimalField(**QTY)
    equity_after = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["strategy", "seq"], name="grid_fill_once"),
            models.CheckConstraint(condition=models.Q(qty__gt=0), name="grid_fill_qty_positive"),
            models.CheckConstraint(condition=models.Q(fee__gte=0), name="grid_fill_fee_nonneg"),
        ]
        ordering = ["strategy", "seq"]

    def __str__(self) -> str:
        return f"fill {self.seq} {self.side} {self.qty} @ {self.price} ({self.reason})"


class ExecutionEvent(models.Model):
    """Append-only journal of every engine event (gridcore.strategy.engine.event_to_dict), in order."""

    strategy = models.ForeignKey(StrategyState, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    bar_time = models.DateTimeField()
    type = models.CharField(max_length=20)
    data = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["strategy", "seq"], name="execution_event_once")]
        ordering = ["strategy", "seq"]

    def __str__(self) -> str:
        return f"event {self.seq} {self.type} @ {self.bar_time:%Y-%m-%d %H:%M}"
