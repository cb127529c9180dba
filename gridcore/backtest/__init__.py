"""Backtests: the executor's decisions replayed in memory over history (gridcore.backtest.inputs is shared with
grid_trading.services.executor, so both make the same decision from the same inputs)."""
