"""refconv.checks: each check accepts exactly its documented values and names what it refuses.

Through the functions that use them (conv_nd's padding, strides and dilations) and
directly, at the edges: the minimum itself accepted, one below refused; every case of a
string; the two supported dtypes and no other.
"""

import numpy as np
import pytest

from refconv import checks, conv_nd, conv_output_size, conv_padding
from refconv.conv import conv_nd_naive


def test_padding_is_read_in_any_case():
    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((4, 3, 3, 2))
    for padding in ("SAME", "VALID"):
        expected = conv_nd_naive(x, kernel, padding=padding)
        for spelled in (padding.lower(), padding.capitalize()):
            np.testing.assert_array_equal(conv_nd(x, kernel, padding=spelled),
                                          conv_nd(x, kernel, padding=padding))
            np.testing.assert_allclose(conv_nd(x, kernel, padding=spelled), expected,
                                       rtol=1e-12, atol=1e-12)
    assert conv_output_size(7, 4, padding="valid") == 4
    assert conv_padding(7, 4, padding="same") == (1, 2)
    assert checks.check_padding("same") == "SAME"
    for bad in ("full", "", None, 3):
        with pytest.raises(ValueError, match=r"padding: expected 'SAME' or 'VALID'"):
            checks.check_padding(bad)


@pytest.mark.parametrize("argument", ["strides", "dilations"])
@pytest.mark.parametrize("bad", [0, -1, (1, 0), True, 1.5, (1, 1, 1)])
def test_strides_and_dilations_below_one_are_refused_by_name(argument, bad):
    x, kernel = np.ones((1, 6, 6, 1)), np.ones((3, 3, 1, 1))
    with pytest.raises(ValueError, match=rf"{argument}: expected"):
        conv_nd(x, kernel, **{argument: bad})


def test_per_axis_values():
    assert checks.check_per_axis(2, 3, "strides") == (2, 2, 2)
    assert checks.check_per_axis(np.array([1, 3]), 2, "strides") == (1, 3)
    for bad in (0, (1, 0), (2,), np.float64(1.0)):
        with pytest.raises(ValueError, match="strides: expected"):
            checks.check_per_axis(bad, 2, "strides")


@pytest.mark.parametrize("minimum", [0, 1, 3])
def test_integer_checks_take_the_minimum_and_refuse_below(minimum):
    assert checks.check_int(minimum, "n", minimum) == minimum
    assert checks.check_count("n", np.int64(minimum), minimum) == minimum
    assert checks.check_ints([minimum, minimum + 1], "k", 2, minimum) == [minimum, minimum + 1]
    with pytest.raises(ValueError, match=rf"n: expected an integer >= {minimum}, got {minimum - 1}"):
        checks.check_int(minimum - 1, "n", minimum)
    with pytest.raises(ValueError, match=rf"n: expected an int >= {minimum}, got {minimum - 1}"):
        checks.check_count("n", minimum - 1, minimum)
    with pytest.raises(ValueError, match=rf"k: expected integers >= {minimum}"):
        checks.check_ints([minimum, minimum - 1], "k", 2, minimum)
    for bad in (True, 2.0, "2"):
        with pytest.raises((TypeError, ValueError), match="n: expected an int"):
            checks.check_int(bad, "n", minimum) if not isinstance(bad, str) else \
                checks.check_count("n", bad, minimum)
    for bad in (True, np.True_, 2.0, np.float64(2.0), "2", None):   # not integers: a TypeError
        with pytest.raises(TypeError, match=rf"n: expected an int >= {minimum}, got .* of type"):
            checks.check_count("n", bad, minimum)
    with pytest.raises(ValueError, match="k: expected 2 integers"):
        checks.check_ints([1, 2, 3], "k", 2)


def test_only_float32_and_float64_are_computed_in():
    for dtype in (np.float32, np.float64, "float32"):
        assert checks.check_float_dtype(dtype) in checks.SUPPORTED_DTYPES
        assert checks.check_float_array(np.zeros(2, dtype), "x").dtype == np.dtype(dtype)
    for dtype in (np.float16, np.longdouble, np.int64, np.complex128, bool):
        if np.dtype(dtype) in (np.dtype(np.float64),):   # longdouble is float64 on some platforms
            continue
        with pytest.raises(TypeError, match=rf"x: expected a real floating-point array .*"
                                            rf"{np.dtype(dtype)}.*cast to float32 or float64"):
            checks.check_float_array(np.zeros(2, dtype), "x")
        with pytest.raises(TypeError, match=r"dtype: expected a floating-point dtype"):
            checks.check_float_dtype(dtype)
    with pytest.raises(TypeError, match="x: expected an array of float32 or float64, got list"):
        checks.check_float_array([[1.0], [1.0, 2.0]], "x")


@pytest.mark.parametrize("positive", [False, True])
def test_real_numbers(positive):
    assert checks.check_real(np.float32(0.5), "eps", positive=positive) == 0.5
    assert checks.check_real(3, "eps", positive=positive) == 3.0
    refused = [np.nan, np.inf, -np.inf] + ([0.0, -1e-300] if positive else [])
    for bad in refused:
        with pytest.raises(ValueError, match=r"eps: expected a finite number"):
            checks.check_real(bad, "eps", positive=positive)
    if not positive:
        assert checks.check_real(0.0, "eps") == 0.0 and checks.check_real(-2, "eps") == -2.0
    for bad in (True, "1", 1j, np.ones(2), None):
        with pytest.raises(TypeError, match=r"eps: expected a real number"):
            checks.check_real(bad, "eps", positive=positive)


def test_data_format():
    for fmt in ("channels_last", "channels_first"):
        assert checks.check_data_format(fmt) == fmt
    for bad in ("NHWC", "Channels_last", None):
        with pytest.raises(ValueError, match="data_format: expected 'channels_last' or "
                                             "'channels_first'"):
            checks.check_data_format(bad)
