"""Exercises for learners, each with a checker that says where a solution goes wrong.

Write one step of a cell yourself, hand the function to a checker, and it tells
you **which gate**, at **which time step**, first differs from refconv, and by
how much::

    import numpy as np
    from refconv import conv_nd, layer_norm, sigmoid
    from refconv.exercises import check_lstm_step

    def my_step(x, c, h, params, peephole, normalize, forget_bias):
        ...                                    # the equations of one ConvLSTM step
        return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}

    report = check_lstm_step(my_step)
    print(report)          # every case, and for a failing one a table of errors
    assert report.passed

How the checker works, and why it can point at one gate:

* It runs your function and the reference side by side over a short seeded
  video (``refconv.data.moving_shapes`` plus a little noise) from a random,
  seeded initial state, so that a mistake involving the old ``c`` or ``h``
  shows from the very first step.
* At every step both get the *reference* state (teacher forcing): a mistake at
  step 0 does not spread into the inputs of step 1, and each step is judged on
  its own.
* Within a step the gates are compared in the order the step computes them
  (LSTM: z, z_i, z_f, c, z_o, h; GRU: r, u, candidate, h). The first one that
  differs is where the bug is; those after it may be wrong only because of it.
* Every parameter is random, layer norm's gamma and beta and the biases
  included (their initial values 1 and 0 would hide a missing gamma, beta or
  bias), and the frames are not square (a swapped axis shows).
* It runs several cases, from the plain cell to all options on (LSTM:
  peephole and layer norm off and on), and reports each, so "passes without
  peepholes, fails with them" points at the peephole lines.
* The backward checker gives every step random, non-zero upstream gradients
  ``d_h`` and ``d_c`` (each step is judged on its own, as in the forward) and
  compares the gradients in the order a backward step computes them: the
  first that differs is where the bug is.

The backward step (notebook 5) is checked the same way, gradient by gradient::

    from refconv import conv_nd_backward, layer_norm_backward
    from refconv.exercises import check_lstm_step_backward

    def my_step_backward(d_h, d_c, cache, params, peephole, normalize, forget_bias):
        ...                                    # lstm_step's lines undone, last first
        return {"d_z_o": ..., "d_c": ..., ..., "d_x": d_x, "d_c_prev": d_c_prev,
                "d_h_prev": d_h_prev, "d_kernel": ..., "d_W_ci": ..., "d_z/gamma": ...}

    report = check_lstm_step_backward(my_step_backward)
    assert report.passed

``d_h`` and ``d_c`` are the gradients of the loss with respect to the step's
new ``h`` (all of it: the output's and the next step's, already added) and new
``c``; ``cache`` is a dict of what the forward step computed, named as
:class:`refconv.LSTMCache` (``x``, ``c_prev``, ``h_prev``, ``y``, ``z_in``,
``z_i_in``, ``z_f_in``, ``z_o_in``, ``z_hat``, ... ``z``, ``z_i``, ``z_f``,
``z_o``, ``c_in``, ``c``, ``h``). ``d_name`` is the gradient with respect to
the cache's ``name``; the dict must hold, in the order a backward step
computes them (:data:`LSTM_BACKWARD_ORDER`):

* ``d_z_o`` (the output gate, after its sigmoid), ``d_c`` (the new ``c``,
  through ``h`` and the next step only), ``d_z_o_in`` (``z_o`` before its layer
  norm and sigmoid), ``d_c_in`` (``c`` before its layer norm, through every
  path: its layer norm and ``z_o``'s peephole);
* ``d_z_f``, ``d_z_i``, ``d_z`` (after their activations), then ``d_z_f_in``,
  ``d_z_i_in``, ``d_z_in`` (before layer norm and activation: the four ``*_in``
  are the blocks of ``d_y``);
* ``d_c_prev``, ``d_x``, ``d_h_prev``: the step's inputs;
* ``"d_" + name`` for every parameter in ``params``, in its order (``d_kernel``,
  ``d_bias``, ``d_W_ci``, ``d_W_cf``, ``d_W_co``, ``d_z/gamma``, ``d_z/beta``,
  ... ``d_c/beta``), shaped like the parameter (a peephole weight's gradient is
  summed over the batch).

Without layer norm a ``*_in`` is the same array as its ``*_hat``, and
``d_c_in`` is ``d_c`` plus the peephole's path.

A checker returns a :class:`Report`: ``print`` it (or let Jupyter show it),
test ``report.passed``, or read ``report.gate``, ``report.step``,
``report.error`` and ``report.options`` of the first difference.

Adding an exercise (the backward step of notebook 5, say): write a function
that yields, step by step, the reference's named arrays and a thunk calling
the student's function (see :func:`_lstm_steps`), give the names in the order
they are computed, and pass both to :func:`_run_case`; :class:`Report` and the
printing come for free.
"""

