"""The fast path's threads: a small pool (one thread per core) and per-thread work buffers.

NumPy releases the GIL in copies, matrix products and ufunc loops, so chunks of a
step run in parallel on plain Python threads.
"""

import contextlib
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


class _BlasThreads:
    """NumPy's OpenBLAS thread count, read and set through its C API (ctypes).

    OpenBLAS built with pthreads (NumPy's wheels) keeps one count for the whole
    process: ``openblas_set_num_threads_local``, despite its name, sets that
    count too. So the fast path sets it to 1 only while its pool runs, and puts
    the caller's count back after: a user's own matrix products, after a call
    into refconv, run on as many threads as before (when the pool's
    initializer set it once, they ran on one thread for the rest of the
    process, at half the rate on 2 cores). Without NumPy's OpenBLAS (another
    BLAS, or NumPy built against a system library) this does nothing.
    """

    # The C names, newest first: scipy-openblas (NumPy 2's wheels) prefixes and suffixes them.
    NAMES = [("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
             ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
             ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
             ("openblas_get_num_threads", "openblas_set_num_threads")]

    def __init__(self):
        self.get = self.set = None
        self._lock = threading.Lock()
        self._depth, self._saved = 0, None
        libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
        for path in sorted(glob.glob(os.path.join(libs, "*openblas*"))):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get, set_ in self.NAMES:
                if hasattr(lib, get) and hasattr(lib, set_):
                    self.get, self.set = getattr(lib, get), getattr(lib, set_)
                    self.get.restype, self.set.argtypes = ctypes.c_int, [ctypes.c_int]
                    return

    def count(self):
        """The process's OpenBLAS thread count (None where it cannot be read)."""
        return None if self.get is None else int(self.get())

    @contextlib.contextmanager
    def one(self):
        """One BLAS thread inside (each pool thread's products on its own core), the
        caller's count restored on leaving; nested and concurrent uses share one saved
        count, restored when the last one leaves."""
        if self.set is None:
            yield
            return
        with self._lock:
            if self._depth == 0:
                self._saved = self.count()
                self.set(1)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self.set(self._saved)


blas_threads = _BlasThreads()


def parallel_map(fn, items):
    """``[fn(item) for item in items]``, on the thread pool when there is more than one item
    (NumPy's BLAS on one thread meanwhile: :class:`_BlasThreads`)."""
    global _pool
    n = threads()
    if n == 1 or len(items) < 2:
        return [fn(item) for item in items]
    with _pool_lock:
        if _pool is None or _pool._max_workers != n:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="refconv")
    with blas_threads.one():
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
