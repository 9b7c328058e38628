"""Check the hand-written gradients against central finite differences.

For every parameter entry ``p`` (or a random sample of them), every input
entry and every initial-state entry::

    numeric = (L(p + eps) - L(p - eps)) / (2 eps)

with ``L = sum(outputs * d_outputs) + sum(final_state * d_state)`` for random
upstream gradients, and reports, per tensor, the relative error
``|analytic - numeric| / max(|analytic|, |numeric|)`` measured on the whole
tensor (Euclidean norms), which is what a course grades and what a user checks
after changing a cell.

By default it checks the readable backward (:func:`refconv.lstm_step_backward`,
:func:`refconv.gru_step_backward`: what a learner edits); ``fast=True`` checks the
fast path's backward as well, against the same finite differences, and reports
each. The finite differences always run the readable forward.
"""

from typing import NamedTuple

import numpy as np

from ._tree import tree_map
from .bptt import dynamic_rnn_grad
from .checks import check_int, check_real
from .rnn import MultiRNNCell, dynamic_rnn

__all__ = ["gradcheck", "GradcheckReport", "relative_error"]


def relative_error(analytic, numeric):
    """``|a - n| / max(|a|, |n|)`` over whole tensors (0 when both are zero)."""
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


class GradcheckReport(NamedTuple):
    """Relative error per tensor (``inputs``, ``initial_state.c``, ``kernel``, ...).

    ``errors`` are the readable backward's (with ``reference=False``, the default
    path's); ``fast_errors`` the fast path's, when :func:`gradcheck` was asked
    for them (``fast=True``), else None. ``max_error`` and ``passed`` cover both.
    """
    errors: dict               # name -> relative error
    checked: dict              # name -> number of entries checked
    fast_errors: dict = None   # name -> relative error of the fast backward, or None

    @property
    def max_error(self):
        """The largest relative error over every tensor checked (both backwards with fast=True)."""
        return max(max(errors.values()) for errors in self._all())

    def _all(self):
        """The readable backward's errors, and the fast one's when it was checked."""
        return [self.errors] + ([] if self.fast_errors is None else [self.fast_errors])

    def passed(self, tolerance=1e-7):
        """True when every tensor's relative error is below ``tolerance``."""
        return self.max_error < tolerance

    def __str__(self):
        width = max(len(name) for name in self.errors)
        fast = self.fast_errors is not None
        lines = [f"{'tensor':<{width}}  entries  relative error" + ("  fast path" if fast else "")]
        for name, err in self.errors.items():
            lines.append(f"{name:<{width}}  {self.checked[name]:>7}  {err:14.2e}"
                         + (f"  {self.fast_errors[name]:9.2e}" if fast else ""))
        lines.append(f"worst: {self.max_error:.2e}")
        return "\n".join(lines)