import math
import traceback
from dataclasses import dataclass, field

import numpy as np

from .data import moving_shapes
from .gru import ConvGRUCell, gru_step
from .layer_norm import layer_norm_backward
from .lstm import ConvLSTMCell, LSTMStateTuple, lstm_step, lstm_step_backward

__all__ = ["check_lstm_step", "check_gru_step", "check_lstm_step_backward", "Report",
           "CaseResult", "Mismatch", "LSTM_ORDER", "GRU_ORDER", "LSTM_BACKWARD_ORDER"]

# The order one step computes its quantities in: the first that differs is the culprit.
LSTM_ORDER = ("z", "z_i", "z_f", "c", "z_o", "h")
GRU_ORDER = ("r", "u", "candidate", "h")
# The backward step's gradients, in the order it computes them; then "d_" + each parameter.
LSTM_BACKWARD_ORDER = ("d_z_o", "d_c", "d_z_o_in", "d_c_in", "d_z_f", "d_z_i", "d_z",
                       "d_z_f_in", "d_z_i_in", "d_z_in", "d_c_prev", "d_x", "d_h_prev")

LSTM_CASES = (
    {"peephole": False, "normalize": False, "forget_bias": 1.0},
    {"peephole": True, "normalize": False, "forget_bias": 1.0},
    {"peephole": False, "normalize": True, "forget_bias": 1.0},
    {"peephole": True, "normalize": True, "forget_bias": 1.0},
)
GRU_CASES = ({"normalize": False}, {"normalize": True})

HINTS = {
    "z": "z = tanh(block 0 of conv(concat([x, h]), kernel)): concat x first, then h; "
         "split the 4F channels in the order z, z_i, z_f, z_o; + bias[block 0] without "
         "normalize, LN with z/gamma, z/beta with normalize (no bias then).",
    "z_i": "z_i = sigmoid(block 1 (+ W_ci * the OLD c with peephole), then LN with "
           "z_i/gamma, z_i/beta when normalize).",
    "z_f": "z_f = sigmoid(block 2 (+ W_cf * the OLD c with peephole), LN when normalize, "
           "and + forget_bias last, just before the sigmoid).",
    "c": "c_new = c * z_f + z_i * z (z after its tanh); with normalize the state is "
         "LN(c_new) with c/gamma, c/beta.",
    "z_o": "z_o = sigmoid(block 3 (+ W_co * the NEW c, before its layer norm, with "
           "peephole), LN when normalize).",
    "h": "h = z_o * tanh(c_new), with the new c after its layer norm when normalize.",
    "r": "r = sigmoid(block 0 of conv(concat([x, h]), gates/kernel) (+ gates/bias[:F]), "
         "LN with r/gamma, r/beta when normalize).",
    "u": "u = sigmoid(block 1 of the same convolution (+ gates/bias[F:]), LN with "
         "u/gamma, u/beta when normalize).",
    "candidate": "candidate = tanh(conv(concat([x, r * h]), candidate/kernel) "
                 "(+ candidate/bias), LN when normalize): r multiplies h BEFORE the "
                 "convolution.",
}
HINTS["h_gru"] = "h = u * h_old + (1 - u) * candidate: u keeps the OLD h."

