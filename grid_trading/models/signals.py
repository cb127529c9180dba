"""TradingSignal: the Trigger's confirmation that a grid may start at a zone."""

from django.db import models

from grid_trading.models.market_data import MARKET_CHOICES
from gridcore.domain.transitions import SignalStatus


class TradingSignal(models.Model):
    Status = models.TextChoices("Status", [(s.value, s.value) for s in SignalStatus])
    Direction = models.TextChoices("Direction", [("LONG", "LONG"), ("SHORT", "SHORT"), ("NEUTRAL", "NEUTRAL")])

    zone = models.ForeignKey("grid_trading.GridZone", on_delete=models.PROTECT, related_name="signals")
    config = models.ForeignKey("grid_trading.GridStrategyConfig", on_delete=models.PROTECT, related_name="signals")
    config_hash = models.CharField(max_length=64)
    code_version = models.CharField(max_length=80)
    symbol = models.CharField(max_length=20)
    market = models.CharField(max_length=4, choices=MARKET_CHOICES[:2])
    bar_time = models.DateTimeField(help_text="the trigger-bar close the decision was made at")
    price = models.DecimalField(max_digits=20, decimal_places=8)
    direction = models.CharField(max_length=7, choices=Direction.choices)
    signals = models.JSONField(default=list, help_text="the VSA signals behind the start")
    strength = models.FloatField()
    reasons = models.JSONField(default=list)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=SignalStatus.NEW.value)
    status_reason = models.TextField(blank=True, default="", help_text="why it was rejected or expired")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["zone", "bar_time"], name="signal_once_per_zone_bar"),
            models.CheckConstraint(condition=models.Q(status__in=[s.value for s in SignalStatus]),
                                   name="signal_status"),
            models.CheckConstraint(condition=models.Q(direction__in=["LONG", "SHORT", "NEUTRAL"]),
                                   name="signal_direction"),
            models.CheckConstraint(condition=models.Q(expires_at__gt=models.F("bar_time")), name="signal_expiry"),
        ]
        indexes = [models.Index(fields=["symbol", "market", "status"], name="signal_symbol_status")]
        ordering = ["symbol", "market", "bar_time"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.direction} signal @ {self.bar_time:%Y-%m-%d %H:%M} {self.status}"
