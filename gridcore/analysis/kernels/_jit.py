"""The only place that configures numba. fastmath stays off: it reorders float operations and would break the
bit-for-bit parity between backtest and paper trading."""

from numba import njit as _numba_njit


def njit(func=None, **options):
    """numba.njit with the project's flags (cache=True, fastmath=False). Use as @njit or @njit(nogil=True)."""
    opts = {"cache": True, **options, "fastmath": False}
    if func is None:
        return lambda f: _numba_njit(**opts)(f)
    return _numba_njit(**opts)(func)