# The backward step: each gradient from the line of the forward it undoes.
HINTS.update({
    "d_z_o": "h = z_o * tanh(c), so d_z_o = d_h * tanh(c), with c the new (normalised) state.",
    "d_c": "d_c = the d_c you were given (from the next step) + d_h * z_o * (1 - tanh(c)**2): "
           "h reads c through tanh, whose derivative is 1 - tanh**2.",
    "d_z_o_in": "back through the sigmoid, d_z_o * z_o * (1 - z_o); then, with normalize, "
                "through LN: layer_norm_backward(cache['z_o_in'], params['z_o/gamma'], ...)[0].",
    "d_c_in": "with normalize, d_c back through LN(c): layer_norm_backward(cache['c_in'], "
              "params['c/gamma'], d_c)[0] (d_c itself without); with peephole add "
              "d_z_o_in * W_co, since z_o's peephole reads c_in.",
    "d_z_f": "c_in = c_prev * z_f + z_i * z, so d_z_f = d_c_in * c_prev.",
    "d_z_i": "c_in = c_prev * z_f + z_i * z, so d_z_i = d_c_in * z (z after its tanh).",
    "d_z": "c_in = c_prev * z_f + z_i * z, so d_z = d_c_in * z_i.",
    "d_z_f_in": "back through the sigmoid, d_z_f * z_f * (1 - z_f) (forget_bias is a constant: "
                "nothing to do for it), then with normalize layer_norm_backward on "
                "cache['z_f_in'] with params['z_f/gamma'].",
    "d_z_i_in": "back through the sigmoid, d_z_i * z_i * (1 - z_i), then with normalize "
                "layer_norm_backward on cache['z_i_in'] with params['z_i/gamma'].",
    "d_z_in": "back through tanh, d_z * (1 - z**2), then with normalize layer_norm_backward "
              "on cache['z_in'] with params['z/gamma'].",
    "d_c_prev": "d_c_prev = d_c_in * z_f (the forget gate's path: the memory's highway "
                "through time), + d_z_i_in * W_ci + d_z_f_in * W_cf with peephole.",
    "d_x": "d_y = concat([d_z_in, d_z_i_in, d_z_f_in, d_z_o_in]) on the channel axis (the "
           "forward's split order); d_xh, d_kernel = conv_nd_backward(concat([x, h_prev]), "
           "kernel, d_y); d_x is d_xh's first C channels.",
    "d_h_prev": "d_h_prev is the last F channels of d_xh from conv_nd_backward (x comes "
                "first in the concat).",
    "d_kernel": "d_kernel is the second result of conv_nd_backward(concat([x, h_prev]), "
                "kernel, d_y), with d_y = concat([d_z_in, d_z_i_in, d_z_f_in, d_z_o_in]).",
    "d_bias": "y = conv(...) + bias: d_bias = d_y summed over the batch and every pixel (4F values).",
    "d_W_ci": "z_i_in = block 1 + W_ci * c_prev: d_W_ci = (d_z_i_in * c_prev) summed over the "
              "batch (one weight per pixel and channel, shared by every sample).",
    "d_W_cf": "z_f_in = block 2 + W_cf * c_prev: d_W_cf = (d_z_f_in * c_prev) summed over the batch.",
    "d_W_co": "z_o_in = block 3 + W_co * c_in: d_W_co = (d_z_o_in * c_in) summed over the "
              "batch, with c_in the new c BEFORE its layer norm.",
    "d_/gamma": "d_gamma and d_beta of a layer norm are the 2nd and 3rd results of "
                "layer_norm_backward(its input, its gamma, the gradient of its output).",
})

# What the index of a gradient's largest error counts (other quantities: [batch, *position, channel]).
INDEX_LABELS = {
    "d_kernel": "[*kernel offset, in channel, out channel]",
    "d_bias": "[channel of y]",
    "d_W_ci": "[*position, channel]", "d_W_cf": "[*position, channel]",
    "d_W_co": "[*position, channel]",
    "d_/gamma": "[channel]",
}


def _hint(name, gru):
    if name == "h" and gru:
        return HINTS["h_gru"]
    if name.startswith("d_") and name.endswith(("/gamma", "/beta")):
        return HINTS["d_/gamma"]
    return HINTS.get(name)


def _index_label(name):
    if name.startswith("d_") and name.endswith(("/gamma", "/beta")):
        return INDEX_LABELS["d_/gamma"]
    return INDEX_LABELS.get(name, "[batch, *position, channel]")


@dataclass(frozen=True)
class Mismatch:
    """Where a case first went wrong.

    Attributes:
        step: the time step (0-based).
        name: the gate, or None when the function raised.
        error: ``max |yours - reference|`` (``inf`` for a missing gate, a wrong
            shape or an exception; ``nan`` values count as infinitely wrong).
        index: where that largest difference is (a tuple of ints), or None.
        yours, reference: the two values there, or None.
        count, size: how many values differ beyond the tolerance, out of how many.
        problem: a sentence when the gate could not be compared at all
            (missing, wrong shape, not an array, an exception), else None.
    """
    step: int
    name: object
    error: float
    index: object = None
    yours: object = None
    reference: object = None
    count: int = 0
    size: int = 0
    problem: object = None


