"""refconv.exercises: the checkers pass a right solution and point at the gate (or gradient) a wrong one breaks."""

import numpy as np
import pytest

from refconv import (LSTMStateTuple, conv_nd, conv_nd_backward, layer_norm, layer_norm_backward,
                     lstm_step, lstm_step_backward, sigmoid)
from refconv.exercises import (GRU_ORDER, LSTM_BACKWARD_ORDER, LSTM_ORDER, Report,
                               check_gru_step, check_lstm_step, check_lstm_step_backward)


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


# The four cases the checkers used before they drew random ones: tests that count failing
# cases by the switches pass them explicitly.
FOUR = [{"peephole": p, "normalize": n, "forget_bias": 1.0}
        for p, n in ((False, False), (True, False), (False, True), (True, True))]


def with_bug(solution, bug):
    def student(*args, **options):
        return solution(*args, bug=bug, **options)
    student.__name__ = bug.replace(" ", "_")
    return student


def test_a_right_lstm_step_passes():
    report = check_lstm_step(lstm_solution, FOUR)
    assert isinstance(report, Report)
    assert report.passed
    assert report.gate is None and report.step is None and report.error is None
    assert len(report.cases) == 4 and all(case.passed for case in report.cases)
    assert [(c.options["peephole"], c.options["normalize"]) for c in report.cases] == \
        [(False, False), (True, False), (False, True), (True, True)]
    text = str(report) + "\n" + report.details()
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
    report = check_lstm_step(with_bug(lstm_solution, bug), FOUR)
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
    text = str(report) + "\n" + report.details()
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
    text = str(report) + "\n" + report.details()
    assert "right before it at that time step: z, z_i, z_f, c" in text
    assert "also wrong at that time step (maybe only because of z_o): h" in text
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
    (lambda x, c, h, params, **o: {}, "your result has no 'z'"),
    (lambda x, c, h, params, **o: {**lstm_solution(x, c, h, params, **o), "z_i": c[0]},
     "'z_i' has shape [9, 8, 3], expected [2, 9, 8, 3]"),
    (lambda x, c, h, params, **o: {**lstm_solution(x, c, h, params, **o), "z_f": "open"},
     "not an array of numbers"),
])
def test_broken_functions_are_reported_not_raised(student, problem):
    report = check_lstm_step(student)
    assert not report.passed
    assert report.step == 0
    assert problem in (str(report) + report.details())


def test_an_exception_names_the_learners_line():
    def raises(x, c, h, params, **options):
        return {"z": params["no such parameter"]}

    report = check_lstm_step(raises)
    assert report.gate is None and report.error == float("inf")
    text = str(report) + "\n" + report.details()
    assert "raised an exception" in text and "KeyError" in text
    assert "in raises" in text and "refconv/exercises.py" not in text
    assert " exercises.py" not in text and "in call" not in text
    assert text.count("raised as in case 1") == len(report.cases) - 1


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
    assert [case.options for case in report.cases] == [{"normalize": False}, {"normalize": True}] * 2
    assert [case.setup["dtype"] for case in report.cases] == ["float64"] * 2 + ["float32"] * 2
    assert (str(report) + report.details()).startswith("check_gru_step(gru_solution): PASSED")


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
        assert "u keeps the OLD h" in (str(report) + report.details())


# ------------------------------------------------------------------ the backward step

