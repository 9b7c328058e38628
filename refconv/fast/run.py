"""Runs on the fast path: which cells it covers, a runner per cell or stack, loops over time,
and which runs its backward covers."""

import numpy as np

from ..gru import ConvGRUCell
from ..lstm import ConvLSTMCell
from . import gru, lstm
from .gru import GRURunner
from .layout import GROUP_BYTES
from .lstm import LSTMRunner

__all__ = ["supports", "runner", "StackRunner", "run_sequence", "record_forward",
           "supports_backward", "grad"]


def supports(cell):
    """Whether the fast forward computes this cell (a MultiRNNCell: every layer).

    It covers ConvLSTMCell and ConvGRUCell with the default input convolution
    (SAME, stride 1, no dilation), either data format, any activation.
    """
    for one in getattr(cell, "cells", [cell]):
        if isinstance(one, ConvLSTMCell):
            if not one._default_input_conv:
                return False
        elif not isinstance(one, ConvGRUCell):
            return False
    return True


class StackRunner:
    """A runner for a MultiRNNCell: one runner per layer, each layer's h the next one's x."""

    def __init__(self, multi, params, batch, dtype, state, **sizes):
        self.layers = [runner(cell, p, batch, dtype, s, **sizes)
                       for cell, p, s in zip(multi.cells, params, state)]

    def step(self, x, alive=None):
        """One time step through every layer (``alive`` as each layer's); the top h."""
        for layer in self.layers:
            x = layer.step(x, alive=alive)
        return x

    def state(self):
        """Each layer's current state, bottom first (new arrays)."""
        return tuple(layer.state() for layer in self.layers)


def runner(cell, params, batch, dtype, state, *, chunk_bytes=None,
           group_bytes=GROUP_BYTES):
    """A runner for ``cell`` (an :class:`LSTMRunner`, :class:`GRURunner` or, for a
    MultiRNNCell, a :class:`StackRunner`) started from ``state``.

    Args:
        params: the cell's checked parameters (a list for a stack), of ``dtype``.
        batch: B. dtype: float32 or float64. state: checked, of ``dtype``.
        chunk_bytes, group_bytes: the chunk plan's sizes (:mod:`refconv.fast.layout`);
            ``chunk_bytes`` None: the cell's convolution's own (:class:`refconv.fast.runner.Runner`).
    """
    sizes = dict(chunk_bytes=chunk_bytes, group_bytes=group_bytes)
    if hasattr(cell, "cells"):
        return StackRunner(cell, params, batch, dtype, state, **sizes)
    kind = LSTMRunner if isinstance(cell, ConvLSTMCell) else GRURunner
    return kind(cell, params, batch, dtype, state, **sizes)


def run_sequence(cell, params, x_bt, lengths, state, out_bt, **sizes):
    """:func:`refconv.dynamic_rnn`'s loop on the fast path: outputs into ``out_bt``
    (``[B, T, *S]``, zeros, left zero past each row's length); returns the final state.

    Args:
        x_bt: ``[B, T, *frame]``; lengths: None or B ints; state: checked.
        sizes: ``chunk_bytes``, ``group_bytes`` as :func:`runner`.
    """
    steps = x_bt.shape[1] if lengths is None else int(lengths.max(initial=0))
    if steps == 0:
        return state
    run = runner(cell, params, x_bt.shape[0], x_bt.dtype, state, **sizes)
    for t in range(steps):
        alive = None if lengths is None else t < lengths
        h = run.step(x_bt[:, t], alive=alive)
        if alive is None:
            out_bt[:, t] = h
        else:
            out_bt[alive, t] = h[alive]
    return run.state()


def record_forward(cell, params, x_bt, lengths, state, steps, **sizes):
    """The forward of one cell on the fast path, keeping what the cell's ``_slim`` keeps
    of each step for the readable backward: its input, the state it started from and
    its convolution outputs."""
    batch = x_bt.shape[0]
    lstm = isinstance(cell, ConvLSTMCell)
    outputs = {"y": 4} if lstm else {"y_gates": 2, "y_candidate": 1}
    run = runner(cell, params, batch, x_bt.dtype, state, **sizes)
    kept = []
    for t in range(steps):
        before = run.state()
        keep = {name: np.empty((batch, *cell._frame(cell.state_shape, k * cell.filters)),
                               x_bt.dtype) for name, k in outputs.items()}
        run.step(x_bt[:, t], alive=None if lengths is None else t < lengths, keep=keep)
        kept.append((x_bt[:, t], before, *keep.values()))
    return kept


def supports_backward(cell, lengths):
    """Whether the fast backward (:func:`grad`) computes this run's gradients: a single
    ConvLSTMCell (:func:`refconv.fast.lstm.backward_covers`) or ConvGRUCell
    (:func:`refconv.fast.gru.backward_covers`), every sequence full length."""
    return lstm.backward_covers(cell, lengths) or gru.backward_covers(cell, lengths)


def grad(cell, params, x_bt, d_out_bt, state, d_state, **options):
    """Gradients of a run on the fast path, forward and backward: :func:`refconv.fast.lstm_grad`
    or :func:`refconv.fast.gru_grad` (arguments, ``options`` and results as theirs)."""
    fn = lstm.lstm_grad if isinstance(cell, ConvLSTMCell) else gru.gru_grad
    return fn(cell, params, x_bt, d_out_bt, state, d_state, **options)
