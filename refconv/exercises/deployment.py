"""The exercises of notebook 8: reading a deployed model's errors as the conformance table does.

* :func:`check_scaled_errors`: ``scaled_errors(candidate, reference) -> {name: float}``,
  for each quantity name the largest over the layers of ``max |candidate - reference| /
  max |reference|`` over its ``layerL/NAME`` array (each ``[B, T, ...]``), as the
  conformance table's columns; other keys (``outputs``) are left out.
* :func:`check_first_failure`: ``first_failure(errors, atol) -> (layer, name, t)`` or None:
  given ``errors[f"layer{L}/{name}"]``, a ``[T]`` array of a quantity's worst error per step,
  the quantity to look at first: the earliest step with an error above ``atol``, within it
  the lowest layer (an error in layer 0 reaches layer 1 in the same step), within that the
  quantity computed first (:data:`refconv.vocabulary.LSTM_QUANTITIES`), as
  :mod:`refconv.conformance` ranks them.

The reference answers are computed here by plain loops over the same rules, on random
cases (random layers, steps and shapes; NaN counts as an error above any tolerance).
"""

import numpy as np

from ..vocabulary import LSTM_QUANTITIES
from .report import CaseResult, Mismatch, Report
from .runs import compare, function_name, short_traceback

__all__ = ["check_scaled_errors", "check_first_failure"]


def _random_run(rng):
    """Two dicts of per-layer quantities ``[B, T, H, W, F]``, a little apart, and T."""
    layers, steps = int(rng.integers(1, 4)), int(rng.integers(2, 7))
    shape = (int(rng.integers(1, 3)), steps, int(rng.integers(2, 5)), int(rng.integers(2, 5)),
             int(rng.integers(1, 4)))
    reference, candidate = {}, {}
    for layer in range(layers):
        for name in LSTM_QUANTITIES:
            value = rng.standard_normal(shape)
            reference[f"layer{layer}/{name}"] = value
            candidate[f"layer{layer}/{name}"] = value + 10.0 ** rng.uniform(-9, -1, shape) \
                * rng.choice([-1.0, 1.0], shape)
    reference["outputs"] = rng.standard_normal(shape)           # not a layer's: left out
    candidate["outputs"] = reference["outputs"] + 1.0
    return candidate, reference, steps


def _scaled(candidate, reference):
    keys = [key for key in reference if key.startswith("layer")]
    result = {}
    for name in LSTM_QUANTITIES:
        for key in keys:
            if key.split("/")[-1] == name:
                error = np.abs(candidate[key] - reference[key]).max() / np.abs(reference[key]).max()
                result[name] = max(result.get(name, 0.0), float(error))
    return result


def check_scaled_errors(scaled_errors, seed=0, count=6):
    """Check ``scaled_errors(candidate, reference)`` on ``count`` random runs. A :class:`Report`."""
    results = []
    names = tuple(LSTM_QUANTITIES)
    for n in range(count):
        rng = np.random.default_rng([seed, n, 8])
        candidate, reference, _ = _random_run(rng)
        truth = _scaled(candidate, reference)
        errors = np.zeros((len(names), 1))
        first = None
        try:
            yours = scaled_errors({k: v.copy() for k, v in candidate.items()},
                                  {k: v.copy() for k, v in reference.items()})
        except Exception as error:       # a learner's bug: report it, do not crash the check
            first = Mismatch(0, None, np.inf, problem=short_traceback(error))
        else:
            if not isinstance(yours, dict):
                first = Mismatch(0, None, np.inf, problem=(
                    f"expected a dict name -> float, got {type(yours).__name__}"))
            for row, name in enumerate(names):
                if first is not None:
                    break
                mismatch = compare(0, name, yours.get(name), truth[name], 1e-12, 0.0)
                if mismatch is not None:
                    errors[row, 0] = mismatch.error
                    if mismatch.problem is None:
                        side = "too large" if mismatch.yours > truth[name] else "too small"
                        mismatch = Mismatch(0, name, mismatch.error, problem=f"your {name} is {side}")
                    first = mismatch
        options = {"layers": sum(k.endswith("/h") for k in reference)}
        results.append(CaseResult(options, names, errors, first))
    return Report("check_scaled_errors", function_name(scaled_errors), results, 1e-12, 0.0,
                  hints=False, kind="deployment", step_word="run")


