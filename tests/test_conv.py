"""N-D convolution: the obvious loop, the fast block-wise im2col, and SciPy must agree.

SciPy's ``signal.correlate`` is the independent reference: it knows nothing of
strides, dilation or TensorFlow's padding, so the test dilates the kernel by
inserting zeros, pads by TensorFlow's rule (checked against worked examples in
``test_same_padding_examples``), correlates with ``mode="valid"`` and keeps
every ``s``-th output.
"""

import re

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings, strategies as st

from refconv import (conv_nd, conv_nd_backward, conv_nd_backward_naive, conv_nd_naive,
                     conv_output_size, conv_padding)


def scipy_reference(x, kernel, strides, padding, dilations):
    """channels_last conv from one scipy.signal.correlate per (sample, in, out) channel triple."""
    n = kernel.ndim - 2
    k_shape = kernel.shape[:-2]
    dilated_shape = [(k - 1) * d + 1 for k, d in zip(k_shape, dilations)]
    dilated = np.zeros((*dilated_shape, *kernel.shape[-2:]))
    dilated[tuple(slice(None, None, d) for d in dilations)] = kernel
    pads = [conv_padding(size, k, s, d, padding)
            for size, k, s, d in zip(x.shape[1:-1], k_shape, strides, dilations)]
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    keep = tuple(slice(None, None, s) for s in strides)
    out = []
    for b in range(x.shape[0]):
        per_out = []
        for co in range(kernel.shape[-1]):
            acc = sum(scipy.signal.correlate(xp[b, ..., ci], dilated[..., ci, co], mode="valid",
                                             method="direct")
                      for ci in range(kernel.shape[-2]))
            per_out.append(acc[keep])
        out.append(np.stack(per_out, axis=-1))
    y = np.stack(out)
    assert y.shape[1:-1] == tuple(conv_output_size(size, k, s, d, padding) for size, k, s, d
                                   in zip(x.shape[1:-1], k_shape, strides, dilations)), n
    return y


@st.composite
def conv_case(draw):
    n = draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["SAME", "VALID", "same", "valid"]))
    k = [draw(st.integers(1, 4)) for _ in range(n)]
    d = [draw(st.integers(1, 3)) for _ in range(n)]
    s = [draw(st.integers(1, 3)) for _ in range(n)]
    # VALID needs the dilated kernel to fit.
    lo = [(kk - 1) * dd + 1 if padding.upper() == "VALID" else 1 for kk, dd in zip(k, d)]
    size = [draw(st.integers(l, l + (6 if n < 3 else 3))) for l in lo]
    batch = draw(st.integers(1, 3))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *size, c_in))
    kernel = rng.standard_normal((*k, c_in, c_out))
    return x, kernel, s, padding, d


@settings(max_examples=150, deadline=None, derandomize=True)
@given(conv_case())
def test_naive_fast_and_scipy_agree(case):
    """Loop over offsets, block-wise im2col and SciPy give the same numbers, to 1e-12."""
    x, kernel, s, padding, d = case
    reference = scipy_reference(x, kernel, s, padding.upper(), d)
    naive = conv_nd_naive(x, kernel, s, padding, d)
    fast = conv_nd(x, kernel, s, padding, d)
    np.testing.assert_allclose(naive, reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast, reference, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(conv_case(), st.sampled_from([1, 64, 700, 5000]))
def test_fast_blocking_is_invisible(case, block_bytes):
    """Tiny blocks (a part of one output row, several rows, several samples) change nothing."""
    x, kernel, s, padding, d = case
    expected = conv_nd_naive(x, kernel, s, padding, d)
    got = conv_nd(x, kernel, s, padding, d, block_bytes=block_bytes)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    d_y = np.random.default_rng(block_bytes).standard_normal(expected.shape)
    for got, want in zip(conv_nd_backward(x, kernel, d_y, s, padding, d, block_bytes=block_bytes),
                         conv_nd_backward_naive(x, kernel, d_y, s, padding, d)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(conv_case())
def test_channels_first_is_channels_last_transposed(case):
    """channels_first input gives the channels_last result with the channel axis moved."""
    x, kernel, s, padding, d = case
    expected = np.moveaxis(conv_nd(x, kernel, s, padding, d), -1, 1)
    x_first = np.moveaxis(x, -1, 1)
    for fn in (conv_nd, conv_nd_naive):
        got = fn(x_first, kernel, s, padding, d, data_format="channels_first")
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n, k, s, d, padding, expected_out, expected_pad", [
    (5, 3, 1, 1, "SAME", 5, (1, 1)),
    (5, 2, 1, 1, "SAME", 5, (0, 1)),     # even kernel: the extra zero goes after
    (5, 4, 1, 1, "SAME", 5, (1, 2)),
    (5, 3, 2, 1, "SAME", 3, (1, 1)),
    (6, 3, 2, 1, "SAME", 3, (0, 1)),     # stride leaves one pixel over: pad after only
    (7, 4, 3, 2, "SAME", 3, (3, 3)),     # dilated kernel spans 7
    (4, 1, 2, 1, "SAME", 2, (0, 0)),
    (3, 5, 1, 1, "SAME", 3, (2, 2)),     # kernel larger than the input
    (7, 3, 1, 1, "VALID", 5, (0, 0)),
    (7, 3, 2, 2, "VALID", 2, (0, 0)),
    (8, 2, 3, 1, "VALID", 3, (0, 0)),
])
def test_same_padding_examples(n, k, s, d, padding, expected_out, expected_pad):
    """TensorFlow's SAME rule worked by hand: ceil(n / s) outputs, total // 2 zeros before."""
    assert conv_output_size(n, k, s, d, padding) == expected_out
    assert conv_padding(n, k, s, d, padding) == expected_pad


