"""One cell step against a per-pixel reference written straight from SPEC.md's equations.

The reference below imports nothing from refconv. It computes every value of
one step by explicit Python loops (batch row, output pixel, kernel offset,
channel) on Python floats with ``math.exp`` / ``math.tanh``: no vectorised
convolution, no ``np.split``, no broadcasting. NumPy arrays are used only as
containers that are read and written one element at a time. It is slow, so
the sizes are tiny (1-2 samples, 2-5 pixels per axis, 1-2 input channels, 1-3
filters), and it is written to be read next to SPEC.md:

* convolution: cross-correlation, kernel ``[*k, C_in + F, C_out]``, SAME padding
  split as TensorFlow does (``total // 2`` zeros before, the rest after, so an
  even kernel pads one more zero after than before); for the LSTM's Keras
  options the input is convolved with its strides/padding/dilation and the
  state ``h`` always SAME, stride 1, dilation 1;
* layer norm: per sample, over every spatial pixel and channel, biased
  variance, ``eps = 1e-12``, one ``gamma``/``beta`` per channel;
* LSTM: blocks z, z_i, z_f, z_o; peepholes W_ci, W_cf on the old c and W_co on
  the new c before its layer norm; forget_bias after the layer norm; the bias
  only when normalize is False;
* GRU: blocks r, u; candidate from ``concat([x, r * h])``; biases (gates/bias
  initialised to ones) only when normalize is False.

Every parameter is set to non-zero random values (gamma around 1, random
beta, bias and peepholes) and the initial state is random, so a term that is
dropped, misplaced or transposed changes the numbers.
"""

import itertools
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refconv import ConvGRUCell, ConvLSTMCell, LSTMStateTuple

RTOL, ATOL = 1e-10, 1e-12
EPS = 1e-12  # tf.contrib.layers.layer_norm's variance epsilon


# --------------------------------------------------------------------------
# The reference: scalar maths, explicit loops.
# --------------------------------------------------------------------------

def sigmoid(v):
    """The logistic function on one Python float (two branches, so exp never overflows)."""
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def hard_sigmoid(v):
    """Keras 3: clip(x / 6 + 1/2, 0, 1)."""
    return min(max(v / 6.0 + 0.5, 0.0), 1.0)


def hard_sigmoid_keras2(v):
    """Keras 2: clip(0.2 x + 1/2, 0, 1)."""
    return min(max(0.2 * v + 0.5, 0.0), 1.0)


RECURRENT = {"sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid,
             "hard_sigmoid_keras2": hard_sigmoid_keras2}


def at(fmt, b, pos, ch):
    """Index of (sample b, pixel pos, channel ch) in a batched frame of layout ``fmt``."""
    return (b, *pos, ch) if fmt == "channels_last" else (b, ch, *pos)


def at_weight(fmt, pos, ch):
    """Index of (pixel pos, channel ch) in a peephole weight (one frame, no batch axis)."""
    return (*pos, ch) if fmt == "channels_last" else (ch, *pos)


def axis_geometry(n, k, stride, dilation, padding):
    """(output length, zeros padded before) of one spatial axis, as SPEC states TF's rule."""
    if padding == "same":
        out = -(-n // stride)  # ceil(n / stride)
        total = max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)
        return out, total // 2  # the rest, total - total // 2, goes after
    return (n - (k - 1) * dilation - 1) // stride + 1, 0


def conv_pixel(src, fmt, b, out_pos, n_channels, kernel, row0, out_ch, axes):
    """One output value of a cross-correlation, summed offset by offset and channel by channel.

    ``src`` channel ``ci`` meets kernel row ``row0 + ci`` (so the x part of
    ``concat([x, h])`` uses rows ``0..C_in-1`` and the h part the rows after).
    ``axes`` holds per spatial axis ``(length, stride, dilation, zeros before)``;
    an input position outside ``[0, length)`` is a padding zero and adds nothing.
    """
    total = 0.0
    for offset in itertools.product(*(range(k) for k in kernel.shape[:-2])):
        in_pos = []
        for o, j, (n, stride, dilation, before) in zip(out_pos, offset, axes):
            p = o * stride + j * dilation - before
            if not 0 <= p < n:
                break
            in_pos.append(p)
        else:
            for ci in range(n_channels):
                total += float(src[at(fmt, b, in_pos, ci)]) * float(kernel[(*offset, row0 + ci, out_ch)])
    return total


