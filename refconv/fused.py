"""The fast forward path: a whole ConvLSTM or ConvGRU step in cache-sized chunks, on every core.

:mod:`refconv.lstm` and :mod:`refconv.gru` are written to be read: one equation
per line, each over the whole frame. This module computes the same numbers (the
tests hold the two to 1e-12 in float64) several times faster, for four reasons:

1. **Chunks.** A step is done a chunk of output pixels at a time (a few rows of
   one frame, or a few small frames), each chunk's patches built in a buffer
   that stays in cache, and every elementwise line applied to the chunk while
   it is still in cache, instead of one pass over memory per line per frame.
2. **Gate-major.** The convolution is computed as ``kernel^T @ patches^T``, so a
   chunk's convolution output is ``[gates * F, n]``: each gate of each channel
   is a contiguous run of pixels, and every elementwise line is a long
   contiguous loop (a channels-last ``[n, F]`` slice would be 12-element loops).
   The cell state ``c`` (and the GRU's ``h``) is kept gate-major between steps.
3. **Every core.** NumPy releases the GIL in copies, matrix products and
   ufunc loops, so chunks run on a small thread pool (one thread per core).
4. **Cheap sigmoid.** ``sigmoid(v) = (1 + tanh(v / 2)) / 2``: NumPy's SIMD
   ``tanh`` is several times faster than ``scipy.special.expit``.

Layer norm's mean and variance are taken over a whole frame, so a step makes
several passes over its chunks, with a barrier after each that combines the
chunks' partial statistics (Chan et al.'s formula; within a chunk, raw sums of v and
v * v, re-centred first where the mean would cancel digits)::

    LSTM  pass 1: y = conv(concat([x, h])) (+ peepholes on z_i, z_f); stats of z, z_i, z_f
          pass 2: z, z_i, z_f; c = c * z_f + z_i * z (+ peephole on z_o); stats of z_o, c
          pass 3: z_o, LN(c), h = z_o * tanh(c)
    GRU   pass 1: y = conv(concat([x, h])); stats of r, u
          pass 2: r, u; r * h into the candidate convolution's input
          pass 3: y = conv(concat([x, r * h])); stats of the candidate
          pass 4: candidate, h = u * h + (1 - u) * candidate

(without layer norm, passes with nothing to wait for are merged).

What it covers: :class:`ConvLSTMCell` and :class:`ConvGRUCell` with the default
input convolution (SAME, stride 1, no dilation), either data format, any
activation. It returns outputs and states (and, for backpropagation through time,
each step's convolution outputs): the gates and caches that the figures show come
from the readable step functions. :mod:`refconv.fused_bptt` is its backward.
"""

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .activations import sigmoid, tanh
from .conv import conv_padding
from .gru import ConvGRUCell
from .lstm import ConvLSTMCell, LSTMStateTuple

__all__ = ["Runner", "supports", "threads"]

# A chunk's patch matrix is about this many bytes: it and the chunk's gates stay in L2/L3.
_CHUNK_BYTES = 8 * 2**20
# One group of frames (whose layer-norm statistics are completed together) holds
# at most about this many bytes of convolution output; a larger frame is a group alone.
_GROUP_BYTES = 64 * 2**20

_pool = None
_pool_lock = threading.Lock()


def threads():
    """Threads the fast path uses: ``REFCONV_THREADS`` if set, else the cores this process may use."""
    value = os.environ.get("REFCONV_THREADS")
    if value:
        return max(1, int(value))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _one_blas_thread():
    """Run this thread's matrix products on one BLAS thread (the pool's threads are the parallelism).

    Two pool threads each calling a 2-thread OpenBLAS would run four threads on
    two cores, and OpenBLAS's idle threads spin. OpenBLAS (0.3.27+, NumPy's
    wheels) can set the count for the calling thread only; other BLAS
    libraries are left as they are.
    """
    import ctypes
    import glob

    for path in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                       "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_set_num_threads_local.argtypes = [ctypes.c_int]
            lib.openblas_set_num_threads_local(1)
        except (OSError, AttributeError):
            pass


