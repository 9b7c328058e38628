"""Checkers for the backward pass (notebook 5): one LSTM step's backward, then the BPTT loop.

The step's backward is a ladder like the forward's (notebook 2), one rung at a
time, each rung's function called as ``fn(d_h, d_c_next, cache, params)``:

* :func:`check_plain_step_backward`: no peephole, no layer norm (``d_bias``, no ``d_W_c*``);
* :func:`check_peephole_step_backward`: peepholes (``d_W_ci``, ``d_W_cf``, ``d_W_co``);
* :func:`check_layer_norm_step_backward`: peepholes and layer norm (``d_*/gamma``, ``d_*/beta``);
* :func:`check_lstm_step_backward`: every combination, the switches as arguments.

Every case of a rung has the rung's switches on, so a function that leaves a
rung's part out fails every case of that rung (no points from cases where the
part does not matter). The reference is refconv's own :func:`refconv.lstm_step_backward` (with
``intermediates=True`` for the gradients on the way) and
:func:`refconv.dynamic_rnn_grad`: there is no second backward here.
"""

import numpy as np

from ..bptt import dynamic_rnn_grad
from ..lstm import LSTMStateTuple, lstm_step, lstm_step_backward
from . import mistakes
from .cells import _draw_lstm, _shown, lstm_run, switch_cases
from .report import Report
from .runs import close, copy_arrays, function_name, random_cases, run_case, tolerances

__all__ = ["check_plain_step_backward", "check_peephole_step_backward",
           "check_layer_norm_step_backward", "check_lstm_step_backward", "check_bptt",
           "LSTM_BACKWARD_ORDER"]

# The backward step's gradients, in the order it computes them; then "d_" + each parameter.
LSTM_BACKWARD_ORDER = ("d_z_o", "d_c", "d_z_o_in", "d_c_in", "d_z_f", "d_z_i", "d_z",
                       "d_z_f_in", "d_z_i_in", "d_z_in", "d_c_prev", "d_x", "d_h_prev")

PARAM_LABELS = {"d_kernel": "[*kernel offset, in channel, out channel]",
                "d_bias": "[channel of y]", "d_W_ci": "[*position, channel]",
                "d_W_cf": "[*position, channel]", "d_W_co": "[*position, channel]"}


def _index_labels(names):
    labels = dict(PARAM_LABELS)
    labels.update((name, "[channel]") for name in names if name.endswith(("/gamma", "/beta")))
    return labels