def layer_norm(values, gamma, beta, eps=EPS):
    """LN of one sample given as {(pos, ch): value}: mean and biased variance over all of it."""
    n = len(values)
    mean = math.fsum(values.values()) / n
    var = math.fsum((v - mean) ** 2 for v in values.values()) / n
    std = math.sqrt(var + eps)
    return {(pos, ch): float(gamma[ch]) * (v - mean) / std + float(beta[ch])
            for (pos, ch), v in values.items()}


def ref_lstm_step(x, c, h, p, *, fmt, filters, kernel_size, forget_bias=1.0, normalize=True,
                  peephole=True, recurrent="sigmoid", strides=None, padding="same",
                  dilation=None, preacts=None):
    """SPEC's ConvLSTM step, pixel by pixel. Returns (c_new, h_new) in layout ``fmt``.

    ``preacts``, when a list, collects every gate's value just before its squashing.
    """
    n_dims = len(kernel_size)
    strides = strides or [1] * n_dims
    dilation = dilation or [1] * n_dims
    cl = fmt == "channels_last"
    batch = x.shape[0]
    c_in = x.shape[-1] if cl else x.shape[1]
    in_shape = x.shape[1:-1] if cl else x.shape[2:]
    F = filters
    squash = RECURRENT[recurrent]

    x_axes, out_shape = [], []
    for n, k, s, d in zip(in_shape, kernel_size, strides, dilation):
        out, before = axis_geometry(n, k, s, d, padding)
        x_axes.append((n, s, d, before))
        out_shape.append(out)
    # The state lives on the input convolution's output grid; h is convolved SAME, stride 1.
    h_axes = [(n, 1, 1, axis_geometry(n, k, 1, 1, "same")[1])
              for n, k in zip(out_shape, kernel_size)]
    pixels = list(itertools.product(*(range(n) for n in out_shape)))

    def W(name, pos, ch):
        return float(p[name][at_weight(fmt, pos, ch)])

    c_new_out = np.zeros((batch, *(out_shape + [F] if cl else [F] + out_shape)))
    h_new_out = np.zeros_like(c_new_out)
    for b in range(batch):
        # y = conv(concat([x, h]), kernel) (+ bias): the channel sum split into x's and h's rows.
        y = {}
        for pos in pixels:
            for ch in range(4 * F):
                v = (conv_pixel(x, fmt, b, pos, c_in, p["kernel"], 0, ch, x_axes)
                     + conv_pixel(h, fmt, b, pos, F, p["kernel"], c_in, ch, h_axes))
                if not normalize:
                    v += float(p["bias"][ch])
                y[pos, ch] = v
        # split in the order z, z_i, z_f, z_o
        z = {(pos, f): y[pos, f] for pos in pixels for f in range(F)}
        z_i = {(pos, f): y[pos, F + f] for pos in pixels for f in range(F)}
        z_f = {(pos, f): y[pos, 2 * F + f] for pos in pixels for f in range(F)}
        z_o = {(pos, f): y[pos, 3 * F + f] for pos in pixels for f in range(F)}
        c_old = {(pos, f): float(c[at(fmt, b, pos, f)]) for pos in pixels for f in range(F)}
        if peephole:
            for key in z_i:
                z_i[key] += W("W_ci", *key) * c_old[key]
                z_f[key] += W("W_cf", *key) * c_old[key]
        if normalize:
            z = layer_norm(z, p["z/gamma"], p["z/beta"])
            z_i = layer_norm(z_i, p["z_i/gamma"], p["z_i/beta"])
            z_f = layer_norm(z_f, p["z_f/gamma"], p["z_f/beta"])
        c_new = {}
        for key in z:
            forget = squash(z_f[key] + forget_bias)
            keep = squash(z_i[key])
            c_new[key] = c_old[key] * forget + keep * math.tanh(z[key])
            if preacts is not None:
                preacts += [z_f[key] + forget_bias, z_i[key]]
        if peephole:
            for key in z_o:
                z_o[key] += W("W_co", *key) * c_new[key]  # the new c, before its layer norm
        if normalize:
            z_o = layer_norm(z_o, p["z_o/gamma"], p["z_o/beta"])
            c_new = layer_norm(c_new, p["c/gamma"], p["c/beta"])
        for (pos, f), v in c_new.items():
            if preacts is not None:
                preacts.append(z_o[pos, f])
            c_new_out[at(fmt, b, pos, f)] = v
            h_new_out[at(fmt, b, pos, f)] = squash(z_o[pos, f]) * math.tanh(v)
    return c_new_out, h_new_out


