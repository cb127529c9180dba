"""One error hierarchy for the whole project; the branch says how a caller should handle it.

- ConfigError / InputError / SymbolError: bad input or settings -> the command exits non-zero with the message.
- DataError: the stored data cannot answer the question (missing, stale, gappy) -> a clear error, no result.
- ExchangeError: the exchange refused or broke; TemporaryExchangeError is retried with bounded backoff.
Messages say what was expected and what was found ("expected ..., was ...").
"""


class GridError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(GridError):
    """Invalid parameters or settings. `problems` lists every problem found, not only the first."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class SymbolError(GridError):
    """A symbol that is malformed or unknown to the exchange rules we have."""


class InputError(GridError):
    """Malformed input data; the message names the source (file, line) and what was wrong."""


class DataError(GridError):
    """The stored market data cannot answer the request (missing, stale or incomplete)."""


class ExchangeError(GridError):
    """The exchange answered with an error we do not retry, or retries ran out."""


class TemporaryExchangeError(ExchangeError):
    """A transient exchange failure (rate limit, 5xx, timeout): retry with backoff."""