@dataclass
class CaseResult:
    """One case (one set of options) of a check.

    Attributes:
        options: the keyword arguments the student's function got.
        names: the compared quantities, in the order a step computes them.
        errors: ``[len(names), steps]`` array of ``max |yours - reference|``
            (``nan`` where nothing was compared: after an exception).
        first: the first :class:`Mismatch` (earliest step, then earliest name),
            or None when everything agreed.
    """
    options: dict
    names: tuple
    errors: np.ndarray
    first: object = None
    wrong_at_first_step: list = field(default_factory=list)

    @property
    def passed(self):
        """True when this case agreed with the reference everywhere."""
        return self.first is None


class Report:
    """What a checker found: one :class:`CaseResult` per case.

    ``report.passed`` is True when every case agreed with the reference.
    ``report.gate``, ``.step``, ``.error``, ``.options`` and ``.mismatch``
    describe the first difference of the first failing case (all None when
    passed). ``str(report)`` (or Jupyter's display) gives the readable report.
    """

    def __init__(self, title, function_name, cases, rtol, atol, hints=True):
        self.title = title
        self.function_name = function_name
        self.cases = list(cases)
        self.rtol, self.atol = rtol, atol
        self.hints = hints

    @property
    def passed(self):
        return all(case.passed for case in self.cases)

    @property
    def failed_case(self):
        """The first failing :class:`CaseResult`, or None."""
        return next((case for case in self.cases if not case.passed), None)

    @property
    def mismatch(self):
        case = self.failed_case
        return None if case is None else case.first

    @property
    def gate(self):
        return None if self.mismatch is None else self.mismatch.name

    @property
    def step(self):
        return None if self.mismatch is None else self.mismatch.step

    @property
    def error(self):
        return None if self.mismatch is None else self.mismatch.error

    @property
    def options(self):
        case = self.failed_case
        return None if case is None else case.options

    def __str__(self):
        lines = []
        steps = self.cases[0].errors.shape[1] if self.cases else 0
        if self.passed:
            lines.append(f"{self.title}({self.function_name}): PASSED: all {len(self.cases)} "
                         f"cases agree with refconv at every one of {steps} time steps "
                         f"(rtol {self.rtol:g}, atol {self.atol:g}).")
        else:
            m = self.mismatch
            where = ("raised an exception" if m.name is None
                     else f"{m.name} differs first, max |yours - reference| = {_num(m.error)}")
            lines.append(f"{self.title}({self.function_name}): FAILED: with "
                         f"{_options(self.options)}, at time step {m.step}: {where}.")
        raised = {}   # an exception's text -> the first case that raised it
        for number, case in enumerate(self.cases, start=1):
            m = case.first
            same = m is not None and m.name is None and m.problem in raised
            status = ("passed" if m is None else
                      f"FAILED: raised as in case {raised[m.problem]}" if same else "FAILED")
            lines.append(f"  case {number}: {_options(case.options)}: {status}")
            if m is not None and not same:
                lines.extend("    " + line for line in self._explain(case))
            if m is not None and m.name is None:
                raised.setdefault(m.problem, number)
        return "\n".join(lines)

    def _explain(self, case):
        m = case.first
        if m.name is None:
            return [f"at time step {m.step} your function raised:", *m.problem.splitlines()]
        lines = [f"first difference: {m.name} at time step {m.step}"]
        if m.problem:
            lines.append(f"  {m.problem}")
        else:
            index = ", ".join(map(str, m.index))
            lines.append(f"  max |yours - reference| = {_num(m.error)} at {_index_label(m.name)} "
                         f"= [{index}] "
                         f"(yours {_num(m.yours)}, reference {_num(m.reference)}); "
                         f"{m.count} of {m.size} values differ")
        before = list(case.names[:case.names.index(m.name)])
        if before:
            lines.append(f"  right before it at that step: {', '.join(before)}")
        after = [n for n in case.wrong_at_first_step if n != m.name]
        if after:
            shown = after if len(after) <= 8 else after[:6] + [f"and {len(after) - 6} more"]
            lines.append(f"  also wrong at that step (maybe only because of {m.name}): "
                         f"{', '.join(shown)}")
        if self.hints:
            hint = _hint(m.name, gru="r" in case.names)
            if hint:
                lines.append(f"  hint: {hint}")
        lines.append("max |yours - reference| per quantity and time step:")
        width = max(10, max(len(name) + 1 for name in case.names))
        lines.append("  " + " " * width + "".join(f"{f't={t}':>9}" for t in
                                                  range(case.errors.shape[1])))
        for name, row in zip(case.names, case.errors):
            cells = "".join(f"{_cell(e):>9}" for e in row)
            lines.append(f"  {name:<{width}}{cells}")
        return lines

    def __repr__(self):
        if self.passed:
            return f"<Report {self.title}: PASSED>"
        return f"<Report {self.title}: FAILED, {self.gate} at time step {self.step}>"

    def _repr_pretty_(self, printer, cycle):  # Jupyter shows the whole report
        printer.text(str(self))