def test_even_kernel_pads_after_by_hand():
    """1-D, kernel [a, b], SAME: y[i] = a x[i] + b x[i + 1], the last output sees one zero."""
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    kernel = np.array([10.0, 1.0]).reshape(2, 1, 1)
    expected = np.array([12.0, 23.0, 34.0, 40.0])
    for fn in (conv_nd, conv_nd_naive):
        np.testing.assert_array_equal(fn(x, kernel).ravel(), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 7, 3)).astype(dtype)
    kernel = rng.standard_normal((3, 2, 3, 5)).astype(dtype)
    for fn in (conv_nd, conv_nd_naive):
        assert fn(x, kernel).dtype == dtype
    np.testing.assert_allclose(conv_nd(x, kernel), conv_nd_naive(x, kernel), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(x=np.zeros((1, 5, 5, 2)), kernel=np.zeros((3, 3, 3, 4))), ValueError, "x: expected 3 input channels"),
    (dict(x=np.zeros((1, 5, 2)), kernel=np.zeros((3, 3, 2, 4))), ValueError, "x: expected rank 4"),
    (dict(x=np.zeros((1, 5, 5, 2)), kernel=np.zeros((3, 3, 2, 4)), padding="FULL"), ValueError, "padding"),
    (dict(x=np.zeros((1, 5, 5, 2)), kernel=np.zeros((3, 3, 2, 4)), strides=[1]), ValueError, "strides"),
    (dict(x=np.zeros((1, 5, 5, 2)), kernel=np.zeros((3, 3, 2, 4)), dilations=0), ValueError, "dilations"),
    (dict(x=np.zeros((1, 5, 5, 2)), kernel=np.zeros((3, 3, 2, 4)), data_format="NHWC"), ValueError, "data_format"),
    (dict(x=np.zeros((1, 2, 5, 2)), kernel=np.zeros((3, 3, 2, 4)), padding="VALID"), ValueError, "VALID"),
    (dict(x=np.zeros((1, 5, 5, 2), dtype=complex), kernel=np.zeros((3, 3, 2, 4))), TypeError, "x: expected a real"),
    (dict(x=np.zeros((1, 5, 5, 2)), kernel=np.zeros((3, 2, 4))), ValueError, "x: expected rank 3"),
])
def test_bad_arguments(kwargs, error, words):
    for fn in (conv_nd, conv_nd_naive):
        with pytest.raises(error, match=words):
            fn(**kwargs)


# --- issue 26: the cells' dtype rule, and errors that blame the right argument --------------

@pytest.mark.parametrize("fn", [conv_nd, conv_nd_naive])
@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.int8, np.bool_, np.complex128])
@pytest.mark.parametrize("which", ["x", "kernel"])
def test_conv_nd_refuses_what_the_cells_refuse(fn, dtype, which):
    """float16 overflows (a sum of 1e3 * 1e3 products is inf) and integers would compute
    silently in another dtype: refused by name, as the cells refuse them."""
    x = np.ones((1, 5, 5, 2))
    kernel = np.ones((3, 3, 2, 4))
    args = {"x": x, "kernel": kernel}
    args[which] = args[which].astype(dtype)
    with pytest.raises(TypeError, match=rf"^{which}: expected a real floating-point array "
                                        rf"\(float32 or float64\), got dtype"):
        fn(args["x"], args["kernel"])


def test_a_kernel_without_its_c_out_axis_is_blamed_not_x():
    x = np.zeros((2, 6, 5, 3))
    for kernel in ((3, 3, 3), (5, 2, 3)):
        with pytest.raises(ValueError, match=rf"^kernel: expected shape \[\*kernel_size, C_in, "
                                             rf"C_out\].*got shape {re.escape(str(kernel))}"
                                             rf".*C_out axis is missing"):
            conv_nd(x, np.zeros(kernel))
    # x with an axis too many (a time axis) is still x's fault
    with pytest.raises(ValueError, match=r"^x: expected rank 4"):
        conv_nd(np.zeros((2, 4, 6, 5, 3)), np.zeros((3, 3, 3, 2)))


def test_channels_first_data_for_a_channels_last_conv_suggests_the_data_format():
    x = np.zeros((2, 3, 6, 5))  # [B, C, H, W]
    with pytest.raises(ValueError, match=r'data_format="channels_first"'):
        conv_nd(x, np.zeros((3, 3, 3, 2)))
    with pytest.raises(ValueError, match=r'data_format="channels_last"'):
        conv_nd(np.zeros((2, 6, 5, 3)), np.zeros((3, 3, 3, 2)), data_format="channels_first")
    with pytest.raises(ValueError) as error:  # 4 channels fit neither layout: no suggestion
        conv_nd(np.zeros((2, 4, 6, 5)), np.zeros((3, 3, 3, 2)))
    assert "data_format" not in str(error.value)


def test_channels_first_frames_for_a_channels_last_cell_suggest_the_data_format():
    import refconv
    cell = refconv.ConvLSTMCell([6, 5], 2, [3, 3])
    x = np.zeros((2, 4, 3, 6, 5))  # [B, T, C, H, W]
    with pytest.raises(ValueError, match=r'look channels_first.*data_format="channels_first"'):
        refconv.dynamic_rnn(cell, x)
    first = refconv.ConvLSTMCell([6, 5], 2, [3, 3], data_format="channels_first")
    with pytest.raises(ValueError, match=r'look channels_last.*data_format="channels_last"'):
        refconv.dynamic_rnn(first, np.zeros((2, 4, 6, 5, 3)))
