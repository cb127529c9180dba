"""Paper/backtest execution: the intrabar path, the one matching engine, and the account ledger (§5)."""