def check_lstm_step(student_fn, cases=None, *, shape=(9, 8), channels=2, filters=3,
                    kernel=(3, 3), batch_size=2, timesteps=4, seed=0, rtol=1e-6, atol=1e-8,
                    hints=True):
    """Check a learner's ConvLSTM step (channels_last) against refconv, gate by gate.

    The function is called once per time step and case as::

        student_fn(x, c, h, params, peephole=..., normalize=..., forget_bias=...)

    with ``x`` ``[B, *shape, C]``, ``c`` and ``h`` ``[B, *shape, F]`` (the
    reference's state before the step), and ``params`` a dict of NumPy arrays
    named as ``ConvLSTMCell.params`` (``kernel``, ``bias`` without normalize,
    ``W_ci``/``W_cf``/``W_co`` with peephole, ``z/gamma``, ``z/beta``, ...
    ``c/beta`` with normalize). The activation is tanh. It must return a dict
    with ``z`` (after its tanh), ``z_i``, ``z_f``, ``z_o`` (after their
    sigmoids), ``c`` (the new cell state, layer-normalised when normalize) and
    ``h``; extra keys are ignored. The arrays it gets are copies.

    Args:
        student_fn: the function to check.
        cases: a dict of options or a list of them (an option left out is
            the cell's default: peephole and normalize on, forget_bias 1);
            default all four combinations of peephole and normalize.
        shape, channels, filters, kernel, batch_size, timesteps, seed: the run.
        rtol, atol: a value agrees when ``|yours - ref| <= atol + rtol * |ref|``.
        hints: end a failing case with a reminder of the failing gate's equation.

    Returns:
        A :class:`Report`.
    """
    cases = _cases(cases, LSTM_CASES, {"peephole", "normalize", "forget_bias"})
    results = []
    for number, options in enumerate(cases):
        steps = _lstm_steps(student_fn, options, shape, channels, filters, kernel,
                            batch_size, timesteps, seed + number)
        results.append(_run_case(steps, LSTM_ORDER, options, timesteps, rtol, atol))
    return Report("check_lstm_step", _name(student_fn), results, rtol, atol, hints)


def check_gru_step(student_fn, cases=None, *, shape=(9, 8), channels=2, filters=3,
                   kernel=(3, 3), batch_size=2, timesteps=4, seed=0, rtol=1e-6, atol=1e-8,
                   hints=True):
    """Check a learner's ConvGRU step (channels_last) against refconv, gate by gate.

    Called as ``student_fn(x, h, params, normalize=...)`` with ``params`` named as
    ``ConvGRUCell.params`` (``gates/kernel``, ``candidate/kernel``, and
    ``gates/bias``, ``candidate/bias`` or ``r/``, ``u/``, ``candidate/``
    ``gamma``/``beta``); the activation is tanh. It must return a dict with
    ``r``, ``u`` (after their sigmoids), ``candidate`` (after its tanh) and ``h``.

    Other arguments and the result as :func:`check_lstm_step`; the default
    cases are normalize off and on.
    """
    cases = _cases(cases, GRU_CASES, {"normalize"})
    results = []
    for number, options in enumerate(cases):
        steps = _gru_steps(student_fn, options, shape, channels, filters, kernel,
                           batch_size, timesteps, seed + number)
        results.append(_run_case(steps, GRU_ORDER, options, timesteps, rtol, atol))
    return Report("check_gru_step", _name(student_fn), results, rtol, atol, hints)


