"""Layouts, dtypes, seeds, time_major, returned gates, stacking and the sigmoid.

Each test compares two computations that must agree for a reason outside
refconv's code:

* channels_first is channels_last on transposed data (and transposed
  peephole weights): the same numbers;
* float32 is float64 rounded: close, relative to the values' scale;
* a seed fixes the bits; another seed gives others;
* time_major only transposes the first two axes;
* the returned gates satisfy the cell's own equations (h = z_o * tanh(c),
  c_t = z_f * c_{t-1} + z_i * z, GRU h_t = u h_{t-1} + (1 - u) candidate) and
  every gate lies in [0, 1];
* a MultiRNNCell is its layers run one after another;
* the sigmoid saturates to exactly 0 and 1 without an overflow warning.
"""

import warnings

import numpy as np
import pytest

import refconv
from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, dynamic_rnn)

# (shape, kernel) in 1, 2 and 3 spatial dimensions, odd and even kernels.
GEOMETRIES = [([7], [3]), ([5, 4], [2, 3]), ([3, 4, 5], [1, 3, 2])]
B, T, C_IN, F = 2, 3, 2, 3


def to_first(a, lead):
    """channels_last -> channels_first: move the last axis to just after the ``lead`` axes."""
    return np.moveaxis(a, -1, lead)


def randomise(cell, rng):
    """Replace every parameter with random non-zero values (gamma around 1)."""
    for name, value in cell.params.items():
        noise = rng.standard_normal(value.shape)
        cell.params[name] = 1 + 0.3 * noise if name.endswith("gamma") else 0.5 * noise


def make(kind, shape, kernel, fmt="channels_last", normalize=True, peephole=True, **options):
    if kind == "lstm":
        return ConvLSTMCell(shape, F, kernel, forget_bias=0.6, normalize=normalize,
                            peephole=peephole, data_format=fmt, **options)
    return ConvGRUCell(shape, F, kernel, normalize=normalize, data_format=fmt)


def states_close(a, b, **tol):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_allclose(x, y, **tol)


# --------------------------------------------------------------------------
# channels_first == channels_last on transposed data
# --------------------------------------------------------------------------

LAYOUT_CASES = [("lstm", n, p) for n in (False, True) for p in (False, True)] + \
               [("gru", n, False) for n in (False, True)]