def lstm_backward_solution(d_h, d_c, cache, params, peephole, normalize, forget_bias, bug=None):
    """A learner's backward ConvLSTM step, from the forward's lines undone in reverse order.

    Written from refconv's building blocks (conv_nd_backward, layer_norm_backward),
    not from lstm_step_backward; ``bug`` plants one mistake.
    """
    k = cache
    g = {}

    def ln_backward(v, d_out, name):   # (d_v, d_gamma, d_beta)
        d_v, d_gamma, d_beta = layer_norm_backward(v, params[name + "/gamma"], d_out)
        g["d_" + name + "/gamma"], g["d_" + name + "/beta"] = d_gamma, d_beta
        return d_v

    tanh_c = np.tanh(k["c"])
    g["d_z_o"] = d_h * tanh_c
    if bug == "no tanh derivative on c":
        g["d_c"] = d_c + d_h * k["z_o"]
    else:
        g["d_c"] = d_c + d_h * k["z_o"] * (1 - tanh_c ** 2)
    d_z_o_in = g["d_z_o"] * k["z_o"] * (1 - k["z_o"])
    d_c_in = g["d_c"]
    if normalize:
        d_z_o_in = ln_backward(k["z_o_in"], d_z_o_in, "z_o")
        d_c_in = d_c_in if bug == "no layer norm backward for c" else ln_backward(k["c_in"], d_c_in, "c")
        if bug == "no layer norm backward for c":
            g["d_c/gamma"], g["d_c/beta"] = layer_norm_backward(k["c_in"], params["c/gamma"], g["d_c"])[1:]
    if peephole:
        c_for_w_co = k["c"] if bug == "W_co gradient from the normalised c" else k["c_in"]
        g["d_W_co"] = (d_z_o_in * c_for_w_co).sum(axis=0)
        d_c_in = d_c_in + d_z_o_in * params["W_co"]
    g["d_z_o_in"], g["d_c_in"] = d_z_o_in, d_c_in
    g["d_z_f"] = d_c_in * k["c_prev"]
    g["d_z_i"] = d_c_in * k["z"]
    g["d_z"] = d_c_in * k["z_i"]
    if bug == "no sigmoid derivative on z_f":
        d_z_f_in = g["d_z_f"]
    else:
        d_z_f_in = g["d_z_f"] * k["z_f"] * (1 - k["z_f"])
    d_z_i_in = g["d_z_i"] * k["z_i"] * (1 - k["z_i"])
    d_z_in = g["d_z"] * (1 - k["z"] ** 2)
    if normalize:
        d_z_f_in = ln_backward(k["z_f_in"], d_z_f_in, "z_f")
        d_z_i_in = ln_backward(k["z_i_in"], d_z_i_in, "z_i")
        d_z_in = ln_backward(k["z_in"], d_z_in, "z")
    g["d_z_f_in"], g["d_z_i_in"], g["d_z_in"] = d_z_f_in, d_z_i_in, d_z_in
    g["d_c_prev"] = np.zeros_like(d_c) if bug == "no forget path" else d_c_in * k["z_f"]
    if peephole:
        c_for_w_ci = k["c_in"] if bug == "W_ci gradient from the new c" else k["c_prev"]
        g["d_W_ci"] = (d_z_i_in * c_for_w_ci).sum(axis=0)
        g["d_W_cf"] = (d_z_f_in * k["c_prev"]).sum(axis=0)
        if bug != "no peephole path into d_c_prev":
            g["d_c_prev"] = g["d_c_prev"] + d_z_i_in * params["W_ci"] + d_z_f_in * params["W_cf"]
    d_y = np.concatenate([d_z_in, d_z_i_in, d_z_f_in, d_z_o_in], axis=-1)
    if not normalize:
        g["d_bias"] = d_y.sum(axis=0) if bug == "bias gradient not summed over space" \
            else d_y.sum(axis=(0, 1, 2))
    xh = np.concatenate([k["x"], k["h_prev"]], axis=-1)
    d_xh, g["d_kernel"] = conv_nd_backward(xh, params["kernel"], d_y)
    channels = k["x"].shape[-1]
    if bug == "h first in the split":
        g["d_h_prev"], g["d_x"] = np.split(d_xh, [d_xh.shape[-1] - channels], axis=-1)
    else:
        g["d_x"], g["d_h_prev"] = np.split(d_xh, [channels], axis=-1)
    return g


@pytest.fixture(scope="module")
def right_backward_report():
    return check_lstm_step_backward(lstm_backward_solution, FOUR)


