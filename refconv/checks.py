"""Argument checks: each returns the checked value or raises an error naming the argument,
the expected and the actual value (never a NumPy traceback later on)."""

import math
import numbers

import numpy as np

__all__ = ["CHANNELS_LAST", "CHANNELS_FIRST", "check_int", "check_ints", "check_count",
           "check_per_axis", "check_data_format", "check_padding", "check_float_array",
           "check_float_dtype", "check_real", "SUPPORTED_DTYPES"]

# The dtypes refconv computes in (SPEC: "float32 is supported end to end"). float16 loses
# the gates to overflow and rounding (all-NaN outputs for inputs of scale 100), and
# longdouble is a different type on every platform: both are refused, not half-supported.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

CHANNELS_LAST = "channels_last"
CHANNELS_FIRST = "channels_first"


def check_int(value, name, minimum=1):
    """An int >= ``minimum`` (a ValueError otherwise, bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_ints(values, name, n=None, minimum=1):
    """A list of ints (``n`` of them when given), each >= ``minimum``."""
    if isinstance(values, (numbers.Integral, str)) or not hasattr(values, "__len__"):
        raise ValueError(f"{name}: expected a list of integers, got {values!r}")
    values = list(values)
    if n is not None and len(values) != n:
        raise ValueError(f"{name}: expected {n} integers (one per spatial axis of shape), "
                         f"got {len(values)}: {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name}: expected at least one spatial axis, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
            raise ValueError(f"{name}: expected integers >= {minimum}, got {values!r}")
    return [int(v) for v in values]


def check_count(name, value, minimum):
    """An int >= minimum: a TypeError for a non-integer, a ValueError for a small one."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r} "
                        f"of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_per_axis(value, n, name):
    """An int or a sequence of ``n`` ints, all >= 1, as a tuple of ``n`` ints."""
    values = (value,) * n if np.ndim(value) == 0 else tuple(value)
    if len(values) != n:
        raise ValueError(f"{name}: expected an int or {n} ints (one per spatial axis), got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected integers >= 1, got {value!r}")
    return tuple(int(v) for v in values)


def check_data_format(data_format):
    if data_format not in (CHANNELS_LAST, CHANNELS_FIRST):
        raise ValueError(f"data_format: expected 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format


def check_padding(padding):
    """``"SAME"`` or ``"VALID"``, any case, upper-cased."""
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"padding: expected 'SAME' or 'VALID', got {padding!r}")
    return padding.upper()


def check_float_array(x, name):
    """``x`` as an array of float32 or float64; any other dtype (integer, bool, complex,
    float16, longdouble, object) is a TypeError naming it and saying what to cast to."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as error:  # ragged lists, objects NumPy cannot read
            raise TypeError(f"{name}: expected an array of float32 or float64, got "
                            f"{type(x).__name__} that NumPy cannot read as one ({error})") from None
    _check_supported(x.dtype, name, "array")
    return x


def check_float_dtype(dtype, name="dtype"):
    """``np.float32`` or ``np.float64`` (as a NumPy dtype); anything else is a TypeError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name}: expected a floating-point dtype (float32 or float64), "
                        f"got {dtype!r}") from error
    _check_supported(resolved, name, "dtype")
    return resolved


def _check_supported(dtype, name, what):
    if dtype not in SUPPORTED_DTYPES:
        if what == "array":
            raise TypeError(f"{name}: expected a real floating-point array (float32 or "
                            f"float64), got dtype {dtype}; cast to float32 or float64 "
                            f"(.astype(np.float64))")
        raise TypeError(f"{name}: expected a floating-point dtype, got {dtype} (refconv "
                        f"computes in float32 or float64 only: cast to float32 or float64)")


def check_real(value, name, *, positive=False):
    """A finite real number (> 0 when ``positive``), as a float.

    A TypeError for what is not a real number (strings, bools, complex, arrays of
    more than one value), a ValueError for NaN, infinity or, when ``positive``, a
    number <= 0: every numeric constructor argument of the cells is checked here.
    """
    if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0 \
            or not isinstance(value, (numbers.Real, np.ndarray)) \
            or np.asarray(value).dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real number, got {value!r} "
                        f"of type {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0):
        raise ValueError(f"{name}: expected a finite number{' > 0' if positive else ''}, "
                         f"got {value!r}")
    return number
