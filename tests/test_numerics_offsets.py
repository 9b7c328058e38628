"""Layer norm under 1e5 offsets: the fast path equals the readable one at 1e-12 (issue 18, 3 and 5).

Inputs offset by 1e5 make every convolution output's mean 1e5 times its
spread. Layer norm's variance taken as ``E[v^2] - mean^2`` then loses about
``eps * mean^2 / var`` (1e-6 here), and ``v * a + b`` with ``b = beta - mean * a``
loses about ``eps * |mean| / std``: the readable :func:`refconv.layer_norm`
re-centres first, and the fast path must too where the mean is large.

For the comparison to mean anything at 1e-12, the readable path must itself be
exact to rounding on these inputs, so the data are chosen to make the
convolutions exact in any summation order: inputs, initial states and weights
are dyadic (multiples of 1/8 or 1/16, a few bits each), one time step, so every
product and every partial sum fits in float64's 53 bits. Whatever difference
remains is layer norm's. Within a block the input-weight sums are equal across
channels (and a large kernel reads the input only at its centre tap), so the
offset moves the mean and not the spread across channels and borders.

Forward: ``dynamic_rnn`` (fast) vs ``dynamic_rnn(..., reference=True)``.
Gradients: ``dynamic_rnn_grad`` (the fused backward for a full-length LSTM; the
fast forward under the readable backward for the GRU) vs
``_oracles.readable_bptt``, a loop over the public readable steps. LSTM and
GRU, 1x1 kernel with F = 1 and larger (F = 3, C_in = 2, 3x3 kernel, 3-D,
batch 1 and 3, both data formats).
"""

import numpy as np
import pytest

import refconv
from refconv import ConvGRUCell, ConvLSTMCell, LSTMStateTuple
from _oracles import frame, readable_bptt

OFFSET = 1e5
TOL = dict(rtol=1e-12, atol=1e-12)


def dyadic(rng, shape, scale, bits=4):
    """Random multiples of 2**-bits around 0: products and sums of a few of them are exact."""
    return np.round(rng.standard_normal(shape) * scale * 2**bits) / 2**bits


def input_rows(kernel, c_in):
    """Index of the kernel's input-channel rows (``[..., :C_in, :]``)."""
    return (Ellipsis, slice(0, c_in), slice(None))


