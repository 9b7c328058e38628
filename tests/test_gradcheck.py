"""``refconv.gradcheck`` itself: it sees a wrong backward, names the tensor (issue 18, item 2).

A backward that is wrong by 1 % in one tensor is planted by wrapping the
public step backward (``refconv.lstm_step_backward`` / ``gru_step_backward``)
wherever refconv's modules hold it, scaling one of its results by 1.01. That
tensor's total gradient is then 1.01 times the true one, and its relative
error must be ``0.01 / 1.01`` (over all its entries or any sample of them);
every other tensor stays exact, so gradcheck must report that tensor, and only
it, and not pass. On the default path (a full-length LSTM, no lengths) the
wrapped function is the public ``dynamic_rnn_grad`` itself.

The second half redoes gradcheck's arithmetic by hand on a tiny case: the
analytic gradients from ``dynamic_rnn_grad``, central differences computed
here (``_oracles.central_differences``) of the loss
``sum(outputs * d_outputs) + sum(final_state * d_state)`` with the readable
forward, and the relative error ``|a - n| / max(|a|, |n|)`` over each tensor.

The seam: the readable backward through time calls the step backward through
a module attribute (``ConvLSTMCell._step_backward`` -> ``lstm_step_backward``
of the module that defines it); ``_oracles.wrap_everywhere`` replaces it in
every refconv module that holds it, and :func:`check_report` checks that the
wrapper ran, naming the one place to update (:func:`plant`) if a restructuring
makes it unreachable. ``gradcheck`` checks the readable backward by default, with or
without ``sequence_length`` (both are run here). The fast path's backward (the
fused backward of a full-length LSTM, ``refconv.fast.lstm_grad``) is checked with
``fast=True``: the last test plants the fault in that function and requires the
fused backward to have run and its errors (``fast_errors``) to name the tensor.
"""

import numpy as np
import pytest

import refconv
from refconv import ConvGRUCell, ConvLSTMCell, LSTMStateTuple
from _oracles import central_differences, randomize, relative_error, wrap_everywhere

SCALE = 1.01
EXPECTED = (SCALE - 1) / SCALE  # |1.01 a - a| / |1.01 a|


def plant(monkeypatch, original, scale_result):
    """Wrap ``original`` (a public step backward) wherever refconv holds it, changing one tensor.

    ``scale_result(result) -> result`` changes one tensor of the step's
    ``(d_x, d_state, d_params)``. Returns a list that counts the calls.
    """
    return wrap_everywhere(monkeypatch, original, scale_result)


def scale_param(name):
    def scale(result):
        d_x, d_state, d_params = result
        d_params = dict(d_params)
        d_params[name] = d_params[name] * SCALE
        return d_x, d_state, d_params
    return scale


def scale_input(result):
    d_x, d_state, d_params = result
    return d_x * SCALE, d_state, d_params


def scale_state_c(result):
    d_x, d_state, d_params = result
    return d_x, LSTMStateTuple(d_state.c * SCALE, d_state.h), d_params


def lstm_case(seed, steps=3):
    rng = np.random.default_rng(seed)
    cell = ConvLSTMCell([3, 2], 2, [2, 1], forget_bias=0.5)
    cell.build(2, seed=seed)
    randomize(cell, rng, scale=0.4)
    inputs = rng.standard_normal((2, steps, 3, 2, 2))
    lengths = np.array([steps, steps - 1])
    return cell, inputs, lengths


def gru_case(seed):
    rng = np.random.default_rng(seed)
    cell = ConvGRUCell([4], 2, [3], normalize=True, data_format="channels_first")
    cell.build(1, seed=seed)
    randomize(cell, rng, scale=0.4)
    return cell, rng.standard_normal((2, 3, 1, 4))


