"""Numba kernels. Only float/int numpy arrays and scalars in and out; every kernel has a naive reference in
tests/reference and a parity test."""
