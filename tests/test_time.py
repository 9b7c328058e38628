"""Time semantics against hand-written loops over single steps (TensorFlow's rules, from SPEC).

* past a row's length: output zero, state carried unchanged;
* the final state of a row is its state after step ``len - 1`` (the initial
  state when the length is 0);
* the backward direction reads each row reversed within its own length, and its
  outputs are put back in input order.
"""

import numpy as np
import pytest

import refconv
from conftest import random_state
from refconv import (ConvGRUCell, ConvLSTMCell, MultiRNNCell,
                     bidirectional_dynamic_rnn, dynamic_rnn, reverse_sequence)


def make_cell(kind, seed, shape=(5, 4), filters=3, data_format="channels_last"):
    if kind == "lstm":
        cell = ConvLSTMCell(list(shape), filters, [3, 2], forget_bias=0.7,
                            normalize=bool(seed % 2), data_format=data_format)
    elif kind == "gru":
        cell = ConvGRUCell(list(shape), filters, [2, 3], normalize=bool(seed % 2),
                           data_format=data_format)
    else:
        cell = MultiRNNCell([ConvLSTMCell(list(shape), filters, [3, 3]),
                             ConvGRUCell(list(shape), 2, [3, 1])])
    cell.build(2, seed=seed)
    return cell


def row(state, b):
    """Row ``b`` of a (nested) state, keeping the batch axis."""
    if isinstance(state, tuple):
        return type(state)(*(row(s, b) for s in state)) if hasattr(state, "_fields") \
            else tuple(row(s, b) for s in state)
    return state[b:b + 1]


def assert_state_equal(a, b):
    if isinstance(a, tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_state_equal(x, y)
    else:
        np.testing.assert_array_equal(a, b)


def by_hand(cell, inputs, lengths, state):
    """One row at a time, one step at a time, with the cell's own __call__."""
    batch, steps = inputs.shape[:2]
    outputs = np.zeros((batch, steps, *cell.output_size))
    finals = []
    for b in range(batch):
        s = row(state, b)
        for t in range(lengths[b]):
            h, s = cell(inputs[b:b + 1, t], s)
            outputs[b, t] = h[0]
        finals.append(s)
    return outputs, finals


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sequence_length_matches_loop(kind, seed):
    """Zeros past each length, final state after step len - 1, length 0 keeps the initial state."""
    rng = np.random.default_rng(seed)
    cell = make_cell(kind, seed)
    inputs = rng.standard_normal((4, 6, 5, 4, 2))
    lengths = np.array([6, 0, 3, 1])
    state0 = random_state(cell, 4, rng)
    outputs, final = dynamic_rnn(cell, inputs, sequence_length=lengths, initial_state=state0)
    expected, finals = by_hand(cell, inputs, lengths, state0)
    np.testing.assert_allclose(outputs, expected, rtol=1e-12, atol=1e-13)
    assert not outputs[1].any() and not outputs[2, 3:].any()
    for b in range(4):
        got = row(final, b)
        if lengths[b] == 0:
            assert_state_equal(got, row(state0, b))
        else:
            np.testing.assert_allclose(np.concatenate(_leaves(got)), np.concatenate(_leaves(finals[b])),
                                       rtol=1e-12, atol=1e-13)


def _leaves(state):
    if isinstance(state, tuple):
        return [leaf.ravel() for s in state for leaf in _leaves(s)]
    return [state.ravel()]


def test_full_lengths_equal_no_lengths():
    """sequence_length = T everywhere is the same as no sequence_length, bit for bit."""
    rng = np.random.default_rng(5)
    cell = make_cell("lstm", 5)
    inputs = rng.standard_normal((3, 4, 5, 4, 2))
    a = dynamic_rnn(cell, inputs)
    b = dynamic_rnn(cell, inputs, sequence_length=[4, 4, 4])
    np.testing.assert_array_equal(a[0], b[0])
    assert_state_equal(a[1], b[1])


def test_gates_are_zero_past_the_length():
    rng = np.random.default_rng(2)
    cell = make_cell("lstm", 2)
    inputs = rng.standard_normal((2, 5, 5, 4, 2))
    outputs, _, gates = dynamic_rnn(cell, inputs, sequence_length=[2, 5], return_gates=True)
    for name, g in gates.items():
        assert g.shape == outputs.shape
        assert not g[0, 2:].any(), name
        assert g[0, :2].any() and g[1].any(), name
    np.testing.assert_array_equal(gates["h"], outputs)


def test_reverse_sequence_by_loop():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 7, 3))
    lengths = [7, 0, 3, 6]
    got = reverse_sequence(x, lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(got[b, :n], x[b, :n][::-1])
        np.testing.assert_array_equal(got[b, n:], x[b, n:])
    # time-major layout: the same reversal with the axes swapped
    got_tm = reverse_sequence(x.swapaxes(0, 1), lengths, seq_axis=0, batch_axis=1)
    np.testing.assert_array_equal(got_tm, got.swapaxes(0, 1))
    np.testing.assert_array_equal(reverse_sequence(x, None), x[:, ::-1])


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
def test_bidirectional_alignment(kind):
    """out_bw[b, t] is the backward cell's output after reading x[b, len-1], ..., x[b, t]."""
    rng = np.random.default_rng(11)
    cell_fw = make_cell(kind, 3)
    cell_bw = make_cell(kind, 4)
    inputs = rng.standard_normal((3, 5, 5, 4, 2))
    lengths = np.array([5, 2, 0])
    s_fw, s_bw = random_state(cell_fw, 3, rng), random_state(cell_bw, 3, rng)
    (out_fw, out_bw), (st_fw, st_bw) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, inputs, lengths, initial_state_fw=s_fw, initial_state_bw=s_bw)
    expected_fw, _ = by_hand(cell_fw, inputs, lengths, s_fw)
    np.testing.assert_allclose(out_fw, expected_fw, rtol=1e-12, atol=1e-13)
    for b, n in enumerate(lengths):
        s = row(s_bw, b)
        for t in reversed(range(n)):
            h, s = cell_bw(inputs[b:b + 1, t], s)
            np.testing.assert_allclose(out_bw[b, t], h[0], rtol=1e-12, atol=1e-13)
        assert not out_bw[b, n:].any()
        np.testing.assert_allclose(np.concatenate(_leaves(row(st_bw, b))),
                                   np.concatenate(_leaves(s)), rtol=1e-12, atol=1e-13)