def offset_friendly(cell, rng, c_in, blocks):
    """Dyadic parameters; the input rows read only the centre tap, with equal sums within a block.

    ``blocks``: ``{kernel name: the offset's weight in each channel block}`` (0: no offset there).
    """
    F = cell.filters
    for name, value in cell.params.items():
        if name.endswith("gamma"):
            cell.params[name] = 1.0 + dyadic(rng, value.shape, 0.3)
        else:
            cell.params[name] = dyadic(rng, value.shape, 0.5)
    for name, offsets in blocks.items():
        kernel = cell.params[name]
        centre = tuple(k // 2 for k in kernel.shape[:-2])
        w_x = np.zeros_like(kernel[input_rows(kernel, c_in)])
        w_x[centre] = kernel[centre][:c_in]
        for g, target in enumerate(offsets):  # equal column sums: one offset per block
            cols = slice(g * F, (g + 1) * F)
            sums = w_x[centre][:, cols].sum(axis=0)
            w_x[centre][0, cols] += target - sums
        kernel[input_rows(kernel, c_in)] = w_x


def lstm_offsets(peephole):
    """The offset's weight in the blocks z, z_i, z_f, z_o. With a peephole z_o adds
    ``W_co * c_new`` (not dyadic) to its conv output: offset there, it would round
    at 1e5's precision (1.5e-11) differently in the two paths, so it gets none."""
    return {"kernel": (1.0, 0.75, 1.25, 0.0 if peephole else 0.5)}


# The GRU's candidate reads r * h (not dyadic): its initial state is zero, so that
# r * h is exact and the offset in the candidate's conv output rounds nowhere.
GRU_OFFSETS = {"gates/kernel": (1.0, 0.75), "candidate/kernel": (1.25,)}


CASES = [  # (shape, kernel, c_in, filters, batch, fmt)
    ([4, 4], [1, 1], 1, 1, 1, "channels_last"),       # the audit's case: 1x1, F = 1, one frame
    ([6], [1], 1, 1, 3, "channels_first"),
    ([5, 6], [1, 1], 2, 3, 1, "channels_first"),
    ([5, 4], [3, 3], 2, 3, 3, "channels_last"),
    ([3, 4, 2], [3, 1, 2], 2, 2, 2, "channels_first"),
]


def data(cell, rng, shape, c_in, batch, fmt, lstm):
    inputs = OFFSET + dyadic(rng, (batch, 1, *frame(fmt, shape, c_in)), 1 / 32, bits=7)
    s = (batch, *cell.output_size)
    state = (LSTMStateTuple(dyadic(rng, s, 0.5), dyadic(rng, s, 0.5)) if lstm
             else np.zeros(s))
    return inputs, state


def assert_same_state(a, b, what):
    """Two LSTMStateTuples, field by field."""
    for field, x, y in zip(b._fields, a, b):
        np.testing.assert_allclose(x, y, **TOL, err_msg=f"{what}.{field}")


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("peephole", [True, False])
def test_lstm_fast_equals_readable_under_offsets(case, peephole):
    shape, kernel, c_in, F, batch, fmt = case
    rng = np.random.default_rng(len(shape) * 10 + F)
    cell = ConvLSTMCell(shape, F, kernel, forget_bias=0.5, peephole=peephole, data_format=fmt)
    cell.build(c_in, seed=1)
    offset_friendly(cell, rng, c_in, lstm_offsets(peephole))
    inputs, state = data(cell, rng, shape, c_in, batch, fmt, lstm=True)

    out_fast, state_fast = refconv.dynamic_rnn(cell, inputs, initial_state=state)
    out_ref, state_ref = refconv.dynamic_rnn(cell, inputs, initial_state=state, reference=True)
    np.testing.assert_allclose(out_fast, out_ref, **TOL)
    assert_same_state(state_fast, state_ref, "final state")

    d_out = rng.standard_normal(out_ref.shape)
    d_state = LSTMStateTuple(*(rng.standard_normal(s.shape) for s in state_ref))
    fast = refconv.dynamic_rnn_grad(cell, inputs, d_out, d_state, initial_state=state)
    d_in, d_s0, d_params = readable_bptt(cell, inputs, d_out, d_state, state)
    assert_gradients_equal(fast, d_in, d_s0, d_params, c_in)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gru_fast_equals_readable_under_offsets(case):
    shape, kernel, c_in, F, batch, fmt = case
    rng = np.random.default_rng(len(shape) * 10 + F + 1)
    cell = ConvGRUCell(shape, F, kernel, data_format=fmt)
    cell.build(c_in, seed=2)
    offset_friendly(cell, rng, c_in, GRU_OFFSETS)
    inputs, state = data(cell, rng, shape, c_in, batch, fmt, lstm=False)

    out_fast, state_fast = refconv.dynamic_rnn(cell, inputs, initial_state=state)
    out_ref, state_ref = refconv.dynamic_rnn(cell, inputs, initial_state=state, reference=True)
    np.testing.assert_allclose(out_fast, out_ref, **TOL)
    np.testing.assert_allclose(state_fast, state_ref, **TOL)

    d_out = rng.standard_normal(out_ref.shape)
    d_state = rng.standard_normal(state_ref.shape)
    fast = refconv.dynamic_rnn_grad(cell, inputs, d_out, d_state, initial_state=state)
    d_in, d_s0, d_params = readable_bptt(cell, inputs, d_out, d_state, state)
    assert_gradients_equal(fast, d_in, d_s0, d_params, c_in)


def assert_gradients_equal(fast, d_in, d_s0, d_params, c_in):
    """Each gradient equal to the readable one at 1e-12 of its own largest entry.

    Except the kernel's input rows: ``sum over pixels of x * d_y`` with ``x``
    about 1e5 and ``sum(d_y)`` zero (layer norm's gradient has zero mean), so
    their exact value is a cancellation of 1e5-sized terms, known only to
    ``eps * 1e5`` of the terms' size in any summation order: held at 1e-12 * 1e5.
    """
    def same(a, b, name, condition=1.0):
        scale = max(np.abs(b).max(), 1.0)
        np.testing.assert_allclose(a, b, rtol=1e-12 * condition,
                                   atol=1e-12 * condition * scale, err_msg=name)

    same(fast.inputs, d_in, "d_inputs")
    states = (zip(d_s0._fields, fast.initial_state, d_s0) if isinstance(d_s0, tuple)
              else [("h", fast.initial_state, d_s0)])
    for name, a, b in states:
        same(a, b, f"d_initial_state.{name}")
    assert set(fast.params) == set(d_params)
    for name in d_params:
        a, b = fast.params[name], d_params[name]
        if name.endswith("kernel"):
            same(a[..., c_in:, :], b[..., c_in:, :], f"d_{name}, state rows")
            same(a[..., :c_in, :], b[..., :c_in, :], f"d_{name}, input rows", OFFSET)
        else:
            same(a, b, f"d_{name}")


def test_offsets_really_are_large_against_the_spread():
    """The premise: z, z_i and z_f's conv outputs have a mean 1e4+ times their spread."""
    shape, kernel, c_in, F, batch, fmt = CASES[3]
    rng = np.random.default_rng(0)
    cell = ConvLSTMCell(shape, F, kernel, data_format=fmt)
    cell.build(c_in, seed=1)
    offset_friendly(cell, rng, c_in, lstm_offsets(True))
    inputs, (c, h) = data(cell, rng, shape, c_in, batch, fmt, lstm=True)
    _, _, cache = refconv.lstm_step(inputs[:, 0], LSTMStateTuple(c, h), dict(cell.params), cell)
    for v in (cache.z_in, cache.z_i_in, cache.z_f_in):
        for sample in v:
            assert abs(sample.mean()) > 1e4 * sample.std() > 0
