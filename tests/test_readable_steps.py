"""The readable step functions against an independent per-pixel reference (issue 18, item 8).

A cell's call takes the fast path, so these tests call the readable code
directly: ``refconv.lstm_step`` / ``refconv.gru_step`` for one step (every
quantity of the cache, by name), and ``dynamic_rnn(..., reference=True)`` (with
``return_gates``) over time with per-row lengths. The oracle
(``_oracles.lstm_step_ref`` / ``gru_step_ref``) imports nothing from refconv:
one ``np.dot`` per output pixel for the convolution with TF-SAME padding
(even kernels pad one more zero after), layer norm per sample, SPEC's lines in
order. float64, every parameter random and non-zero, random initial states,
both data formats, peephole and normalize on and off; 1e-12.
"""

import itertools

import numpy as np
import pytest

import refconv
from refconv import ConvGRUCell, ConvLSTMCell, LSTMStateTuple
from _oracles import frame, gru_step_ref, lstm_step_ref, randomize

TOL = dict(rtol=1e-12, atol=1e-12)

# (shape, kernel): 1-D, 2-D and 3-D, odd and even kernels, a kernel larger than the frame.
GEOMETRIES = [([5], [2]), ([4], [3]), ([3, 4], [2, 3]), ([3, 2], [4, 1]), ([2, 3, 2], [2, 1, 3])]
FORMATS = ["channels_last", "channels_first"]


def lstm_case(shape, kernel, fmt, normalize, peephole, seed, c_in=2, filters=2, batch=2):
    rng = np.random.default_rng(seed)
    cell = ConvLSTMCell(shape, filters, kernel, forget_bias=0.7, normalize=normalize,
                        peephole=peephole, data_format=fmt)
    cell.build(c_in, seed=seed)
    randomize(cell, rng)
    x = rng.standard_normal((batch, *frame(fmt, shape, c_in)))
    c = rng.standard_normal((batch, *cell.output_size))
    h = rng.standard_normal((batch, *cell.output_size))
    return cell, rng, x, c, h


def gru_case(shape, kernel, fmt, normalize, seed, c_in=2, filters=2, batch=2):
    rng = np.random.default_rng(seed)
    cell = ConvGRUCell(shape, filters, kernel, normalize=normalize, data_format=fmt)
    cell.build(c_in, seed=seed)
    randomize(cell, rng)
    x = rng.standard_normal((batch, *frame(fmt, shape, c_in)))
    h = rng.standard_normal((batch, *cell.output_size))
    return cell, rng, x, h


def assert_quantities(actual, expected, names, where):
    assert set(names) <= set(expected), "the reference returned fewer quantities than asked"
    for name in names:
        np.testing.assert_allclose(actual[name], expected[name], **TOL,
                                   err_msg=f"{name} differs ({where})")


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("normalize,peephole", list(itertools.product([True, False], repeat=2)))
def test_lstm_step_against_per_pixel_reference(geometry, fmt, normalize, peephole):
    shape, kernel = geometry
    cell, _, x, c, h = lstm_case(shape, kernel, fmt, normalize, peephole, seed=len(shape))
    params = dict(cell.params)
    h_new, state, cache = refconv.lstm_step(x, LSTMStateTuple(c, h), params, cell)
    ref = lstm_step_ref(x, c, h, params, fmt=fmt, normalize=normalize, peephole=peephole,
                        forget_bias=cell.forget_bias)
    got = {name: getattr(cache, name) for name in ("z", "z_i", "z_f", "z_o", "c", "h")}
    assert_quantities(got, ref, got, "lstm_step's cache")
    np.testing.assert_allclose(h_new, ref["h"], **TOL)
    np.testing.assert_allclose(state.c, ref["c"], **TOL)
    np.testing.assert_allclose(state.h, ref["h"], **TOL)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("normalize", [True, False])
def test_gru_step_against_per_pixel_reference(geometry, fmt, normalize):
    shape, kernel = geometry
    cell, _, x, h = gru_case(shape, kernel, fmt, normalize, seed=10 + len(shape))
    params = dict(cell.params)
    h_new, state, cache = refconv.gru_step(x, h, params, cell)
    ref = gru_step_ref(x, h, params, fmt=fmt, normalize=normalize)
    got = {name: getattr(cache, name) for name in ("r", "u", "candidate", "h")}
    assert_quantities(got, ref, got, "gru_step's cache")
    np.testing.assert_allclose(h_new, ref["h"], **TOL)
    np.testing.assert_allclose(state, ref["h"], **TOL)


