"""``reverse_sequence`` and bidirectional runs with lengths against loops without it (issue 18, item 7).

* ``refconv.reverse_sequence`` against ``_oracles.reverse_loop`` (a loop over
  rows and steps), for every pair of axes, lengths 0, T and between, and None.
* ``bidirectional_dynamic_rnn`` with lengths (fast path and ``reference=True``,
  batch-major and time-major) against a hand loop: each row's forward cell run
  step by step on its prefix, and the backward cell on its *reversed* prefix,
  its outputs written back at ``len - 1 - t``, zeros past the length.
* ``bidirectional_dynamic_rnn_grad`` with lengths against per-row one-direction
  gradients: for each row, ``dynamic_rnn_grad`` of a batch of one on its
  prefix (fw) and on its reversed prefix (bw, the gradient reversed back), the
  parameters' gradients summed over rows. No ``reverse_sequence`` on this side.
"""

import numpy as np
import pytest

import refconv
from refconv import ConvGRUCell, ConvLSTMCell, LSTMStateTuple
from _oracles import frame, randomize, reverse_loop

TOL = dict(rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("axes", [(1, 0), (0, 1), (2, 0), (0, 2), (3, 1), (1, 3)])
@pytest.mark.parametrize("seed", range(3))
def test_reverse_sequence_against_a_loop(axes, seed):
    seq_axis, batch_axis = axes
    rng = np.random.default_rng(seed)
    shape = [int(v) for v in rng.integers(2, 5, 4)]
    shape[seq_axis], shape[batch_axis] = 5, 4
    x = rng.standard_normal(shape)
    original = x.copy()
    for lengths in (np.array([5, 0, 3, 1]), rng.integers(0, 6, 4)):
        out = refconv.reverse_sequence(x, lengths, seq_axis, batch_axis)
        np.testing.assert_array_equal(out, reverse_loop(x, lengths, seq_axis, batch_axis))
    whole = refconv.reverse_sequence(x, None, seq_axis, batch_axis)
    np.testing.assert_array_equal(whole, reverse_loop(x, [5] * 4, seq_axis, batch_axis))
    np.testing.assert_array_equal(x, original)  # the input is not reversed in place


def test_reverse_loop_by_hand():
    """The loop itself, on numbers small enough to read: row 0 length 3, row 1 length 1."""
    x = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(reverse_loop(x, [3, 1], 1, 0), [[3, 2, 1, 4], [5, 6, 7, 8]])


def make_cells(kind, fmt, seed):
    rng = np.random.default_rng(seed)
    cells = []
    for i in range(2):
        if kind == "lstm":
            cell = ConvLSTMCell([3, 2], 2, [2, 3], forget_bias=0.4, data_format=fmt)
        else:
            cell = ConvGRUCell([3, 2], 2, [2, 3], data_format=fmt)
        cell.build(2, seed=seed + i)
        randomize(cell, rng, scale=0.5)
        cells.append(cell)
    return cells, rng


def random_state(cell, rng, batch):
    s = (batch, *cell.output_size)
    if isinstance(cell, ConvLSTMCell):
        return LSTMStateTuple(rng.standard_normal(s), rng.standard_normal(s))
    return rng.standard_normal(s)


def row(state, b):
    """Row ``b`` of a state, keeping a batch axis of one."""
    if isinstance(state, tuple):
        return type(state)(*(s[b:b + 1] for s in state))
    return state[b:b + 1]


def leaves(state):
    return list(state) if isinstance(state, tuple) else [state]


def hand_loop(cell, x_row, state_row):
    """Step a cell over one row's frames ``[L, *frame]``: outputs ``[L, *S]``, final state."""
    outputs = []
    for x in x_row:
        h, state_row = cell(x[None], state_row)
        outputs.append(h[0])
    return np.array(outputs).reshape(len(x_row), *cell.output_size), state_row


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("reference", [False, True])
def test_bidirectional_with_lengths_against_a_hand_loop(kind, fmt, time_major, reference):
    (cell_fw, cell_bw), rng = make_cells(kind, fmt, seed=3)
    batch, steps = 4, 5
    lengths = np.array([5, 2, 0, 4])
    inputs = rng.standard_normal((batch, steps, *frame(fmt, [3, 2], 2)))
    s_fw, s_bw = random_state(cell_fw, rng, batch), random_state(cell_bw, rng, batch)
    given = inputs.swapaxes(0, 1) if time_major else inputs
    (out_fw, out_bw), (state_fw, state_bw) = refconv.bidirectional_dynamic_rnn(
        cell_fw, cell_bw, given, lengths, s_fw, s_bw, time_major=time_major, reference=reference)
    if time_major:
        out_fw, out_bw = out_fw.swapaxes(0, 1), out_bw.swapaxes(0, 1)

    for b, n in enumerate(lengths):
        h_fw, final_fw = hand_loop(cell_fw, inputs[b, :n], row(s_fw, b))
        h_bw, final_bw = hand_loop(cell_bw, inputs[b, :n][::-1], row(s_bw, b))
        np.testing.assert_allclose(out_fw[b, :n], h_fw, **TOL)
        np.testing.assert_allclose(out_bw[b, :n], h_bw[::-1], **TOL)  # back in input order
        np.testing.assert_array_equal(out_fw[b, n:], 0)
        np.testing.assert_array_equal(out_bw[b, n:], 0)
        for got, want in zip(leaves(row(state_fw, b)), leaves(final_fw)):
            np.testing.assert_allclose(got, want, **TOL)
        for got, want in zip(leaves(row(state_bw, b)), leaves(final_bw)):
            np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_bidirectional_gradients_with_lengths_against_per_row_gradients(kind, fmt):
    (cell_fw, cell_bw), rng = make_cells(kind, fmt, seed=7)
    batch, steps = 4, 4
    lengths = np.array([4, 1, 0, 3])
    inputs = rng.standard_normal((batch, steps, *frame(fmt, [3, 2], 2)))
    s_fw, s_bw = random_state(cell_fw, rng, batch), random_state(cell_bw, rng, batch)
    d_out_fw = rng.standard_normal((batch, steps, *cell_fw.output_size))
    d_out_bw = rng.standard_normal((batch, steps, *cell_bw.output_size))
    d_s_fw, d_s_bw = random_state(cell_fw, rng, batch), random_state(cell_bw, rng, batch)

    grads = refconv.bidirectional_dynamic_rnn_grad(
        cell_fw, cell_bw, inputs, (d_out_fw, d_out_bw), (d_s_fw, d_s_bw),
        sequence_length=lengths, initial_state_fw=s_fw, initial_state_bw=s_bw)

    d_inputs = np.zeros_like(inputs)
    d_params = [{k: np.zeros_like(v) for k, v in c.params.items()} for c in (cell_fw, cell_bw)]
    d_init = [[], []]
    for b, n in enumerate(lengths):
        if n == 0:  # no step: the initial state's gradient is the final state's
            d_init[0].append(row(d_s_fw, b))
            d_init[1].append(row(d_s_bw, b))
            continue
        fw = refconv.dynamic_rnn_grad(cell_fw, inputs[b:b + 1, :n], d_out_fw[b:b + 1, :n],
                                      row(d_s_fw, b), initial_state=row(s_fw, b))
        bw = refconv.dynamic_rnn_grad(cell_bw, inputs[b:b + 1, :n][:, ::-1],
                                      d_out_bw[b:b + 1, :n][:, ::-1], row(d_s_bw, b),
                                      initial_state=row(s_bw, b))
        d_inputs[b, :n] = fw.inputs[0] + bw.inputs[0][::-1]
        for total, part in zip(d_params, (fw.params, bw.params)):
            for name in total:
                total[name] += part[name]
        d_init[0].append(fw.initial_state)
        d_init[1].append(bw.initial_state)

    np.testing.assert_allclose(grads.inputs, d_inputs, **TOL)
    for got, want in ((grads.params_fw, d_params[0]), (grads.params_bw, d_params[1])):
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], **TOL, err_msg=name)
    for got, rows in ((grads.initial_state_fw, d_init[0]), (grads.initial_state_bw, d_init[1])):
        for i, leaf in enumerate(leaves(got)):
            want = np.concatenate([leaves(r)[i] for r in rows])
            np.testing.assert_allclose(leaf, want, **TOL)