def _map(fn, items):
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


def supports(cell):
    """Whether :class:`Runner` computes this cell (a MultiRNNCell: every layer)."""
    cells = getattr(cell, "cells", [cell])
    for one in cells:
        if isinstance(one, ConvLSTMCell):
            if not one._default_input_conv:
                return False
        elif not isinstance(one, ConvGRUCell):
            return False
    return True


class Runner:
    """A cell run forward step by step with buffers allocated once (use :func:`runner`).

    Args:
        cell: a built ConvLSTMCell or ConvGRUCell that :func:`supports`.
        params: the cell's checked parameters, of ``dtype``.
        batch: B.
        dtype: float32 or float64.
        state: the initial state (the cell's structure, checked, of ``dtype``).
    """

    def __init__(self, cell, params, batch, dtype, state):
        self.cell = cell
        self.lstm = isinstance(cell, ConvLSTMCell)
        self.dtype = np.dtype(dtype)
        self.batch = batch
        self.first = cell.data_format == "channels_first"
        f = self.filters = cell.filters
        s = self.spatial = tuple(cell.state_shape)
        self.pixels = math.prod(s)
        kernel = params["kernel" if self.lstm else "gates/kernel"]
        self.kernel = tuple(kernel.shape[:-2])
        c_total = kernel.shape[-2]
        self.in_channels = c_total - f
        pads = [conv_padding(n, k) for n, k in zip(s, self.kernel)]
        # concat([x, h]) lives in a zero-padded buffer: writing x and h into it is the
        # concatenation. Channels first, [B, C + F, *padded]: a patch row is then a
        # long contiguous run of one channel's pixels, which copies fast.
        padded = [n + before + after for n, (before, after) in zip(s, pads)]
        self.inside = tuple(slice(before, before + n) for n, (before, _) in zip(s, pads))
        self.xh = np.zeros((batch, c_total, *padded), self.dtype)
        self.taps = math.prod(self.kernel) * c_total

        def gate_major(name):  # [*k, C, N] -> [N, K], K in the patches' order
            return np.ascontiguousarray(params[name].reshape(self.taps, -1).T)

        def column(vector):  # per-channel [N] -> [N, 1, 1] against [N, samples, pixels]
            return np.asarray(vector).reshape(-1, 1, 1)

        self.ln = {}
        names = (("z", "z_i", "z_f", "z_o", "c") if self.lstm else ("r", "u", "candidate"))
        if cell.normalize:
            self.ln = {name: (column(params[name + "/gamma"]), column(params[name + "/beta"]))
                       for name in names}
        if self.lstm:
            self.w = gate_major("kernel")
            self.bias = None if cell.normalize else column(params["bias"])
            self.peep = {}
            if cell.peephole:
                for name in ("W_ci", "W_cf", "W_co"):
                    w = params[name]  # [*S, F] (channels_last) or [F, *S]
                    w = w.reshape(f, self.pixels) if self.first else w.reshape(self.pixels, f).T
                    self.peep[name] = np.ascontiguousarray(w).reshape(f, 1, self.pixels)
        else:
            self.w = gate_major("gates/kernel")
            self.w_candidate = gate_major("candidate/kernel")
            self.bias = None if cell.normalize else column(params["gates/bias"])
            self.bias_candidate = None if cell.normalize else column(params["candidate/bias"])
            self.xrh = np.zeros_like(self.xh)  # concat([x, r * h]), the candidate's input

        self._plan()
        self._local = threading.local()
        self.frozen = {}  # rows past their sequence length: their state when they stopped
        self._keep = None
        self.records = None  # a list to record each step in, for refconv.fused_bptt
        self.set_state(state)

    # --- layout -----------------------------------------------------------
    def _plan(self):
        """Split the batch into chunks (a few rows of one frame, or a few whole frames) and groups."""
        s, b = self.spatial, self.batch
        row = math.prod(s[1:])
        pixel_bytes = self.taps * self.dtype.itemsize
        rows = max(1, _CHUNK_BYTES // (row * pixel_bytes))
        if rows >= s[0]:  # small frames: several whole frames per chunk
            per = max(1, _CHUNK_BYTES // (self.pixels * pixel_bytes))
            chunks = [(b0, min(b0 + per, b), 0, s[0]) for b0 in range(0, b, per)]
        else:
            chunks = [(b0, b0 + 1, r0, min(r0 + rows, s[0]))
                      for b0 in range(b) for r0 in range(0, s[0], rows)]
        self.chunks = chunks
        self.offsets, start = {}, 0
        for chunk in chunks:
            n = (chunk[1] - chunk[0]) * (chunk[3] - chunk[2]) * row
            self.offsets[chunk] = (start, n)
            start += self.filters * n
        out_channels = (4 if self.lstm else 2) * self.filters
        frame_bytes = self.pixels * out_channels * self.dtype.itemsize
        frames = max(1, _GROUP_BYTES // frame_bytes)
        self.groups = []
        for chunk in chunks:
            if not self.groups or chunk[0] >= self.groups[-1][0][0] + frames and chunk[2] == 0:
                self.groups.append([])
            self.groups[-1].append(chunk)
        # One convolution-output buffer per chunk position in a group, reused by every group.
        longest = max(len(group) for group in self.groups)
        sizes = [max((c[1] - c[0]) * (c[3] - c[2]) * row
                     for group in self.groups if i < len(group) for c in group[i:i + 1])
                 for i in range(longest)]
        self.y = [np.empty(out_channels * n, self.dtype) for n in sizes]
        self._ones_buffer = np.ones(self.filters * max(sizes), self.dtype)
        self.y_candidate = (None if self.lstm else
                            [np.empty(self.filters * n, self.dtype) for n in sizes])

    def _pixels(self, chunk):
        """Columns of the chunk in a gate-major ``[F, B * P]`` array, and its pixel range in a frame."""
        b0, b1, r0, r1 = chunk
        row = math.prod(self.spatial[1:])
        q0, q1 = r0 * row, r1 * row
        return slice(b0 * self.pixels + q0, (b1 - 1) * self.pixels + q1), slice(q0, q1)

    def _ones(self, n):
        """``n`` ones (shared, read-only): ``dot(v, ones)`` is a sum at BLAS speed."""
        return self._ones_buffer[:n]

    def _scratch(self, name, shape):
        """A per-thread buffer, reused across chunks and steps (no page faults after the first)."""
        buffers = self._local.__dict__
        size = math.prod(shape)
        buf = buffers.get(name)
        if buf is None or buf.size < size:
            buf = buffers[name] = np.empty(size, self.dtype)
        return buf[:size].reshape(shape)

    def _to_gate_major(self, a):
        """``[B, *S, F]`` (or ``[B, F, *S]``) -> the runner's layout: chunk after chunk, each
        chunk a contiguous ``[F, nb, m]`` block, so that every line of a step runs on
        contiguous memory. Always a copy: the runner updates its state in place."""
        if self.first:
            a = a.reshape(self.batch, self.filters, self.pixels).transpose(1, 0, 2)
        else:
            a = a.reshape(self.batch, self.pixels, self.filters).transpose(2, 0, 1)
        out = np.empty(self.filters * self.batch * self.pixels, self.dtype)
        for chunk in self.chunks:
            _, pixels = self._pixels(chunk)
            self._state_view(out, chunk)[...] = a[:, chunk[0]:chunk[1], pixels]
        return out

    def _from_gate_major(self, a):
        """The runner's layout -> a new ``[B, *S, F]`` (or ``[B, F, *S]``) array."""
        out = np.empty((self.batch, *self.cell.output_size), self.dtype)
        for chunk in self.chunks:
            b0, b1 = chunk[:2]
            _, pixels = self._pixels(chunk)
            block = self._state_view(a, chunk)                      # [F, nb, m]
            if self.first:
                out.reshape(self.batch, self.filters, self.pixels)[b0:b1, :, pixels] = \
                    block.swapaxes(0, 1)
            else:
                out.reshape(self.batch, self.pixels, self.filters)[b0:b1, pixels] = \
                    block.transpose(1, 2, 0)
        return out

    def _frame_view(self, buffer, channels, b0=0, b1=None, r0=0, r1=None):
        """The inside of a padded buffer: ``[nb, channels, nr, *S[1:]]``."""
        first = self.inside[0]
        rows = slice(first.start + r0, first.start + (self.spatial[0] if r1 is None else r1))
        return buffer[(slice(b0, b1), channels, rows, *self.inside[1:])]

    # --- state ------------------------------------------------------------
    def set_state(self, state):
        """Start from ``state`` (the cell's structure, in the cell's data format)."""
        h = state.h if self.lstm else state
        self.c = self._to_gate_major(state.c) if self.lstm else None
        self.h = None if self.lstm else self._to_gate_major(h)
        h_first = h if self.first else np.moveaxis(h, -1, 1)
        self._frame_view(self.xh, slice(self.in_channels, None))[...] = h_first
        # One output buffer, rewritten each step (no page faults after the first): the
        # last h, for state(), is this buffer, or the initial state's h (never written).
        self._h_buffer = np.empty((self.batch, *self.cell.output_size), self.dtype)
        self._h_out = h
        self.frozen = {}

    def state(self):
        """The current state, in the cell's structure and data format (new arrays)."""
        h = self._h_out.copy()
        if self.lstm:
            state = LSTMStateTuple(self._from_gate_major(self.c), h)
        else:
            state = h
        for b, old in self.frozen.items():
            if self.lstm:
                state.c[b], state.h[b] = old.c, old.h
            else:
                state[b] = old
        return state

    # --- one step ---------------------------------------------------------
    def step(self, x, out=None, alive=None, keep=None):
        """One step on frames ``x`` (``[B, *shape, C_in]`` or channels_first): returns ``h``.

        The returned ``h`` is the runner's own buffer, overwritten by the next
        step: copy what you keep, or pass ``out``.

        Args:
            out: where to write ``h`` (``[B, *S]``, the cell's data format), or None.
            alive: None, or B booleans: rows that are False have ended their sequence;
                their state stays what it was when they ended (the output is still
                computed; the caller zeroes it, as :func:`refconv.dynamic_rnn` does).
            keep: None, or a dict of arrays in the cell's data format to fill with the
                step's convolution outputs (bias included, before anything else):
                LSTM ``{"y": [B, *S, 4F]}``, GRU ``{"y_gates": [B, *S, 2F],
                "y_candidate": [B, *S, F]}``. Backpropagation through time keeps them.
        """
        self._keep = keep
        if self.records is not None:  # what the fused backward (refconv.fused_bptt) needs
            self.records.append({"x": x, "h_prev": np.array(self._h_out), "c_prev": self.c.copy(),
                                 "y": np.empty(4 * self.c.size, self.dtype), "stats": []})
        if alive is not None:
            for b in np.flatnonzero(~np.asarray(alive)):
                if b not in self.frozen:
                    current = self.state()
                    self.frozen[b] = (LSTMStateTuple(current.c[b].copy(), current.h[b].copy())
                                      if self.lstm else current[b].copy())
        x_first = x if self.first else np.moveaxis(x, -1, 1)
        channels = slice(0, self.in_channels)
        self._frame_view(self.xh, channels)[...] = x_first
        if not self.lstm:
            self._frame_view(self.xrh, channels)[...] = x_first
        h = self._h_out = self._h_buffer
        for group in self.groups:
            if self.lstm:
                self._lstm_group(group)
            else:
                self._gru_group(group)
        if out is not None:
            out[...] = h
        return h

    def _patches(self, buffer, chunk):
        """The chunk's transposed im2col matrix ``[K, n]`` from a padded ``[B, C, *padded]`` buffer.

        Row ``(j, c)`` (kernel offset j, channel c, in the kernel's
        ``[*k, C, N]`` order) holds channel c of every output pixel of the chunk,
        shifted by j: one slice of the buffer, copied in runs of a whole image row.
        """
        b0, b1, r0, r1 = chunk
        k, s = self.kernel, self.spatial
        c = buffer.shape[1]
        cols = self._scratch("cols", (*k, c, b1 - b0, r1 - r0, *s[1:]))
        for j in np.ndindex(*k):
            window = (slice(b0, b1), slice(None), slice(r0 + j[0], r1 + j[0]),
                      *(slice(jj, jj + n) for jj, n in zip(j[1:], s[1:])))
            cols[j] = buffer[window].swapaxes(0, 1)  # [nb, C, ...] -> [C, nb, ...]
        return cols.reshape(math.prod(k) * c, -1)

    def _out(self, buffers, i, chunk, channels):
        """Chunk ``i``'s ``[channels, n]`` convolution output, in its reused buffer."""
        n = (chunk[1] - chunk[0]) * (chunk[3] - chunk[2]) * math.prod(self.spatial[1:])
        return buffers[i][:channels * n].reshape(channels, n)

    def _conv(self, w, buffer, chunk, y):
        """``y = w @ patches^T``: the chunk's convolution output, gate-major ``[N, n]``."""
        np.matmul(w, self._patches(buffer, chunk), out=y)
        return y

    def _y(self, i, chunk):
        return self._out(self.y, i, chunk, (4 if self.lstm else 2) * self.filters)

    def _y_candidate(self, i, chunk):
        return self._out(self.y_candidate, i, chunk, self.filters)

    def _split(self, y, chunk, parts):
        """``[parts * F, n]`` -> ``parts`` views ``[F, nb, m]`` (m: the chunk's pixels per frame)."""
        nb = chunk[1] - chunk[0]
        return y.reshape(parts, self.filters, nb, -1)

    def _state_view(self, a, chunk, parts=1):
        """The chunk's contiguous ``[parts * F, nb, m]`` block of an array in the runner's layout."""
        start, n = self.offsets[chunk]
        start *= parts
        return a[start:start + parts * self.filters * n].reshape(
            parts * self.filters, chunk[1] - chunk[0], -1)

    def _write_h(self, h, chunk):
        """Write a chunk's new ``h`` (``[F, nb, m]``) to the step's output and the next input."""
        b0, b1, r0, r1 = chunk
        view = self._frame_view(self.xh, slice(self.in_channels, None), b0, b1, r0, r1)
        view[...] = h.reshape(self.filters, *view.shape[:1], *view.shape[2:]).swapaxes(0, 1)
        _, pixels = self._pixels(chunk)
        if self.first:  # [B, F, *S]
            out = self._h_out.reshape(self.batch, self.filters, self.pixels)[b0:b1, :, pixels]
            out[...] = h.swapaxes(0, 1)
        else:           # [B, *S, F]
            out = self._h_out.reshape(self.batch, self.pixels, self.filters)[b0:b1, pixels]
            out[...] = h.transpose(1, 2, 0)

    def _export(self, name, y, chunk):
        """Copy a chunk's convolution output ``[N, n]`` into ``keep[name]`` (the cell's layout)."""
        if self._keep is None:
            return
        b0, b1 = chunk[:2]
        _, pixels = self._pixels(chunk)
        n_out = y.shape[0]
        y = y.reshape(n_out, b1 - b0, -1)
        if self.first:
            self._keep[name].reshape(self.batch, n_out, self.pixels)[b0:b1, :, pixels] = \
                y.swapaxes(0, 1)
        else:
            self._keep[name].reshape(self.batch, self.pixels, n_out)[b0:b1, pixels] = \
                y.transpose(1, 2, 0)

    # --- layer norm over chunks ---------------------------------------------
    def _stats(self, v):
        """A chunk's per-frame ``(pixels, mean, M2)`` of ``v`` ``[F, nb, m]`` (M2: centred sum of squares).

        Two passes, ``sum(v)`` and ``sum(v * v)``, then ``M2 = sum(v * v) - n mean^2``.
        That subtraction loses digits when the mean is large against the spread
        (the error is about ``eps * mean^2 / variance``); past a bound that keeps it
        below 1e-13 (float64) or 1e-6 (float32), the chunk is centred first, as
        :func:`refconv.layer_norm` always does.
        """
        n = v.shape[0] * v.shape[2]
        if v.shape[1] == 1 and v.flags.c_contiguous:  # one frame: BLAS dot products, fastest
            flat = v.reshape(-1)
            mean = np.array([np.dot(flat, self._ones(flat.size))], np.float64) / n
            m2 = np.array([np.dot(flat, flat)], np.float64) - n * mean * mean
        else:
            mean = v.sum(axis=(0, 2)).astype(np.float64) / n
            m2 = np.einsum("fbm,fbm->b", v, v).astype(np.float64) - n * mean * mean
        limit = 400.0 if self.dtype == np.float64 else 16.0
        if np.all(n * mean * mean <= limit * m2):
            return n, mean, m2
        d = self._scratch("centred", v.shape)
        np.subtract(v, mean.astype(self.dtype)[None, :, None], out=d)
        m2 = np.einsum("fbm,fbm->b", d, d).astype(np.float64)
        # d was centred on the rounded mean: correct M2 for the rounding.
        shift = mean - mean.astype(self.dtype)
        return n, mean, m2 - n * shift * shift

    def _combine(self, group, parts):
        """Per-frame mean and 1/std of a group from its chunks' stats (Chan et al.'s formula)."""
        b_first = group[0][0]
        frames = group[-1][1] - b_first
        count = np.zeros(frames)
        total = np.zeros(frames)
        for chunk, (n, mean, _) in zip(group, parts):
            count[chunk[0] - b_first:chunk[1] - b_first] += n
            total[chunk[0] - b_first:chunk[1] - b_first] += n * mean
        mean = total / count
        m2 = np.zeros(frames)
        for chunk, (n, chunk_mean, chunk_m2) in zip(group, parts):
            rows = slice(chunk[0] - b_first, chunk[1] - b_first)
            m2[rows] += chunk_m2 + n * (chunk_mean - mean[rows]) ** 2
        rstd = 1 / np.sqrt(m2 / count + self.cell.norm_epsilon)
        return b_first, mean, rstd

    def _normalize(self, v, chunk, stats, name, scale=1.0, shift=0.0):
        """In place: ``v = scale * (gamma * (v - mean) / std + beta + shift)`` for a chunk.

        As ``v * a + b`` (two passes) with ``a = scale * gamma / std`` and
        ``b = scale * (beta + shift) - mean * a``: its rounding error is about
        ``eps * |mean| / std`` of the result's scale, so where the mean is more
        than 20 standard deviations from zero the mean is subtracted first.
        """
        b_first, mean, rstd = stats
        rows = slice(chunk[0] - b_first, chunk[1] - b_first)
        gamma, beta = self.ln[name]
        mean, rstd = mean[rows][None, :, None], rstd[rows][None, :, None]
        a = (rstd * gamma) * scale                      # [F, nb, 1], float64
        if np.all(np.abs(mean) * rstd <= 20.0):
            v *= a.astype(self.dtype)
            v += (scale * (beta + shift) - mean * a).astype(self.dtype)
        else:
            v -= mean.astype(self.dtype)
            v *= a.astype(self.dtype)
            v += (scale * (beta + shift)).astype(self.dtype)

    def _gate(self, v, chunk, stats, name, fn, shift=0.0):
        """In place: ``v = fn(LN(v) + shift)``, sigmoid's halving folded into layer norm's scale."""
        if fn is sigmoid:
            self._normalize(v, chunk, stats, name, scale=0.5, shift=shift)
            np.tanh(v, out=v)
            v *= 0.5
            v += 0.5
        else:
            self._normalize(v, chunk, stats, name, shift=shift)
            self._activate(fn, v)

    def _activate(self, fn, v):
        """In place: ``v = fn(v)``; sigmoid as ``(1 + tanh(v / 2)) / 2`` (see the module notes)."""
        if fn is tanh or fn is np.tanh:
            np.tanh(v, out=v)
        elif fn is sigmoid:
            v *= 0.5
            np.tanh(v, out=v)
            v *= 0.5
            v += 0.5
        else:
            v[...] = fn(v)

    def _pass(self, fn, group):
        return _map(lambda item: fn(*item), list(enumerate(group)))

    # --- the LSTM -----------------------------------------------------------
    def _lstm_group(self, group):
        cell = self.cell
        if not cell.normalize:
            # Pass 3 writes h where pass 1 of a neighbouring chunk reads: keep the barrier.
            self._pass(self._lstm_conv, group)
            self._pass(self._lstm_gates, group)
            return
        parts = self._pass(self._lstm_conv, group)
        stats = [self._combine(group, [p[g] for p in parts]) for g in range(3)]
        parts = self._pass(lambda i, chunk: self._lstm_cell_state(i, chunk, stats), group)
        stats_out = [self._combine(group, [p[g] for p in parts]) for g in range(2)]
        if self.records is not None:
            self.records[-1]["stats"].append((stats, stats_out))
        self._pass(lambda i, chunk: self._lstm_output(i, chunk, stats_out), group)

    def _lstm_conv(self, i, chunk):
        """Pass 1: y = conv(concat([x, h])) (+ bias), peepholes on z_i and z_f; their stats."""
        cell = self.cell
        y = self._conv(self.w, self.xh, chunk, self._y(i, chunk))
        if self.bias is not None:
            y += self.bias[:, :, 0]
        self._export("y", y, chunk)
        if self.records is not None:
            self._state_view(self.records[-1]["y"], chunk, 4)[...] = y.reshape(
                4 * self.filters, chunk[1] - chunk[0], -1)
        z, z_i, z_f, _ = self._split(y, chunk, 4)
        if cell.peephole:
            _, pixels = self._pixels(chunk)
            c_prev = self._state_view(self.c, chunk)
            peep = self._scratch("peephole", z.shape)
            z_i += np.multiply(self.peep["W_ci"][:, :, pixels], c_prev, out=peep)
            z_f += np.multiply(self.peep["W_cf"][:, :, pixels], c_prev, out=peep)
        if cell.normalize:
            return self._stats(z), self._stats(z_i), self._stats(z_f)
        return None

    def _lstm_cell_state(self, i, chunk, stats):
        """Pass 2: z, z_i, z_f and the new c (+ peephole on z_o); stats of z_o and c."""
        cell = self.cell
        z, z_i, z_f, z_o = self._split(self._y(i, chunk), chunk, 4)
        c = self._state_view(self.c, chunk)
        sigma = cell.recurrent_activation
        if cell.normalize:
            self._gate(z, chunk, stats[0], "z", cell.activation)
            self._gate(z_i, chunk, stats[1], "z_i", sigma)
            self._gate(z_f, chunk, stats[2], "z_f", sigma, shift=cell.forget_bias)
        else:
            z_f += cell.forget_bias
            self._activate(sigma, z_f)
            self._activate(sigma, z_i)
            self._activate(cell.activation, z)
        c *= z_f                     # c = c * z_f + z_i * z
        c += np.multiply(z_i, z, out=z_i)
        if cell.peephole:
            _, pixels = self._pixels(chunk)
            z_o += np.multiply(self.peep["W_co"][:, :, pixels], c, out=z_f)
        if cell.normalize:
            return self._stats(z_o), self._stats(c)
        return None

    def _lstm_output(self, i, chunk, stats):
        """Pass 3: z_o = sigmoid(LN(z_o)), c = LN(c), h = z_o * tanh(c)."""
        cell = self.cell
        _, _, h, z_o = self._split(self._y(i, chunk), chunk, 4)  # z_f's rows are free: h goes there
        c = self._state_view(self.c, chunk)
        if cell.normalize:
            self._gate(z_o, chunk, stats[0], "z_o", cell.recurrent_activation)
            self._normalize(c, chunk, stats[1], "c")
        else:
            self._activate(cell.recurrent_activation, z_o)
        if cell.activation is tanh or cell.activation is np.tanh:
            np.tanh(c, out=h)
        else:
            h[...] = cell.activation(c)
        h *= z_o
        self._write_h(h, chunk)

    def _lstm_gates(self, i, chunk):
        """Passes 2 and 3 at once, when there is no layer norm to wait for."""
        self._lstm_cell_state(i, chunk, None)
        self._lstm_output(i, chunk, None)

    # --- the GRU ------------------------------------------------------------
    def _gru_group(self, group):
        cell = self.cell
        if cell.normalize:
            parts = self._pass(self._gru_conv, group)
            stats = [self._combine(group, [p[g] for p in parts]) for g in range(2)]
        else:
            self._pass(self._gru_conv, group)
            stats = None
        self._pass(lambda i, chunk: self._gru_reset(i, chunk, stats), group)
        parts = self._pass(self._gru_candidate_conv, group)
        stats = self._combine(group, parts) if cell.normalize else None
        self._pass(lambda i, chunk: self._gru_output(i, chunk, stats), group)

    def _gru_conv(self, i, chunk):
        """Pass 1: y = conv(concat([x, h])) (+ bias); stats of r and u."""
        y = self._conv(self.w, self.xh, chunk, self._y(i, chunk))
        if self.bias is not None:
            y += self.bias[:, :, 0]
        self._export("y_gates", y, chunk)
        r, u = self._split(y, chunk, 2)
        if self.cell.normalize:
            return self._stats(r), self._stats(u)
        return None

    def _gru_reset(self, i, chunk, stats):
        """Pass 2: r, u = sigmoid(LN(r)), sigmoid(LN(u)); r * h into the candidate's input."""
        r, u = self._split(self._y(i, chunk), chunk, 2)
        if stats is not None:
            self._gate(r, chunk, stats[0], "r", sigmoid)
            self._gate(u, chunk, stats[1], "u", sigmoid)
        else:
            self._activate(sigmoid, r)
            self._activate(sigmoid, u)
        r *= self._state_view(self.h, chunk)
        b0, b1, r0, r1 = chunk
        view = self._frame_view(self.xrh, slice(self.in_channels, None), b0, b1, r0, r1)
        view[...] = r.reshape(self.filters, *view.shape[:1], *view.shape[2:]).swapaxes(0, 1)

    def _gru_candidate_conv(self, i, chunk):
        """Pass 3: y = conv(concat([x, r * h])) (+ bias); its stats."""
        y = self._conv(self.w_candidate, self.xrh, chunk, self._y_candidate(i, chunk))
        if self.bias_candidate is not None:
            y += self.bias_candidate[:, :, 0]
        self._export("y_candidate", y, chunk)
        if self.cell.normalize:
            return self._stats(self._split(y, chunk, 1)[0])
        return None

    def _gru_output(self, i, chunk, stats):
        """Pass 4: candidate = tanh(LN(y)); h = u * h + (1 - u) * candidate."""
        candidate = self._split(self._y_candidate(i, chunk), chunk, 1)[0]
        _, u = self._split(self._y(i, chunk), chunk, 2)
        if stats is not None:
            self._gate(candidate, chunk, stats, "candidate", self.cell.activation)
        else:
            self._activate(self.cell.activation, candidate)
        h = self._state_view(self.h, chunk)
        h -= candidate               # h = candidate + u * (h - candidate)
        h *= u
        h += candidate
        self._write_h(h, chunk)


class StackRunner:
    """:class:`Runner` for a MultiRNNCell: one runner per layer, each layer's h the next one's x."""

    def __init__(self, multi, params, batch, dtype, state):
        self.layers = [Runner(cell, p, batch, dtype, s)
                       for cell, p, s in zip(multi.cells, params, state)]

    def step(self, x, out=None, alive=None, keep=None):
        for layer in self.layers[:-1]:
            x = layer.step(x, alive=alive)
        return self.layers[-1].step(x, out=out, alive=alive)

    def state(self):
        return tuple(layer.state() for layer in self.layers)


def runner(cell, params, batch, dtype, state):
    """A :class:`Runner` (or :class:`StackRunner` for a MultiRNNCell) started from ``state``."""
    if hasattr(cell, "cells"):
        return StackRunner(cell, params, batch, dtype, state)
    return Runner(cell, params, batch, dtype, state)
