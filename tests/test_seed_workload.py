"""The seed's test.py, written with refconv at small sizes.

The seed (``/work/shared/seed/``) builds, with TensorFlow 1:

1. a 2-D ConvLSTMCell and a 2-D ConvGRUCell run by ``dynamic_rnn``
   (``[640, 480]``, here ``[12, 10]``);
2. a 1-D ConvLSTMCell passed as *both* directions of
   ``bidirectional_dynamic_rnn`` (``[100]``, here ``[20]``);
3. a 3-D ConvGRUCell with kernel ``[1, 3, 5]``, also bidirectional
   (``[50, 50, 50]``, here ``[6, 5, 7]``).

Every call passes ``dtype=inputs.dtype`` with float32 inputs. The checks are
what the seed's comments promise and what TensorFlow guarantees, computed
independently of refconv's own bookkeeping: shapes, dtypes, ``state.h`` equal
to the last output (the first output for the backward direction, whose
outputs are reversed back), the bounds a gated output must respect, and, for
the cell passed twice, that both directions really use one set of weights
(equal to running the cell by hand on the time-reversed input) while a second
cell gives a second set.
"""

import numpy as np
import pytest

from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, bidirectional_dynamic_rnn,
                     dynamic_rnn)

BATCH, STEPS, CHANNELS, FILTERS = 2, 4, 3, 4
# u * h + (1 - u) * tanh(.) of values in [-1, 1] may round an ulp beyond 1 in float32
GRU_BOUND = 1 + 4 * np.finfo(np.float32).eps


