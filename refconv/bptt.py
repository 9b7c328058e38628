"""Backpropagation through time: the gradients of :func:`dynamic_rnn` and its bidirectional form.

The loss is the one a framework's autograd would see when the outputs and the
final state are multiplied by upstream gradients and summed::

    L = sum(outputs * d_outputs) + sum(final_state * d_state)

The forward pass keeps, per step, only the step's inputs and its convolution
outputs; just before a step's backward, the cheap element-wise part of the step
is recomputed from them (:meth:`_rebuild`). That keeps memory at a few
state-sized arrays per step instead of the twenty a full cache holds.

Masking (``sequence_length``) in reverse: where a row is past its length the
forward carried the state through unchanged and wrote a zero output, so the
backward carries the state's gradient through unchanged and ignores the
output's gradient.
"""

import operator
from typing import Any, NamedTuple

import numpy as np

from . import fast
from ._tree import tree_map
from .checks import check_float_array
from .dispatch import choose
from .rnn import (_check_sequence_length, _require_memory, _select, _start, check_cell,
                  reverse_sequence)

# Gradients have no streaming form: what a caller can do is hold less.
GRAD_WAY_OUT = "use fewer time steps or a smaller batch (or float32)"

__all__ = ["dynamic_rnn_grad", "bidirectional_dynamic_rnn_grad", "RNNGradients",
           "BidirectionalRNNGradients"]


class RNNGradients(NamedTuple):
    """Gradients of :func:`dynamic_rnn`'s loss."""
    inputs: np.ndarray   # shaped like inputs
    initial_state: Any   # the state's structure: LSTMStateTuple(c, h), an array, or a tuple
    params: Any          # dict with the keys and shapes of cell.params (a list for MultiRNNCell)


class BidirectionalRNNGradients(NamedTuple):
    """Gradients of :func:`bidirectional_dynamic_rnn`'s loss.

    When one cell is passed as both directions its weights are shared, and
    ``params_fw`` and ``params_bw`` are the same object: the total gradient.
    """
    inputs: np.ndarray
    initial_state_fw: Any
    initial_state_bw: Any
    params_fw: Any
    params_bw: Any


def dynamic_rnn_grad(cell, inputs, d_outputs, d_state=None, *, sequence_length=None,
                     initial_state=None, time_major=False, reference=False, workspace=None):
    """Gradients of ``sum(outputs * d_outputs) + sum(final_state * d_state)``.

    ``(outputs, final_state) = dynamic_rnn(cell, inputs, sequence_length,
    initial_state, time_major=time_major)``.

    Args:
        cell, inputs, sequence_length, initial_state, time_major: as :func:`dynamic_rnn`.
        d_outputs: shaped like the outputs (``[B, T, *S]``, or ``[T, B, *S]``).
        d_state: the final state's structure, or None for zero.
        reference: run the readable forward and backward steps (:func:`refconv.lstm_step_backward`,
            :func:`refconv.gru_step_backward`) even where the fast path covers the run
            (:func:`refconv.dispatch.choose` decides).
        workspace: None, or a :class:`refconv.fast.Workspace` that a loop passes to every
            call: the fast backward keeps its records' memory there for the next call
            instead of asking the system for fresh memory each time (faster; the memory
            stays held). The readable steps do not use it.

    Returns:
        :class:`RNNGradients` ``(inputs, initial_state, params)``.

    Example:
        The gradient of ``sum(outputs * d_outputs)`` with respect to one input value,
        against a central difference:

        >>> import numpy as np, refconv
        >>> cell = refconv.ConvGRUCell([6], filters=2, kernel=[3])
        >>> cell.build(1, seed=0)
        >>> rng = np.random.default_rng(1)
        >>> x, d_out = rng.random((2, 4, 6, 1)), rng.standard_normal((2, 4, 6, 2))
        >>> grads = refconv.dynamic_rnn_grad(cell, x, d_out)
        >>> def loss(x):
        ...     return np.sum(refconv.dynamic_rnn(cell, x)[0] * d_out)
        >>> e = np.zeros_like(x); e[1, 2, 3, 0] = 1e-6
        >>> numeric = (loss(x + e) - loss(x - e)) / 2e-6
        >>> bool(abs(grads.inputs[1, 2, 3, 0] - numeric) < 1e-8)
        True
    """
    return _grad(cell, inputs, d_outputs, d_state, sequence_length, initial_state, time_major,
                 "initial_state", "d_outputs", "d_state", reference, workspace)