def _rung_cases(switch, count, seed):
    """``count`` cases with the switches ``(peephole, normalize)``: float64 first, then float32.

    Each draws its own forget bias (never 1) and kernel (even sizes too); the
    student's function gets none of them as arguments (its cache has the values).
    """
    float64 = max(count - count // 3, 1)
    draw = _draw_lstm([switch] * float64, {"peephole", "normalize", "forget_bias"})
    return random_cases(seed, count, draw)


def _rung(title, student_fn, switch, count, shape, channels, filters, batch_size, timesteps,
          seed, rtol, atol, hints):
    return _check_gradients(title, student_fn, _rung_cases(switch, count, seed), _backward_steps,
                            mistakes.lstm_backward, "LSTM", shape, channels, filters, batch_size,
                            timesteps, rtol, atol, hints, student_keys=())


def check_plain_step_backward(student_fn, *, count=4, shape=(9, 8), channels=2, filters=3,
                              batch_size=2, timesteps=3, seed=0, rtol=1e-6, atol=1e-8,
                              hints=True):
    """Rung 1: the backward of a ConvLSTM step without peephole or layer norm (channels_last).

    Called once per time step and case as ``student_fn(d_h, d_c_next, cache,
    params)``: ``d_h`` ``[B, H, W, F]`` the gradient reaching the step's new
    ``h`` (the output's and the next step's, already added), ``d_c_next``
    ``[B, H, W, F]`` the gradient the next step sent back for the new ``c``;
    ``cache`` a dict of the forward step's arrays (:class:`refconv.LSTMCache`'s
    names); ``params`` ``kernel`` ``[kh, kw, C + F, 4F]`` and ``bias`` ``[4F]``.
    It returns a dict with the names of :data:`LSTM_BACKWARD_ORDER` (``d_c``
    the whole gradient of the new ``c``: through ``h`` plus ``d_c_next``),
    ``d_kernel`` and ``d_bias``. Returns a :class:`Report`.
    """
    return _rung("check_plain_step_backward", student_fn, (False, False), count, shape,
                 channels, filters, batch_size, timesteps, seed, rtol, atol, hints)


def check_peephole_step_backward(student_fn, *, count=4, shape=(9, 8), channels=2, filters=3,
                                 batch_size=2, timesteps=3, seed=0, rtol=1e-6, atol=1e-8,
                                 hints=True):
    """Rung 2: rung 1 with peepholes: ``params`` also holds ``W_ci``, ``W_cf``, ``W_co``
    ``[H, W, F]``, and the result ``d_W_ci``, ``d_W_cf``, ``d_W_co`` (each summed over the
    batch). Same call as :func:`check_plain_step_backward`."""
    return _rung("check_peephole_step_backward", student_fn, (True, False), count, shape,
                 channels, filters, batch_size, timesteps, seed, rtol, atol, hints)


def check_layer_norm_step_backward(student_fn, *, count=4, shape=(9, 8), channels=2,
                                   filters=3, batch_size=2, timesteps=3, seed=0, rtol=1e-6,
                                   atol=1e-8, hints=True):
    """Rung 3: the seed's step: peepholes and layer norm, no bias. ``params`` holds
    ``kernel``, ``W_c*`` and ``{z,z_i,z_f,z_o,c}/{gamma,beta}`` ``[F]``; the result
    ``"d_" + name`` for each of them. Same call as :func:`check_plain_step_backward`."""
    return _rung("check_layer_norm_step_backward", student_fn, (True, True), count, shape,
                 channels, filters, batch_size, timesteps, seed, rtol, atol, hints)


def check_lstm_step_backward(student_fn, cases=None, *, count=5, shape=(9, 8), channels=2,
                             filters=3, kernel=None, batch_size=2, timesteps=4, seed=0,
                             rtol=1e-6, atol=1e-8, hints=True):
    """Check a learner's backward ConvLSTM step (channels_last) against refconv, gradient by gradient.

    The function is called once per time step and case as::

        student_fn(d_h, d_c, cache, params, peephole=..., normalize=..., forget_bias=...)

    with ``d_h`` and ``d_c`` ``[B, *shape, F]``, random upstream gradients with
    respect to the step's new ``h`` (output and next step together) and new
    ``c``; ``cache`` a dict of the reference forward step's arrays, named as
    :class:`refconv.LSTMCache`; and ``params`` as in
    :func:`refconv.exercises.check_lstm_step`. The activation is tanh, the gates'
    sigmoid. It must return a dict with the names of :data:`LSTM_BACKWARD_ORDER`
    (each shaped like the quantity it is the gradient of) and ``"d_" + name``
    for every parameter; extra keys are ignored. The arrays it gets are copies.

    Other arguments as :func:`refconv.exercises.check_lstm_step` (default: the
    four combinations of peephole and normalize with random forget biases and
    kernels, then float32). The report names the first gradient, in backward
    order, that differs from refconv's, at which step and case, and by how much.

    Returns:
        A :class:`Report`.
    """
    cases = switch_cases(cases, count, seed, kernel)
    return _check_gradients("check_lstm_step_backward", student_fn, cases, _backward_steps,
                            mistakes.lstm_backward, "LSTM", shape, channels, filters,
                            batch_size, timesteps, rtol, atol, hints)


def _check_gradients(title, student_fn, cases, make_steps, recognise, kind, shape, channels,
                     filters, batch_size, timesteps, rtol, atol, hints, student_keys=None):
    """Run ``make_steps``'s comparison for every case: a :class:`Report`.

    ``student_keys``: which of a case's options the student's function gets as
    keywords (None: all); the others only build the cell, and the report shows
    them with the case's setup.
    """
    results = []
    for options, setup in cases:
        case_rtol, case_atol = tolerances(setup["dtype"], rtol, atol)
        given = {key: value for key, value in options.items()
                 if student_keys is None or key in student_keys}
        shown = {key: value for key, value in options.items() if key not in given
                 and key in ("forget_bias",)}
        names, steps = make_steps(student_fn, options, setup, shape, channels, filters,
                                  batch_size, timesteps, case_rtol, case_atol, given)
        results.append(run_case(steps, names, given, timesteps, case_rtol, case_atol,
                                what="gradients", setup={**shown, **_shown(setup)},
                                recognise=recognise, index_labels=_index_labels(names)))
    return Report(title, function_name(student_fn), results, rtol, atol, hints, kind=kind)


def reference_step_gradients(d_h, d_c, cache, params, cell):
    """Every gradient of one backward step, by name: refconv's ``lstm_step_backward``'s."""
    d_x, d_prev, d_params, seen = lstm_step_backward(
        d_h, LSTMStateTuple(d_c, np.zeros_like(d_h)), cache, params, cell, intermediates=True)
    gradients = {name: seen[name] for name in LSTM_BACKWARD_ORDER}
    gradients.update(("d_" + name, value) for name, value in d_params.items())
    return gradients


def _backward_steps(student_fn, options, setup, shape, channels, filters, batch_size,
                    timesteps, rtol, atol, given):
    """The names to compare, and a generator of ``(t, reference gradients, thunk, context)``.

    Teacher forcing as in the forward: each step runs forward from the
    reference state, gets its own random upstream gradients, and is judged on
    its own (the gradients are not chained through time).
    """
    video, cell, params, state, rng = lstm_run(options, setup, shape, channels, filters,
                                               batch_size, timesteps)
    names = LSTM_BACKWARD_ORDER + tuple("d_" + name for name in params)
    dtype = video.dtype

    def steps(state=state):
        for t in range(timesteps):
            _, new_state, cache = lstm_step(video[:, t], state, params, cell)
            d_h = rng.standard_normal(cache.h.shape).astype(dtype)
            d_c = rng.standard_normal(cache.c.shape).astype(dtype)
            reference = reference_step_gradients(d_h, d_c, cache, params, cell)

            def call(d_h=d_h, d_c=d_c, cache=cache):
                return student_fn(d_h.copy(), d_c.copy(), copy_arrays(cache._asdict()),
                                  copy_arrays(params), **given)

            context = {"cache": cache, "params": params, "cell": cell, "d_c": d_c,
                       "rtol": rtol, "atol": atol,
                       "given": {"d_h": d_h, "d_c_next": d_c, "cache": cache._asdict(),
                                 "params": params, **given}}
            yield t, reference, call, context
            state = new_state

    return names, steps()


# ------------------------------------------------------------------ the BPTT loop

def check_bptt(student_fn, *, count=4, shape=(9, 8), channels=2, filters=3, batch_size=2,
               timesteps=5, seed=0, rtol=1e-6, atol=1e-8, hints=True):
    """Check a learner's backpropagation through time for a ConvLSTM (channels_last).

    Called once per case as::

        student_fn(cell, params, caches, d_outputs, d_final_state)

    with ``caches`` the list of the forward's :class:`refconv.LSTMCache`, one
    per step (from ``refconv.lstm_step``), ``d_outputs`` ``[B, T, *shape, F]``
    (the loss's gradient for each step's output ``h``) and ``d_final_state``
    an ``LSTMStateTuple(c, h)`` of two ``[B, *shape, F]`` arrays (never None
    here; both random): the gradient the loss sends to the final state. Use
    ``refconv.lstm_step_backward(d_h, d_state, cache, params, cell)`` for each
    step: ``d_h`` is step t's own output gradient ``d_outputs[:, t]`` only,
    ``d_state`` what step t + 1 sent back (``d_final_state`` at the last step),
    and the function adds ``d_state.h`` to ``d_h`` itself. It must return a
    dict with ``d_inputs`` ``[B, T, *shape, C]``, ``d_initial_c``,
    ``d_initial_h`` and ``"d_" + name`` for each parameter (summed over the
    steps). A loop that counts step t + 1's ``h`` gradient twice, leaves an
    output's gradient out, does not carry ``d_state.c``, starts from zeros
    instead of ``d_final_state`` or overwrites the parameters' gradients is
    named as such.

    The reference is :func:`refconv.dynamic_rnn_grad`. ``d_inputs`` is compared
    step by step from the last step back (the order a backward loop computes
    them), then the initial state's and the parameters' gradients at step 0.
    """
    return _check_gradients("check_bptt", student_fn, switch_cases(None, count, seed),
                            _bptt_steps, _bptt_mistake, "BPTT", shape, channels, filters,
                            batch_size, timesteps, rtol, atol, hints)


def _bptt_steps(student_fn, options, setup, shape, channels, filters, batch_size, timesteps,
                rtol, atol, given):
    video, cell, params, state, rng = lstm_run(options, setup, shape, channels, filters,
                                               batch_size, timesteps)
    cell.params = dict(params)
    frame = state.h.shape                                  # [B, *S]: one step's output
    d_outputs = rng.standard_normal((frame[0], timesteps, *frame[1:])).astype(video.dtype)
    d_final = LSTMStateTuple(*(rng.standard_normal(frame).astype(video.dtype) for _ in "ch"))
    grads = dynamic_rnn_grad(cell, video, d_outputs, d_final, initial_state=state)
    caches, s = [], state
    for t in range(timesteps):
        _, s, cache = lstm_step(video[:, t], s, params, cell)
        caches.append(cache)
    names = ("d_x", "d_initial_c", "d_initial_h") + tuple("d_" + name for name in params)
    finals = {"d_initial_c": grads.initial_state.c, "d_initial_h": grads.initial_state.h}
    finals.update(("d_" + name, value) for name, value in grads.params.items())
    answer = {}

    def call_student():
        if "result" not in answer:
            answer["result"] = student_fn(cell, copy_arrays(params), list(caches),
                                          d_outputs.copy(), LSTMStateTuple(*(a.copy() for a in d_final)))
        return answer["result"]

    context = {"caches": caches, "params": params, "cell": cell, "d_outputs": d_outputs,
               "d_final": d_final, "rtol": rtol, "atol": atol,
               "given": {"caches": f"a list of {timesteps} LSTMCache, one per step",
                         "params": params, "d_outputs": d_outputs,
                         "d_final_state": d_final._asdict()},
               "returns": {"d_inputs": grads.inputs, **finals}}

    def steps():
        for t in reversed(range(timesteps)):
            reference = {"d_x": grads.inputs[:, t]}
            if t == 0:
                reference.update(finals)

            def call(t=t):
                result = call_student()
                if not isinstance(result, dict):
                    return result
                d_inputs = result.get("d_inputs")
                step = {name: value for name, value in result.items() if name != "d_inputs"}
                try:
                    step["d_x"] = np.asarray(d_inputs)[:, t]
                except (IndexError, TypeError, ValueError):
                    step["d_x"] = d_inputs
                return step

            yield t, reference, call, {**context, "t": t}

    return names, steps()


def _bptt_variant(context, slip):
    """The gradients a backward loop with one known slip computes, by name."""
    caches, params, cell = context["caches"], context["params"], context["cell"]
    d_outputs, d_state = context["d_outputs"], context["d_final"]
    timesteps = len(caches)
    d_inputs, totals = [None] * timesteps, {}
    if slip == "no d_final_state":
        d_state = LSTMStateTuple(*(np.zeros_like(a) for a in d_state))
    for t in reversed(range(timesteps)):
        d_h = d_outputs[:, t] if slip != "no d_outputs" or t == timesteps - 1 else \
            np.zeros_like(d_outputs[:, t])
        if slip == "h counted twice":
            d_h = d_h + d_state.h
        d_x, d_state, d_params = lstm_step_backward(d_h, d_state, caches[t], params, cell)
        if slip == "d_c not carried":
            d_state = LSTMStateTuple(np.zeros_like(d_state.c), d_state.h)
        d_inputs[t] = d_x
        for name, value in d_params.items():
            totals[name] = value if slip == "overwritten" else totals.get(name, 0) + value
    result = {"d_x": np.stack(d_inputs, axis=1)[:, context["t"]], "d_initial_c": d_state.c,
              "d_initial_h": d_state.h}
    result.update(("d_" + name, value) for name, value in totals.items())
    return result


BPTT_SLIPS = {
    "h counted twice": "the h gradient from step t + 1 is counted twice: lstm_step_backward "
                       "adds d_state.h to the d_h you pass, so pass d_outputs[:, t] alone as "
                       "d_h (or add d_state.h yourself and pass a d_state whose h is zero)",
    "no d_final_state": "the loop starts from zeros: the gradient reaching the last step's "
                        "state is d_final_state, so start with d_state = d_final_state",
    "no d_outputs": "only the last output's gradient enters: add d_outputs[:, t] to d_h at "
                    "every step",
    "d_c not carried": "the cell state's gradient is not carried back: pass the d_state "
                       "(d_c too) from step t + 1 to step t",
    "overwritten": "the parameters' gradients are overwritten at each step: add them up "
                   "(every step uses the same weights)",
}


def _bptt_mistake(name, yours, student, reference, context):
    for slip, label in BPTT_SLIPS.items():
        candidate = _bptt_variant(context, slip).get(name)
        if candidate is not None and close(yours, candidate, context["rtol"], context["atol"]):
            return label
    return None
