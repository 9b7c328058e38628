"""What the LSTM and GRU runners share: buffers, the step loop, convolutions and gates of a chunk.

A runner runs one cell forward step by step with buffers allocated once; the
state lives in the gate-major layout of :mod:`refconv.fast.layout` between steps.
The cell-specific passes are in :mod:`refconv.fast.lstm` and :mod:`refconv.fast.gru`.
"""

import math

import numpy as np

from ..activations import sigmoid, tanh
from .conv_chunk import ChunkConvolution
from .layout import GROUP_BYTES, Layout
from .norm_stats import chunk_stats, combine, normalize
from .pool import Scratch, parallel_map
from .workspace import Workspace

__all__ = ["Runner", "activate", "activate_affine_by_exp", "column"]


def column(vector):
    """Per-channel ``[N]`` -> ``[N, 1, 1]``, against ``[N, frames, pixels]``."""
    return np.asarray(vector).reshape(-1, 1, 1)


def activate(fn, v, out=None):
    """``out = fn(v)`` (``out`` None: in place); sigmoid as ``1 / (1 + exp(-v))``.

    Why not ``scipy.special.expit``: it allocates and runs about 3x slower. Why not
    ``(1 + tanh(v / 2)) / 2``: NumPy's ``exp`` is about twice as fast as its ``tanh``
    (float64 11 against 21 ns a number, float32 2.6 against 3.5 on this project's
    machine: ``benchmarks/profile_step.py``). The result is within a few units in the
    last place of ``expit``'s; where ``exp(-v)`` overflows the result is its limit, 0.
    """
    out = v if out is None else out
    if fn is tanh or fn is np.tanh:
        np.tanh(v, out=out)
    elif fn is sigmoid:
        np.negative(v, out=out)
        _sigmoid_of_negated(out)
    else:
        out[...] = fn(v)


def _sigmoid_of_negated(v):
    """In place: ``v = 1 / (1 + exp(v))``, i.e. sigmoid of ``-v`` (callers fold the sign
    into a pass they make anyway). ``np.divide(1.0, v)``, not ``np.reciprocal(v)``: the
    division's loop is vectorised, the reciprocal's is not (float64 0.4 against 0.8 ns)."""
    with np.errstate(over="ignore"):
        np.exp(v, out=v)
    v += 1
    np.divide(1.0, v, out=v)


def activate_affine_by_exp(fn, v, scale, offset, out):
    """``out = fn(v * scale + offset)`` for ``fn`` sigmoid or tanh, through ``exp``: what the
    backward uses to redo the forward's activations, from layer norm's ``v_hat`` (``scale``,
    ``offset``: gamma and beta + shift, ``[F, 1, 1]``) or from a gate's input (1, the shift).

    ``sigmoid(a) = 1 / (1 + exp(-a))``, as the forward computes it (the same bits: the sign
    folded into the affine pass is exact); ``tanh(a) = 1 - 2 / (1 + exp(2 a))``, to rounding:
    NumPy's float64 ``exp`` is about twice as fast as its ``tanh``. The activation's constant
    (-1, 2) is folded into the affine pass, which saves one. The forward keeps ``np.tanh``:
    near 0 the subtraction ``1 - ...`` leaves an absolute error of a few 1e-16, not a
    relative one, which a gradient does not notice but an output compared element by
    element would. Where ``exp`` overflows to inf the results are the limits, 0 and 1 (or -1).
    """
    if fn is sigmoid:
        k = -1.0                          # sigmoid(a) = 1 / (1 + exp(-a))
    elif fn is tanh or fn is np.tanh:
        k = 2.0                           # tanh(a) = 1 - 2 / (1 + exp(2 a))
    else:
        raise ValueError(f"fn: expected sigmoid or tanh, got {fn!r}")
    np.multiply(v, np.asarray(k * scale, out.dtype), out=out)
    out += np.asarray(k * offset, out.dtype)
    if fn is sigmoid:
        _sigmoid_of_negated(out)
        return
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    np.divide(-2.0, out, out=out)
    out += 1


