"""Argument checks: each returns the checked value or raises an error naming the argument,
the expected and the actual value (never a NumPy traceback later on)."""

import numbers

import numpy as np

__all__ = ["CHANNELS_LAST", "CHANNELS_FIRST", "check_int", "check_ints", "check_count",
           "check_per_axis", "check_data_format", "check_padding", "check_float_array",
           "check_float_dtype"]

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
    """``x`` as an array of a real floating dtype; integers and complex numbers are refused."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a real floating-point array (float32 or float64), "
                        f"got dtype {x.dtype}")
    return x


def check_float_dtype(dtype, name="dtype"):
    """A NumPy floating dtype."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name}: expected a floating dtype such as np.float64, "
                        f"got {dtype!r}") from error
    if not np.issubdtype(resolved, np.floating):
        raise TypeError(f"{name}: expected a floating dtype such as np.float64, got {resolved}")
    return resolved