def test_a_right_backward_step_passes(right_backward_report):
    report = right_backward_report
    assert report.passed, (str(report) + report.details())
    assert [(c.options["peephole"], c.options["normalize"]) for c in report.cases] == \
        [(False, False), (True, False), (False, True), (True, True)]
    # the order a backward step computes them in: the notebook and the report rely on it
    assert LSTM_BACKWARD_ORDER == ("d_z_o", "d_c", "d_z_o_in", "d_c_in", "d_z_f", "d_z_i", "d_z",
                                   "d_z_f_in", "d_z_i_in", "d_z_in", "d_c_prev", "d_x", "d_h_prev")
    # every gradient was compared, at every step, and agreed
    for case in report.cases:
        assert case.names[:len(LSTM_BACKWARD_ORDER)] == LSTM_BACKWARD_ORDER
        assert np.all(case.errors == 0)
    assert report.cases[0].names[len(LSTM_BACKWARD_ORDER):] == ("d_kernel", "d_bias")
    assert report.cases[1].names[len(LSTM_BACKWARD_ORDER):] == \
        ("d_kernel", "d_bias", "d_W_ci", "d_W_cf", "d_W_co")
    assert report.cases[3].names[-2:] == ("d_c/gamma", "d_c/beta")
    assert len(report.cases[3].names) == len(LSTM_BACKWARD_ORDER) + 1 + 3 + 10
    assert (str(report) + report.details()).startswith("check_lstm_step_backward(lstm_backward_solution): PASSED")


@pytest.mark.parametrize("bug, gradient, failing_cases", [
    ("no tanh derivative on c", "d_c", [1, 2, 3, 4]),
    ("no layer norm backward for c", "d_c_in", [3, 4]),
    ("no sigmoid derivative on z_f", "d_z_f_in", [1, 2, 3, 4]),
    ("no forget path", "d_c_prev", [1, 2, 3, 4]),
    ("no peephole path into d_c_prev", "d_c_prev", [2, 4]),
    ("h first in the split", "d_x", [1, 2, 3, 4]),
    ("W_ci gradient from the new c", "d_W_ci", [2, 4]),
    ("W_co gradient from the normalised c", "d_W_co", [4]),
    ("bias gradient not summed over space", "d_bias", [1, 2]),
])
def test_a_wrong_backward_step_is_pinned_to_its_gradient(bug, gradient, failing_cases):
    report = check_lstm_step_backward(with_bug(lstm_backward_solution, bug), FOUR)
    assert not report.passed
    assert (report.gate, report.step) == (gradient, 0)
    assert report.error > 1e-3
    assert [n for n, case in enumerate(report.cases, 1) if not case.passed] == failing_cases
    for case in report.cases:
        if not case.passed:
            row = case.names.index(gradient)
            assert case.first.name == gradient
            assert np.all(case.errors[:row] == 0)        # every gradient before it is right
            assert np.all(case.errors[row] > 0)          # and it is wrong at every step
    text = str(report) + "\n" + report.details()
    assert text.startswith(f"check_lstm_step_backward({bug.replace(' ', '_')}): FAILED")
    assert f"{gradient} differs first" in text and "hint:" in text


def test_the_backward_report_says_where_and_by_how_much():
    report = check_lstm_step_backward(with_bug(lstm_backward_solution, "no forget path"),
                                      cases={"peephole": False, "normalize": False})
    m = report.mismatch
    assert (m.name, m.step) == ("d_c_prev", 0)
    assert m.error == pytest.approx(abs(m.yours - m.reference)) and m.yours == 0
    assert m.count == m.size == 2 * 9 * 8 * 3          # every value of d_c_prev is wrong
    text = str(report) + "\n" + report.details()
    assert "right before it at that time step: d_z_o, d_c, d_z_o_in, d_c_in, d_z_f" in text
    assert "the memory's highway" in text               # the hint for d_c_prev
    assert "at [batch, *position, channel] = [" in text
    report = check_lstm_step_backward(with_bug(lstm_backward_solution, "W_co gradient from the normalised c"),
                                      cases={})
    assert report.gate == "d_W_co"
    assert len(report.mismatch.index) == 3 and "at [*position, channel] = [" in (str(report) + report.details())
    assert "also wrong at that time step" not in (str(report) + report.details())  # nothing else depends on d_W_co


