"""The machinery every checker shares: random cases, running a case step by step, comparing.

A checker makes a list of cases (options for the student's function, and a
setup: seed, dtype, kernel, ...), and for each case a generator of steps. Each
step yields ``(t, reference, call, context)``: the reference's named arrays, a
thunk calling the student's function, and what :mod:`.mistakes` needs to name a
recognisable mistake. :func:`run_case` compares the two in the order the
quantities are computed and keeps the first difference.
"""

import math
import traceback

import numpy as np

from ..data import moving_shapes
from .report import CaseResult, Mismatch

__all__ = ["run_case", "compare", "tolerances", "random_cases", "video_and_rng",
           "randomise", "copy_arrays", "function_name", "short_traceback"]

# float32 carries about 7 digits: a right float32 answer is within these of the float64 one.
FLOAT32_RTOL, FLOAT32_ATOL = 1e-4, 1e-5


def tolerances(dtype, rtol, atol):
    """The tolerances for a case in ``dtype``: the given ones, loosened for float32."""
    if np.dtype(dtype) == np.float32:
        return max(rtol, FLOAT32_RTOL), max(atol, FLOAT32_ATOL)
    return rtol, atol


def random_cases(seed, count, draw):
    """``count`` cases, case ``n`` drawn by ``draw(rng, n)`` from its own seeded generator.

    ``draw`` returns ``(options, setup)``. Each case's setup gets its ``seed``.
    """
    cases = []
    for n in range(count):
        rng = np.random.default_rng([seed, n])
        options, setup = draw(rng, n)
        cases.append((options, {**setup, "seed": seed * 1000 + n}))
    return cases


def video_and_rng(shape, channels, batch_size, timesteps, seed, dtype=np.float64):
    """A seeded moving-shapes video with a little noise, and the generator after it."""
    rng = np.random.default_rng(seed)
    video = moving_shapes(batch_size=batch_size, timesteps=timesteps, shape=tuple(shape),
                          channels=channels, seed=seed)
    video = video + 0.1 * rng.standard_normal(video.shape)
    return video.astype(dtype), rng


def randomise(params, rng, dtype=np.float64):
    """Make every gamma, beta, bias and peephole weight random: 1s and 0s hide mistakes."""
    for name, value in params.items():
        if name.endswith("/gamma"):
            value = rng.uniform(0.5, 1.5, value.shape)
        elif name.endswith("/beta") or name.endswith("bias") or name.startswith("W_c"):
            value = rng.normal(0.0, 0.5, value.shape)
        params[name] = np.asarray(value, dtype=dtype)
    return params


def run_case(steps, names, options, timesteps, rtol, atol, what="gates", setup=None,
             recognise=None, index_labels=None, step_labels=None):
    """Compare the student's named arrays with the reference's, step by step.

    ``steps`` yields ``(t, reference, call, context)``: ``reference`` a dict
    name -> array, ``call()`` the student's dict for the same step, ``context``
    whatever ``recognise(name, yours, reference, context)`` needs to name a
    mistake (it returns a sentence or None).
    """
    errors = np.full((len(names), timesteps), np.nan)
    result = CaseResult(dict(options), tuple(names), errors, setup=dict(setup or {}),
                        index_labels=dict(index_labels or {}),
                        step_labels=dict(step_labels or {}))
    for t, reference, call, context in steps:
        try:
            yours = call()
        except Exception as error:  # a learner's bug: report it, do not crash the check
            result.first = Mismatch(t, None, math.inf, problem=short_traceback(error))
            break
        if not isinstance(yours, dict):
            result.first = Mismatch(t, None, math.inf, problem=(
                f"expected a dict of {what} {list(names)}, got {type(yours).__name__}"))
            break
        for row, name in enumerate(names):
            if name not in reference:            # compared at another step only
                continue
            mismatch = compare(t, name, yours.get(name), reference[name], rtol, atol)
            errors[row, t] = 0.0 if mismatch is None else mismatch.error
            if mismatch is None:
                continue
            if result.first is None:
                mistake = None
                if recognise is not None and mismatch.problem is None:
                    mistake = recognise(name, np.asarray(yours[name], dtype=np.float64),
                                        yours, reference, context)
                result.first = Mismatch(**{**mismatch.__dict__, "mistake": mistake})
            if result.first.step == t:
                result.wrong_at_first_step.append(name)
    return result


def compare(t, name, yours, reference, rtol, atol):
    """None when ``yours`` agrees with ``reference``, else a :class:`Mismatch`."""
    if yours is None:
        return Mismatch(t, name, math.inf, problem=f"your result has no {name!r}")
    try:
        yours = np.asarray(yours, dtype=np.float64)
    except (TypeError, ValueError):
        return Mismatch(t, name, math.inf,
                        problem=f"{name!r} is not an array of numbers: {type(yours).__name__}")
    reference = np.asarray(reference, dtype=np.float64)
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


def close(yours, candidate, rtol, atol):
    """True when ``yours`` is ``candidate`` within the tolerance (for naming mistakes)."""
    candidate = np.asarray(candidate, dtype=np.float64)
    return yours.shape == candidate.shape and bool(np.allclose(yours, candidate, rtol=rtol,
                                                               atol=atol))


def copy_arrays(arrays):
    return {name: np.array(value, copy=True) for name, value in arrays.items()}


def function_name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _where(filename):
    """A file's name, or nothing for a notebook cell (IPython names those by a hash)."""
    if "ipykernel_" in filename or filename.startswith("<"):
        return ""
    return filename.rsplit("/", 1)[-1] + ", "


def short_traceback(error):
    """The exception and the innermost frames (the learner's code), a few lines."""
    if getattr(error, "recorded_traceback", None):     # replayed from a graded run's record
        return error.recorded_traceback
    here = __file__.rsplit("/", 1)[0]
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(here)]     # the checker's frames say nothing
    lines = [f"  {_where(frame.filename)}line {frame.lineno}, in {frame.name}: "
             f"{(frame.line or '').strip()}" for frame in frames[-3:]]
    return "\n".join([*lines, f"{type(error).__name__}: {error}"])