def bidirectional_dynamic_rnn_grad(cell_fw, cell_bw, inputs, d_outputs, d_states=None, *,
                                   sequence_length=None, initial_state_fw=None,
                                   initial_state_bw=None, time_major=False, reference=False,
                                   workspace=None):
    """Gradients of :func:`bidirectional_dynamic_rnn`'s outputs and final states.

    ``L = sum(out_fw * d_out_fw) + sum(out_bw * d_out_bw) + sum(state_fw * d_state_fw)
    + sum(state_bw * d_state_bw)``.

    Args:
        d_outputs: ``(d_out_fw, d_out_bw)``, each shaped like the outputs (the
            backward one in input order, as ``out_bw`` is returned).
        d_states: ``(d_state_fw, d_state_bw)`` or None; either may be None.
        reference, workspace: as :func:`dynamic_rnn_grad` (the backward direction reuses
            the memory the forward direction's records leave in the workspace).

    Returns:
        :class:`BidirectionalRNNGradients`.
    """
    check_cell(cell_fw, "cell_fw")
    check_cell(cell_bw, "cell_bw")
    inputs = check_float_array(inputs, "inputs")
    if inputs.ndim < 3:
        raise ValueError(f"inputs: expected shape [B, T, *frame] (or [T, B, *frame] when "
                         f"time_major), got {list(inputs.shape)}")
    if not isinstance(d_outputs, (tuple, list)) or len(d_outputs) != 2:
        raise TypeError(f"d_outputs: expected a pair (d_out_fw, d_out_bw), "
                        f"got {type(d_outputs).__name__}")
    if d_states is None:
        d_states = (None, None)
    if not isinstance(d_states, (tuple, list)) or len(d_states) != 2:
        raise TypeError(f"d_states: expected a pair (d_state_fw, d_state_bw) or None, "
                        f"got {type(d_states).__name__}")
    seq_axis, batch_axis = (0, 1) if time_major else (1, 0)
    lengths = _check_sequence_length(sequence_length, inputs.shape[batch_axis],
                                     inputs.shape[seq_axis])
    for cell in (cell_fw, cell_bw):  # the reversed inputs, both directions' input gradients
        _require_memory(cell, inputs.swapaxes(0, 1) if time_major else inputs,
                        "bidirectional_dynamic_rnn_grad", directions=2,
                        input_copies=4, way_out=GRAD_WAY_OUT, gradients=True,
                        held=_reused(workspace, cell, lengths is None, reference))

    def back(a):
        return reverse_sequence(a, lengths, seq_axis, batch_axis)

    fw = _grad(cell_fw, inputs, d_outputs[0], d_states[0], lengths, initial_state_fw,
               time_major, "initial_state_fw", "d_outputs[0]", "d_states[0]", reference,
               workspace)
    d_out_bw = check_float_array(d_outputs[1], "d_outputs[1]")
    if d_out_bw.shape != inputs.shape[:2] + tuple(cell_bw.output_size):
        raise ValueError(f"d_outputs[1]: expected the outputs' shape "
                         f"{list(inputs.shape[:2] + tuple(cell_bw.output_size))}, "
                         f"got {list(d_out_bw.shape)}")
    bw = _grad(cell_bw, back(inputs), back(d_out_bw), d_states[1], lengths, initial_state_bw,
               time_major, "initial_state_bw", "d_outputs[1]", "d_states[1]", reference,
               workspace)
    params_fw, params_bw = fw.params, bw.params
    if cell_fw is cell_bw:  # one set of weights used twice: its gradient is the sum
        params_fw = params_bw = _add(fw.params, bw.params)
    return BidirectionalRNNGradients(fw.inputs + back(bw.inputs), fw.initial_state,
                                     bw.initial_state, params_fw, params_bw)


