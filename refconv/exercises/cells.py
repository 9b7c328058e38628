"""Checkers for one step of a cell, forward: the LSTM ladder of notebook 2 and the GRU of notebook 3.

The ladder, one rung at a time (each rung's function takes only what it needs):

* :func:`check_plain_step`: ``fn(x, c, h, params, forget_bias)``, no peephole, no layer norm;
* :func:`check_peephole_step`: the same signature, with peepholes ``W_ci``, ``W_cf``, ``W_co``;
* :func:`check_layer_norm_step`: ``fn(x, c, h, params, forget_bias, norm_epsilon,
  data_format)``, peepholes and layer norm, in either data format;
* :func:`check_lstm_step`: ``fn(x, c, h, params, peephole, normalize, forget_bias)``, every
  combination of the switches (the general checker);
* :func:`check_gru_step`: ``fn(x, h, params, normalize)``.

How a check runs, so that it cannot be fooled: each case draws its own
``forget_bias`` (never 1), ``norm_epsilon`` and kernel (even sizes too), runs in
float64 or float32, from its own seed; every gamma, beta, bias and peephole
weight is random; the frames are not square; the initial state is random, so a
mistake with the old ``c`` or ``h`` shows at the first step. Each step starts
from the *reference* state (teacher forcing), so each step is judged on its own,
and the quantities are compared in the order the step computes them
(:data:`refconv.vocabulary.LSTM_QUANTITIES`): the first that differs is the
culprit.
"""

import numpy as np

from ..gru import ConvGRUCell, gru_step
from ..lstm import ConvLSTMCell, LSTMStateTuple, lstm_step
from ..vocabulary import GRU_QUANTITIES, LSTM_QUANTITIES
from . import mistakes
from .report import Report
from .runs import (copy_arrays, function_name, random_cases, randomise, run_case, tolerances,
                   video_and_rng)

__all__ = ["check_plain_step", "check_peephole_step", "check_layer_norm_step",
           "check_lstm_step", "check_gru_step", "LSTM_ORDER", "GRU_ORDER"]

# The order one step computes its quantities in: the first that differs is the culprit.
LSTM_ORDER = LSTM_QUANTITIES
GRU_ORDER = GRU_QUANTITIES

KERNELS = ((3, 3), (4, 2), (2, 3), (3, 4), (1, 3))   # even sizes: TF's SAME pads one more after


def _forget_bias(rng):
    """A forget bias that is clearly not the usual 1.0 (a hard-coded 1.0 must fail)."""
    value = rng.uniform(-1.0, 2.5)
    return round(value + (0.5 if abs(value - 1.0) < 0.25 else 0.0), 3)


def _draw_lstm(switches, keys):
    """A case-drawing function for :func:`random_cases`: options for the keys, a setup."""
    def draw(rng, n):
        options = {}
        # float64 cases walk through the switches; float32 ones walk back from "all on"
        switch = switches[n] if n < len(switches) else switches[-1 - (n - len(switches)) % len(switches)]
        if "peephole" in keys:
            options["peephole"], options["normalize"] = switch
        options["forget_bias"] = _forget_bias(rng)
        if "norm_epsilon" in keys:
            options["norm_epsilon"] = 1e-12 if n == 0 else round(float(rng.uniform(0.05, 0.5)), 3)
        if "data_format" in keys:
            options["data_format"] = "channels_first" if n % 2 else "channels_last"
        setup = {"kernel": KERNELS[n % len(KERNELS)],
                 "dtype": "float32" if n >= len(switches) else "float64"}
        return options, setup
    return draw