def seed_inputs(shape, seed):
    """float32 video like the seed's placeholder: [batch, time, *shape, channels]."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, STEPS, *shape, CHANNELS)).astype(np.float32)


def step_by_step(cell, inputs):
    """The recurrence written out: h_t, state_t = cell(x_t, state_{t-1}) from the zero state."""
    state = cell.zero_state(inputs.shape[0], inputs.dtype)
    outputs = []
    for t in range(inputs.shape[1]):
        h, state = cell(inputs[:, t], state)
        outputs.append(h)
    return np.stack(outputs, axis=1), state


def test_2d_conv_lstm_dynamic_rnn():
    """Seed part 1 (LSTM): shapes, float32 throughout, state.h == outputs[:, -1], |h| <= 1,
    and equal to calling the cell once per frame by hand."""
    shape, kernel = [12, 10], [3, 3]
    inputs = seed_inputs(shape, 0)
    cell = ConvLSTMCell(shape, FILTERS, kernel)
    outputs, state = dynamic_rnn(cell, inputs, dtype=inputs.dtype)

    assert outputs.shape == (BATCH, STEPS, *shape, FILTERS)
    assert outputs.dtype == np.float32
    assert isinstance(state, LSTMStateTuple)
    assert state.c.shape == state.h.shape == (BATCH, *shape, FILTERS)
    assert state.c.dtype == state.h.dtype == np.float32
    np.testing.assert_array_equal(state.h, outputs[:, -1])
    # h = z_o * tanh(c) with z_o in [0, 1]: never beyond [-1, 1]
    assert np.all(np.abs(outputs) <= 1) and np.all(np.isfinite(state.c))
    # the cell built itself on first use, for 3 input channels (the seed never calls build)
    assert cell.params["kernel"].shape == (*kernel, CHANNELS + FILTERS, 4 * FILTERS)

    by_hand, state_by_hand = step_by_step(cell, inputs)
    np.testing.assert_allclose(outputs, by_hand, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(state.c, state_by_hand.c, rtol=1e-6, atol=1e-7)


def test_2d_conv_gru_dynamic_rnn():
    """Seed part 1 (GRU): the state is h itself, == outputs[:, -1], in [-1, 1] (a convex mix
    of the zero state and tanh), and equal to calling the cell once per frame."""
    shape, kernel = [12, 10], [3, 3]
    inputs = seed_inputs(shape, 1)
    cell = ConvGRUCell(shape, FILTERS, kernel)
    outputs, state = dynamic_rnn(cell, inputs, dtype=inputs.dtype)

    assert outputs.shape == (BATCH, STEPS, *shape, FILTERS)
    assert isinstance(state, np.ndarray) and state.shape == (BATCH, *shape, FILTERS)
    assert outputs.dtype == state.dtype == np.float32
    np.testing.assert_array_equal(state, outputs[:, -1])
    assert np.all(np.abs(outputs) <= GRU_BOUND)
    by_hand, _ = step_by_step(cell, inputs)
    np.testing.assert_allclose(outputs, by_hand, rtol=1e-6, atol=1e-7)


def test_1d_bidirectional_lstm_with_one_cell_passed_twice():
    """Seed part 2: bidirectional_dynamic_rnn(cell, cell, ...). Both directions use the single
    params dict: out_bw is the cell run by hand on the reversed input, reversed back."""
    shape, kernel = [20], [3]
    inputs = seed_inputs(shape, 2)
    cell = ConvLSTMCell(shape, FILTERS, kernel)
    cell.build(CHANNELS, seed=3)
    params = cell.params
    saved = {name: value.copy() for name, value in params.items()}

    (out_fw, out_bw), (state_fw, state_bw) = bidirectional_dynamic_rnn(
        cell, cell, inputs, dtype=inputs.dtype)

    for out in (out_fw, out_bw):
        assert out.shape == (BATCH, STEPS, *shape, FILTERS) and out.dtype == np.float32
    for state in (state_fw, state_bw):
        assert isinstance(state, LSTMStateTuple)
        assert state.c.shape == state.h.shape == (BATCH, *shape, FILTERS)
        assert state.c.dtype == state.h.dtype == np.float32
    np.testing.assert_array_equal(state_fw.h, out_fw[:, -1])
    # the backward pass ends on the first frame, and out_bw is put back in input order
    np.testing.assert_array_equal(state_bw.h, out_bw[:, 0])

    # one set of weights: still the same dict, with the same names and values
    assert cell.params is params and set(params) == set(saved)
    for name, value in saved.items():
        np.testing.assert_array_equal(params[name], value)

    # by hand, with that one set: forward on the input, backward on the time-reversed input
    fw_by_hand, _ = step_by_step(cell, inputs)
    bw_by_hand, bw_state_by_hand = step_by_step(cell, inputs[:, ::-1])
    np.testing.assert_allclose(out_fw, fw_by_hand, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out_bw, bw_by_hand[:, ::-1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(state_bw.c, bw_state_by_hand.c, rtol=1e-6, atol=1e-7)


def test_1d_bidirectional_lstm_with_two_cells_has_two_sets_of_weights():
    """A second, separately built cell as cell_bw: the forward outputs are unchanged, the
    backward ones differ from the tied run; a bw cell with a copy of the fw params equals it."""
    shape, kernel = [20], [3]
    inputs = seed_inputs(shape, 2)
    cell = ConvLSTMCell(shape, FILTERS, kernel)
    cell.build(CHANNELS, seed=3)
    (tied_fw, tied_bw), _ = bidirectional_dynamic_rnn(cell, cell, inputs, dtype=inputs.dtype)

    other = ConvLSTMCell(shape, FILTERS, kernel)
    other.build(CHANNELS, seed=4)
    (fw, bw), _ = bidirectional_dynamic_rnn(cell, other, inputs, dtype=inputs.dtype)
    np.testing.assert_array_equal(fw, tied_fw)
    assert not np.allclose(bw, tied_bw, rtol=1e-3, atol=1e-3)

    twin = ConvLSTMCell(shape, FILTERS, kernel)
    twin.build(CHANNELS, seed=99)
    twin.params = {name: value.copy() for name, value in cell.params.items()}
    (_, twin_bw), _ = bidirectional_dynamic_rnn(cell, twin, inputs, dtype=inputs.dtype)
    np.testing.assert_array_equal(twin_bw, tied_bw)


def test_3d_bidirectional_gru_kernel_1_3_5():
    """Seed part 3: a 3-D GRU with kernel [1, 3, 5] in both directions; state_fw is
    out_fw[:, -1], state_bw is out_bw[:, 0], and out_bw is the cell on the reversed input."""
    shape, kernel = [6, 5, 7], [1, 3, 5]
    filters = 2
    inputs = seed_inputs(shape, 5)
    cell = ConvGRUCell(shape, filters, kernel)
    (out_fw, out_bw), (state_fw, state_bw) = bidirectional_dynamic_rnn(
        cell, cell, inputs, dtype=inputs.dtype)

    assert cell.params["gates/kernel"].shape == (1, 3, 5, CHANNELS + filters, 2 * filters)
    for out in (out_fw, out_bw):
        assert out.shape == (BATCH, STEPS, *shape, filters) and out.dtype == np.float32
        assert np.all(np.abs(out) <= GRU_BOUND)
    for state in (state_fw, state_bw):
        assert state.shape == (BATCH, *shape, filters) and state.dtype == np.float32
    np.testing.assert_array_equal(state_fw, out_fw[:, -1])
    np.testing.assert_array_equal(state_bw, out_bw[:, 0])
    bw_by_hand, _ = step_by_step(cell, inputs[:, ::-1])
    np.testing.assert_allclose(out_bw, bw_by_hand[:, ::-1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make_cell", [
    lambda: ConvLSTMCell([12, 10], FILTERS, [3, 3]),
    lambda: ConvGRUCell([12, 10], FILTERS, [3, 3]),
], ids=["lstm", "gru"])
def test_dtype_keyword_is_the_zero_states_dtype(make_cell):
    """The seed's dtype=inputs.dtype gives the same result as leaving it out (a zero state of
    the inputs' dtype), and float64 inputs stay float64."""
    cell = make_cell()
    cell.build(CHANNELS, seed=6)
    inputs = seed_inputs([12, 10], 7)
    with_dtype, _ = dynamic_rnn(cell, inputs, dtype=inputs.dtype)
    without, _ = dynamic_rnn(cell, inputs)
    np.testing.assert_array_equal(with_dtype, without)
    out64, state64 = dynamic_rnn(cell, inputs.astype(np.float64), dtype=np.float64)
    assert out64.dtype == np.float64
    assert all(s.dtype == np.float64 for s in (state64 if isinstance(state64, tuple)
                                              else (state64,)))
