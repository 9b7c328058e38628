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
from .lstm import ConvLSTMCell, LSTMStateTuple, lstm_step

__all__ = ["check_lstm_step", "check_gru_step", "Report", "CaseResult", "Mismatch",
           "LSTM_ORDER", "GRU_ORDER"]

# The order one step computes its quantities in: the first that differs is the culprit.
LSTM_ORDER = ("z", "z_i", "z_f", "c", "z_o", "h")
GRU_ORDER = ("r", "u", "candidate", "h")

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
            lines.append(f"  max |yours - reference| = {_num(m.error)} at [batch, *position, "
                         f"channel] = [{index}] "
                         f"(yours {_num(m.yours)}, reference {_num(m.reference)}); "
                         f"{m.count} of {m.size} values differ")
        before = list(case.names[:case.names.index(m.name)])
        if before:
            lines.append(f"  right before it at that step: {', '.join(before)}")
        after = [n for n in case.wrong_at_first_step if n != m.name]
        if after:
            lines.append(f"  also wrong at that step (maybe only because of {m.name}): "
                         f"{', '.join(after)}")
        if self.hints:
            hint = HINTS.get("h_gru" if m.name == "h" and "r" in case.names else m.name)
            if hint:
                lines.append(f"  hint: {hint}")
        lines.append("max |yours - reference| per quantity and time step:")
        lines.append("  " + " " * 10 + "".join(f"{f't={t}':>9}" for t in
                                               range(case.errors.shape[1])))
        for name, row in zip(case.names, case.errors):
            cells = "".join(f"{_cell(e):>9}" for e in row)
            lines.append(f"  {name:<10}{cells}")
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


def _lstm_steps(student_fn, options, shape, channels, filters, kernel, batch_size,
                timesteps, seed):
    """Yield ``(t, reference gates, thunk calling the student)`` with teacher forcing."""
    video, rng = _video_and_rng(shape, channels, batch_size, timesteps, seed)
    cell = ConvLSTMCell(list(shape), filters, list(kernel), forget_bias=options["forget_bias"],
                        normalize=options["normalize"], peephole=options["peephole"])
    cell.build(channels, seed=seed)
    params = _randomise(dict(cell.params), rng)
    state_shape = (batch_size, *shape, filters)
    state = LSTMStateTuple(rng.standard_normal(state_shape),
                           np.tanh(rng.standard_normal(state_shape)))
    for t in range(timesteps):
        x = video[:, t]
        _, new_state, cache = lstm_step(x, state, params, cell)
        reference = {"z": cache.z, "z_i": cache.z_i, "z_f": cache.z_f, "c": cache.c,
                     "z_o": cache.z_o, "h": cache.h}

        def call(x=x, c=state.c, h=state.h):
            return student_fn(x.copy(), c.copy(), h.copy(), _copy(params), **options)

        yield t, reference, call
        state = new_state


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


def _run_case(steps, names, options, timesteps, rtol, atol):
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
                f"expected a dict of gates {list(names)}, got {type(yours).__name__}"))
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
