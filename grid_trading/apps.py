from django.apps import AppConfig


class GridTradingConfig(AppConfig):
    name = "grid_trading"
    verbose_name = "Grid trading"
    default_auto_field = "django.db.models.BigAutoField"