@pytest.mark.parametrize("shape,kernel", GEOMETRIES)
@pytest.mark.parametrize("kind,normalize,peephole", LAYOUT_CASES)
def test_channels_first_equals_channels_last_transposed(shape, kernel, kind, normalize,
                                                        peephole):
    """dynamic_rnn in channels_first on transposed inputs, initial state and peephole weights
    gives the channels_last outputs and final state, transposed, to 1e-12."""
    rng = np.random.default_rng(len(shape) * 10 + normalize * 2 + peephole)
    last = make(kind, shape, kernel, "channels_last", normalize, peephole)
    last.build(C_IN, seed=1)
    randomise(last, rng)
    first = make(kind, shape, kernel, "channels_first", normalize, peephole)
    first.build(C_IN, seed=2)
    for name, value in last.params.items():
        first.params[name] = to_first(value, 0) if name.startswith("W_c") else value.copy()

    inputs = rng.standard_normal((B, T, *shape, C_IN))
    init = [rng.standard_normal((B, *shape, F)) for _ in range(2 if kind == "lstm" else 1)]
    init_last = LSTMStateTuple(*init) if kind == "lstm" else init[0]
    init_first = LSTMStateTuple(*(to_first(s, 1) for s in init)) if kind == "lstm" \
        else to_first(init[0], 1)

    out_l, state_l = dynamic_rnn(last, inputs, initial_state=init_last)
    out_f, state_f = dynamic_rnn(first, to_first(inputs, 2), initial_state=init_first)
    assert out_f.shape == (B, T, F, *shape)
    np.testing.assert_allclose(out_f, to_first(out_l, 2), rtol=1e-12, atol=1e-12)
    for s_f, s_l in zip(state_f if kind == "lstm" else (state_f,),
                        state_l if kind == "lstm" else (state_l,)):
        np.testing.assert_allclose(s_f, to_first(s_l, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options", [dict(strides=2), dict(padding="valid", dilation_rate=2)])
def test_channels_first_with_keras_input_options(options):
    """The same layout equivalence when the input convolution has strides or dilation."""
    rng = np.random.default_rng(3)
    shape, kernel = [7, 6], [3, 2]
    last = make("lstm", shape, kernel, "channels_last", **options)
    last.build(C_IN, seed=1)
    randomise(last, rng)
    first = make("lstm", shape, kernel, "channels_first", **options)
    first.build(C_IN, seed=2)
    for name, value in last.params.items():
        first.params[name] = to_first(value, 0) if name.startswith("W_c") else value.copy()
    inputs = rng.standard_normal((B, T, *shape, C_IN))
    out_l, _ = dynamic_rnn(last, inputs)
    out_f, _ = dynamic_rnn(first, to_first(inputs, 2))
    np.testing.assert_allclose(out_f, to_first(out_l, 2), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# float32 against float64
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape,kernel", GEOMETRIES)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_float32_is_float64_rounded(shape, kernel, kind, normalize, fmt):
    """The same params on float32 inputs: float32 outputs and states, within 1e-5 of the
    float64 run relative to the largest float64 value."""
    rng = np.random.default_rng(7)
    cell = make(kind, shape, kernel, fmt, normalize)
    cell.build(C_IN, seed=4)
    randomise(cell, rng)
    frame = (*shape, C_IN) if fmt == "channels_last" else (C_IN, *shape)
    inputs = rng.standard_normal((B, T, *frame))
    out64, state64 = dynamic_rnn(cell, inputs)
    out32, state32 = dynamic_rnn(cell, inputs.astype(np.float32))
    assert out32.dtype == np.float32
    for s32, s64 in zip(*(s if isinstance(s, tuple) else (s,) for s in (state32, state64))):
        assert s32.dtype == np.float32
        assert np.max(np.abs(s32 - s64)) <= 1e-5 * np.max(np.abs(s64))
    assert np.max(np.abs(out32 - out64)) <= 1e-5 * np.max(np.abs(out64))


# --------------------------------------------------------------------------
# seeds
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_same_seed_same_bits_other_seed_other_bits(kind):
    """build(seed=s) twice: identical params and outputs (array_equal); another seed differs."""
    shape, kernel = [5, 4], [3, 3]
    inputs = np.random.default_rng(0).standard_normal((B, T, *shape, C_IN))
    cells = [make(kind, shape, kernel, normalize=False) for _ in range(3)]
    for cell, seed in zip(cells, (123, 123, 124)):
        cell.build(C_IN, seed=seed)
    a, b, other = cells
    assert list(a.params) == list(b.params)
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name])
    outs = [dynamic_rnn(cell, inputs)[0] for cell in cells]
    assert np.array_equal(outs[0], outs[1])
    kernel_name = "kernel" if kind == "lstm" else "gates/kernel"
    assert not np.array_equal(a.params[kernel_name], other.params[kernel_name])
    assert not np.allclose(outs[0], outs[2])


# --------------------------------------------------------------------------
# time_major
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_time_major_is_the_transpose(kind):
    """time_major=True on [T, B, ...] gives the [B, T, ...] result with axes 0 and 1 swapped,
    also with sequence_length and in bidirectional_dynamic_rnn."""
    shape, kernel = [5, 4], [2, 3]
    rng = np.random.default_rng(8)
    cell = make(kind, shape, kernel)
    cell.build(C_IN, seed=5)
    randomise(cell, rng)
    inputs = rng.standard_normal((B, T, *shape, C_IN))
    lengths = np.array([T, 1])
    for seq in (None, lengths):
        out, state = dynamic_rnn(cell, inputs, sequence_length=seq)
        out_tm, state_tm = dynamic_rnn(cell, inputs.swapaxes(0, 1), sequence_length=seq,
                                       time_major=True)
        assert out_tm.shape == (T, B, *shape, F)
        np.testing.assert_allclose(out_tm, out.swapaxes(0, 1), rtol=1e-13, atol=1e-15)
        states_close(state_tm, state, rtol=1e-13, atol=1e-15)
    (fw, bw), _ = bidirectional_dynamic_rnn(cell, cell, inputs, sequence_length=lengths)
    (fw_tm, bw_tm), _ = bidirectional_dynamic_rnn(cell, cell, inputs.swapaxes(0, 1),
                                                  sequence_length=lengths, time_major=True)
    np.testing.assert_allclose(fw_tm, fw.swapaxes(0, 1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(bw_tm, bw.swapaxes(0, 1), rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------
# return_gates: the cell's equations, checked on what it returns
# --------------------------------------------------------------------------

@pytest.mark.parametrize("normalize,peephole", [(False, False), (False, True), (True, True),
                                                (True, False)])
@pytest.mark.parametrize("recurrent", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_lstm_returned_gates_satisfy_the_equations(normalize, peephole, recurrent, fmt):
    """h == z_o * tanh(c); without layer norm c_t == z_f * c_{t-1} + z_i * z exactly; gates in
    [0, 1], z in [-1, 1]; the last c and h are the final state."""
    shape, kernel = [5, 4], [3, 2]
    rng = np.random.default_rng(9)
    cell = ConvLSTMCell(shape, F, kernel, forget_bias=0.4, normalize=normalize,
                        peephole=peephole, data_format=fmt, recurrent_activation=recurrent)
    cell.build(C_IN, seed=6)
    randomise(cell, rng)
    frame = (*shape, C_IN) if fmt == "channels_last" else (C_IN, *shape)
    inputs = 2 * rng.standard_normal((B, T, *frame))
    c0 = rng.standard_normal((B, *cell.output_size))
    h0 = rng.standard_normal((B, *cell.output_size))
    out, state, g = dynamic_rnn(cell, inputs, initial_state=LSTMStateTuple(c0, h0),
                                return_gates=True)

    assert set(g) == {"z", "z_i", "z_f", "z_o", "c", "h"}
    for name in ("z_i", "z_f", "z_o"):
        assert g[name].shape == out.shape
        assert np.all((g[name] >= 0) & (g[name] <= 1)), name
    assert np.all(np.abs(g["z"]) <= 1)
    np.testing.assert_array_equal(g["h"], out)
    np.testing.assert_allclose(out, g["z_o"] * np.tanh(g["c"]), rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(state.c, g["c"][:, -1])
    np.testing.assert_array_equal(state.h, out[:, -1])
    if not normalize:
        c_prev = np.concatenate([c0[:, None], g["c"][:, :-1]], axis=1)
        np.testing.assert_array_equal(g["c"], g["z_f"] * c_prev + g["z_i"] * g["z"])


@pytest.mark.parametrize("normalize", [False, True])
def test_gru_returned_gates_satisfy_the_equations(normalize):
    """h_t == u * h_{t-1} + (1 - u) * candidate; r, u in [0, 1], candidate in [-1, 1]."""
    shape, kernel = [6], [4]
    rng = np.random.default_rng(10)
    cell = ConvGRUCell(shape, F, kernel, normalize=normalize)
    cell.build(C_IN, seed=7)
    randomise(cell, rng)
    inputs = 2 * rng.standard_normal((B, T, *shape, C_IN))
    h0 = rng.standard_normal((B, *shape, F))
    out, state, g = dynamic_rnn(cell, inputs, initial_state=h0, return_gates=True)
    assert set(g) == {"r", "u", "candidate", "h"}
    for name in ("r", "u"):
        assert np.all((g[name] >= 0) & (g[name] <= 1)), name
    assert np.all(np.abs(g["candidate"]) <= 1)
    np.testing.assert_array_equal(g["h"], out)
    h_prev = np.concatenate([h0[:, None], out[:, :-1]], axis=1)
    np.testing.assert_allclose(out, g["u"] * h_prev + (1 - g["u"]) * g["candidate"],
                               rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(state, out[:, -1])


def test_returned_gates_are_zero_past_each_length():
    """With sequence_length, the gates past a row's length are zero like its outputs, and the
    equations hold within it."""
    shape, kernel = [5], [3]
    rng = np.random.default_rng(11)
    cell = ConvLSTMCell(shape, F, kernel, normalize=False)
    cell.build(C_IN, seed=8)
    randomise(cell, rng)
    inputs = rng.standard_normal((B, T, *shape, C_IN))
    out, state, g = dynamic_rnn(cell, inputs, sequence_length=[T, 1], return_gates=True)
    for name, value in g.items():
        assert np.all(value[1, 1:] == 0), name
    np.testing.assert_array_equal(state.c[1], g["c"][1, 0])
    np.testing.assert_allclose(out, g["z_o"] * np.tanh(g["c"]), rtol=1e-14, atol=1e-15)


# --------------------------------------------------------------------------
# MultiRNNCell
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_multi_rnn_cell_is_the_layers_one_after_another(fmt, with_lengths):
    """dynamic_rnn(MultiRNNCell([lstm, gru, lstm])) == dynamic_rnn layer by layer, each on the
    outputs of the one below, with the per-layer final states; a strided first layer shrinks
    the grid the next layers run on."""
    rng = np.random.default_rng(12)
    layers = [ConvLSTMCell([8, 6], 3, [3, 3], data_format=fmt, strides=2),
              ConvGRUCell([4, 3], 2, [2, 3], normalize=False, data_format=fmt),
              ConvLSTMCell([4, 3], 2, [3, 1], normalize=False, data_format=fmt)]
    multi = MultiRNNCell(layers)
    multi.build(C_IN, seed=9)
    for layer in layers:
        randomise(layer, rng)
    frame = (8, 6, C_IN) if fmt == "channels_last" else (C_IN, 8, 6)
    inputs = rng.standard_normal((B, T, *frame))
    lengths = np.array([2, T]) if with_lengths else None
    init = tuple(LSTMStateTuple(*(rng.standard_normal((B, *c.output_size)) for _ in range(2)))
                 if isinstance(c, ConvLSTMCell) else rng.standard_normal((B, *c.output_size))
                 for c in layers)

    out, states = dynamic_rnn(multi, inputs, sequence_length=lengths, initial_state=init)

    x, by_hand = inputs, []
    for layer, layer_init in zip(layers, init):
        x, layer_state = dynamic_rnn(layer, x, sequence_length=lengths, initial_state=layer_init)
        by_hand.append(layer_state)
    assert isinstance(states, tuple) and len(states) == 3
    np.testing.assert_allclose(out, x, rtol=1e-13, atol=1e-15)
    for got, want in zip(states, by_hand):
        states_close(got, want, rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------
# the sigmoid
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_saturates_without_warnings(dtype):
    """sigmoid(-1e4) == 0 and sigmoid(1e4) == 1 exactly, no overflow warning, dtype kept;
    and sigmoid(0) == 1/2, sigmoid(x) + sigmoid(-x) == 1 on ordinary values."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = refconv.sigmoid(np.array([-1e4, 1e4], dtype=dtype))
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, [0.0, 1.0])
        x = np.linspace(-30, 30, 61, dtype=dtype)
        s = refconv.sigmoid(x)
        assert s[30] == 0.5
        np.testing.assert_allclose(s + refconv.sigmoid(-x), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cells_on_huge_inputs_do_not_warn(dtype):
    """Inputs of size 1e4 drive every gate to saturation without a floating-point warning."""
    rng = np.random.default_rng(13)
    inputs = (1e4 * rng.standard_normal((B, T, 5, C_IN))).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cell in (ConvLSTMCell([5], F, [3], normalize=False),
                     ConvGRUCell([5], F, [3], normalize=False)):
            cell.build(C_IN, seed=14)
            out, _ = dynamic_rnn(cell, inputs)
            assert out.dtype == dtype and np.all(np.isfinite(out))
