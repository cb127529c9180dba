"""Market data: klines in monthly column chunks, funding rates per event.

Klines are stored as one row per (symbol, market, interval, UTC month) holding the month's bars as a packed int64
array (open_ms, open, high, low, close, volume; prices and volume in 1e-8 units). A row per bar would cost about
1.1 s to load a year of 1m bars into numpy on SQLite (measured: 525,600 rows); a month chunk loads in a few ms,
and the merge inside a chunk keeps upserts idempotent with one open time once (gridcore.bars.merge_series).
"""

from django.db import models

MARKET_CHOICES = [("spot", "spot"), ("perp", "USDT-M perpetual"), ("mark", "USDT-M mark price")]


class KlineChunk(models.Model):
    symbol = models.CharField(max_length=20)
    market = models.CharField(max_length=4, choices=MARKET_CHOICES)
    interval = models.CharField(max_length=4)
    month_start_ms = models.BigIntegerField(help_text="UTC month this chunk covers, ms since epoch")
    first_open_ms = models.BigIntegerField()
    last_open_ms = models.BigIntegerField()
    rows = models.PositiveIntegerField()
    data = models.BinaryField(help_text="int64 little-endian, rows x 6: open_ms, o, h, l, c, v (1e-8 units)")
    sha256 = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "market", "interval", "month_start_ms"],
                                    name="kline_chunk_unique"),
            models.CheckConstraint(condition=models.Q(market__in=["spot", "perp", "mark"]), name="kline_chunk_market"),
            models.CheckConstraint(condition=models.Q(rows__gte=1), name="kline_chunk_not_empty"),
            models.CheckConstraint(condition=models.Q(first_open_ms__lte=models.F("last_open_ms")),
                                   name="kline_chunk_ordered"),
        ]
        ordering = ["symbol", "market", "interval", "month_start_ms"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.market} {self.interval} month {self.month_start_ms} ({self.rows} bars)"


class FundingRate(models.Model):
    symbol = models.CharField(max_length=20)
    funding_time = models.DateTimeField()
    rate = models.DecimalField(max_digits=16, decimal_places=10, help_text="fraction per funding interval")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["symbol", "funding_time"], name="funding_rate_unique")]
        ordering = ["symbol", "funding_time"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.funding_time:%Y-%m-%d %H:%M} {self.rate}"