def check_report(report, wrong, calls, fast=False):
    """``report`` names ``wrong`` alone, at 0.01 / 1.01; ``fast``: in its fast-path column."""
    assert calls, ("the planted backward never ran: gradcheck no longer reaches it through a "
                   "refconv module attribute; update plant() / the wrapped function in this file")
    assert not report.passed(), f"gradcheck passed a backward scaled by {SCALE} in {wrong}"
    errors = report.fast_errors if fast else report.errors
    assert errors[wrong] == pytest.approx(EXPECTED, rel=1e-4), str(report)
    assert max(errors, key=errors.get) == wrong
    others = {name: e for name, e in errors.items() if name != wrong}
    assert others and max(others.values()) < 1e-7, str(report)
    # The printed table names the tensor and its error on one line.
    lines = [line.split() for line in str(report).splitlines()]
    row = [wrong, str(report.checked[wrong]), f"{report.errors[wrong]:.2e}"]
    if fast:
        row.append(f"{report.fast_errors[wrong]:.2e}")
    assert row in lines, str(report)


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("wrong", ["kernel", "W_cf", "z_o/gamma", "c/beta", "inputs"])
def test_lstm_gradcheck_reports_the_scaled_tensor(monkeypatch, wrong, ragged):
    """The default checks the readable backward, full length (no lengths) or ragged."""
    cell, inputs, lengths = lstm_case(seed=1)
    scale = scale_input if wrong == "inputs" else scale_param(wrong)
    calls = plant(monkeypatch, refconv.lstm_step_backward, scale)
    report = refconv.gradcheck(cell, inputs, sequence_length=lengths if ragged else None,
                               max_entries=4, seed=3)
    check_report(report, wrong, calls)
    assert report.fast_errors is None  # not asked for


def test_lstm_gradcheck_reports_a_scaled_initial_state():
    """One step: the step's d_c_prev is the initial state's gradient and nothing else's."""
    cell, inputs, _ = lstm_case(seed=2, steps=1)
    lengths = np.array([1, 1])  # a row of length 0 would pass its d_state.c through unscaled
    with pytest.MonkeyPatch.context() as mp:
        calls = plant(mp, refconv.lstm_step_backward, scale_state_c)
        report = refconv.gradcheck(cell, inputs, sequence_length=lengths, max_entries=4,
                                   seed=4)
    check_report(report, "initial_state.c", calls)


@pytest.mark.parametrize("wrong", ["gates/kernel", "candidate/kernel", "u/beta", "inputs"])
def test_gru_gradcheck_reports_the_scaled_tensor(monkeypatch, wrong):
    cell, inputs = gru_case(seed=5)
    scale = scale_input if wrong == "inputs" else scale_param(wrong)
    calls = plant(monkeypatch, refconv.gru_step_backward, scale)
    report = refconv.gradcheck(cell, inputs, max_entries=4, seed=6)
    check_report(report, wrong, calls)


def test_sampled_entries_line_up_with_their_analytic_gradient(monkeypatch):
    """max_entries: the numeric entries are compared with the same entries of the analytic one."""
    cell, inputs, lengths = lstm_case(seed=7)
    report = refconv.gradcheck(cell, inputs, sequence_length=lengths, max_entries=5, seed=8)
    assert report.passed(), str(report)
    assert report.checked["kernel"] == 5 and report.checked["inputs"] == 5
    assert report.checked["z/gamma"] == 2  # smaller than max_entries: all of it
    calls = plant(monkeypatch, refconv.lstm_step_backward, scale_param("kernel"))
    report = refconv.gradcheck(cell, inputs, sequence_length=lengths, max_entries=5, seed=8)
    check_report(report, "kernel", calls)