def ref_gru_step(x, h, p, *, fmt, filters, kernel_size, normalize=True):
    """SPEC's ConvGRU step, pixel by pixel. Returns h_new in layout ``fmt``."""
    cl = fmt == "channels_last"
    batch = x.shape[0]
    c_in = x.shape[-1] if cl else x.shape[1]
    shape = list(x.shape[1:-1] if cl else x.shape[2:])
    F = filters
    axes = [(n, 1, 1, axis_geometry(n, k, 1, 1, "same")[1]) for n, k in zip(shape, kernel_size)]
    pixels = list(itertools.product(*(range(n) for n in shape)))

    h_new = np.zeros(h.shape)
    r_times_h = np.zeros(h.shape)  # r * h, the state half of the candidate's input
    for b in range(batch):
        y = {}
        for pos in pixels:
            for ch in range(2 * F):
                v = (conv_pixel(x, fmt, b, pos, c_in, p["gates/kernel"], 0, ch, axes)
                     + conv_pixel(h, fmt, b, pos, F, p["gates/kernel"], c_in, ch, axes))
                if not normalize:
                    v += float(p["gates/bias"][ch])
                y[pos, ch] = v
        r = {(pos, f): y[pos, f] for pos in pixels for f in range(F)}
        u = {(pos, f): y[pos, F + f] for pos in pixels for f in range(F)}
        if normalize:
            r = layer_norm(r, p["r/gamma"], p["r/beta"])
            u = layer_norm(u, p["u/gamma"], p["u/beta"])
        r = {key: sigmoid(v) for key, v in r.items()}
        u = {key: sigmoid(v) for key, v in u.items()}
        for (pos, f), v in r.items():
            r_times_h[at(fmt, b, pos, f)] = v * float(h[at(fmt, b, pos, f)])
        cand = {}
        for pos in pixels:
            for f in range(F):
                v = (conv_pixel(x, fmt, b, pos, c_in, p["candidate/kernel"], 0, f, axes)
                     + conv_pixel(r_times_h, fmt, b, pos, F, p["candidate/kernel"], c_in, f, axes))
                if not normalize:
                    v += float(p["candidate/bias"][f])
                cand[pos, f] = v
        if normalize:
            cand = layer_norm(cand, p["candidate/gamma"], p["candidate/beta"])
        for (pos, f), v in cand.items():
            i = at(fmt, b, pos, f)
            h_new[i] = u[pos, f] * float(h[i]) + (1.0 - u[pos, f]) * math.tanh(v)
    return h_new


def seed_of(*key):
    """A reproducible seed from a test's parameters (unlike hash(), not salted per process)."""
    return zlib.crc32(repr(key).encode())


# --------------------------------------------------------------------------
# Parameters as SPEC's table lists them, filled with random non-zero values.
# --------------------------------------------------------------------------

def frame(fmt, spatial, channels):
    return (*spatial, channels) if fmt == "channels_last" else (channels, *spatial)


