"""``lstm_step_backward(..., intermediates=True)``: every named gradient of one step.

Two oracles: a line-by-line recomputation of the intermediate gradients from the
forward equations (``_oracles.lstm_backward_intermediates``, tanh and channels_last only),
and central finite differences through :func:`refconv.lstm.lstm_gates` (the
step after its convolution), for the blocks of ``d_y`` (the four ``*_in``),
in every layout and activation.
"""

import numpy as np
import pytest

from _oracles import lstm_backward_intermediates
from conftest import jitter, numeric_gradient
from refconv import ConvLSTMCell, LSTMStateTuple, lstm_step, lstm_step_backward
from refconv.gradcheck import relative_error
from refconv.lstm import lstm_gates
from refconv.vocabulary import LSTM_BACKWARD_QUANTITIES, LSTM_BLOCKS


def problem(seed, normalize, peephole, data_format="channels_last", **options):
    rng = np.random.default_rng(seed)
    shape = [int(n) for n in rng.integers(3, 6, 1 + seed % 2)]
    cell = ConvLSTMCell(shape, 2, [3] * len(shape), forget_bias=0.7, normalize=normalize,
                        peephole=peephole, data_format=data_format, **options)
    cell.build(3, seed=seed)
    jitter(cell, rng)
    frame = cell._frame(shape, 3)
    x = rng.standard_normal((2, *frame))
    state = LSTMStateTuple(*(rng.standard_normal((2, *cell.output_size)) for _ in range(2)))
    d_h, d_c = (rng.standard_normal((2, *cell.output_size)) for _ in range(2))
    return cell, x, state, d_h, d_c


OPTIONS = [(n, p) for n in (False, True) for p in (False, True)]


@pytest.mark.parametrize("normalize, peephole", OPTIONS)
def test_intermediates_match_a_line_by_line_recomputation(normalize, peephole):
    cell, x, state, d_h, d_c = problem(1, normalize, peephole)
    _, _, cache = lstm_step(x, state, cell.params, cell)
    expected = lstm_backward_intermediates(d_h, d_c, cache, cell.params, cell)
    result = lstm_step_backward(d_h, LSTMStateTuple(d_c, np.zeros_like(d_h)), cache,
                                cell.params, cell, intermediates=True)
    assert len(result) == 4
    d_x, d_prev, _, named = result
    assert tuple(named) == LSTM_BACKWARD_QUANTITIES
    for name in expected:
        np.testing.assert_allclose(named[name], expected[name], rtol=1e-12, atol=1e-13,
                                   err_msg=name)
    # The step's own outputs, named: the same arrays the function returns.
    for name, value in (("d_x", d_x), ("d_c_prev", d_prev.c), ("d_h_prev", d_prev.h)):
        np.testing.assert_array_equal(named[name], value, err_msg=name)


@pytest.mark.parametrize("normalize, peephole", OPTIONS)
@pytest.mark.parametrize("data_format, recurrent", [("channels_last", "sigmoid"),
                                                     ("channels_first", "hard_sigmoid_keras2")])
def test_d_y_blocks_against_finite_differences(normalize, peephole, data_format, recurrent):
    cell, x, state, d_h, d_c = problem(2, normalize, peephole, data_format,
                                       recurrent_activation=recurrent)
    params = cell.params
    _, _, cache = lstm_step(x, state, params, cell)
    d_state = LSTMStateTuple(d_c, np.zeros_like(d_h))
    d_x, d_prev, d_params, named = lstm_step_backward(d_h, d_state, cache, params, cell,
                                                      intermediates=True)
    plain = lstm_step_backward(d_h, d_state, cache, params, cell)
    assert len(plain) == 3   # without the option: the three values as before, the same bits
    for a, b in zip((d_x, *d_prev, *d_params.values()), (plain[0], *plain[1], *plain[2].values())):
        assert np.array_equal(a, b)
    assert named["d_x"] is d_x and named["d_c_prev"] is d_prev.c and named["d_h_prev"] is d_prev.h
    y = cache.y.copy()

    def loss():
        h, new, _ = lstm_gates(x, state, y, params, cell)
        return float((h * d_h).sum() + (new.c * d_c).sum())

    numeric = np.split(numeric_gradient(loss, y), 4, axis=cell.channel_axis)
    for block, d_block in zip(LSTM_BLOCKS, numeric):
        assert relative_error(named["d_" + block + "_in"], d_block) < 1e-7, block
    if not normalize:  # no layer norm: the value entering it is the one after it
        assert named["d_z_o_in"].shape == d_h.shape


def test_intermediates_is_keyword_only():
    cell, x, state, d_h, d_c = problem(3, True, True)
    _, _, cache = lstm_step(x, state, cell.params, cell)
    with pytest.raises(TypeError):
        lstm_step_backward(d_h, LSTMStateTuple(d_c, d_h), cache, cell.params, cell, True)
