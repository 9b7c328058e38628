"""The checkers of notebooks 07 and 08 (refconv.exercises.gates, .deployment).

Each checker must pass the right answer and fail planted wrong ones, naming the
quantity; its reference answers come from measurements (the reach) or plain loops
written here again (the first failure, the worst error per step).
"""

import numpy as np
import pytest

from refconv import ablation
from refconv.exercises import (check_ablation_guess, check_first_failure, check_reach,
                               check_scaled_errors)
from refconv.vocabulary import LSTM_QUANTITIES


def right_reach(kernel, dilation, steps):
    return dilation * (kernel // 2) + (steps - 1) * (kernel // 2)


@pytest.mark.parametrize("seed", [0, 2029])
def test_check_reach_passes_the_right_answer(seed):
    report = check_reach(right_reach, seed=seed, count=8)
    assert report.passed and report.points(2) == 2.0, str(report)


@pytest.mark.parametrize("wrong,word", [
    (lambda k, d, t: d * (k // 2) + t * (k // 2), "narrower"),      # one step too many
    (lambda k, d, t: t * (k // 2), "wider"),                         # the input's dilation left out
    (lambda k, d, t: d * k * t, "narrower")])
def test_check_reach_fails_wrong_answers_without_telling(wrong, word):
    report = check_reach(wrong, count=8)
    assert not report.passed and report.gate == "reach" and report.points(2) < 2
    assert word in str(report)
    case = report.failed_case.options
    assert str(right_reach(case["kernel"], case["dilation"], case["steps"])) + " pixels" not in str(report)


def test_check_reach_reports_exceptions_and_wrong_types():
    def broken(kernel, dilation, steps):
        raise ZeroDivisionError("oops")
    report = check_reach(broken)
    assert not report.passed and report.gate is None and "ZeroDivisionError" in str(report)
    report = check_reach(lambda k, d, t: float(right_reach(k, d, t)))
    assert not report.passed and "expected an int" in str(report)


def test_check_ablation_guess_against_the_table():
    tables = ablation.task_tables("memory")
    keys = list(next(iter(tables.values()))[2])
    median = {key: np.median([table[key] for _, _, table in tables.values()]) for key in keys}
    worst, mildest = max(median, key=median.get), min(median, key=median.get)
    assert median[mildest] * 2 < median[worst]          # else the test below tells nothing
    assert check_ablation_guess({"memory": worst}, tasks=("memory",)).passed
    report = check_ablation_guess({"memory": mildest}, tasks=("memory",))
    assert not report.passed and report.gate == "memory" and report.points(2) == 0
    assert "memory: forcing" in str(report) and str(worst) not in str(report)
    report = check_ablation_guess({"memory": ("z_f", 0.7, "main")}, tasks=("memory",))
    assert not report.passed and "not an intervention" in str(report)
    report = check_ablation_guess({"forget": worst}, tasks=("memory",))
    assert not report.passed and "no 'memory'" in str(report)
    assert not check_ablation_guess([worst]).passed
    assert check_ablation_guess(lambda task: worst, tasks=("memory",)).passed  # a function
    report = check_ablation_guess(lambda task: {}[task])
    assert not report.passed and "KeyError" in str(report)


def test_check_ablation_guess_grades_every_task_the_notebook_asks_about():
    """By default each task of ablation.TASKS is a case: the worst measured intervention of
    each passes, and the mildest of one task (far from its worst) costs that task's point
    only. Oracle: the medians of ablation.task_tables, computed here."""
    worst, mildest = {}, {}
    for task in ablation.TASKS:
        tables = ablation.task_tables(task)
        keys = list(next(iter(tables.values()))[2])
        median = {key: np.median([table[key] for _, _, table in tables.values()]) for key in keys}
        worst[task] = max(median, key=median.get)
        mildest[task] = min(median, key=median.get)
        assert median[mildest[task]] * 2 < median[worst[task]], task   # else nothing is tested
    report = check_ablation_guess(worst)
    assert report.passed and len(report.cases) == len(ablation.TASKS)
    assert float(report.points(3)) == 3
    for task in ablation.TASKS:
        report = check_ablation_guess({**worst, task: mildest[task]})
        assert not report.passed and report.gate == task, task
        assert float(report.points(3)) == 2, task
        assert str(worst[task]) not in str(report), task   # the report does not tell


def right_scaled(candidate, expected):
    result = {}
    for key in expected:
        if key.startswith("layer"):
            name = key.split("/")[1]
            error = np.abs(candidate[key] - expected[key]).max() / np.abs(expected[key]).max()
            result[name] = max(result.get(name, 0.0), error)
    return result


def test_check_scaled_errors():
    assert check_scaled_errors(right_scaled).passed
    assert check_scaled_errors(right_scaled, seed=2029, count=8).passed

    def absolute(candidate, expected):                 # not divided by the scale
        return {key.split("/")[1]: np.abs(candidate[key] - expected[key]).max()
                for key in expected if key.startswith("layer0")}

    def last_layer(candidate, expected):               # each layer overwrites the one before
        return {key.split("/")[1]: np.abs(candidate[key] - expected[key]).max()
                / np.abs(expected[key]).max() for key in expected if key.startswith("layer")}

    def mean_not_max(candidate, expected):
        return {key.split("/")[1]: np.abs(candidate[key] - expected[key]).mean()
                / np.abs(expected[key]).max() for key in expected if key.startswith("layer")}

    for wrong in (absolute, last_layer, mean_not_max):
        report = check_scaled_errors(wrong)
        assert not report.passed and report.gate in LSTM_QUANTITIES, wrong
        assert "your " + report.gate + " is too" in str(report)
    report = check_scaled_errors(lambda c, e: [1.0])
    assert not report.passed and "expected a dict" in str(report)


def right_first(errors, atol):
    layers = sorted({int(key.split("/")[0][5:]) for key in errors})
    for t in range(len(next(iter(errors.values())))):
        for layer in layers:
            for name in LSTM_QUANTITIES:
                value = errors.get(f"layer{layer}/{name}")
                if value is not None and not value[t] <= atol:
                    return layer, name, t
    return None


def test_check_first_failure():
    report = check_first_failure(right_first)
    assert report.passed, str(report)
    assert check_first_failure(right_first, seed=2029, count=12).passed
    # the default cases hold a NaN, a table that passes, and several layers
    seen = []
    check_first_failure(lambda errors, atol: seen.append((errors, atol)) or right_first(errors, atol))
    assert any(np.isnan(v).any() for e, _ in seen for v in e.values())
    assert any(right_first(e, atol) is None for e, atol in seen)
    assert any(len({k.split("/")[0] for k in e}) > 1 for e, _ in seen)

    def layer_first(errors, atol):                      # a layer's every step before the next layer
        layers = sorted({int(key.split("/")[0][5:]) for key in errors})
        for layer in layers:
            for t in range(len(next(iter(errors.values())))):
                for name in LSTM_QUANTITIES:
                    if not errors[f"layer{layer}/{name}"][t] <= atol:
                        return layer, name, t
        return None

    def nan_is_fine(errors, atol):
        return right_first({k: np.nan_to_num(v, nan=0.0) for k, v in errors.items()}, atol)

    def alphabetical(errors, atol):
        for t in range(len(next(iter(errors.values())))):
            for key in sorted(errors):
                if not errors[key][t] <= atol:
                    layer, name = key.split("/")
                    return int(layer[5:]), name, t
        return None

    for wrong in (layer_first, nan_is_fine, alphabetical, lambda errors, atol: None):
        report = check_first_failure(wrong, count=12)
        assert not report.passed and report.gate == "first_failure", wrong
        assert report.points(2) < 2