def _first(errors, atol):
    """The rule, by loops: earliest step, then lowest layer, then computed order."""
    layers = sorted({int(key.split("/")[0][len("layer"):]) for key in errors})
    steps = len(next(iter(errors.values())))
    for t in range(steps):
        for layer in layers:
            for name in LSTM_QUANTITIES:
                value = errors.get(f"layer{layer}/{name}")
                if value is not None and not value[t] <= atol:       # NaN is a failure
                    return layer, name, t
    return None


def check_first_failure(first_failure, seed=0, count=8):
    """Check ``first_failure(errors, atol)`` on ``count`` random tables. A :class:`Report`."""
    results = []
    for n in range(count):
        rng = np.random.default_rng([seed, n, 9])
        kind = n % 4                     # 0, 1, 2: fails somewhere (1 with a NaN); 3 passes
        layers, steps = int(rng.integers(2 if kind == 2 else 1, 4)), int(rng.integers(3, 8))
        atol = float(10.0 ** rng.uniform(-7, -3))
        errors = {f"layer{layer}/{name}": atol * 10.0 ** rng.uniform(-3, -0.1, steps)
                  for layer in range(layers) for name in LSTM_QUANTITIES}

        def fail(key, start, value=None):
            errors[key][start:] = atol * rng.uniform(1.5, 1e4) if value is None else value

        if kind == 0:                    # two quantities of one layer at one step: the order
            layer, start = rng.integers(layers), rng.integers(steps)
            fail(f"layer{layer}/c", start)
            fail(f"layer{layer}/z_f", start)
        if kind == 1:
            fail(f"layer{rng.integers(layers)}/{rng.choice(LSTM_QUANTITIES)}", 0, np.nan)
        if kind == 2:                    # a higher layer fails a step before layer 0
            fail(f"layer{layers - 1}/z_o", 1)
            fail("layer0/z", 2)
        if kind != 3:
            for _ in range(int(rng.integers(0, 3))):
                fail(f"layer{rng.integers(layers)}/{rng.choice(LSTM_QUANTITIES)}",
                     rng.integers(steps))
        truth = _first(errors, atol)
        first = None
        try:
            yours = first_failure({k: v.copy() for k, v in errors.items()}, atol)
        except Exception as error:       # a learner's bug: report it, do not crash the check
            first = Mismatch(0, None, np.inf, problem=short_traceback(error))
        else:
            if yours is not None and not (isinstance(yours, tuple) and len(yours) == 3):
                first = Mismatch(0, "first_failure", np.inf, problem=(
                    f"expected (layer, name, t) or None, got {yours!r}"))
            elif (yours is None) != (truth is None):
                first = Mismatch(0, "first_failure", np.inf, problem=(
                    "nothing in this table is above the tolerance" if truth is None else
                    "something in this table is above the tolerance"))
            elif yours is not None and tuple(yours) != truth:
                layer, name, t = yours
                why = ("an earlier step already fails" if t > truth[2] else
                       "nothing fails at that step yet" if t < truth[2] else
                       "a lower layer fails at that step" if layer > truth[0] else
                       "that layer is fine at that step" if layer < truth[0] else
                       "a quantity computed earlier fails there")
                first = Mismatch(0, "first_failure", np.inf,
                                 problem=f"{yours!r} is not the first failure: {why}")
        errors_row = np.zeros((1, 1)) if first is None else np.full((1, 1), np.inf)
        options = {"layers": layers, "steps": steps, "atol": atol}
        results.append(CaseResult(options, ("first_failure",), errors_row, first))
    return Report("check_first_failure", function_name(first_failure), results, 0, 0,
                  hints=False, kind="deployment", step_word="table")
