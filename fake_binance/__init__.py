"""A local stand-in for Binance's public REST API, served from data in memory (tests and market replays).

Django-free; it uses gridcore only to read the shared data files and the exchangeInfo snapshot.
"""

from fake_binance.server import FAULTS, FakeBinance, Fault, RequestRecord

__all__ = ["FAULTS", "FakeBinance", "Fault", "RequestRecord"]
