"""Run small optimisations with one BLAS thread.

SciPy's L-BFGS-B calls BLAS/LAPACK on matrices of a few dozen rows each iteration. With
OpenBLAS's thread pool that costs ~7 ms per iteration on a busy 2-core machine (waking and
synchronising threads) against ~0.3 ms single-threaded: a CDNOW fit takes 220 ms instead of
15 ms. OpenBLAS >= 0.3.27 has a thread-local setting, so limiting the fitting thread leaves
every other thread (and the scoring matrix products) as they were.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import scipy

_SETTER = "openblas_set_num_threads_local"


def _call(function: Callable[[int], int], n: int) -> int:
    return int(function(n))


@functools.cache
def _thread_local_setter() -> Callable[[int], int] | None:
    libs = Path(scipy.__file__).resolve().parent.parent / "scipy.libs"
    for path in sorted(libs.glob("libscipy_openblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        if hasattr(lib, _SETTER):
            function = getattr(lib, _SETTER)
            function.argtypes = [ctypes.c_int]
            function.restype = ctypes.c_int
            return functools.partial(_call, function)
    return None  # another BLAS build: nothing to tune, fits are merely slower


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    setter = _thread_local_setter()
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)
