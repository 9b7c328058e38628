"""refconv.exercises: the checkers pass a right solution and point at the gate a wrong one breaks."""

import numpy as np
import pytest

from refconv import conv_nd, layer_norm, sigmoid
from refconv.exercises import (GRU_ORDER, LSTM_ORDER, Report, check_gru_step,
                               check_lstm_step)


def lstm_solution(x, c, h, params, peephole, normalize, forget_bias, bug=None):
    """A learner's ConvLSTM step, written from the equations; ``bug`` plants one mistake."""
    xh = np.concatenate([h, x] if bug == "concat h first" else [x, h], axis=-1)
    y = conv_nd(xh, params["kernel"])
    if not normalize:
        y = y + params["bias"]
    z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
    if peephole:
        z_i = z_i + params["W_ci"] * c
        z_f = z_f + params["W_cf"] * c

    def ln(v, name):
        if bug == "no gamma":
            return layer_norm(v, np.ones_like(params[name + "/gamma"]), params[name + "/beta"])
        return layer_norm(v, params[name + "/gamma"], params[name + "/beta"])

    if normalize:
        z, z_i, z_f = ln(z, "z"), ln(z_i, "z_i"), ln(z_f, "z_f")
    z_f = sigmoid(z_f if bug == "no forget bias" else z_f + forget_bias)
    z_i = sigmoid(z_i)
    z = np.tanh(z)
    c_new = c * z_f + z_i * z
    if peephole:
        z_o = z_o + params["W_co"] * (c if bug == "z_o peephole reads old c" else c_new)
    if normalize:
        z_o = ln(z_o, "z_o")
        if bug != "c not normalised":
            c_new = ln(c_new, "c")
    z_o = sigmoid(z_o)
    h_new = z_o * np.tanh(c_new)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}


def gru_solution(x, h, params, normalize, bug=None):
    y = conv_nd(np.concatenate([x, h], axis=-1), params["gates/kernel"])
    if not normalize:
        y = y + params["gates/bias"]
    r, u = np.split(y, 2, axis=-1)
    if normalize:
        r = layer_norm(r, params["r/gamma"], params["r/beta"])
        u = layer_norm(u, params["u/gamma"], params["u/beta"])
    r, u = sigmoid(r), sigmoid(u)
    hidden = h if bug == "reset after the convolution" else r * h
    y = conv_nd(np.concatenate([x, hidden], axis=-1), params["candidate/kernel"])
    if bug == "reset after the convolution":
        y = r * y
    if normalize:
        y = layer_norm(y, params["candidate/gamma"], params["candidate/beta"])
    else:
        y = y + params["candidate/bias"]
    candidate = np.tanh(y)
    if bug == "update swapped":
        h_new = (1 - u) * h + u * candidate
    else:
        h_new = u * h + (1 - u) * candidate
    return {"r": r, "u": u, "candidate": candidate, "h": h_new}


def with_bug(solution, bug):
    def student(*args, **options):
        return solution(*args, bug=bug, **options)
    student.__name__ = bug.replace(" ", "_")
    return student


def test_a_right_lstm_step_passes():
    report = check_lstm_step(lstm_solution)
    assert isinstance(report, Report)
    assert report.passed
    assert report.gate is None and report.step is None and report.error is None
    assert len(report.cases) == 4 and all(case.passed for case in report.cases)
    assert [(c.options["peephole"], c.options["normalize"]) for c in report.cases] == \
        [(False, False), (True, False), (False, True), (True, True)]
    text = str(report)
    assert text.startswith("check_lstm_step(lstm_solution): PASSED")
    assert text.count("passed") == 4
    assert repr(report) == "<Report check_lstm_step: PASSED>"


@pytest.mark.parametrize("bug, gate, failing_cases", [
    ("z_o peephole reads old c", "z_o", [2, 4]),
    ("no forget bias", "z_f", [1, 2, 3, 4]),
    ("concat h first", "z", [1, 2, 3, 4]),
    ("no gamma", "z", [3, 4]),
    ("c not normalised", "c", [3, 4]),
])
def test_a_wrong_lstm_step_is_pinned_to_its_gate(bug, gate, failing_cases):
    report = check_lstm_step(with_bug(lstm_solution, bug))
    assert not report.passed
    assert report.gate == gate
    assert report.step == 0          # the random initial state makes every bug show at once
    assert report.error > 1e-3
    assert [n for n, case in enumerate(report.cases, 1) if not case.passed] == failing_cases
    for case in report.cases:
        if not case.passed:
            assert case.first.name == gate
            row = case.names.index(gate)
            assert np.all(case.errors[:row] == 0)        # everything before the gate is right
            assert np.all(case.errors[row] > 0)
    text = str(report)
    assert f"{gate} differs first" in text
    assert f"first difference: {gate} at time step 0" in text
    assert "hint:" in text
    assert repr(report) == f"<Report check_lstm_step: FAILED, {gate} at time step 0>"


