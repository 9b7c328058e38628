"""Hand-written gradients against central finite differences (float64, relative error < 1e-7).

Every configuration uses random non-zero parameters (biases, gamma, beta and
peephole weights included), a random initial state and random upstream
gradients: zeros would hide bugs.
"""

import numpy as np
import pytest

from _oracles import relative_error
from conftest import jitter, numeric_gradient
from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, bidirectional_dynamic_rnn_grad,
                     conv_nd, conv_nd_backward, conv_nd_backward_naive, dynamic_rnn,
                     dynamic_rnn_grad, gradcheck, layer_norm, layer_norm_backward)

TOLERANCE = 1e-7


@pytest.mark.parametrize("seed", range(12))
def test_conv_backward(seed):
    rng = np.random.default_rng(seed)
    n = 1 + seed % 3
    padding = ["SAME", "VALID"][seed % 2]
    k = rng.integers(1, 4, n)
    d = rng.integers(1, 3, n)
    s = rng.integers(1, 3, n)
    size = rng.integers(2, 6, n) + (((k - 1) * d) if padding == "VALID" else 0)
    x = rng.standard_normal((2, *size, 2))
    kernel = rng.standard_normal((*k, 2, 3))
    d_y = rng.standard_normal(conv_nd(x, kernel, s, padding, d).shape)
    d_x, d_kernel = conv_nd_backward(x, kernel, d_y, s, padding, d)
    d_x_naive, d_kernel_naive = conv_nd_backward_naive(x, kernel, d_y, s, padding, d)
    np.testing.assert_allclose(d_x, d_x_naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d_kernel, d_kernel_naive, rtol=1e-12, atol=1e-12)
    loss = lambda: (conv_nd(x, kernel, s, padding, d) * d_y).sum()  # noqa: E731
    assert relative_error(d_x, numeric_gradient(loss, x)) < TOLERANCE
    assert relative_error(d_kernel, numeric_gradient(loss, kernel)) < TOLERANCE


@pytest.mark.parametrize("channel_axis", [-1, 1])
def test_layer_norm_backward(channel_axis):
    rng = np.random.default_rng(7)
    v = rng.standard_normal((2, 3, 4, 5)) * 3 + 1
    f = v.shape[channel_axis]
    gamma, beta = rng.standard_normal(f), rng.standard_normal(f)
    d_out = rng.standard_normal(v.shape)
    d_v, d_gamma, d_beta = layer_norm_backward(v, gamma, d_out, channel_axis)
    loss = lambda: (layer_norm(v, gamma, beta, channel_axis) * d_out).sum()  # noqa: E731
    assert relative_error(d_v, numeric_gradient(loss, v)) < TOLERANCE
    assert relative_error(d_gamma, numeric_gradient(loss, gamma)) < TOLERANCE
    assert relative_error(d_beta, numeric_gradient(loss, beta)) < TOLERANCE


LSTM_CONFIGS = [
    dict(normalize=True, peephole=True),
    dict(normalize=False, peephole=True, forget_bias=0.0),
    dict(normalize=True, peephole=False, activation="relu"),
    dict(normalize=False, peephole=False, recurrent_activation="hard_sigmoid"),
    dict(normalize=False, peephole=True, recurrent_activation="hard_sigmoid_keras2"),
    dict(normalize=False, peephole=False, strides=2, padding="valid", dilation_rate=1),
    dict(normalize=True, peephole=True, padding="valid", dilation_rate=2),
]


@pytest.mark.parametrize("n_axes", [1, 2, 3])
@pytest.mark.parametrize("config", range(len(LSTM_CONFIGS)))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_lstm_gradcheck(n_axes, config, data_format):
    seed = 100 * n_axes + 10 * config + (data_format == "channels_first")
    rng = np.random.default_rng(seed)
    shape = [[7], [6, 5], [5, 4, 5]][n_axes - 1]
    kernel = [[2], [3, 2], [1, 2, 3]][n_axes - 1]  # even sizes included
    kwargs = {"forget_bias": 0.7, **LSTM_CONFIGS[config]}
    cell = ConvLSTMCell(shape, 2, kernel, data_format=data_format, **kwargs)
    cell.build(2, seed=seed)
    jitter(cell, rng)
    frame = (*shape, 2) if data_format == "channels_last" else (2, *shape)
    inputs = rng.standard_normal((2, 3, *frame))
    report = gradcheck(cell, inputs, sequence_length=[3, 2], max_entries=25, seed=seed)
    assert report.passed(TOLERANCE), str(report)


@pytest.mark.parametrize("n_axes", [1, 2, 3])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_gru_gradcheck(n_axes, normalize, data_format):
    seed = 1000 + 100 * n_axes + 10 * normalize + (data_format == "channels_first")
    rng = np.random.default_rng(seed)
    shape = [[7], [6, 5], [5, 4, 3]][n_axes - 1]
    kernel = [[3], [2, 3], [3, 1, 2]][n_axes - 1]
    cell = ConvGRUCell(shape, 2, kernel, normalize=normalize, data_format=data_format)
    cell.build(2, seed=seed)
    jitter(cell, rng)
    frame = (*shape, 2) if data_format == "channels_last" else (2, *shape)
    inputs = rng.standard_normal((2, 3, *frame))
    report = gradcheck(cell, inputs, sequence_length=[1, 3], max_entries=25, seed=seed)
    assert report.passed(TOLERANCE), str(report)