def _reused(workspace, cell, full_length, reference):
    """The bytes of ``workspace`` a gradient run of ``cell`` will reuse (its type checked
    first): all it holds when the run takes the fast backward, the workspace's only user
    (:func:`refconv.dispatch.choose` decides; every sequence full length), else 0."""
    if workspace is None:
        return 0
    if not isinstance(workspace, fast.Workspace):
        raise TypeError(f"workspace: expected a refconv.fast.Workspace or None, "
                        f"got {type(workspace).__name__}")
    if not (full_length and choose(cell, reference=reference, gradients=True).fast_backward):
        return 0
    return workspace.nbytes


def _grad(cell, inputs, d_outputs, d_state, sequence_length, initial_state, time_major,
          state_argument, d_outputs_argument, d_state_argument, reference, workspace=None):
    inputs, x_bt, params, lengths, state = _start(
        cell, inputs, sequence_length, initial_state, None, time_major, state_argument,
        dict(what="dynamic_rnn_grad", input_copies=1, way_out=GRAD_WAY_OUT,
             gradients=True,
             held=_reused(workspace, cell, sequence_length is None, reference)))
    batch, steps = x_bt.shape[:2]
    d_outputs = check_float_array(d_outputs, d_outputs_argument)
    expected = inputs.shape[:2] + tuple(cell.output_size)
    if d_outputs.shape != expected:
        raise ValueError(f"{d_outputs_argument}: expected the outputs' shape {list(expected)}, "
                         f"got {list(d_outputs.shape)}")
    d_out_bt = d_outputs.swapaxes(0, 1) if time_major else d_outputs
    if d_state is None:
        d_state = _zeros_like(state)
    else:
        d_state = cell._check_state(d_state, batch, inputs.dtype, d_state_argument)

    path = choose(cell, reference=reference, gradients=True, lengths=lengths)
    if path.fast_backward:  # the fast path, forward and backward
        d_in_bt, d_state, d_params = fast.grad(cell, params, x_bt, d_out_bt, state, d_state,
                                               workspace=workspace)
        d_inputs = d_in_bt.swapaxes(0, 1) if time_major else d_in_bt
        return RNNGradients(np.ascontiguousarray(d_inputs), d_state, d_params)

    # Forward, keeping what each step's backward needs.
    last = steps if lengths is None else int(lengths.max(initial=0))
    if path.fast_forward:
        kept = fast.record_forward(cell, params, x_bt, lengths, state, last)
    else:
        kept = []
        for t in range(last):
            _, new_state, cache = cell._step(x_bt[:, t], state, params)
            kept.append(cell._slim(cache))
            state = new_state if lengths is None else _select(t < lengths, new_state, state)

    # Backward, last step first.
    d_inputs = np.zeros_like(inputs)
    d_in_bt = d_inputs.swapaxes(0, 1) if time_major else d_inputs
    d_params = _zeros_like(params)
    for t in reversed(range(last)):
        cache = cell._rebuild(kept.pop(), params)
        if lengths is None:
            d_h, d_new = d_out_bt[:, t], d_state
        else:  # rows past their length: no output, and the state went around the step
            alive = t < lengths
            d_h = _select(alive, d_out_bt[:, t], np.zeros_like(d_out_bt[:, t]))
            d_new = _select(alive, d_state, _zeros_like(d_state))
        d_in_bt[:, t], d_prev, d_step_params = cell._step_backward(d_h, d_new, cache, params)
        d_params = _add(d_params, d_step_params)
        d_state = d_prev if lengths is None else _select(alive, d_prev, d_state)
    return RNNGradients(d_inputs, d_state, d_params)


def _zeros_like(tree):
    return tree_map(np.zeros_like, tree)


def _add(a, b):
    """Sum two gradients of the same structure (dicts, lists, tuples of arrays)."""
    return tree_map(operator.add, a, b)