def test_the_report_says_where_and_by_how_much():
    report = check_lstm_step(with_bug(lstm_solution, "z_o peephole reads old c"),
                             cases={"peephole": True, "normalize": False})
    m = report.mismatch
    assert (m.name, m.step) == ("z_o", 0)
    assert len(m.index) == 4                            # [batch, y, x, channel]
    assert m.error == pytest.approx(abs(m.yours - m.reference))
    assert 0 < m.count <= m.size == 2 * 9 * 8 * 3
    case = report.failed_case
    assert case.wrong_at_first_step == ["z_o", "h"]
    assert case.errors.shape == (len(LSTM_ORDER), 4)
    text = str(report)
    assert "right before it at that step: z, z_i, z_f, c" in text
    assert "also wrong at that step (maybe only because of z_o): h" in text
    assert f"max |yours - reference| = {m.error:.3g}" in text
    assert "t=3" in text
    assert "hint:" not in str(check_lstm_step(with_bug(lstm_solution, "no forget bias"),
                                              cases={}, hints=False))


def test_teacher_forcing_judges_each_step_on_its_own():
    """A mistake made only at step 2 is reported at step 2, and steps 0, 1 and 3 pass."""
    calls = []

    def wrong_at_step_2(x, c, h, params, **options):
        calls.append(1)
        gates = lstm_solution(x, c, h, params, **options)
        if len(calls) == 3:
            gates["z_i"] = gates["z_i"] + 0.01
        return gates

    report = check_lstm_step(wrong_at_step_2, cases={})
    assert (report.gate, report.step) == ("z_i", 2)
    errors = report.cases[0].errors
    assert np.all(errors[:, [0, 1, 3]] == 0)
    assert errors[LSTM_ORDER.index("z_i"), 2] == pytest.approx(0.01)


def test_the_learner_cannot_change_the_reference():
    def vandal(x, c, h, params, **options):
        gates = lstm_solution(x, c, h, params, **options)
        for array in (x, c, h, *params.values()):
            array[...] = 0
        return gates

    assert check_lstm_step(vandal).passed


@pytest.mark.parametrize("student, problem", [
    (lambda x, c, h, params, **o: {"z": 1 / 0}, "ZeroDivisionError"),
    (lambda x, c, h, params, **o: [1, 2], "expected a dict"),
    (lambda x, c, h, params, **o: {}, "your dict has no 'z'"),
    (lambda x, c, h, params, **o: {**lstm_solution(x, c, h, params, **o), "z_i": c[0]},
     "'z_i' has shape [9, 8, 3], expected [2, 9, 8, 3]"),
    (lambda x, c, h, params, **o: {**lstm_solution(x, c, h, params, **o), "z_f": "open"},
     "not an array of numbers"),
])
def test_broken_functions_are_reported_not_raised(student, problem):
    report = check_lstm_step(student)
    assert not report.passed
    assert report.step == 0
    assert problem in str(report)


def test_an_exception_names_the_learners_line():
    def raises(x, c, h, params, **options):
        return {"z": params["no such parameter"]}

    report = check_lstm_step(raises)
    assert report.gate is None and report.error == float("inf")
    text = str(report)
    assert "raised an exception" in text and "KeyError" in text
    assert "in raises" in text and "refconv/exercises.py" not in text
    assert " exercises.py" not in text and "in call" not in text
    assert text.count("raised as in case 1") == 3


def test_nan_counts_as_wrong():
    def nan_h(x, c, h, params, **options):
        gates = lstm_solution(x, c, h, params, **options)
        gates["h"] = gates["h"] * np.nan
        return gates

    report = check_lstm_step(nan_h, cases={})
    assert report.gate == "h" and report.error == float("inf")


def test_lstm_cases_and_sizes_are_options():
    report = check_lstm_step(lstm_solution, cases=[{"forget_bias": 0.3, "peephole": False}],
                             shape=(10,), kernel=(4,), channels=1, filters=2, timesteps=3,
                             batch_size=1, seed=7)
    assert report.passed
    assert report.cases[0].options == {"peephole": False, "normalize": True, "forget_bias": 0.3}
    assert report.cases[0].errors.shape == (6, 3)
    with pytest.raises(ValueError, match="cases"):
        check_lstm_step(lstm_solution, cases=[{"dropout": 0.5}])
    with pytest.raises(ValueError, match="cases"):
        check_lstm_step(lstm_solution, cases=[])


def test_a_right_gru_step_passes():
    report = check_gru_step(gru_solution)
    assert report.passed
    assert [case.options for case in report.cases] == [{"normalize": False}, {"normalize": True}]
    assert str(report).startswith("check_gru_step(gru_solution): PASSED")


@pytest.mark.parametrize("bug, gate", [
    ("reset after the convolution", "candidate"),
    ("update swapped", "h"),
])
def test_a_wrong_gru_step_is_pinned_to_its_gate(bug, gate):
    report = check_gru_step(with_bug(gru_solution, bug))
    assert (report.gate, report.step) == (gate, 0)
    assert all(not case.passed for case in report.cases)
    row = GRU_ORDER.index(gate)
    assert np.all(report.failed_case.errors[:row] == 0)
    if gate == "h":
        assert "u keeps the OLD h" in str(report)