def lstm_param_specs(kernel, c_in, F, state_frame, normalize, peephole):
    specs = {"kernel": (*kernel, c_in + F, 4 * F)}
    if not normalize:
        specs["bias"] = (4 * F,)
    if peephole:
        specs.update({name: tuple(state_frame) for name in ("W_ci", "W_cf", "W_co")})
    if normalize:
        for name in ("z", "z_i", "z_f", "z_o", "c"):
            specs[name + "/gamma"] = specs[name + "/beta"] = (F,)
    return specs


def gru_param_specs(kernel, c_in, F, normalize):
    specs = {"gates/kernel": (*kernel, c_in + F, 2 * F),
             "candidate/kernel": (*kernel, c_in + F, F)}
    if normalize:
        for name in ("r", "u", "candidate"):
            specs[name + "/gamma"] = specs[name + "/beta"] = (F,)
    else:
        specs["gates/bias"], specs["candidate/bias"] = (2 * F,), (F,)
    return specs


def random_params(specs, rng, scale=1.0):
    """gamma ~ 1 + noise, everything else noise: nothing zero, nothing one."""
    params = {}
    for name, shape in specs.items():
        noise = rng.standard_normal(shape)
        if name.endswith("gamma"):
            params[name] = scale * (1.0 + 0.3 * noise)
        elif name.endswith("kernel"):
            params[name] = 0.6 * scale * noise
        else:
            params[name] = 0.5 * scale * noise
    return params