def _lstm_case_list(cases, default_draw, count, keys, seed):
    """Explicit cases (dicts of options) or ``count`` random ones."""
    if cases is None:
        return random_cases(seed, count, default_draw)
    cases = [cases] if isinstance(cases, dict) else list(cases)
    if not cases:
        raise ValueError("cases: expected at least one case")
    full = []
    for n, case in enumerate(cases):
        if not isinstance(case, dict) or set(case) - set(keys):
            raise ValueError(f"cases: expected dicts with keys from {sorted(keys)}, got {case!r}")
        options = {"peephole": True, "normalize": True, "forget_bias": 1.0}
        options = {key: value for key, value in options.items() if key in keys}
        options.update(case)
        full.append((options, {"kernel": (3, 3), "dtype": "float64", "seed": seed + n}))
    return full


def _check_lstm(title, student_fn, cases, fixed, shape, channels, filters, batch_size,
                timesteps, rtol, atol, hints):
    results = []
    for options, setup in cases:
        cell_options = {**fixed, **options}
        case_rtol, case_atol = tolerances(setup["dtype"], rtol, atol)
        steps = _lstm_steps(student_fn, options, cell_options, setup, shape, channels, filters,
                            batch_size, timesteps, case_rtol, case_atol)
        results.append(run_case(steps, LSTM_ORDER, options, timesteps, case_rtol, case_atol,
                                setup=_shown(setup), recognise=mistakes.lstm_forward))
    return Report(title, function_name(student_fn), results, rtol, atol, hints)


def _shown(setup):
    """What a report shows of a case's setup (its seed is in the checker's arguments)."""
    return {key: value for key, value in setup.items() if key != "seed"}


def lstm_run(cell_options, setup, shape, channels, filters, batch_size, timesteps):
    """A seeded video, a built cell with random parameters, a random state, and the rng after them."""
    dtype = np.dtype(setup["dtype"])
    video, rng = video_and_rng(shape, channels, batch_size, timesteps, setup["seed"], dtype)
    cell = ConvLSTMCell(list(shape), filters, list(setup["kernel"]), **cell_options)
    if cell.data_format == "channels_first":
        video = np.moveaxis(video, -1, 2)
    cell.build(channels, seed=setup["seed"])
    params = randomise(dict(cell.params), rng, dtype)
    state_shape = (batch_size, *cell.state_size.c)
    state = LSTMStateTuple(rng.standard_normal(state_shape).astype(dtype),
                           np.tanh(rng.standard_normal(state_shape)).astype(dtype))
    return video, cell, params, state, rng


def _lstm_steps(student_fn, options, cell_options, setup, shape, channels, filters, batch_size,
                timesteps, rtol, atol):
    """Yield ``(t, reference, call, context)`` with teacher forcing."""
    video, cell, params, state, _ = lstm_run(cell_options, setup, shape, channels, filters,
                                             batch_size, timesteps)
    for t in range(timesteps):
        x = video[:, t]
        _, new_state, cache = lstm_step(x, state, params, cell)
        reference = {name: getattr(cache, name) for name in LSTM_ORDER}

        def call(x=x, c=state.c, h=state.h):
            return student_fn(x.copy(), c.copy(), h.copy(), copy_arrays(params), **options)

        context = {"cache": cache, "params": params, "cell": cell, "rtol": rtol, "atol": atol,
                   "given": {"x": x, "c": state.c, "h": state.h, "params": params, **options}}
        yield t, reference, call, context
        state = new_state


def _rung(title, student_fn, fixed, keys, settings, cases, count, shape, channels, filters,
          batch_size, timesteps, seed, rtol, atol, hints):
    """One rung of the ladder: the switches ``fixed``, the student's keywords ``keys``."""
    cases = _lstm_case_list(cases, _draw_lstm(settings, keys), count, keys, seed)
    return _check_lstm(title, student_fn, cases, fixed, shape, channels, filters, batch_size,
                       timesteps, rtol, atol, hints)


