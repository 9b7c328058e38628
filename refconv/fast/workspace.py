"""Memory that backpropagation through time hands from one call to the next.

:func:`refconv.fast.lstm_grad` and :func:`refconv.fast.gru_grad` record each step
of the forward (its previous state and its convolutions' outputs: six state-sized
arrays a step for the LSTM, four for the GRU) and drop each record once the
backward has used it. Memory the process has just been given is not free to
write: each page's first write costs a page fault, and on a virtual machine (this
project's) the host backs the page then too. Measured on the seed's 2-D LSTM,
float64, batch 4 (``python benchmarks/bench_gradients.py``): the forward that
records took 1.3x the plain forward, its copies writing 0.5-1 GB/s into fresh
memory against 4-7 GB/s into memory written before.

A loop that computes gradients again and again at the same sizes (training) can
pass one :class:`Workspace` to every call (``refconv.dynamic_rnn_grad(...,
workspace=ws)``): the records the backward is done with are kept in it, and the
next call's forward writes its records there; so are the call's other large
buffers (the padded inputs of the convolutions, the chunks' outputs and the
backward's work arrays). The memory stays held between calls,
as the workspace's ``nbytes`` says, until :meth:`Workspace.clear` or until the
workspace itself is dropped. At the end of each call the workspace keeps only arrays
of the sizes that call asked for (:meth:`Workspace.trim`): a loop whose sizes change
does not pile up memory for sizes it no longer uses. The memory check before a call
(``MemoryError`` when the run would not fit) counts what the workspace holds as
reusable when the call takes the fast backward (the readable steps do not use it).
"""

import threading

import numpy as np

__all__ = ["Workspace"]


class Workspace:
    """A store of 1-D arrays, by dtype and size, for the records and buffers of
    backpropagation through time.

    Safe to share between threads (one lock); the arrays' contents are whatever the
    last user left in them: every user overwrites the whole array.
    """

    def __init__(self):
        self._free = {}        # (dtype, size) -> arrays no call is using
        self._asked = set()    # the (dtype, size) keys asked for since the last trim()
        self._lock = threading.Lock()

    def empty(self, shape, dtype):
        """An array of ``shape`` and ``dtype``: a kept one of that size if there is one,
        else a new one (:func:`numpy.empty`); contents undefined."""
        flat, _ = self._take(shape, dtype, np.empty)
        return flat.reshape(shape)

    def zeros(self, shape, dtype):
        """:meth:`empty`, filled with zeros (a new one from :func:`numpy.zeros`, whose pages
        the system hands over zeroed)."""
        flat, kept = self._take(shape, dtype, np.zeros)
        if kept:
            flat.fill(0)
        return flat.reshape(shape)

    def empty_each(self, sizes, dtype):
        """1-D arrays of ``sizes`` (contents undefined), views of one array from :meth:`empty`:
        ``(base, views)``; give back ``base``, not the views.

        Why one array: NumPy asks the system for huge pages for an array of 4 MiB or
        more, and a page's first write costs several times more in small pages (on this
        project's machines, 20 separate arrays of 3.7 MB took 29-51 ms to write first, one
        of 74 MB 8-9 ms). A runner's per-chunk buffers are often 1-4 MB each.
        """
        base = self.empty((sum(sizes),), dtype)
        views, start = [], 0
        for n in sizes:
            views.append(base[start:start + n])
            start += n
        return base, views

    def _take(self, shape, dtype, new):
        """``(flat, kept)``: a kept 1-D array for ``shape`` and ``dtype``, or a ``new`` one."""
        key = (np.dtype(dtype), int(np.prod(shape, dtype=np.int64)))
        with self._lock:
            self._asked.add(key)
            kept = self._free.get(key)
            if kept:
                return kept.pop(), True
        return new(key[1], key[0]), False

    def trim(self):
        """Let go of the kept arrays of every size not asked for since the last trim."""
        with self._lock:
            self._free = {key: kept for key, kept in self._free.items() if key in self._asked}
            self._asked = set()

    def give(self, *arrays):
        """Keep ``arrays`` (each from :meth:`empty`, no longer used by the caller) for later."""
        with self._lock:
            for a in arrays:
                flat = a.reshape(-1)
                self._free.setdefault((flat.dtype, flat.size), []).append(flat)

    @property
    def nbytes(self):
        """Bytes held for later calls."""
        with self._lock:
            return sum(a.nbytes for kept in self._free.values() for a in kept)

    def clear(self):
        """Let go of every kept array."""
        with self._lock:
            self._free.clear()
            self._asked = set()

    def __repr__(self):
        return f"Workspace({self.nbytes / 2**20:.1f} MiB kept)"
