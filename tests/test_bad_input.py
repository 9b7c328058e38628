"""Bad input gets a ValueError or TypeError that names the argument, what was expected and what came."""

import numpy as np
import pytest

from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, dynamic_rnn, reverse_sequence)

CELLS = [ConvLSTMCell, ConvGRUCell]


@pytest.mark.parametrize("Cell", CELLS)
@pytest.mark.parametrize("kwargs, error, words", [
    (dict(shape=[8, 8], filters=0, kernel=[3, 3]), ValueError, r"filters: expected an integer >= 1, got 0"),
    (dict(shape=[8, 8], filters=2.5, kernel=[3, 3]), ValueError, r"filters: .* got 2.5"),
    (dict(shape=[8, 8], filters=True, kernel=[3, 3]), ValueError, r"filters"),
    (dict(shape=[8, 8], filters=4, kernel=[3]), ValueError, r"kernel: expected 2 integers .* got 1"),
    (dict(shape=[8, 8], filters=4, kernel=[3, 0]), ValueError, r"kernel: expected integers >= 1, got \[3, 0\]"),
    (dict(shape=[8, 8], filters=4, kernel=3), ValueError, r"kernel: expected a list of integers"),
    (dict(shape=[], filters=4, kernel=[]), ValueError, r"shape: expected at least one spatial axis"),
    (dict(shape=[8, -1], filters=4, kernel=[3, 3]), ValueError, r"shape: expected integers >= 1"),
    (dict(shape=[8, 8], filters=4, kernel=[3, 3], data_format="NCHW"), ValueError,
     r"data_format: expected 'channels_last' or 'channels_first', got 'NCHW'"),
    (dict(shape=[8, 8], filters=4, kernel=[3, 3], activation="swishy"), ValueError, r"activation: expected one of"),
    (dict(shape=[8, 8], filters=4, kernel=[3, 3], normalize="yes"), TypeError, r"normalize"),
])
def test_constructor(Cell, kwargs, error, words):
    with pytest.raises(error, match=words):
        Cell(**kwargs)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(peephole=1), TypeError, "peephole"),
    (dict(forget_bias="1"), TypeError, "forget_bias"),
    (dict(recurrent_activation="hard"), ValueError, "recurrent_activation"),
    (dict(padding="full"), ValueError, "padding: expected 'same' or 'valid', got 'full'"),
    (dict(strides=[1, 2, 3]), ValueError, "strides: expected 2 integers"),
    (dict(dilation_rate=0), ValueError, "dilation_rate: expected integers >= 1"),
    (dict(padding="valid", kernel=[3, 9]), ValueError, "shape: axis 1 has size 8"),
])
def test_lstm_constructor(kwargs, error, words):
    args = dict(shape=[8, 8], filters=4, kernel=[3, 3])
    args.update(kwargs)
    with pytest.raises(error, match=words):
        ConvLSTMCell(**args)


def built(Cell, data_format="channels_last"):
    cell = Cell([6, 5], 3, [3, 3], data_format=data_format)
    cell.build(2, seed=0)
    return cell


@pytest.mark.parametrize("Cell", CELLS)
def test_input_rank_size_channels(Cell):
    cell = built(Cell)
    state = cell.zero_state(1)
    with pytest.raises(ValueError, match=r"x: expected shape \[B, 6, 5, C\] .* got \[1, 6, 5\]"):
        cell(np.zeros((1, 6, 5)), state)
    with pytest.raises(ValueError, match=r"x: expected shape \[B, 6, 5, C\] \(spatial size \[6, 5\].* got \[1, 5, 6, 2\]"):
        cell(np.zeros((1, 5, 6, 2)), state)
    with pytest.raises(ValueError, match=r"x: expected 2 channels \(the cell was built for 2\), got 4"):
        cell(np.zeros((1, 6, 5, 4)), state)
    with pytest.raises(ValueError, match=r"inputs: expected shape \[B, T, 6, 5, C\] .* got \[1, 6, 5, 2\]"):
        dynamic_rnn(cell, np.zeros((1, 6, 5, 2)))
    with pytest.raises(ValueError, match=r"inputs: expected shape \[T, B, 6, 5, C\]"):
        dynamic_rnn(cell, np.zeros((3, 1, 6, 6, 2)), time_major=True)
    with pytest.raises(ValueError, match=r"inputs: expected shape"):
        dynamic_rnn(cell, np.zeros((6, 5)))