def gradcheck(cell, inputs, *, sequence_length=None, initial_state=None, time_major=False,
              d_outputs=None, d_state=None, eps=1e-6, max_entries=None, seed=0,
              reference=True, fast=False):
    """Compare :func:`dynamic_rnn_grad` with central differences of :func:`dynamic_rnn`.

    Args:
        cell, inputs, sequence_length, initial_state, time_major: as :func:`dynamic_rnn`
            (the cell must be built or is built on the first call; float64 inputs
            are what finite differences need).
        d_outputs, d_state: upstream gradients; random (from ``seed``) when None.
        eps: the finite-difference step.
        max_entries: check at most this many entries per tensor, chosen at random
            (from ``seed``); None checks every entry.
        seed: for the upstream gradients, a random initial state when none is
            given, and the sampled entries.
        reference: check the readable backward (the default); False checks the
            backward :func:`dynamic_rnn_grad` runs by default (the fast path where
            it covers the run, :func:`refconv.dispatch.choose`).
        fast: also check the fast path's backward, reported as ``fast_errors``.

    Returns:
        :class:`GradcheckReport`.
    """
    eps = check_real(eps, "eps", positive=True)
    if max_entries is not None:
        max_entries = check_int(max_entries, "max_entries")
    rng = np.random.default_rng(seed)
    inputs = np.array(inputs, dtype=float)  # a copy that this function perturbs
    outputs, final_state = dynamic_rnn(cell, inputs, sequence_length, initial_state,
                                       time_major=time_major, reference=True)
    if initial_state is None:
        initial_state = tree_map(lambda a: rng.standard_normal(a.shape), final_state)
    initial_state = tree_map(np.array, initial_state)  # copies, also perturbed here
    if d_outputs is None:
        d_outputs = rng.standard_normal(outputs.shape)
    if d_state is None:
        d_state = tree_map(lambda a: rng.standard_normal(a.shape), final_state)

    def loss():
        out, state = dynamic_rnn(cell, inputs, sequence_length, initial_state,
                                 time_major=time_major, reference=True)
        return float((out * d_outputs).sum()
                     + sum((a * b).sum() for a, b in zip(_leaves(state), _leaves(d_state))))

    def analytic(use_reference):
        return dynamic_rnn_grad(cell, inputs, d_outputs, d_state, sequence_length=sequence_length,
                                initial_state=initial_state, time_major=time_major,
                                reference=use_reference)

    grads = analytic(bool(reference))
    fast_grads = None if not fast else (grads if not reference else analytic(False))
    layers = cell.cells if isinstance(cell, MultiRNNCell) else [cell]
    for layer in layers:
        for name in layer.params:  # perturbed in place below, through a flat view
            layer.params[name] = np.ascontiguousarray(layer.params[name], dtype=float)
    tensors = _tensors(cell, inputs, initial_state, grads)
    fast_tensors = None if fast_grads is None else _tensors(cell, inputs, initial_state, fast_grads)

    errors, checked, fast_errors = {}, {}, None if fast_grads is None else {}
    for j, (name, value, analytic_grad) in enumerate(tensors):
        if value.size == 0:
            continue
        flat = value.reshape(-1)  # a view: perturbing it perturbs what the cell reads
        index = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            index = np.sort(rng.choice(flat.size, max_entries, replace=False))
        numeric = np.empty(index.size)
        for n, i in enumerate(index):
            old = flat[i]
            flat[i] = old + eps
            plus = loss()
            flat[i] = old - eps
            minus = loss()
            flat[i] = old
            numeric[n] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(analytic_grad.reshape(-1)[index], numeric)
        if fast_tensors is not None:
            fast_errors[name] = relative_error(fast_tensors[j][2].reshape(-1)[index], numeric)
        checked[name] = index.size
    return GradcheckReport(errors, checked, fast_errors)


def _tensors(cell, inputs, initial_state, grads):
    """``(name, value, gradient)`` for the inputs, every initial-state leaf and every parameter."""
    tensors = [("inputs", inputs, grads.inputs)]
    tensors += [(f"initial_state{name}", value, grad) for (name, value), (_, grad)
                in zip(_named_leaves(initial_state), _named_leaves(grads.initial_state))]
    stack = isinstance(cell, MultiRNNCell)
    layers = cell.cells if stack else [cell]
    layer_grads = list(grads.params) if stack else [grads.params]
    if len(layer_grads) != len(layers):  # zip would drop a layer's check without a word
        raise AssertionError(f"dynamic_rnn_grad returned parameter gradients for "
                             f"{len(layer_grads)} layers of a {len(layers)}-layer stack")
    for i, (layer, g) in enumerate(zip(layers, layer_grads)):
        prefix = f"layer{i}/" if stack else ""
        tensors += [(prefix + name, layer.params[name], g[name]) for name in layer.params]
    return tensors


def _leaves(state):
    return [leaf for _, leaf in _named_leaves(state)]


def _named_leaves(state, name=""):
    """``(".c", c), (".h", h)`` for an LSTM state; ``("[0].c", ...)`` in a stack."""
    if isinstance(state, tuple):
        if hasattr(state, "_fields"):
            return [item for field, s in zip(state._fields, state)
                    for item in _named_leaves(s, f"{name}.{field}")]
        return [item for i, s in enumerate(state) for item in _named_leaves(s, f"{name}[{i}]")]
    return [(name, state)]
