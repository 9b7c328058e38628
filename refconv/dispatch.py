"""Which code runs, the readable step functions or the fast path: one rule, in one place.

Every entry point takes ``reference``: a cell's call, :class:`refconv.MultiRNNCell`'s
call, :func:`refconv.dynamic_rnn`, :func:`refconv.bidirectional_dynamic_rnn`,
:func:`refconv.stream_rnn`, :func:`refconv.stream_bidirectional_rnn`,
:func:`refconv.dynamic_rnn_grad`, :func:`refconv.bidirectional_dynamic_rnn_grad`
and :func:`refconv.gradcheck`; each asks :func:`choose`, whose rule is::

    fast forward   = not reference  and  not return_gates  and  fast.supports(cell)
                     (for gradients, a single cell: a stack's fast forward does not
                     keep its layers' convolutions for the readable backward)
    fast backward  = not reference  and  fast.supports_backward(cell, lengths)
                     (a ConvLSTM with tanh and sigmoid, or a ConvGRU with tanh, every
                     sequence full length: forward and backward both run on the fast path)

``reference=True`` always runs :func:`refconv.lstm_step`, :func:`refconv.gru_step`
and their backward steps: what a learner reads and edits. The default
(``reference=False``) runs the fast path where it covers the cell; the two agree
to rounding (the tests hold them to 1e-12 in float64). :func:`refconv.gradcheck`
checks the readable backward by default.

Layers: the cells (:mod:`refconv.lstm`, :mod:`refconv.gru`) know nothing of the fast
path; :mod:`refconv.fast` depends on the cells' options; this module on both; the
time loops and gradients (:mod:`refconv.rnn`, :mod:`refconv.stream`,
:mod:`refconv.bptt`, :mod:`refconv.gradcheck`) on this module.
"""

from typing import NamedTuple

from . import fast
from ._cell import ConvCell
from .checks import check_float_array

__all__ = ["Path", "choose", "step"]


class Path(NamedTuple):
    """What :func:`choose` picked: whether the forward, and the backward, run on the fast path."""
    fast_forward: bool
    fast_backward: bool = False


def choose(cell, *, reference=False, return_gates=False, gradients=False, lengths=None):
    """The one rule (see the module notes): which code runs for ``cell``.

    Args:
        cell: a ConvLSTMCell, ConvGRUCell or MultiRNNCell.
        reference: run the readable step functions, forward and backward.
        return_gates: the caller wants every gate (only the readable steps keep them).
        gradients: the caller will run a backward through time.
        lengths: the sequence lengths (None: every row full length).

    Returns:
        :class:`Path`.
    """
    if reference or return_gates:
        return Path(False, False)
    if gradients:
        backward = fast.supports_backward(cell, lengths)
        return Path(fast.supports(cell) and not hasattr(cell, "cells"), backward)
    return Path(fast.supports(cell))


def step(cell, x, state, *, reference=False):
    """One step of ``cell`` (a cell or a MultiRNNCell) on frames ``x`` ``[B, ...]``:
    ``(h, new_state)``, on the code :func:`choose` picks."""
    x = check_float_array(x, "x")
    if x.ndim == 0:
        raise ValueError(f"x: expected frames [B, ...], got a scalar {x!r}")
    state = cell._check_state(state, x.shape[0], x.dtype)  # before _prepare, which may build
    params = cell._prepare(x.shape, ["B"], x.dtype, "x")
    if choose(cell, reference=reference).fast_forward:
        run = fast.runner(cell, params, x.shape[0], x.dtype, state)
        h = run.step(x)
        return h, run.state()
    h, state, _ = cell._step(x, state, params)
    return h, state


# The cells' calls go through step(): set here, so that the cells never import the fast path.
ConvCell.run_step = step
