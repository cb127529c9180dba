"""BacktestRun: one backtest, with everything needed to reproduce it and its results for both fill policies."""

from django.db import models

from grid_trading.models.market_data import MARKET_CHOICES


class BacktestRun(models.Model):
    symbol = models.CharField(max_length=20)
    market = models.CharField(max_length=4, choices=MARKET_CHOICES[:2])
    start = models.DateTimeField()
    end = models.DateTimeField()
    exec_interval = models.CharField(max_length=4, help_text="the execution bars' interval")
    policy = models.CharField(max_length=12, default="headline", help_text="the headline fill policy")
    config = models.ForeignKey("grid_trading.GridStrategyConfig", on_delete=models.PROTECT,
                               related_name="backtests")
    config_hash = models.CharField(max_length=64)
    data_checksum = models.CharField(max_length=64, help_text="sha256 over the checksums of the series used")
    data_series = models.JSONField(default=dict, help_text="the checksum of each series used")
    code_version = models.CharField(max_length=80)
    results = models.JSONField(default=dict, help_text="metrics per fill policy: headline and optimistic")
    runtime_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(end__gt=models.F("start")),
                                              name="backtest_end_after_start")]
        indexes = [models.Index(fields=["symbol", "market", "start"], name="backtest_symbol_start")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"backtest {self.symbol} {self.market} {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d} {self.exec_interval}"
