"""The exercises of notebook 7: how far a kernel reaches, and which forced gate hurts most.

* :func:`check_reach`: ``reach(kernel, dilation, steps) -> pixels``, how far one input
  pixel's influence has spread in ``h`` after ``steps`` steps of a ConvLSTM whose square
  kernel has size ``kernel`` and whose input convolution is dilated by ``dilation``. The
  checker *measures* it on a 1-D cell (:func:`refconv.ablation.reach_cone`), it does not
  trust a formula.
* :func:`check_ablation_guess`: a prediction ``{task: (gate, value, which)}`` of the
  intervention of the ablation table that hurts a trained cell most, checked against the
  table computed on every training seed (:func:`refconv.ablation.task_tables`).

Neither report tells the answer: a wrong reach says only whether the measured cone is
wider or narrower; a wrong guess says how far it is from the worst.
"""

import numpy as np

from .. import ablation
from .report import CaseResult, Mismatch, Report
from .runs import function_name, short_traceback

__all__ = ["check_reach", "check_ablation_guess", "NEAR_WORST"]

# A guess counts when its median ratio over the seeds is within this factor of the worst's:
# the top interventions can be close, and which of two near-equals wins varies by seed.
NEAR_WORST = 2.0


def _measured_reach(kernel, dilation, steps):
    """How far (pixels) the cone of :func:`refconv.ablation.reach_cone` reaches at step ``steps``."""
    half = kernel // 2
    width = 2 * (dilation * half + steps * half) + 7       # wide enough that no edge is met
    cone = ablation.reach_cone(kernel, dilation, steps=steps, width=width)
    changed = np.nonzero(cone[steps - 1])[0]
    return int(np.abs(changed - width // 2).max()) if changed.size else 0


def check_reach(reach, seed=0, count=6):
    """Check ``reach(kernel, dilation, steps) -> int`` on ``count`` random cases (seeded).

    Each case draws a kernel size (1, 3, 5 or 7), an input dilation (1 to 3) and a number
    of steps (1 to 5), and holds the answer to the measured spread. A :class:`Report`.
    """
    rng = np.random.default_rng([seed, 7])
    results = []
    for _ in range(count):
        kernel, dilation, steps = int(rng.choice([1, 3, 5, 7])), int(rng.integers(1, 4)), \
            int(rng.integers(1, 6))
        options = {"kernel": kernel, "dilation": dilation, "steps": steps}
        errors = np.zeros((1, 1))
        first = None
        truth = _measured_reach(kernel, dilation, steps)
        try:
            yours = reach(kernel, dilation, steps)
        except Exception as error:       # a learner's bug: report it, do not crash the check
            first = Mismatch(0, None, np.inf, problem=short_traceback(error))
        else:
            if not isinstance(yours, (int, np.integer)) or isinstance(yours, bool):
                first = Mismatch(0, "reach", np.inf, problem=(
                    f"expected an int number of pixels, got {type(yours).__name__}"))
            elif yours != truth:
                wider = "wider" if truth > yours else "narrower"
                first = Mismatch(0, "reach", float(abs(yours - truth)), problem=(
                    f"your reach is {yours} pixels; the measured cone is {wider}"))
        if first is not None:
            errors[0, 0] = first.error
        results.append(CaseResult(options, ("reach",), errors, first))
    return Report("check_reach", function_name(reach), results, 0, 0, hints=False,
                  kind="reach", step_word="question")


def check_ablation_guess(guess, tasks=tuple(ablation.TASKS), videos=12):
    """Check a prediction ``{task: (gate, value, which)}`` (or a function ``guess(task) ->
    (gate, value, which)``) for each task of ``tasks``.

    ``gate, value`` one of :data:`refconv.ablation.INTERVENTIONS`, ``which`` ``"main"`` or
    ``"all"``. Right when its median ratio over the seeds is at least the worst's divided
    by :data:`NEAR_WORST`. A :class:`Report`, one case per task: by default every task of
    :data:`refconv.ablation.TASKS`, as notebook 7 asks (grading the memory task alone let
    a wrong guess for forgetting or occlusion score full points).
    """
    results = []
    for task in tasks:
        tables = ablation.task_tables(task, videos)
        keys = list(next(iter(tables.values()))[2])
        median = {key: float(np.median([table[key] for _, _, table in tables.values()]))
                  for key in keys}
        worst = max(median.values())
        errors = np.zeros((1, 1))
        first = None
        yours = guess.get(task) if isinstance(guess, dict) else None
        if callable(guess):
            try:
                yours = guess(task)
            except Exception as error:   # a learner's bug: report it, do not crash the check
                first = Mismatch(0, None, np.inf, problem=short_traceback(error))
        elif not isinstance(guess, dict):
            first = Mismatch(0, None, np.inf, problem=(
                f"expected a dict task -> (gate, value, which), got {type(guess).__name__}"))
        if first is not None:
            pass
        elif yours is None:
            first = Mismatch(0, task, np.inf, problem=f"your guess has no {task!r}")
        elif not isinstance(yours, (tuple, list)) or tuple(yours) not in median:
            first = Mismatch(0, task, np.inf, problem=(
                f"{yours!r} is not an intervention of the table: expected (gate, value, which) "
                f"with (gate, value) in {list(ablation.INTERVENTIONS)} and which 'main' or 'all'"))
        elif median[tuple(yours)] * NEAR_WORST < worst:
            first = Mismatch(0, task, worst / median[tuple(yours)], problem=(
                f"{task}: forcing {yours[0]} = {yours[1]} ({yours[2]}) multiplies the error by "
                f"{median[tuple(yours)]:.3g} (median over {len(tables)} seeds); the worst "
                f"intervention hurts {worst / median[tuple(yours)]:.3g} times more"))
        if first is not None:
            errors[0, 0] = first.error
        results.append(CaseResult({"task": task}, (task,), errors, first))
    name = "guess" if isinstance(guess, dict) else function_name(guess)
    return Report("check_ablation_guess", name, results, 0, 0, hints=False, kind="ablation",
                  step_word="question")
