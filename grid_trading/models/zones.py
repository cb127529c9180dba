"""GridZone: the Scanner's output every 4h, the four-peaks box and its context."""

from django.db import models

from grid_trading.models.market_data import MARKET_CHOICES
from gridcore.domain.transitions import ZoneStatus

PRICE = dict(max_digits=20, decimal_places=8, null=True, blank=True)


class GridZone(models.Model):
    Status = models.TextChoices("Status", [(s.value, s.value) for s in ZoneStatus])

    symbol = models.CharField(max_length=20)
    market = models.CharField(max_length=4, choices=MARKET_CHOICES[:2])
    bar_time = models.DateTimeField(help_text="the 4h close the scan was evaluated at (closed bars up to it only)")
    config = models.ForeignKey("grid_trading.GridStrategyConfig", on_delete=models.PROTECT, related_name="zones")
    config_hash = models.CharField(max_length=64)
    code_version = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=20, decimal_places=8)
    s2 = models.DecimalField(**PRICE)
    s1 = models.DecimalField(**PRICE)
    r1 = models.DecimalField(**PRICE)
    r2 = models.DecimalField(**PRICE)
    poc = models.DecimalField(**PRICE)
    vah = models.DecimalField(**PRICE)
    val = models.DecimalField(**PRICE)
    ma25 = models.DecimalField(**PRICE)
    atr = models.DecimalField(**PRICE)
    bias = models.SmallIntegerField(help_text="MA25 slope bias: +1 long allowed, -1 short allowed, 0 neutral")
    squeeze_state = models.CharField(max_length=12)
    fire_dir = models.SmallIntegerField(default=0)
    valid = models.BooleanField()
    reasons = models.JSONField(default=list, help_text="why the box is invalid (empty when valid)")
    details = models.JSONField(default=dict, help_text="cluster shares, confluence, HVN/LVN, data used")
    valid_until = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "market", "bar_time", "config"], name="zone_once_per_bar"),
            models.UniqueConstraint(fields=["symbol", "market", "config"], condition=models.Q(status="ACTIVE"),
                                    name="zone_one_active"),
            models.CheckConstraint(condition=models.Q(status__in=[s.value for s in ZoneStatus]), name="zone_status"),
            models.CheckConstraint(condition=models.Q(valid=True) | models.Q(status="INVALID"),
                                   name="zone_invalid_iff_not_valid"),
            models.CheckConstraint(condition=models.Q(valid=False) | ~models.Q(status="INVALID"),
                                   name="zone_valid_not_invalid"),
            models.CheckConstraint(
                condition=models.Q(valid=False) | (
                    models.Q(s2__lt=models.F("s1")) & models.Q(s1__lt=models.F("price"))
                    & models.Q(price__lt=models.F("r1")) & models.Q(r1__lt=models.F("r2"))),
                name="zone_valid_box_ordered"),
        ]
        indexes = [models.Index(fields=["symbol", "market", "status"], name="zone_symbol_status")]
        ordering = ["symbol", "market", "bar_time"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.market} zone @ {self.bar_time:%Y-%m-%d %H:%M} {self.status}"