def check_lstm_step_backward(student_fn, cases=None, *, shape=(9, 8), channels=2, filters=3,
                             kernel=(3, 3), batch_size=2, timesteps=4, seed=0, rtol=1e-6,
                             atol=1e-8, hints=True):
    """Check a learner's backward ConvLSTM step (channels_last) against refconv, gradient by gradient.

    The function is called once per time step and case as::

        student_fn(d_h, d_c, cache, params, peephole=..., normalize=..., forget_bias=...)

    with ``d_h`` and ``d_c`` ``[B, *shape, F]``, random upstream gradients with
    respect to the step's new ``h`` (output and next step together) and new
    ``c``; ``cache`` a dict of the reference forward step's arrays, named as
    :class:`refconv.LSTMCache` (``x`` ``[B, *shape, C]``; ``y`` with 4F
    channels; every other entry ``[B, *shape, F]``); and ``params`` as in
    :func:`check_lstm_step`. The activation is tanh, the gates' sigmoid.
    It must return a dict with the names of :data:`LSTM_BACKWARD_ORDER` (each
    shaped like the quantity it is the gradient of; see the module's
    docstring for what each one is) and ``"d_" + name`` for every parameter;
    extra keys are ignored. The arrays it gets are copies.

    Other arguments as :func:`check_lstm_step`. The report names the first
    gradient, in backward order, that differs from refconv's, at which step
    and case, and by how much.

    Returns:
        A :class:`Report`.
    """
    cases = _cases(cases, LSTM_CASES, {"peephole", "normalize", "forget_bias"})
    results = []
    for number, options in enumerate(cases):
        names, steps = _lstm_backward_steps(student_fn, options, shape, channels, filters,
                                            kernel, batch_size, timesteps, seed + number)
        results.append(_run_case(steps, names, options, timesteps, rtol, atol,
                                 what="gradients"))
    return Report("check_lstm_step_backward", _name(student_fn), results, rtol, atol, hints)


# ------------------------------------------------------------------ the runs

def _video_and_rng(shape, channels, batch_size, timesteps, seed):
    rng = np.random.default_rng(seed)
    video = moving_shapes(batch_size=batch_size, timesteps=timesteps, shape=tuple(shape),
                          channels=channels, seed=seed)
    return video + 0.1 * rng.standard_normal(video.shape), rng


def _randomise(params, rng):
    """Make every gamma, beta and bias random: their initial 1s and 0s hide mistakes."""
    for name, value in params.items():
        if name.endswith("/gamma"):
            params[name] = rng.uniform(0.5, 1.5, value.shape)
        elif name.endswith("/beta") or name.endswith("bias"):
            params[name] = rng.normal(0.0, 0.5, value.shape)
        elif name.startswith("W_c"):
            params[name] = rng.normal(0.0, 0.5, value.shape)
    return params


def _lstm_run(options, shape, channels, filters, kernel, batch_size, timesteps, seed):
    """A seeded video, a cell with random parameters, a random state, and the rng after them."""
    video, rng = _video_and_rng(shape, channels, batch_size, timesteps, seed)
    cell = ConvLSTMCell(list(shape), filters, list(kernel), forget_bias=options["forget_bias"],
                        normalize=options["normalize"], peephole=options["peephole"])
    cell.build(channels, seed=seed)
    params = _randomise(dict(cell.params), rng)
    state_shape = (batch_size, *shape, filters)
    state = LSTMStateTuple(rng.standard_normal(state_shape),
                           np.tanh(rng.standard_normal(state_shape)))
    return video, cell, params, state, rng


def _lstm_steps(student_fn, options, shape, channels, filters, kernel, batch_size,
                timesteps, seed):
    """Yield ``(t, reference gates, thunk calling the student)`` with teacher forcing."""
    video, cell, params, state, _ = _lstm_run(options, shape, channels, filters, kernel,
                                              batch_size, timesteps, seed)
    for t in range(timesteps):
        x = video[:, t]
        _, new_state, cache = lstm_step(x, state, params, cell)
        reference = {"z": cache.z, "z_i": cache.z_i, "z_f": cache.z_f, "c": cache.c,
                     "z_o": cache.z_o, "h": cache.h}

        def call(x=x, c=state.c, h=state.h):
            return student_fn(x.copy(), c.copy(), h.copy(), _copy(params), **options)

        yield t, reference, call
        state = new_state