class Runner:
    """A cell run forward step by step (a subclass per cell; use :func:`refconv.fast.runner`).

    Args:
        cell: a built ConvLSTMCell or ConvGRUCell that :func:`refconv.fast.supports`.
        params: the cell's checked parameters, of ``dtype``.
        batch: B. dtype: float32 or float64.
        state: the initial state (the cell's structure, checked, of ``dtype``).
        chunk_bytes, group_bytes: the chunk plan's sizes (:class:`refconv.fast.layout.Layout`);
            ``chunk_bytes`` None: the size the cell's convolution runs best at
            (:attr:`refconv.fast.conv_chunk.ChunkConvolution.chunk_bytes`).
        workspace: a :class:`refconv.fast.Workspace` to take the large buffers (and a
            backward's records) from; None: new memory. :meth:`release` gives them back.
    """

    kernel_name = None    # the parameter of the first convolution
    blocks = ()           # the blocks of its output channels
    norms = ()            # the layer norms, by name

    def __init__(self, cell, params, batch, dtype, state, *, chunk_bytes=None,
                 group_bytes=GROUP_BYTES, workspace=None):
        self.cell = cell
        self.workspace = Workspace() if workspace is None else workspace
        self.dtype = np.dtype(dtype)
        self.batch = batch
        self.channels_first = cell.data_format == "channels_first"
        self.filters = cell.filters
        kernel = params[self.kernel_name]
        c_total = kernel.shape[-2]
        self.in_channels = c_total - self.filters
        self.taps = math.prod(kernel.shape[:-2]) * c_total
        self.conv_xh = ChunkConvolution(kernel)   # conv(concat([x, h]), kernel) of a chunk
        self.layout = Layout(cell.state_shape, batch, self.filters, kernel.shape[:-2], self.taps,
                             len(self.blocks) * self.filters, self.dtype, self.channels_first,
                             self.conv_xh.chunk_bytes if chunk_bytes is None else chunk_bytes,
                             group_bytes)
        self.pixels = self.layout.pixels
        # concat([x, h]), padded with zeros
        self.xh = self.layout.padded_buffer(c_total, self.workspace.zeros)
        self.ln = {}
        if cell.normalize:
            self.ln = {name: (column(params[name + "/gamma"]), column(params[name + "/beta"]))
                       for name in self.norms}
        sizes = self.layout.sizes
        # One convolution-output buffer per chunk position in a group, reused by every group.
        self._y_base, self.y = self.workspace.empty_each(
            [len(self.blocks) * self.filters * n for n in sizes], self.dtype)
        self._ones_buffer = np.ones(self.filters * max(sizes, default=0), self.dtype)
        self.scratch = Scratch(self.dtype)
        self.frozen = {}  # rows past their sequence length: their state when they stopped
        self._keep = None

    # --- state ------------------------------------------------------------
    def _start(self, h):
        """Start from ``h`` (the cell's data format): into concat([x, h]) and the output."""
        h_first = h if self.channels_first else np.moveaxis(h, -1, 1)
        self.layout.frame_view(self.xh, slice(self.in_channels, None))[...] = h_first
        # One output buffer, rewritten each step (no page faults after the first): the
        # last h, for state(), is this buffer, or the initial state's h (never written).
        self._h_buffer = self.workspace.empty((self.batch, *self.cell.output_size), self.dtype)
        self._h_out = h
        self.frozen = {}

    def _thaw(self, state):
        """``state`` with the rows that have ended set back to their state when they did."""
        for b, old in self.frozen.items():
            for new_leaf, old_leaf in zip(_leaves(state), _leaves(old)):
                new_leaf[b] = old_leaf
        return state

    # --- one step ---------------------------------------------------------
    def step(self, x, alive=None, keep=None):
        """One step on frames ``x`` (``[B, *shape, C_in]`` or channels_first): returns ``h``.

        The returned ``h`` is the runner's own buffer, overwritten by the next
        step: copy what you keep.

        Args:
            alive: None, or B booleans: rows that are False have ended their sequence;
                their state stays what it was when they ended (the output is still
                computed; the caller zeroes it, as :func:`refconv.dynamic_rnn` does).
            keep: None, or a dict of arrays in the cell's data format to fill with the
                step's convolution outputs (bias included, before anything else):
                LSTM ``{"y": [B, *S, 4F]}``, GRU ``{"y_gates": [B, *S, 2F],
                "y_candidate": [B, *S, F]}``. Backpropagation through time keeps them.
        """
        self._keep = keep
        self._record(x)
        if alive is not None:
            for b in np.flatnonzero(~np.asarray(alive)):
                if b not in self.frozen:
                    self.frozen[b] = _row(self.state(), b)
        self._write_x(x if self.channels_first else np.moveaxis(x, -1, 1))
        h = self._h_out = self._h_buffer
        for group in self.layout.groups:
            self._group(group)
        return h

    def _record(self, x):
        """Keep what a backward needs of this step (nothing, unless a subclass records)."""

    def release(self):
        """Give the large buffers back to the workspace; the runner is not used after this."""
        self.workspace.give(self.xh, self._h_buffer, self._y_base)

    def _recorded(self, a):
        """A copy of ``a`` for this step's record, in memory from ``self.workspace``."""
        copy = self.workspace.empty(a.shape, a.dtype)
        copy[...] = a
        return copy

    def _write_x(self, x_first):
        self.layout.frame_view(self.xh, slice(0, self.in_channels))[...] = x_first

    # --- a chunk ----------------------------------------------------------
    def ones(self, n):
        """``n`` ones (shared, read-only): ``dot(v, ones)`` is a sum at BLAS speed."""
        return self._ones_buffer[:n]

    def output(self, buffers, i, chunk, channels):
        """Chunk ``i``'s ``[channels, n]`` convolution output, in its reused buffer."""
        n = self.layout.size(chunk)
        return buffers[i][:channels * n].reshape(channels, n)

    def y_of(self, i, chunk):
        """Chunk ``i``'s first convolution output ``[blocks * F, n]``."""
        return self.output(self.y, i, chunk, len(self.blocks) * self.filters)

    def conv(self, convolution, buffer, chunk, y):
        """``y``: the chunk's convolution output ``[N, n]`` (gate-major) of the padded ``buffer``
        by ``convolution`` (a :class:`refconv.fast.conv_chunk.ChunkConvolution`)."""
        return convolution(self.layout, buffer, chunk, y, self.scratch)

    def split(self, y, chunk, parts):
        """``[parts * F, n]`` -> ``parts`` views ``[F, nb, m]`` (m: the chunk's pixels per frame)."""
        return y.reshape(parts, self.filters, chunk[1] - chunk[0], -1)

    def in_parallel(self, fn, group):
        """``fn(i, chunk)`` for every chunk of a group, on the thread pool: a barrier after."""
        return parallel_map(lambda item: fn(*item), list(enumerate(group)))

    def _write_h(self, h, chunk):
        """Write a chunk's new ``h`` (``[F, nb, m]``) to the step's output and the next input."""
        self.layout.write_rows(self.xh, slice(self.in_channels, None), h, chunk)
        self.layout.put(self._h_out, h, chunk)

    def _export(self, name, y, chunk):
        """Copy a chunk's convolution output ``[N, n]`` into ``keep[name]`` (the cell's layout)."""
        if self._keep is not None:
            self.layout.put(self._keep[name], y.reshape(y.shape[0], chunk[1] - chunk[0], -1), chunk)

    # --- layer norm and activations over a chunk ----------------------------
    def _stats(self, v):
        return chunk_stats(v, self.dtype, self.ones, self.scratch)

    def _combine(self, group, parts):
        return combine(group, parts, self.cell.norm_epsilon)

    def _gate(self, v, chunk, stats, name, fn, shift=0.0, out=None):
        """``out = fn(LN(v) + shift)`` (``out`` None: in place); for sigmoid, the sign of
        ``exp(-v)`` is folded into layer norm's scale, so the gate costs no pass more than
        its ``exp``."""
        gamma, beta = self.ln[name]
        out = v if out is None else out
        if fn is sigmoid:
            normalize(v, chunk, stats, gamma, beta, scale=-1.0, shift=shift, out=out)
            _sigmoid_of_negated(out)
        else:
            normalize(v, chunk, stats, gamma, beta, shift=shift, out=out)
            activate(fn, out)


def _leaves(state):
    """The arrays of one cell's state: ``(c, h)`` or ``h``."""
    return list(state) if isinstance(state, tuple) else [state]


def _row(state, b):
    """A copy of batch row ``b`` of one cell's state."""
    if isinstance(state, tuple):
        return type(state)(*(leaf[b].copy() for leaf in state))
    return state[b].copy()