def test_channels_first_messages():
    cell = built(ConvLSTMCell, "channels_first")
    with pytest.raises(ValueError, match=r"inputs: expected shape \[B, T, C, 6, 5\] .*channels_first.* got \[1, 2, 6, 5, 2\]"):
        dynamic_rnn(cell, np.zeros((1, 2, 6, 5, 2)))


@pytest.mark.parametrize("Cell", CELLS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.complex128, bool, object])
def test_integer_or_complex_inputs(Cell, dtype):
    cell = built(Cell)
    x = np.zeros((1, 2, 6, 5, 2), dtype=dtype)
    with pytest.raises(TypeError, match=r"inputs: expected a real floating-point array .* got dtype"):
        dynamic_rnn(cell, x)
    with pytest.raises(TypeError, match=r"x: expected a real floating-point array"):
        cell(x[:, 0], cell.zero_state(1))


@pytest.mark.parametrize("name, shape", [("kernel", (3, 3, 4, 12)), ("W_ci", (5, 6, 3)),
                                         ("z_f/gamma", (4,)), ("c/beta", (3, 1))])
def test_lstm_param_of_wrong_shape(name, shape):
    cell = built(ConvLSTMCell)
    expected = cell.params[name].shape
    cell.params[name] = np.ones(shape)
    with pytest.raises(ValueError, match=rf"params\['{name}'\]: expected shape {re_tuple(expected)}, got {re_tuple(shape)}"):
        dynamic_rnn(cell, np.zeros((1, 2, 6, 5, 2)))


@pytest.mark.parametrize("name", ["gates/kernel", "candidate/kernel", "candidate/gamma"])
def test_gru_param_of_wrong_shape(name):
    cell = built(ConvGRUCell)
    cell.params[name] = cell.params[name][..., :1]
    with pytest.raises(ValueError, match=rf"params\['{name}'\]: expected shape"):
        cell(np.zeros((1, 6, 5, 2)), cell.zero_state(1))


def re_tuple(t):
    return "\\(" + ", ".join(map(str, t)) + (",)" if len(t) == 1 else ")").replace(")", "\\)")


def test_param_names_are_checked():
    cell = built(ConvLSTMCell)
    cell.params["W_Ci"] = cell.params.pop("W_ci")
    with pytest.raises(ValueError, match=r"params: expected exactly the keys .* missing \['W_ci'\], unexpected \['W_Ci'\]"):
        dynamic_rnn(cell, np.zeros((1, 2, 6, 5, 2)))
    cell = built(ConvLSTMCell)
    cell.params["kernel"] = cell.params["kernel"].astype(complex)
    with pytest.raises(TypeError, match=r"params\['kernel'\]: expected a real numeric array"):
        dynamic_rnn(cell, np.zeros((1, 2, 6, 5, 2)))


@pytest.mark.parametrize("lengths, error, words", [
    ([2], ValueError, r"sequence_length: expected shape \[3\] \(one length per batch row\), got \[1\]"),
    ([[1, 2, 3]], ValueError, r"sequence_length: expected shape \[3\]"),
    ([1, 2, 5], ValueError, r"sequence_length: expected lengths in \[0, 4\] \(T = 4\), got min 1 and max 5"),
    ([1, -1, 2], ValueError, r"sequence_length: expected lengths in \[0, 4\]"),
    ([1.0, 2.0, 3.0], TypeError, r"sequence_length: expected integers, got dtype float64"),
])
def test_sequence_length(lengths, error, words):
    cell = built(ConvGRUCell)
    x = np.zeros((3, 4, 6, 5, 2))
    with pytest.raises(error, match=words):
        dynamic_rnn(cell, x, sequence_length=lengths)
    with pytest.raises(error, match=words):
        bidirectional_dynamic_rnn(cell, cell, x, sequence_length=lengths)
    with pytest.raises(error, match=words.replace("sequence_length", "seq_lengths")):
        reverse_sequence(x, lengths)