@pytest.mark.parametrize("lengths", [None, [0, 3, 1], [3, 3, 3], [0, 0, 0]])
def test_stacked_gradcheck_with_lengths(lengths):
    rng = np.random.default_rng(5)
    cell = MultiRNNCell([ConvLSTMCell([5, 4], 3, [3, 3]),
                         ConvGRUCell([5, 4], 2, [2, 2], normalize=False)])
    cell.build(2, seed=5)
    for layer in cell.cells:
        jitter(layer, rng)
    report = gradcheck(cell, rng.standard_normal((3, 3, 5, 4, 2)), sequence_length=lengths,
                       max_entries=20, seed=5)
    assert report.passed(TOLERANCE), str(report)
    if lengths == [0, 0, 0]:
        grads = dynamic_rnn_grad(cell, rng.standard_normal((3, 3, 5, 4, 2)),
                                 rng.standard_normal((3, 3, 5, 4, 2)))
        assert grads.inputs.any()


def test_time_major_gradients_are_transposed():
    rng = np.random.default_rng(8)
    cell = ConvLSTMCell([4, 4], 2, [3, 3])
    cell.build(1, seed=8)
    inputs = rng.standard_normal((2, 4, 4, 4, 1))
    d_out = rng.standard_normal((2, 4, 4, 4, 2))
    a = dynamic_rnn_grad(cell, inputs, d_out, sequence_length=[4, 2])
    b = dynamic_rnn_grad(cell, inputs.swapaxes(0, 1), d_out.swapaxes(0, 1),
                         sequence_length=[4, 2], time_major=True)
    np.testing.assert_array_equal(a.inputs, b.inputs.swapaxes(0, 1))
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


def bidirectional_loss(cell_fw, cell_bw, inputs, lengths, d_outs, d_states, s_fw, s_bw):
    (out_fw, out_bw), (st_fw, st_bw) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, inputs, lengths, initial_state_fw=s_fw, initial_state_bw=s_bw)
    total = (out_fw * d_outs[0]).sum() + (out_bw * d_outs[1]).sum()
    for state, d_state in zip((st_fw, st_bw), d_states):
        total += sum((a * b).sum() for a, b in zip(state, d_state))
    return total


@pytest.mark.parametrize("tied", [True, False])
def test_bidirectional_gradients(tied):
    """Both directions, separate or shared weights, against finite differences."""
    rng = np.random.default_rng(21 + tied)
    cell_fw = ConvLSTMCell([6], 2, [3], forget_bias=0.4)
    cell_fw.build(2, seed=1)
    jitter(cell_fw, rng)
    cell_bw = cell_fw if tied else ConvLSTMCell([6], 2, [2], normalize=False)
    if not tied:
        cell_bw.build(2, seed=2)
        jitter(cell_bw, rng)
    inputs = rng.standard_normal((3, 4, 6, 2))
    lengths = np.array([4, 0, 2])
    d_outs = (rng.standard_normal((3, 4, 6, 2)), rng.standard_normal((3, 4, 6, 2)))
    states = [LSTMStateTuple(rng.standard_normal((3, 6, 2)), rng.standard_normal((3, 6, 2)))
              for _ in range(4)]
    s_fw, s_bw, d_fw, d_bw = states
    grads = bidirectional_dynamic_rnn_grad(cell_fw, cell_bw, inputs, d_outs, (d_fw, d_bw),
                                           sequence_length=lengths, initial_state_fw=s_fw,
                                           initial_state_bw=s_bw)
    loss = lambda: bidirectional_loss(cell_fw, cell_bw, inputs, lengths, d_outs,  # noqa: E731
                                      (d_fw, d_bw), s_fw, s_bw)
    assert relative_error(grads.inputs, numeric_gradient(loss, inputs)) < TOLERANCE
    for name in ("c", "h"):
        assert relative_error(getattr(grads.initial_state_fw, name),
                              numeric_gradient(loss, getattr(s_fw, name))) < TOLERANCE
        assert relative_error(getattr(grads.initial_state_bw, name),
                              numeric_gradient(loss, getattr(s_bw, name))) < TOLERANCE
    for name in ("kernel", "W_cf", "z_o/gamma"):
        assert relative_error(grads.params_fw[name],
                              numeric_gradient(loss, cell_fw.params[name])) < TOLERANCE
    if tied:
        assert grads.params_fw is grads.params_bw
    else:
        assert relative_error(grads.params_bw["bias"],
                              numeric_gradient(loss, cell_bw.params["bias"])) < TOLERANCE


def test_gradient_argument_errors():
    cell = ConvGRUCell([4, 4], 2, [3, 3])
    inputs = np.zeros((2, 3, 4, 4, 1))
    with pytest.raises(ValueError, match=r"d_outputs: expected the outputs' shape \[2, 3, 4, 4, 2\], got \[2, 3, 4, 4, 1\]"):
        dynamic_rnn_grad(cell, inputs, np.zeros((2, 3, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"d_state: expected shape \[2, 4, 4, 2\]"):
        dynamic_rnn_grad(cell, inputs, np.zeros((2, 3, 4, 4, 2)), np.zeros((2, 4, 4, 3)))
    with pytest.raises(TypeError, match=r"d_outputs: expected a pair"):
        bidirectional_dynamic_rnn_grad(cell, cell, inputs, np.zeros((2, 3, 4, 4, 2)))
    custom = ConvLSTMCell([4, 4], 2, [3, 3], activation=lambda v: v * 1.0)
    with pytest.raises(ValueError, match=r"activation: no derivative is known"):
        dynamic_rnn_grad(custom, inputs, np.zeros((2, 3, 4, 4, 2)))