def run_lstm_case(shape, kernel, c_in, F, batch, fmt, normalize, peephole, seed,
                  forget_bias=0.7, recurrent="sigmoid", options=None, scale=1.0, preacts=None):
    """Build a cell, set random params and state, compare one step with the reference."""
    options = options or {}
    rng = np.random.default_rng(seed)
    cell = ConvLSTMCell(list(shape), F, list(kernel), forget_bias=forget_bias,
                        normalize=normalize, peephole=peephole, data_format=fmt,
                        recurrent_activation=recurrent, **options)
    cell.build(c_in, seed=seed)
    n = len(shape)
    strides = options.get("strides", 1)
    strides = [strides] * n if np.isscalar(strides) else list(strides)
    dilation = options.get("dilation_rate", 1)
    dilation = [dilation] * n if np.isscalar(dilation) else list(dilation)
    padding = options.get("padding", "same").lower()
    state_shape = [axis_geometry(m, k, s, d, padding)[0]
                   for m, k, s, d in zip(shape, kernel, strides, dilation)]
    specs = lstm_param_specs(kernel, c_in, F, frame(fmt, state_shape, F), normalize, peephole)
    params = random_params(specs, rng, scale)
    for name, value in params.items():
        cell.params[name] = value
    x = rng.standard_normal((batch, *frame(fmt, shape, c_in)))
    c = rng.standard_normal((batch, *frame(fmt, state_shape, F)))
    h = rng.standard_normal((batch, *frame(fmt, state_shape, F)))

    out, state = cell(x, LSTMStateTuple(c, h))
    c_ref, h_ref = ref_lstm_step(x, c, h, params, fmt=fmt, filters=F, kernel_size=list(kernel),
                                 forget_bias=forget_bias, normalize=normalize, peephole=peephole,
                                 recurrent=recurrent, strides=strides, padding=padding,
                                 dilation=dilation, preacts=preacts)
    assert isinstance(state, LSTMStateTuple)
    assert out.shape == state.c.shape == state.h.shape == c_ref.shape
    np.testing.assert_allclose(state.c, c_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(state.h, h_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out, h_ref, rtol=RTOL, atol=ATOL)
    return cell


def run_gru_case(shape, kernel, c_in, F, batch, fmt, normalize, seed, params=None):
    rng = np.random.default_rng(seed)
    cell = ConvGRUCell(list(shape), F, list(kernel), normalize=normalize, data_format=fmt)
    cell.build(c_in, seed=seed)
    if params is None:
        params = random_params(gru_param_specs(kernel, c_in, F, normalize), rng)
        for name, value in params.items():
            cell.params[name] = value
    x = rng.standard_normal((batch, *frame(fmt, shape, c_in)))
    h = rng.standard_normal((batch, *frame(fmt, shape, F)))

    out, state = cell(x, h)
    h_ref = ref_gru_step(x, h, params, fmt=fmt, filters=F, kernel_size=list(kernel),
                         normalize=normalize)
    assert out.shape == state.shape == h_ref.shape
    np.testing.assert_allclose(out, h_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(state, h_ref, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# The reference itself, on numbers worked by hand.
# --------------------------------------------------------------------------

def test_reference_same_padding_puts_the_extra_zero_after():
    """The reference's SAME padding on hand-worked 1-D examples (TF's split, not PyTorch's k//2)."""
    x = np.array([[[1.0], [2.0], [3.0]]])  # [B=1, n=3, C=1]
    k2 = np.array([10.0, 1.0]).reshape(2, 1, 1)
    # kernel 2: total padding 1, 0 before and 1 after: [1 2 3 0]
    got = [conv_pixel(x, "channels_last", 0, (o,), 1, k2, 0, 0, [(3, 1, 1, 0)]) for o in range(3)]
    assert got == [12.0, 23.0, 30.0]
    assert axis_geometry(3, 2, 1, 1, "same") == (3, 0)
    # kernel 4: total padding 3, 1 before and 2 after: [0 1 2 3 0 0]
    assert axis_geometry(3, 4, 1, 1, "same") == (3, 1)
    # stride 2 on n=7, kernel 4: out 4, total (4-1)*2 + 4 - 7 = 3, 1 before
    assert axis_geometry(7, 4, 2, 1, "same") == (4, 1)
    # VALID, dilation 2, stride 2: floor((7 - 2*2 - 1) / 2) + 1 = 2
    assert axis_geometry(7, 3, 2, 2, "valid") == (2, 0)


def test_reference_layer_norm_by_hand():
    """LN of the sample [1, 2, 3, 6] (mean 3, biased variance 3.5), gamma/beta per channel."""
    values = {((0,), 0): 1.0, ((0,), 1): 2.0, ((1,), 0): 3.0, ((1,), 1): 6.0}
    out = layer_norm(values, gamma=[2.0, 1.0], beta=[0.0, 10.0], eps=0.0)
    s = math.sqrt(3.5)
    assert out[(0,), 0] == pytest.approx(2 * -2 / s)
    assert out[(0,), 1] == pytest.approx(-1 / s + 10)
    assert out[(1,), 0] == pytest.approx(0.0)
    assert out[(1,), 1] == pytest.approx(3 / s + 10)


# --------------------------------------------------------------------------
# Parameter names, shapes and initial values (SPEC's table).
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
def test_lstm_param_names_shapes_and_inits_follow_spec(fmt, normalize, peephole):
    """build() creates exactly SPEC's LSTM names and shapes; bias 0, gamma 1, beta 0."""
    cell = ConvLSTMCell([4, 3], 2, [3, 2], normalize=normalize, peephole=peephole,
                        data_format=fmt)
    cell.build(3, seed=0)
    expected = lstm_param_specs([3, 2], 3, 2, frame(fmt, [4, 3], 2), normalize, peephole)
    assert {k: v.shape for k, v in cell.params.items()} == expected
    for name, value in cell.params.items():
        if name == "bias" or name.endswith("beta"):
            np.testing.assert_array_equal(value, 0.0)
        elif name.endswith("gamma"):
            np.testing.assert_array_equal(value, 1.0)
        else:  # Glorot-uniform: random, non-zero
            assert np.all(value != 0) and np.ptp(value) > 0


@pytest.mark.parametrize("normalize", [False, True])
def test_gru_param_names_shapes_and_inits_follow_spec(normalize):
    """build() creates SPEC's GRU names and shapes; gates/bias ones, candidate/bias zeros."""
    cell = ConvGRUCell([5], 3, [2], normalize=normalize)
    cell.build(2, seed=1)
    assert {k: v.shape for k, v in cell.params.items()} == gru_param_specs([2], 2, 3, normalize)
    if normalize:
        for name in ("r", "u", "candidate"):
            np.testing.assert_array_equal(cell.params[name + "/gamma"], 1.0)
            np.testing.assert_array_equal(cell.params[name + "/beta"], 0.0)
    else:
        np.testing.assert_array_equal(cell.params["gates/bias"], 1.0)
        np.testing.assert_array_equal(cell.params["candidate/bias"], 0.0)


# --------------------------------------------------------------------------
# One step against the reference.
# --------------------------------------------------------------------------

# (shape, kernel): odd, even and mixed kernels in 1, 2 and 3 spatial dimensions.
GEOMETRIES = [
    ([5], [3]),
    ([4], [2]),
    ([4], [4]),
    ([4, 3], [3, 3]),
    ([3, 4], [2, 3]),
    ([3, 3], [4, 1]),
    ([2, 3, 5], [1, 3, 5]),
    ([3, 2, 3], [2, 2, 1]),
]
FORMATS = ["channels_last", "channels_first"]


@pytest.mark.parametrize("shape,kernel", GEOMETRIES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
def test_lstm_step_matches_per_pixel_reference(shape, kernel, fmt, normalize, peephole):
    """ConvLSTMCell(x, (c, h)) == the per-pixel SPEC reference, every normalize x peephole."""
    seed = seed_of(tuple(shape), tuple(kernel), fmt, normalize, peephole)
    run_lstm_case(shape, kernel, c_in=2, F=2, batch=2 if len(shape) < 3 else 1, fmt=fmt,
                  normalize=normalize, peephole=peephole, seed=seed, forget_bias=0.7)


@pytest.mark.parametrize("shape,kernel", GEOMETRIES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("normalize", [False, True])
def test_gru_step_matches_per_pixel_reference(shape, kernel, fmt, normalize):
    """ConvGRUCell(x, h) == the per-pixel SPEC reference, with and without layer norm."""
    seed = seed_of(tuple(shape), tuple(kernel), fmt, normalize, "gru")
    run_gru_case(shape, kernel, c_in=2, F=2, batch=2 if len(shape) < 3 else 1, fmt=fmt,
                 normalize=normalize, seed=seed)


@pytest.mark.parametrize("normalize", [False, True])
def test_gru_with_built_params_matches_reference(normalize):
    """With build()'s own params (gates/bias = ones when not normalized) the step matches too."""
    cell = ConvGRUCell([4, 3], 3, [3, 2], normalize=normalize)
    cell.build(1, seed=5)
    run_gru_case([4, 3], [3, 2], c_in=1, F=3, batch=2, fmt="channels_last",
                 normalize=normalize, seed=5, params={k: v.copy() for k, v in cell.params.items()})


@st.composite
def cases(draw):
    """A random tiny geometry: 1-3 spatial axes, kernels 1-4 (odd and even), 1-2 channels."""
    n = draw(st.integers(1, 3))
    max_size = {1: 5, 2: 4, 3: 3}[n]
    shape = draw(st.lists(st.integers(2, max_size), min_size=n, max_size=n))
    kernel = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    return dict(shape=shape, kernel=kernel, c_in=draw(st.integers(1, 2)),
                F=draw(st.integers(1, 3)), batch=draw(st.integers(1, 2)),
                fmt=draw(st.sampled_from(FORMATS)), normalize=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(case=cases(), peephole=st.booleans(),
       forget_bias=st.floats(-2.0, 2.0).filter(lambda v: v != 1.0))
def test_lstm_random_geometries(case, peephole, forget_bias):
    """Random tiny geometries and forget biases: the LSTM step == the per-pixel reference."""
    run_lstm_case(**case, peephole=peephole, forget_bias=forget_bias)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(case=cases())
def test_gru_random_geometries(case):
    """Random tiny geometries: the GRU step == the per-pixel reference."""
    run_gru_case(**case)


# --------------------------------------------------------------------------
# The LSTM's Keras options.
# --------------------------------------------------------------------------

KERAS_OPTIONS = [
    # (shape, kernel, options, state shape worked out by hand)
    ([7, 8], [2, 3], dict(strides=2, padding="valid", dilation_rate=2), [3, 2]),
    ([9], [3], dict(strides=2), [5]),
    ([7], [4], dict(strides=2, padding="same"), [4]),
    ([5, 4], [3, 2], dict(dilation_rate=2), [5, 4]),
    ([4, 4], [3, 3], dict(padding="valid"), [2, 2]),
    ([5, 6, 4], [1, 3, 2], dict(strides=[1, 2, 1], padding="valid", dilation_rate=[1, 1, 2]),
     [5, 2, 2]),
    ([3, 5, 4], [2, 1, 3], dict(strides=[2, 1, 3]), [2, 5, 2]),
]


@pytest.mark.parametrize("shape,kernel,options,state_shape", KERAS_OPTIONS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("normalize,peephole", [(False, False), (True, True), (False, True)])
def test_lstm_input_conv_options_match_reference(shape, kernel, options, state_shape, fmt,
                                                 normalize, peephole):
    """strides/padding/dilation on the input only: x with kernel[..., :C_in, :] and those
    options, h with kernel[..., C_in:, :] SAME stride 1; the state lives on the output grid."""
    seed = seed_of(tuple(shape), fmt, normalize, peephole, "keras")
    cell = run_lstm_case(shape, kernel, c_in=2, F=2, batch=1 if len(shape) == 3 else 2,
                         fmt=fmt, normalize=normalize, peephole=peephole, seed=seed,
                         options=options)
    assert list(cell.state_shape) == state_shape
    assert tuple(cell.output_size) == frame(fmt, state_shape, 2)


@pytest.mark.parametrize("recurrent", ["hard_sigmoid", "hard_sigmoid_keras2"])
@pytest.mark.parametrize("normalize,peephole", [(False, False), (True, True)])
@pytest.mark.parametrize("fmt", FORMATS)
def test_lstm_hard_sigmoids_match_reference(recurrent, normalize, peephole, fmt):
    """recurrent_activation hard_sigmoid (x/6 + 1/2) and hard_sigmoid_keras2 (0.2x + 1/2),
    with values large enough that both clipped ends and the linear middle are reached."""
    preacts = []
    run_lstm_case([4, 3], [3, 2], c_in=2, F=3, batch=2, fmt=fmt, normalize=normalize,
                  peephole=peephole, seed=11, forget_bias=-0.4, recurrent=recurrent,
                  scale=3.0, preacts=preacts)
    edge = 3.0 if recurrent == "hard_sigmoid" else 2.5
    preacts = np.array(preacts)
    assert (preacts > edge).any() and (preacts < -edge).any() and (abs(preacts) < edge).any()


@st.composite
def keras_cases(draw):
    """A random tiny geometry with random per-axis strides (1-3), dilations (1-2) and padding."""
    n = draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["same", "valid"]))
    kernel = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    dilation = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
    strides = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    max_extra = {1: 4, 2: 3, 3: 1}[n]
    # at least the dilated kernel, so that VALID leaves an output
    shape = [(k - 1) * d + 1 + draw(st.integers(0, max_extra))
             for k, d in zip(kernel, dilation)]
    return dict(shape=shape, kernel=kernel, c_in=draw(st.integers(1, 2)),
                F=draw(st.integers(1, 2)), batch=1, fmt=draw(st.sampled_from(FORMATS)),
                normalize=draw(st.booleans()), peephole=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)),
                options=dict(strides=strides, padding=padding, dilation_rate=dilation))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(case=keras_cases())
def test_lstm_random_input_conv_options(case):
    """Random strides/dilation/padding of the input convolution: the step == the reference."""
    run_lstm_case(**case)