def test_the_backward_reference_is_refconvs_own_backward():
    """The intermediate gradients the checker compares lead to lstm_step_backward's results."""
    from refconv.exercises.backward import reference_step_gradients as _lstm_backward_reference
    from refconv.exercises.cells import lstm_run as _lstm_run

    for options in ({"peephole": True, "normalize": True, "forget_bias": 0.5},
                    {"peephole": True, "normalize": False, "forget_bias": 1.0}):
        setup = {"kernel": (3, 3), "dtype": "float64", "seed": 3}
        video, cell, params, state, rng = _lstm_run(options, setup, (9, 8), 2, 3, 2, 1)
        _, _, cache = lstm_step(video[:, 0], state, params, cell)
        d_h, d_c = rng.standard_normal(cache.h.shape), rng.standard_normal(cache.c.shape)
        g = _lstm_backward_reference(d_h, d_c, cache, params, cell)
        d_y = np.concatenate([g["d_z_in"], g["d_z_i_in"], g["d_z_f_in"], g["d_z_o_in"]], axis=-1)
        d_xh, d_kernel = conv_nd_backward(np.concatenate([cache.x, cache.h_prev], axis=-1),
                                          params["kernel"], d_y)
        assert np.allclose(d_xh[..., :2], g["d_x"]) and np.allclose(d_xh[..., 2:], g["d_h_prev"])
        assert np.allclose(d_kernel, g["d_kernel"])
        d_c_prev = (g["d_c_in"] * cache.z_f + g["d_z_i_in"] * params["W_ci"]
                    + g["d_z_f_in"] * params["W_cf"])
        assert np.allclose(d_c_prev, g["d_c_prev"])
        assert np.allclose((g["d_z_o_in"] * cache.c_in).sum(axis=0), g["d_W_co"])
        # d_h and d_c are the whole upstream gradient: no second h-gradient is hiding
        d_x, _, _ = lstm_step_backward(d_h, LSTMStateTuple(d_c, d_h), cache, params, cell)
        assert not np.allclose(d_x, g["d_x"])


def test_a_broken_backward_step_is_reported_not_raised():
    def raises(d_h, d_c, cache, params, **options):
        return {"d_z_o": d_h * np.tanh(cache["c_new"])}      # no such key: c_new

    report = check_lstm_step_backward(raises)
    assert not report.passed and report.gate is None and report.step == 0
    text = str(report) + "\n" + report.details()
    assert "raised an exception" in text and "KeyError: 'c_new'" in text and "in raises" in text

    def forgets_a_gradient(d_h, d_c, cache, params, **options):
        g = lstm_backward_solution(d_h, d_c, cache, params, **options)
        g.pop("d_W_cf", None)
        return g

    report = check_lstm_step_backward(forgets_a_gradient)
    assert report.gate == "d_W_cf" and [c.passed for c in report.cases] == \
        [not case["peephole"] for case in (c.options for c in report.cases)]
    assert "your result has no 'd_W_cf'" in (str(report) + report.details())

    def not_a_dict(d_h, d_c, cache, params, **options):
        return d_h

    assert "expected a dict of gradients" in str(check_lstm_step_backward(not_a_dict, cases={}))


def test_the_backward_checker_judges_each_step_and_protects_its_reference():
    calls = []

    def wrong_at_step_2_and_vandal(d_h, d_c, cache, params, **options):
        calls.append(1)
        g = lstm_backward_solution(d_h, d_c, cache, params, **options)
        for array in (d_h, d_c, *cache.values(), *params.values()):
            array[...] = 0
        if len(calls) == 3:
            g["d_kernel"] = g["d_kernel"] * 1.01
        return g

    report = check_lstm_step_backward(wrong_at_step_2_and_vandal, cases={})
    assert (report.gate, report.step) == ("d_kernel", 2)
    errors = report.cases[0].errors
    assert np.all(errors[:, [0, 1, 3]] == 0)
    assert "at [*kernel offset, in channel, out channel] = [" in (str(report) + report.details())


def test_the_backward_checker_takes_options():
    report = check_lstm_step_backward(lstm_backward_solution,
                                      cases=[{"forget_bias": 0.3, "peephole": False}],
                                      shape=(8, 11), channels=1, filters=2, timesteps=2,
                                      batch_size=3, seed=5)
    assert report.passed
    assert report.cases[0].errors.shape == (len(LSTM_BACKWARD_ORDER) + 11, 2)
    with pytest.raises(ValueError, match="cases"):
        check_lstm_step_backward(lstm_backward_solution, cases=[{"dropout": 0.5}])


# ------------------------------------------------------------------ the ladder and its named mistakes