def check_plain_step(student_fn, *, cases=None, count=5, shape=(9, 8), channels=2, filters=3,
                     batch_size=2, timesteps=3, seed=0, rtol=1e-6, atol=1e-8, hints=True):
    """Rung 1: a ConvLSTM step without peephole or layer norm.

    Called as ``student_fn(x, c, h, params, forget_bias=...)`` with ``x``
    ``[B, H, W, C]``, ``c`` and ``h`` ``[B, H, W, F]`` and ``params`` holding
    ``kernel`` ``[kh, kw, C + F, 4F]`` and ``bias`` ``[4F]``; returns a dict with
    ``z, z_i, z_f, c, z_o, h``. ``count`` random cases (forget_bias drawn at
    random, even kernels, float32 as well as float64). Returns a :class:`Report`.
    """
    return _rung("check_plain_step", student_fn, {"peephole": False, "normalize": False},
                 {"forget_bias"}, [(False, False)] * 3, cases, count, shape, channels, filters,
                 batch_size, timesteps, seed, rtol, atol, hints)


def check_peephole_step(student_fn, *, cases=None, count=5, shape=(9, 8), channels=2,
                        filters=3, batch_size=2, timesteps=3, seed=0, rtol=1e-6, atol=1e-8,
                        hints=True):
    """Rung 2: the plain step plus peepholes ``W_ci``, ``W_cf`` (old c) and ``W_co`` (new c).

    Same signature as :func:`check_plain_step`; ``params`` also holds ``W_ci``,
    ``W_cf``, ``W_co`` ``[H, W, F]``.
    """
    return _rung("check_peephole_step", student_fn, {"peephole": True, "normalize": False},
                 {"forget_bias"}, [(True, False)] * 3, cases, count, shape, channels, filters,
                 batch_size, timesteps, seed, rtol, atol, hints)


def check_layer_norm_step(student_fn, *, cases=None, count=6, shape=(9, 8), channels=2,
                          filters=3, batch_size=2, timesteps=3, seed=0, rtol=1e-6, atol=1e-8,
                          hints=True):
    """Rung 3: the peephole step with layer norm, in either data format.

    Called as ``student_fn(x, c, h, params, forget_bias=..., norm_epsilon=...,
    data_format=...)``; ``params`` holds ``kernel`` (no bias), ``W_c*`` (one
    frame of the state: ``[F, H, W]`` for channels_first) and
    ``{z,z_i,z_f,z_o,c}/{gamma,beta}`` ``[F]``. With ``"channels_first"`` the
    frames are ``[B, C, H, W]`` and the states ``[B, F, H, W]``.
    """
    return _rung("check_layer_norm_step", student_fn, {"peephole": True, "normalize": True},
                 {"forget_bias", "norm_epsilon", "data_format"}, [(True, True)] * 4, cases,
                 count, shape, channels, filters, batch_size, timesteps, seed, rtol, atol, hints)


LSTM_SWITCHES = [(False, False), (True, False), (False, True), (True, True)]


def switch_cases(cases, count, seed, kernel=None):
    """Explicit cases of ``(peephole, normalize, forget_bias)``, or ``count`` random ones
    walking through the four settings of the switches; ``kernel`` for every case if given."""
    keys = {"peephole", "normalize", "forget_bias"}
    cases = _lstm_case_list(cases, _draw_lstm(LSTM_SWITCHES, keys), count, keys, seed)
    if kernel is not None:
        cases = [(options, {**setup, "kernel": tuple(kernel)}) for options, setup in cases]
    return cases


def check_lstm_step(student_fn, cases=None, *, count=6, shape=(9, 8), channels=2, filters=3,
                    kernel=None, batch_size=2, timesteps=4, seed=0, rtol=1e-6, atol=1e-8,
                    hints=True):
    """Check a learner's ConvLSTM step (channels_last) against refconv, quantity by quantity.

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
            the cell's default: peephole and normalize on, forget_bias 1; kernel
            ``kernel`` or 3x3, float64); default ``count`` random cases: the four
            combinations of peephole and normalize, then float32 ones, each with
            its own forget_bias and kernel.
        shape, channels, filters, batch_size, timesteps, seed: the run.
        kernel: the kernel of explicit cases (default 3x3).
        rtol, atol: a value agrees when ``|yours - ref| <= atol + rtol * |ref|``
            (at least 1e-4 and 1e-5 in float32).
        hints: show a nudge for the first wrong quantity.

    Returns:
        A :class:`Report`.
    """
    cases = switch_cases(cases, count, seed, kernel)
    return _check_lstm("check_lstm_step", student_fn, cases, {}, shape, channels, filters,
                       batch_size, timesteps, rtol, atol, hints)


