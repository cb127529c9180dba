"""numba options of the sweep kernel, on top of the project's gridcore.analysis.kernels._jit.njit (cache=True,
fastmath off).

* `_nrt=False`: the kernel allocates nothing (every array comes from Python), so it runs without numba's
  reference counting; with it, every call between the kernel's functions took and released a reference to each
  array of the state tuples (atomic operations costing more than the bar's arithmetic).
* `error_model="numpy"`: no ZeroDivisionError checks on float division (every division is guarded).
"""

from gridcore.analysis.kernels._jit import njit as _project_njit


def njit(func=None, **options):
    """The project's njit with the sweep kernel's options; use as @njit."""
    opts = {"_nrt": False, "error_model": "numpy", **options}
    if func is None:
        return lambda f: _project_njit(f, **opts)
    return _project_njit(func, **opts)