def test_bidirectional_gates_reversed_back():
    rng = np.random.default_rng(1)
    cell = make_cell("gru", 1)
    inputs = rng.standard_normal((2, 4, 5, 4, 2))
    (out_fw, out_bw), _, (g_fw, g_bw) = bidirectional_dynamic_rnn(
        cell, cell, inputs, sequence_length=[4, 3], return_gates=True)
    np.testing.assert_array_equal(g_fw["h"], out_fw)
    np.testing.assert_array_equal(g_bw["h"], out_bw)


def test_time_major_bidirectional():
    rng = np.random.default_rng(9)
    cell = make_cell("lstm", 9)
    inputs = rng.standard_normal((3, 4, 5, 4, 2))
    (a_fw, a_bw), _ = bidirectional_dynamic_rnn(cell, cell, inputs, [4, 1, 2])
    (b_fw, b_bw), _ = bidirectional_dynamic_rnn(cell, cell, inputs.swapaxes(0, 1), [4, 1, 2],
                                                time_major=True)
    np.testing.assert_array_equal(a_fw, b_fw.swapaxes(0, 1))
    np.testing.assert_array_equal(a_bw, b_bw.swapaxes(0, 1))


def test_multi_gates_one_dict_per_layer():
    rng = np.random.default_rng(4)
    cell = make_cell("multi", 4)
    inputs = rng.standard_normal((2, 3, 5, 4, 2))
    outputs, state, gates = dynamic_rnn(cell, inputs, return_gates=True)
    assert [sorted(g) for g in gates] == [sorted(ConvLSTMCell.quantities), sorted(ConvGRUCell.quantities)]
    assert gates[0]["h"].shape[-1] == 3 and gates[1]["h"].shape[-1] == 2
    np.testing.assert_array_equal(gates[1]["h"], outputs)
    np.testing.assert_array_equal(gates[0]["h"][:, -1], state[0].h)


def test_zero_steps():
    """T = 0: empty outputs, the initial state back."""
    cell = make_cell("lstm", 0)
    outputs, state = dynamic_rnn(cell, np.zeros((2, 0, 5, 4, 2)))
    assert outputs.shape == (2, 0, 5, 4, 3)
    assert_state_equal(state, cell.zero_state(2))