def plain_solution(x, c, h, params, forget_bias, bug=None):
    y = conv_nd(np.concatenate([x, h], axis=-1), params["kernel"]) + params["bias"]
    blocks = np.split(y, 4, axis=-1)
    z, z_i, z_f, z_o = [blocks[j] for j in ((2, 0, 1, 3) if bug == "keras order" else range(4))]
    if bug == "no forget bias":
        z_f = sigmoid(z_f)
    elif bug == "hard-coded forget bias":
        z_f = sigmoid(z_f + 1.0)
    else:
        z_f = sigmoid(z_f + forget_bias)
    z_i, z = sigmoid(z_i), np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = sigmoid(z_o)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": z_o * np.tanh(c_new)}


def per_channel_layer_norm(v, gamma, beta, axis, eps):
    spatial = tuple(a for a in range(1, v.ndim) if a != axis % v.ndim)
    shape = [1] * v.ndim
    shape[axis] = -1
    v_hat = (v - v.mean(axis=spatial, keepdims=True)) / np.sqrt(v.var(axis=spatial, keepdims=True) + eps)
    return gamma.reshape(shape) * v_hat + beta.reshape(shape)


def full_solution(x, c, h, params, forget_bias, norm_epsilon, data_format, bug=None):
    axis = 1 if data_format == "channels_first" else -1

    def ln(v, name):
        norm = per_channel_layer_norm if bug == "per-channel layer norm" else layer_norm
        return norm(v, params[name + "/gamma"], params[name + "/beta"], axis, norm_epsilon)

    y = conv_nd(np.concatenate([x, h], axis=axis), params["kernel"], data_format=data_format)
    z, z_i_raw, z_f, z_o = np.split(y, 4, axis=axis)
    z_f = sigmoid(ln(z_f + params["W_cf"] * c, "z_f") + forget_bias)
    z = np.tanh(ln(z, "z"))
    z_i = sigmoid(ln(z_i_raw + params["W_ci"] * c, "z_i"))
    if bug == "peephole on the new c for z_i":
        c_first = c * z_f + z_i * z
        z_i = sigmoid(ln(z_i_raw + params["W_ci"] * c_first, "z_i"))
    c_new = c * z_f + z_i * z
    z_o = z_o + params["W_co"] * c_new
    z_o, c_new = sigmoid(ln(z_o, "z_o")), ln(c_new, "c")
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": z_o * np.tanh(c_new)}


def test_the_ladder_passes_right_solutions_in_every_case():
    from refconv.exercises import check_layer_norm_step, check_peephole_step, check_plain_step
    plain = check_plain_step(plain_solution)
    assert plain.passed, str(plain)
    full = check_layer_norm_step(full_solution)
    assert full.passed, full.details()
    formats = {case.options["data_format"] for case in full.cases}
    dtypes = {case.setup["dtype"] for case in full.cases + plain.cases}
    kernels = {case.setup["kernel"] for case in plain.cases}
    forget_biases = [case.options["forget_bias"] for case in plain.cases + full.cases]
    assert formats == {"channels_first", "channels_last"} and dtypes == {"float32", "float64"}
    assert any(k[0] % 2 == 0 or k[1] % 2 == 0 for k in kernels)
    assert all(abs(fb - 1.0) >= 0.25 for fb in forget_biases) and len(set(forget_biases)) > 3
    assert {case.options["norm_epsilon"] for case in full.cases} - {1e-12}
    assert not check_peephole_step(plain_solution).passed       # the peepholes are needed


@pytest.mark.parametrize("bug, gate, named", [
    ("no forget bias", "z_f", "no forget_bias"),
    ("hard-coded forget bias", "z_f", "hard-coded"),
    ("keras order", "z", "Keras"),
])
def test_plain_step_mistakes_are_named(bug, gate, named):
    from refconv.exercises import check_plain_step
    report = check_plain_step(with_bug(plain_solution, bug))
    assert report.points(2) == 0 and report.gate == gate and report.step == 0
    assert named in report.mistake and named in str(report)
    assert len(str(report).splitlines()) <= 10                  # compact: no 59-line report


@pytest.mark.parametrize("bug, gate, named", [
    ("per-channel layer norm", "z", "per-channel"),
    ("peephole on the new c for z_i", "z_i", None),
])
def test_layer_norm_step_mistakes_are_named(bug, gate, named):
    from refconv.exercises import check_layer_norm_step
    report = check_layer_norm_step(with_bug(full_solution, bug))
    assert report.points(3) == 0 and report.gate == gate
    assert f"{gate} differs first" in str(report)
    if named:
        assert named in report.mistake


