"""Hold one deployed run against refconv: per output and state, per gate and step.

A runtime (ONNX Runtime, a TFLite interpreter) ran a model on ``inputs`` and
returned what its graph exposes: the outputs, the final state, and, where the
graph was instrumented, each step's gates. refconv runs the same weights
(imported by :mod:`refconv.interop`) on the same inputs in float64 and
:func:`refconv.compare` measures the difference. The result is one
:class:`~refconv.conformance.report.Row`: the worst error of each quantity,
the first layer, gate and step outside the tolerance, and a verdict that
names a silent truncation (fewer steps back than were fed) as what it is.

Imports only NumPy and refconv: the adapters that run a framework hand their
arrays in.
"""

import numpy as np

from ..compare import compare
from ..rnn import MultiRNNCell, dynamic_rnn
from ..vocabulary import LSTM_QUANTITIES
from .report import FAILED, OK, TRUNCATED, Row

__all__ = ["reference", "check", "Candidate"]

# The quantities of the model's own outputs, in the order the table shows them.
MODEL_KEYS = ("outputs", "h", "c")


class Candidate(dict):
    """What a runtime returned, by name (a dict; every array batch-major, time second).

    * ``"outputs"``: the top layer's outputs ``[B, T', *frame]``; ``T'`` is what the
      runtime returned, which may differ from the ``T`` it was fed;
    * ``"h"``, ``"c"``: the top layer's final state, one frame ``[B, *frame]``;
    * ``"layer{L}/{name}"`` for name in z, z_i, z_f, z_o, c, h: layer L's per-step
      values ``[B, T', *frame]``, where the graph exposes them.

    ``first_step``: for a per-step key whose first steps the graph does not
    compute (a converter folds ``z_f * c`` away at step 0, where c is zero),
    the step its array starts at; compared from there.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_step = {}


def reference(cell, inputs):
    """refconv's float64 run: ``{"outputs", "h", "c", "layer{L}/{name}" ...}`` (as Candidate).

    Args:
        cell: a ConvLSTMCell or MultiRNNCell (from an importer in :mod:`refconv.interop`).
        inputs: ``[B, T, *frame]`` in the cell's data format; cast to float64.
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    outputs, state, gates = dynamic_rnn(cell, inputs, return_gates=True)
    if not isinstance(cell, MultiRNNCell):
        state, gates = (state,), [gates]
    arrays = {"outputs": outputs, "h": state[-1].h, "c": state[-1].c}
    for layer, quantities in enumerate(gates):
        for name in LSTM_QUANTITIES:
            arrays[f"layer{layer}/{name}"] = quantities[name]
    return arrays