def test_initial_state_structure_and_shape():
    lstm, gru = built(ConvLSTMCell), built(ConvGRUCell)
    x = np.zeros((2, 3, 6, 5, 2))
    good = lstm.zero_state(2)
    with pytest.raises(TypeError, match=r"initial_state: expected LSTMStateTuple\(c, h\) .* got ndarray"):
        dynamic_rnn(lstm, x, initial_state=good.h)
    with pytest.raises(TypeError, match=r"initial_state: expected LSTMStateTuple\(c, h\) .* of length 3"):
        dynamic_rnn(lstm, x, initial_state=(good.c, good.h, good.h))
    with pytest.raises(ValueError, match=r"initial_state.h: expected shape \[2, 6, 5, 3\], got \[1, 6, 5, 3\]"):
        dynamic_rnn(lstm, x, initial_state=LSTMStateTuple(good.c, good.h[:1]))
    with pytest.raises(TypeError, match=r"initial_state.c: expected dtype float64 .* got float32"):
        dynamic_rnn(lstm, x, initial_state=LSTMStateTuple(good.c.astype(np.float32), good.h))
    with pytest.raises(TypeError, match=r"initial_state: expected one array h .* got a tuple"):
        dynamic_rnn(gru, x, initial_state=good)
    with pytest.raises(ValueError, match=r"initial_state: expected shape \[2, 6, 5, 3\], got \[2, 6, 5, 4\]"):
        dynamic_rnn(gru, x, initial_state=np.zeros((2, 6, 5, 4)))
    with pytest.raises(TypeError, match=r"initial_state_bw: expected one array h"):
        bidirectional_dynamic_rnn(gru, gru, x, initial_state_bw=good)
    with pytest.raises(TypeError, match=r"state: expected LSTMStateTuple"):
        lstm(x[:, 0], good.c)


def test_dtype_keyword():
    cell = built(ConvLSTMCell)
    x = np.zeros((1, 2, 6, 5, 2), dtype=np.float32)
    out, state = dynamic_rnn(cell, x, dtype=np.float32)
    assert out.dtype == state.c.dtype == np.float32
    with pytest.raises(TypeError, match=r"dtype: expected the inputs' dtype float32 .* got float64"):
        dynamic_rnn(cell, x, dtype=np.float64)
    with pytest.raises(TypeError, match=r"dtype: expected a NumPy dtype"):
        dynamic_rnn(cell, x, dtype="no-such-type")


def test_multi_rnn_cell_checks():
    a = ConvLSTMCell([6, 5], 3, [3, 3])
    with pytest.raises(ValueError, match=r"cells: expected a non-empty list"):
        MultiRNNCell([])
    with pytest.raises(TypeError, match=r"cells\[1\]: expected a ConvLSTMCell or ConvGRUCell, got str"):
        MultiRNNCell([a, "b"])
    with pytest.raises(ValueError, match=r"cells\[1\]: expected shape \[6, 5\]"):
        MultiRNNCell([a, ConvGRUCell([6, 6], 2, [3, 3])])
    with pytest.raises(ValueError, match=r"cells\[1\]: expected data_format 'channels_last'"):
        MultiRNNCell([a, ConvGRUCell([6, 5], 2, [3, 3], data_format="channels_first")])
    multi = MultiRNNCell([a, ConvGRUCell([6, 5], 2, [3, 3])])
    with pytest.raises(TypeError, match=r"initial_state: expected a tuple of 2 states"):
        dynamic_rnn(multi, np.zeros((1, 2, 6, 5, 2)), initial_state=a.zero_state(1))
    multi.build(2, seed=0)
    multi.cells[1].params["gates/kernel"] = np.zeros((3, 3, 4, 4))
    with pytest.raises(ValueError, match=r"params\['gates/kernel'\]: expected shape \(3, 3, 5, 4\)"):
        dynamic_rnn(multi, np.zeros((1, 2, 6, 5, 2)))


def test_build_arguments():
    cell = ConvLSTMCell([6, 5], 3, [3, 3])
    with pytest.raises(ValueError, match=r"in_channels: expected an integer >= 1, got 0"):
        cell.build(0)
    with pytest.raises(TypeError, match=r"dtype: expected a floating-point dtype, got int64"):
        cell.zero_state(2, np.int64)