def _lstm_backward_steps(student_fn, options, shape, channels, filters, kernel, batch_size,
                         timesteps, seed):
    """The names to compare, and a generator of ``(t, reference gradients, thunk)``.

    Teacher forcing as in :func:`_lstm_steps`: each step runs forward from the
    reference state, gets its own random upstream gradients, and is judged on
    its own (the gradients are not chained through time).
    """
    video, cell, params, state, rng = _lstm_run(options, shape, channels, filters, kernel,
                                                batch_size, timesteps, seed)
    names = LSTM_BACKWARD_ORDER + tuple("d_" + name for name in params)

    def steps(state=state):
        for t in range(timesteps):
            _, new_state, cache = lstm_step(video[:, t], state, params, cell)
            d_h = rng.standard_normal(cache.h.shape)
            d_c = rng.standard_normal(cache.c.shape)
            reference = _lstm_backward_reference(d_h, d_c, cache, params, cell)

            def call(d_h=d_h, d_c=d_c, cache=cache):
                return student_fn(d_h.copy(), d_c.copy(), _copy(cache._asdict()), _copy(params),
                                  **options)

            yield t, reference, call
            state = new_state

    return names, steps()


def _lstm_backward_reference(d_h, d_c, cache, params, cell):
    """Every gradient of one backward ConvLSTM step, by name: what the backward checker compares.

    The step's inputs and parameters (``d_x``, ``d_c_prev``, ``d_h_prev``,
    ``"d_" + name``) are refconv's own :func:`refconv.lstm_step_backward`;
    the intermediate ones (``d_z_o`` ... ``d_z_in``, which that function keeps
    to itself) are recomputed here the same way, line by line, for a
    channels_last cell with tanh and sigmoid.

    Args:
        d_h, d_c: ``[B, *S]``, upstream gradients with respect to the new h and c.
        cache: the forward step's :class:`refconv.LSTMCache`.
        params, cell: what the forward used.

    Returns:
        dict name -> array, with the names of :data:`LSTM_BACKWARD_ORDER` and
        ``"d_" + name`` for every parameter.
    """
    k = cache
    g = {}

    def ln_backward(v, d_out, name):
        return layer_norm_backward(v, params[name + "/gamma"], d_out)[0]

    # h = z_o * tanh(c)
    tanh_c = np.tanh(k.c)
    g["d_z_o"] = d_h * tanh_c
    g["d_c"] = d_c + d_h * k.z_o * (1 - tanh_c ** 2)
    # z_o = sigmoid(LN(z_o_in));  c = LN(c_in);  z_o_in = block 3 + W_co * c_in
    d_z_o_in = g["d_z_o"] * k.z_o * (1 - k.z_o)
    d_c_in = g["d_c"]
    if cell.normalize:
        d_z_o_in = ln_backward(k.z_o_in, d_z_o_in, "z_o")
        d_c_in = ln_backward(k.c_in, d_c_in, "c")
    if cell.peephole:
        d_c_in = d_c_in + d_z_o_in * params["W_co"]
    g["d_z_o_in"], g["d_c_in"] = d_z_o_in, d_c_in
    # c_in = c_prev * z_f + z_i * z
    g["d_z_f"] = d_c_in * k.c_prev
    g["d_z_i"] = d_c_in * k.z
    g["d_z"] = d_c_in * k.z_i
    # z_f = sigmoid(LN(z_f_in) + forget_bias);  z_i = sigmoid(LN(z_i_in));  z = tanh(LN(z_in))
    d_z_f_in = g["d_z_f"] * k.z_f * (1 - k.z_f)
    d_z_i_in = g["d_z_i"] * k.z_i * (1 - k.z_i)
    d_z_in = g["d_z"] * (1 - k.z ** 2)
    if cell.normalize:
        d_z_f_in = ln_backward(k.z_f_in, d_z_f_in, "z_f")
        d_z_i_in = ln_backward(k.z_i_in, d_z_i_in, "z_i")
        d_z_in = ln_backward(k.z_in, d_z_in, "z")
    g["d_z_f_in"], g["d_z_i_in"], g["d_z_in"] = d_z_f_in, d_z_i_in, d_z_in
    # The rest is refconv's own backward step.
    d_x, d_prev, d_params = lstm_step_backward(d_h, LSTMStateTuple(d_c, np.zeros_like(d_h)),
                                               k, params, cell)
    g["d_c_prev"], g["d_x"], g["d_h_prev"] = d_prev.c, d_x, d_prev.h
    g.update(("d_" + name, value) for name, value in d_params.items())
    return g