def reference_loop(step, inputs, state, lengths, names):
    """Run the oracle over time: outputs and gates zero past a row's length, the state carried."""
    batch, steps = inputs.shape[:2]
    out = {name: np.zeros((batch, steps, *np.shape(state[0] if isinstance(state, tuple)
                                                     else state)[1:])) for name in names}
    for t in range(steps):
        values, new_state = step(inputs[:, t], state)
        alive = t < lengths
        for name in names:
            out[name][alive, t] = values[name][alive]
        if isinstance(state, tuple):
            state = tuple(np.where(alive.reshape(-1, *[1] * (s.ndim - 1)), n, s)
                          for n, s in zip(new_state, state))
        else:
            state = np.where(alive.reshape(-1, *[1] * (state.ndim - 1)), new_state, state)
    return out, state


@pytest.mark.parametrize("geometry", [GEOMETRIES[0], GEOMETRIES[2], GEOMETRIES[4]], ids=str)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("normalize,peephole", [(True, True), (False, False), (True, False)])
def test_lstm_readable_dynamic_rnn_against_reference(geometry, fmt, normalize, peephole):
    shape, kernel = geometry
    cell, rng, _, c0, h0 = lstm_case(shape, kernel, fmt, normalize, peephole, seed=20, batch=3)
    inputs = rng.standard_normal((3, 4, *frame(fmt, shape, 2)))
    lengths = np.array([4, 0, 2])
    names = ("z", "z_i", "z_f", "z_o", "c", "h")
    outputs, state, gates = refconv.dynamic_rnn(cell, inputs, lengths, LSTMStateTuple(c0, h0),
                                                return_gates=True, reference=True)
    params = dict(cell.params)

    def step(x, s):
        ref = lstm_step_ref(x, s[0], s[1], params, fmt=fmt, normalize=normalize,
                            peephole=peephole, forget_bias=cell.forget_bias)
        return ref, (ref["c"], ref["h"])

    ref, (c_ref, h_ref) = reference_loop(step, inputs, (c0, h0), lengths, names)
    assert_quantities(gates, ref, names, "dynamic_rnn(reference=True, return_gates=True)")
    np.testing.assert_allclose(outputs, ref["h"], **TOL)
    np.testing.assert_allclose(state.c, c_ref, **TOL)
    np.testing.assert_allclose(state.h, h_ref, **TOL)
    np.testing.assert_array_equal(state.c[1], c0[1])  # length 0: the initial state, untouched
    # Without return_gates the readable loop runs as well: same numbers.
    out2, state2 = refconv.dynamic_rnn(cell, inputs, lengths, LSTMStateTuple(c0, h0),
                                       reference=True)
    np.testing.assert_allclose(out2, ref["h"], **TOL)
    np.testing.assert_allclose(state2.c, c_ref, **TOL)


@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[3], GEOMETRIES[4]], ids=str)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("normalize", [True, False])
def test_gru_readable_dynamic_rnn_against_reference(geometry, fmt, normalize):
    shape, kernel = geometry
    cell, rng, _, h0 = gru_case(shape, kernel, fmt, normalize, seed=30, batch=3)
    inputs = rng.standard_normal((3, 4, *frame(fmt, shape, 2)))
    lengths = np.array([1, 4, 0])
    names = ("r", "u", "candidate", "h")
    outputs, state, gates = refconv.dynamic_rnn(cell, inputs, lengths, h0, return_gates=True,
                                                reference=True)
    params = dict(cell.params)

    def step(x, h):
        ref = gru_step_ref(x, h, params, fmt=fmt, normalize=normalize)
        return ref, ref["h"]

    ref, h_ref = reference_loop(step, inputs, h0, lengths, names)
    assert_quantities(gates, ref, names, "dynamic_rnn(reference=True, return_gates=True)")
    np.testing.assert_allclose(outputs, ref["h"], **TOL)
    np.testing.assert_allclose(state, h_ref, **TOL)
    out2, state2 = refconv.dynamic_rnn(cell, inputs, lengths, h0, reference=True)
    np.testing.assert_allclose(out2, ref["h"], **TOL)
    np.testing.assert_allclose(state2, h_ref, **TOL)


def test_oracle_same_padding_puts_the_extra_zero_after():
    """The oracle itself: a [1, 2] kernel [[0, 1]] reads the pixel after, zero past the end."""
    from _oracles import conv_same
    x = np.arange(1.0, 4.0).reshape(1, 3, 1)
    kernel = np.array([0.0, 1.0]).reshape(2, 1, 1)
    np.testing.assert_array_equal(conv_same(x, kernel)[0, :, 0], [2.0, 3.0, 0.0])
    kernel = np.array([1.0, 0.0, 0.0]).reshape(3, 1, 1)  # odd: one zero each side
    np.testing.assert_array_equal(conv_same(x, kernel)[0, :, 0], [0.0, 1.0, 2.0])