def test_gru_u_swapped_is_named():
    report = check_gru_step(with_bug(gru_solution, "update swapped"))
    assert report.gate == "h" and "u and 1 - u swapped" in report.mistake


def test_backward_d_W_co_with_the_normalised_c_is_named():
    report = check_lstm_step_backward(with_bug(lstm_backward_solution,
                                               "W_co gradient from the normalised c"))
    assert report.gate == "d_W_co" and "normalised c" in report.mistake
    assert 0 < report.points(4) < 4


def test_tiered_hints():
    report = check_gru_step(with_bug(gru_solution, "update swapped"))
    nudge, formula = report.hint(1), report.hint(2)
    assert nudge != formula and "u * h_old" in formula
    assert nudge in str(report) and formula not in str(report) and formula in report.details()


def mask_solution(t, sequence_length, h_new, state_new, state_old, bug=None):
    alive = (t < sequence_length).reshape(-1, 1, 1, 1)
    output = np.where(alive, h_new, 0.0)
    if bug == "state zeroed":
        return output, LSTMStateTuple(*(np.where(alive, n, 0.0) for n in state_new))
    return output, LSTMStateTuple(*(np.where(alive, n, o) for n, o in zip(state_new, state_old)))


def test_masking_and_reversal():
    from refconv.exercises import check_mask_step, check_reverse_within_length
    assert check_mask_step(mask_solution).passed
    report = check_mask_step(with_bug(mask_solution, "state zeroed"))
    assert report.gate == "state_c" and "zero" in report.mistake and report.points(1) == 0

    def reverse(x, lengths):
        out = x.copy()
        for b, n in enumerate(lengths):
            out[b, :n] = x[b, :n][::-1]
        return out
    assert check_reverse_within_length(reverse).passed
    flipped = check_reverse_within_length(lambda x, lengths: x[:, ::-1])
    assert flipped.gate == "reversed" and "all T steps" in flipped.mistake


def test_padding_conv1d_bptt_and_bug_hunt():
    from refconv import conv_padding, lstm_step_backward
    from refconv.exercises import (Suspect, check_bptt, check_bug_hunt, check_conv1d,
                                   check_same_padding)
    assert check_same_padding(conv_padding).passed
    symmetric = check_same_padding(lambda n, k, s, d: (((k - 1) * d) // 2, ((k - 1) * d) // 2))
    assert symmetric.gate == "padding_before" and "symmetric" in symmetric.mistake

    def conv1d(x, kernel):
        k, width = kernel.shape[0], x.shape[1]
        xp = np.pad(x, ((0, 0), ((k - 1) // 2, k // 2), (0, 0)))
        return sum(xp[:, j:j + width] @ kernel[j] for j in range(k))
    assert check_conv1d(conv1d).passed
    assert "flipped" in check_conv1d(lambda x, w: conv1d(x, w[::-1])).mistake

    def bptt(cell, params, caches, d_outputs, d_final_state, bug=None):
        d_state, d_inputs, totals = d_final_state, [], {}
        for t in reversed(range(len(caches))):
            d_x, d_state, d_p = lstm_step_backward(d_outputs[:, t], d_state, caches[t], params, cell)
            d_inputs.insert(0, d_x)
            for name, value in d_p.items():
                totals[name] = value if bug else totals.get(name, 0) + value
        return {"d_inputs": np.stack(d_inputs, axis=1), "d_initial_c": d_state.c,
                "d_initial_h": d_state.h, **{"d_" + n: v for n, v in totals.items()}}
    assert check_bptt(bptt).passed
    overwritten = check_bptt(lambda *a: bptt(*a, bug=True))
    assert overwritten.gate == "d_kernel" and "add them up" in overwritten.mistake

    for seed in range(5):
        suspect = Suspect(seed)
        answer = {"step": 1, "gate": "z_i"} if seed in (0, 1) else None
        if answer:
            assert check_bug_hunt(answer, seed).passed, suspect.bug
    assert not check_bug_hunt({"step": 3, "gate": "z_i"}, 0).passed