def _gru_steps(student_fn, options, shape, channels, filters, kernel, batch_size,
               timesteps, seed):
    video, rng = _video_and_rng(shape, channels, batch_size, timesteps, seed)
    cell = ConvGRUCell(list(shape), filters, list(kernel), normalize=options["normalize"])
    cell.build(channels, seed=seed)
    params = _randomise(dict(cell.params), rng)
    h = np.tanh(rng.standard_normal((batch_size, *shape, filters)))
    for t in range(timesteps):
        x = video[:, t]
        _, new_h, cache = gru_step(x, h, params, cell)
        reference = {"r": cache.r, "u": cache.u, "candidate": cache.candidate, "h": cache.h}

        def call(x=x, h=h):
            return student_fn(x.copy(), h.copy(), _copy(params), **options)

        yield t, reference, call
        h = new_h


def _run_case(steps, names, options, timesteps, rtol, atol, what="gates"):
    """Compare the student's named arrays with the reference's, step by step.

    ``steps`` yields ``(t, reference, call)``: ``reference`` a dict name ->
    array, ``call()`` the student's dict for the same step.
    """
    errors = np.full((len(names), timesteps), np.nan)
    result = CaseResult(dict(options), tuple(names), errors)
    for t, reference, call in steps:
        try:
            yours = call()
        except Exception as error:  # a learner's bug: report it, do not crash the check
            result.first = Mismatch(t, None, math.inf, problem=_short_traceback(error))
            break
        if not isinstance(yours, dict):
            result.first = Mismatch(t, None, math.inf, problem=(
                f"expected a dict of {what} {list(names)}, got {type(yours).__name__}"))
            break
        for row, name in enumerate(names):
            mismatch = _compare(t, name, yours.get(name), reference[name], rtol, atol)
            errors[row, t] = 0.0 if mismatch is None else mismatch.error
            if mismatch is not None:
                if result.first is None:
                    result.first = mismatch
                if result.first.step == t:
                    result.wrong_at_first_step.append(name)
    return result


def _compare(t, name, yours, reference, rtol, atol):
    """None when ``yours`` agrees with ``reference``, else a :class:`Mismatch`."""
    if yours is None:
        return Mismatch(t, name, math.inf, problem=f"your dict has no {name!r}")
    try:
        yours = np.asarray(yours, dtype=np.float64)
    except (TypeError, ValueError):
        return Mismatch(t, name, math.inf,
                        problem=f"{name!r} is not an array of numbers: {type(yours).__name__}")
    if yours.shape != reference.shape:
        return Mismatch(t, name, math.inf, size=reference.size,
                        problem=f"{name!r} has shape {list(yours.shape)}, expected "
                                f"{list(reference.shape)}")
    bad = ~np.isclose(yours, reference, rtol=rtol, atol=atol)
    if not bad.any():
        return None
    diff = np.where(np.isnan(yours), np.inf, np.abs(yours - reference))
    index = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return Mismatch(t, name, float(diff[index]), tuple(int(i) for i in index),
                    float(yours[index]), float(reference[index]), int(bad.sum()), bad.size)


# ------------------------------------------------------------------ helpers

def _cases(cases, default, keys):
    if cases is None:
        return [dict(case) for case in default]
    cases = [cases] if isinstance(cases, dict) else list(cases)
    full = []
    for case in cases:
        if not isinstance(case, dict) or set(case) - keys:
            raise ValueError(f"cases: expected dicts with keys from {sorted(keys)}, got {case!r}")
        base = dict(default[-1])
        base.update(case)
        full.append(base)
    if not full:
        raise ValueError("cases: expected at least one case")
    return full


def _copy(params):
    return {name: np.array(value, copy=True) for name, value in params.items()}


def _name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _options(options):
    return ", ".join(f"{key}={value}" for key, value in options.items())


def _num(value):
    return f"{value:.3g}" if value is not None else "?"


def _cell(error):
    if np.isnan(error):
        return "-"
    if error == 0.0:
        return "ok"
    return f"{error:.1e}"


def _where(filename):
    """A file's name, or nothing for a notebook cell (IPython names those by a hash)."""
    if "ipykernel_" in filename or filename.startswith("<"):
        return ""
    return filename.rsplit("/", 1)[-1] + ", "


def _short_traceback(error):
    """The exception and the innermost frames (the learner's code), a few lines."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename != __file__]               # the checker's frames say nothing
    lines = [f"  {_where(frame.filename)}line {frame.lineno}, in {frame.name}: "
             f"{(frame.line or '').strip()}" for frame in frames[-3:]]
    return "\n".join([*lines, f"{type(error).__name__}: {error}"])
