"""The fast path's threads: a small pool (one thread per core) and per-thread work buffers.

NumPy releases the GIL in copies, matrix products and ufunc loops, so chunks of a
step run in parallel on plain Python threads.
"""

import ctypes
import functools
import glob
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["threads", "parallel_map", "Scratch"]

_pool = None
_pool_lock = threading.Lock()


def threads():
    """Threads the fast path uses: ``REFCONV_THREADS`` if set, else the cores this process may use.

    ``REFCONV_THREADS`` must be a positive integer (a ValueError naming it otherwise) and
    is capped at the cores this process may use: more threads than cores only wait on
    each other (27 threads on 2 cores ran twice as slowly and took 150 MB more).
    """
    return _threads(os.environ.get("REFCONV_THREADS"), _cores())


def _cores():
    """The cores this process may use (its CPU affinity, where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=16)
def _threads(value, cores):
    """``REFCONV_THREADS``'s ``value`` (None or a string) read as a thread count, at most ``cores``."""
    if value is None or value.strip() == "":
        return cores
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:  # no sign, point, exponent
        raise ValueError(f"REFCONV_THREADS: expected a positive integer (the fast path's "
                         f"threads), got {value!r}; unset it to use every core this process "
                         f"may use ({cores})")
    return min(int(text), cores)


def _one_blas_thread():
    """Run this thread's matrix products on one BLAS thread (the pool's threads are the parallelism).

    Two pool threads each calling a 2-thread OpenBLAS would run four threads on
    two cores, and OpenBLAS's idle threads spin. OpenBLAS (0.3.27+, NumPy's
    wheels) can set the count for the calling thread only; other BLAS
    libraries are left as they are.
    """
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                       "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_set_num_threads_local.argtypes = [ctypes.c_int]
            lib.openblas_set_num_threads_local(1)
        except (OSError, AttributeError):
            pass


def parallel_map(fn, items):
    """``[fn(item) for item in items]``, on the thread pool when there is more than one item."""
    global _pool
    n = threads()
    if n == 1 or len(items) < 2:
        return [fn(item) for item in items]
    with _pool_lock:
        if _pool is None or _pool._max_workers != n:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="refconv",
                                       initializer=_one_blas_thread)
    return list(_pool.map(fn, items))


class Scratch:
    """Per-thread buffers, reused across chunks and steps (no page faults after the first)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self._local = threading.local()

    def __call__(self, name, shape):
        """This thread's buffer ``name``, viewed as ``shape`` (grown when too small)."""
        buffers = self._local.__dict__
        size = math.prod(shape)
        buf = buffers.get(name)
        if buf is None or buf.size < size:
            buf = buffers[name] = np.empty(size, self.dtype)
        return buf[:size].reshape(shape)