@pytest.mark.parametrize("planted", [False, True])
def test_errors_equal_a_hand_computation(monkeypatch, planted):
    """A tiny LSTM (1-D, 3 pixels, F = 1, T = 2, lengths [2, 1]): every error and count by hand."""
    rng = np.random.default_rng(11)
    cell = ConvLSTMCell([3], 1, [2], forget_bias=0.3)
    cell.build(1, seed=11)
    randomize(cell, rng, scale=0.5)
    inputs = rng.standard_normal((2, 2, 3, 1))
    lengths = np.array([2, 1])
    state = LSTMStateTuple(rng.standard_normal((2, 3, 1)), rng.standard_normal((2, 3, 1)))
    d_out = rng.standard_normal((2, 2, 3, 1))
    d_state = LSTMStateTuple(rng.standard_normal((2, 3, 1)), rng.standard_normal((2, 3, 1)))
    if planted:
        plant(monkeypatch, refconv.lstm_step_backward, scale_param("W_co"))

    report = refconv.gradcheck(cell, inputs, sequence_length=lengths, initial_state=state,
                               d_outputs=d_out, d_state=d_state, eps=1e-6)

    # By hand: the same loss, differentiated numerically here.
    x, c0, h0 = inputs.copy(), state.c.copy(), state.h.copy()
    params = {name: np.array(v, dtype=float) for name, v in cell.params.items()}

    def loss():
        cell.params = params
        out, (c, h) = refconv.dynamic_rnn(cell, x, lengths, LSTMStateTuple(c0, h0),
                                          reference=True)
        return float((out * d_out).sum() + (c * d_state.c).sum() + (h * d_state.h).sum())

    grads = refconv.dynamic_rnn_grad(cell, x, d_out, d_state, sequence_length=lengths,
                                     initial_state=LSTMStateTuple(c0, h0))
    tensors = {"inputs": (x, grads.inputs), "initial_state.c": (c0, grads.initial_state.c),
               "initial_state.h": (h0, grads.initial_state.h)}
    tensors.update({name: (params[name], grads.params[name]) for name in params})
    assert set(report.errors) == set(tensors)
    for name, (value, analytic) in tensors.items():
        numeric = central_differences(loss, value, np.arange(value.size), eps=1e-6)
        by_hand = relative_error(analytic, numeric)
        assert report.checked[name] == value.size
        if planted and name == "W_co":
            assert by_hand == pytest.approx(EXPECTED, rel=1e-6)
            assert report.errors[name] == pytest.approx(by_hand, rel=1e-6), name
        else:
            # Only finite-difference noise on both sides: equal to what noise allows.
            assert by_hand < 1e-7 and report.errors[name] < 1e-7, name
    assert report.passed() is not planted
    assert report.max_error == max(report.errors.values())


def test_gradcheck_fast_reports_a_scaled_tensor_of_the_fused_backward(monkeypatch):
    """A full-length LSTM: ``fast=True`` checks the fused backward (``refconv.fast.lstm_grad``)
    too. Scaling that function's kernel gradient must show in ``fast_errors`` alone: the
    readable backward's ``errors`` stay exact, and the fused backward must have run."""
    cell, inputs, _ = lstm_case(seed=9, steps=2)
    fused = wrap_everywhere(monkeypatch, refconv.fast.lstm_grad)
    report = refconv.gradcheck(cell, inputs, max_entries=4, seed=10, fast=True)
    assert report.passed(), str(report)
    assert len(fused) == 1, "gradcheck(fast=True) did not run the fused backward"
    assert set(report.fast_errors) == set(report.errors)
    monkeypatch.undo()

    def scale_kernel(result):
        d_inputs, d_initial, d_params = result
        return d_inputs, d_initial, {**d_params, "kernel": d_params["kernel"] * SCALE}

    calls = wrap_everywhere(monkeypatch, refconv.fast.lstm_grad, scale_kernel)
    readable = wrap_everywhere(monkeypatch, refconv.lstm_step_backward)
    report = refconv.gradcheck(cell, inputs, max_entries=4, seed=10, fast=True)
    assert readable, "gradcheck's errors no longer come from the readable backward"
    assert max(report.errors.values()) < 1e-7, str(report)  # the readable backward is right
    check_report(report, "kernel", calls, fast=True)
    # Without fast=True the fused backward is not checked, and the fault goes unseen.
    calls.clear()
    assert refconv.gradcheck(cell, inputs, max_entries=4, seed=10).passed()
    assert not calls
