"""autogrid's Django-free core: market data types, analysis kernels, strategy logic.

Nothing under this package imports Django or the project's Django apps (checked by import-linter in CI).
"""