def check_gru_step(student_fn, cases=None, *, count=4, shape=(9, 8), channels=2, filters=3,
                   batch_size=2, timesteps=4, seed=0, rtol=1e-6, atol=1e-8, hints=True):
    """Check a learner's ConvGRU step (channels_last) against refconv, gate by gate.

    Called as ``student_fn(x, h, params, normalize=...)`` with ``params`` named as
    ``ConvGRUCell.params`` (``gates/kernel``, ``candidate/kernel``, and
    ``gates/bias``, ``candidate/bias`` or ``r/``, ``u/``, ``candidate/``
    ``gamma``/``beta``); the activation is tanh. It must return a dict with
    ``r``, ``u`` (after their sigmoids), ``candidate`` (after its tanh) and ``h``.

    Other arguments and the result as :func:`check_lstm_step`; the default
    cases are normalize off and on, in float64 and then float32, with kernels
    of every parity.
    """
    keys = {"normalize"}
    if cases is None:
        def draw(rng, n):
            return ({"normalize": bool(n % 2)},
                    {"kernel": KERNELS[n % len(KERNELS)], "dtype": "float32" if n >= 2 else "float64"})
        cases = random_cases(seed, count, draw)
    else:
        cases = [cases] if isinstance(cases, dict) else list(cases)
        if not cases or any(not isinstance(c, dict) or set(c) - keys for c in cases):
            raise ValueError(f"cases: expected dicts with keys from {sorted(keys)}, got {cases!r}")
        cases = [({"normalize": True, **case}, {"kernel": (3, 3), "dtype": "float64",
                                                "seed": seed + n}) for n, case in enumerate(cases)]
    results = []
    for options, setup in cases:
        case_rtol, case_atol = tolerances(setup["dtype"], rtol, atol)
        steps = _gru_steps(student_fn, options, setup, shape, channels, filters, batch_size,
                           timesteps, case_rtol, case_atol)
        results.append(run_case(steps, GRU_ORDER, options, timesteps, case_rtol, case_atol,
                                setup=_shown(setup), recognise=mistakes.gru_forward))
    return Report("check_gru_step", function_name(student_fn), results, rtol, atol, hints,
                  kind="GRU")


def _gru_steps(student_fn, options, setup, shape, channels, filters, batch_size, timesteps,
               rtol, atol):
    dtype = np.dtype(setup["dtype"])
    video, rng = video_and_rng(shape, channels, batch_size, timesteps, setup["seed"], dtype)
    cell = ConvGRUCell(list(shape), filters, list(setup["kernel"]), normalize=options["normalize"])
    cell.build(channels, seed=setup["seed"])
    params = randomise(dict(cell.params), rng, dtype)
    h = np.tanh(rng.standard_normal((batch_size, *shape, filters))).astype(dtype)
    for t in range(timesteps):
        x = video[:, t]
        _, new_h, cache = gru_step(x, h, params, cell)
        reference = {name: getattr(cache, name) for name in GRU_ORDER}

        def call(x=x, h=h):
            return student_fn(x.copy(), h.copy(), copy_arrays(params), **options)

        context = {"cache": cache, "params": params, "cell": cell, "rtol": rtol, "atol": atol,
                   "given": {"x": x, "h": h, "params": params, **options}}
        yield t, reference, call, context
        h = new_h