def check(cell, inputs, candidate, *, rtol, atol, runtime, exporter, options, dtype,
          t_export, note=""):
    """Compare ``candidate`` (a runtime's run of ``inputs``) with refconv's run of ``cell``.

    Args:
        cell: the refconv cell holding the deployed model's weights.
        inputs: ``[B, T, *frame]``, what the runtime was fed.
        candidate: a :class:`Candidate` (or a dict of the same keys).
        rtol, atol: the tolerance, as :func:`refconv.compare`.
        runtime, exporter, options, dtype, t_export: what the table's row says ran.
        note: a remark for the row.

    Returns:
        A :class:`Row`. Its ``status`` is ``"TRUNCATED"`` when the runtime returned
        fewer steps than it was fed without raising an error
        (the steps it did return are still compared, and the final state against
        refconv's after all ``T`` steps), ``"FAILED"`` when a quantity is outside
        the tolerance or more steps came back than were fed, else ``"ok"``.
    """
    steps = np.shape(inputs)[1]
    if "outputs" not in candidate:
        raise ValueError(f"candidate: expected the key 'outputs', got {sorted(candidate)}")
    ref = reference(cell, inputs)
    returned = np.shape(candidate["outputs"])[1]
    shared = min(steps, returned)

    def cut(key, a):  # the time axis of per-step arrays, to the steps both sides have
        return a if key in ("h", "c") else a[:, :shared]

    model_keys = [k for k in MODEL_KEYS if k in candidate]
    comparisons = [_relabel(compare({k: cut(k, ref[k]) for k in model_keys},
                                    {k: cut(k, np.asarray(candidate[k])) for k in model_keys},
                                    rtol=rtol, atol=atol), "model")]
    layers = sorted({key.split("/")[0] for key in candidate if key.startswith("layer")},
                    key=lambda name: int(name[len("layer"):]))
    starts = getattr(candidate, "first_step", {})
    for layer in layers:
        names = [name for name in LSTM_QUANTITIES if f"{layer}/{name}" in candidate]
        # "gates/NAME" is what refconv.compare reports per step and ranks by gate.
        for start in sorted({starts.get(f"{layer}/{name}", 0) for name in names}):
            chosen = [n for n in names if starts.get(f"{layer}/{n}", 0) == start]
            comparison = _relabel(compare(
                {f"gates/{n}": ref[f"{layer}/{n}"][:, start:shared] for n in chosen},
                {f"gates/{n}": np.asarray(candidate[f"{layer}/{n}"])[:, :shared - start]
                 for n in chosen}, rtol=rtol, atol=atol), layer)
            comparisons.append(_shift(comparison, start))
    tensors = [t for c in comparisons for t in c.tensors]
    if not tensors:
        raise ValueError("candidate: no quantity to compare (a comparison of nothing is no "
                         "evidence); expected 'outputs' with at least one step")

    errors = {}
    for t in tensors:
        name = t.key.split("/")[-1]
        errors[name] = max(errors.get(name, 0.0), t.max_rel)
    where = _first_failure(tensors, len(layers))
    if returned < steps:
        status = TRUNCATED
        note = "; ".join(filter(None, [f"fed T={steps}, returned {returned} steps without an "
                                       f"error", note]))
    elif returned > steps:
        status = FAILED
        note = "; ".join(filter(None, [f"fed T={steps}, returned {returned} steps", note]))
    else:
        status = FAILED if where is not None else OK
    return Row(runtime=runtime, exporter=exporter, options=options, dtype=dtype,
               t_export=t_export, t_run=steps, status=status, errors=errors,
               first_failure=where, note=note)


def _shift(comparison, start):
    """Per-step results of arrays that begin at step ``start``, renumbered from step 0."""
    if not start:
        return comparison
    return comparison._replace(tensors=[
        t._replace(per_step=((None, None, True),) * start + tuple(t.per_step),
                   first_bad_step=None if t.first_bad_step is None else t.first_bad_step + start)
        for t in comparison.tensors])


def _relabel(comparison, case):
    """A comparison of dicts names its one case "case": name it after the layer instead."""
    return comparison._replace(tensors=[t._replace(case=case) for t in comparison.tensors],
                               missing=[(case, key) for _, key in comparison.missing])


def _first_failure(tensors, n_layers):
    """``"layer0 z_f t=4"``: the failing quantity to look at first, or None.

    The earliest step first; within a step the lowest layer (an error in layer
    0 reaches layer 1 in the same step), and within a layer the quantity
    computed first (``LSTM_QUANTITIES``: z, z_i, z_f, c, z_o, h). The model's own
    outputs are the top layer's h, so they rank after every layer; its final
    state, which has no step, after everything with one.
    """
    failed = [t for t in tensors if not t.passed]
    if not failed:
        return None

    def order(t):
        step = t.first_bad_step if t.first_bad_step is not None else float("inf")
        layer = n_layers if t.case == "model" else int(t.case[len("layer"):])
        name = t.key.split("/")[-1]
        rank = LSTM_QUANTITIES.index(name) if name in LSTM_QUANTITIES else len(LSTM_QUANTITIES)
        return step, layer, rank
    return _where(min(failed, key=order))


def _where(tensor):
    """``"layer0 z_f t=4"``: the first failure's layer (or the model's outputs), quantity, step;
    ``"final h"`` for the model's final state."""
    name = tensor.key.split("/")[-1]
    if tensor.case == "model" and name in ("h", "c"):
        return f"final {name}"
    place = "" if tensor.case == "model" else f"{tensor.case} "
    step = "" if tensor.first_bad_step is None else f" t={tensor.first_bad_step}"
    return f"{place}{name}{step}"
