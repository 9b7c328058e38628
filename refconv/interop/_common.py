"""What every importer shares: warnings, gate-block reordering, arrays and argument checks.

Every framework stores refconv's four LSTM blocks ``z, z_i, z_f, z_o``
(:data:`refconv.vocabulary.LSTM_BLOCKS`) on the output-channel axis of its
kernel, in its own order and under its own letters; :func:`gate_names` reads
such an order and :func:`blocks_to_refconv` / :func:`blocks_from_refconv`
reorder the blocks. The rest turns a framework's tensors into float64 NumPy
arrays and checks them, so that a wrong shape is an error naming the field,
the expected and the actual value.
"""

import numbers

import numpy as np

from ..lstm import ConvLSTMCell
from ..vocabulary import LSTM_BLOCKS


class InteropWarning(UserWarning):
    """A framework's model and the refconv cell made from it may not compute the same numbers."""


class PaddingWarning(InteropWarning):
    """A PyTorch model pads ``k // 2`` on both sides of an even kernel, which is not SAME."""


# --- gate blocks --------------------------------------------------------------

# The letters frameworks use for refconv's blocks: i, f, o are the gates; the
# candidate is g (PyTorch, Flax), c (Keras) or z (refconv).
GATE_LETTERS = {"i": "z_i", "f": "z_f", "o": "z_o", "g": "z", "c": "z", "z": "z"}


def gate_names(gate_order, argument="gate_order"):
    """``"ifog"`` -> ``("z_i", "z_f", "z_o", "z")``: refconv's names, in the framework's order."""
    if not isinstance(gate_order, str) or len(gate_order) != 4 \
            or any(letter not in GATE_LETTERS for letter in gate_order) \
            or sorted(GATE_LETTERS[letter] for letter in gate_order) != sorted(LSTM_BLOCKS):
        raise ValueError(f"{argument}: expected the order of the 4 gate blocks as 4 letters, one "
                         f"each of i (input gate), f (forget gate), o (output gate) and the "
                         f"candidate g, c or z (refconv's z), e.g. 'ifog' (ndrplz) or 'ifco' "
                         f"(Keras); got {gate_order!r}")
    return tuple(GATE_LETTERS[letter] for letter in gate_order)


def blocks_to_refconv(a, names, axis=-1):
    """Reorder ``a``'s 4 gate blocks along ``axis`` from the order ``names`` to z, z_i, z_f, z_o."""
    blocks = dict(zip(names, np.split(a, 4, axis=axis)))
    return np.concatenate([blocks[name] for name in LSTM_BLOCKS], axis=axis)


def blocks_from_refconv(a, names, axis=-1):
    """The inverse of :func:`blocks_to_refconv`: from z, z_i, z_f, z_o to the order ``names``."""
    blocks = dict(zip(LSTM_BLOCKS, np.split(a, 4, axis=axis)))
    return np.concatenate([blocks[name] for name in names], axis=axis)


# --- arrays and checks -----------------------------------------------------------

def as_array(value, argument, dtype=np.float64):
    """``value`` as a NumPy array of ``dtype`` (None: its own); torch and JAX arrays included.

    float16, bfloat16 and float32 widen to float64 exactly, so the oracle
    starts from the very numbers the framework holds. The array is a copy:
    the cell does not share memory with the framework's weights.
    """
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # a torch tensor
        value = value.detach().cpu()
        if value.is_floating_point() and str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()  # NumPy has no bfloat16; float32 holds it exactly
        value = value.numpy()
    try:
        a = np.asarray(value)
    except Exception as error:  # an object NumPy cannot read, e.g. a symbolic tensor
        raise TypeError(f"{argument}: expected an array, got {type(value).__name__} "
                        f"({error})") from None
    if a.dtype.kind not in "fiu":
        if a.dtype.name == "bfloat16":  # JAX's (ml_dtypes) bfloat16: float32 holds it exactly
            a = a.astype(np.float32)
        else:
            raise TypeError(f"{argument}: expected a real numeric array, got dtype {a.dtype}")
    return a.astype(a.dtype if dtype is None else dtype)


def check_shape(a, expected, argument, meaning=""):
    if a.shape != tuple(expected):
        raise ValueError(f"{argument}: expected shape {list(expected)}{meaning}, "
                         f"got {list(a.shape)}")


def check_shape_arg(shape, n=None):
    """The spatial ``shape`` argument: N >= 1 ints >= 1 (``n`` of them when given)."""
    if isinstance(shape, (numbers.Integral, str)) or not hasattr(shape, "__len__") \
            or len(shape) == 0 \
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                   for v in shape):
        raise ValueError(f"shape: expected the spatial size of one input frame, a list of "
                         f"N >= 1 positive ints such as [64, 48]; got {shape!r}")
    if n is not None and len(shape) != n:
        raise ValueError(f"shape: expected {n} ints (the weights have {n} spatial axes), "
                         f"got {len(shape)}: {list(shape)}")
    return [int(v) for v in shape]


def checked_cell_params(cell, argument="cell"):
    """A built cell's params, checked against its names and shapes, as float64."""
    if cell.params is None:
        raise ValueError(f"{argument}: has no parameters yet; call {argument}.build(C_in) "
                         f"or assign {argument}.params first")
    if cell.in_channels is None:  # params assigned by hand: read C_in off the kernel
        name = "kernel" if isinstance(cell, ConvLSTMCell) else "gates/kernel"
        kernel = np.asarray(cell.params.get(name, np.zeros((0, 0))))
        if kernel.ndim < 2 or kernel.shape[-2] <= cell.filters:
            raise ValueError(f"{argument}.params[{name!r}]: expected shape "
                             f"[*kernel, C_in + {cell.filters}, ...] with C_in >= 1, "
                             f"got {list(kernel.shape)}")
        cell.in_channels = kernel.shape[-2] - cell.filters  # what the first call would set
    return cell._checked_params(np.float64)


def fold_forget_bias(bias, cell, model_forget_bias=0.0):
    """``bias`` (blocks z, z_i, z_f, z_o) with ``cell.forget_bias - model_forget_bias`` added
    to z_f's block.

    ``sigmoid(conv + b_f + forget_bias)`` is ``sigmoid(conv + (b_f + forget_bias))``:
    frameworks without a forget-bias option keep it in the bias; a framework
    that adds a fixed constant (Flax's 1) keeps the rest there.
    """
    f = cell.filters
    bias = bias.copy()
    start = LSTM_BLOCKS.index("z_f") * f
    bias[start:start + f] += cell.forget_bias - model_forget_bias
    return bias


def check_plain_lstm(cell, argument, framework, one_convolution=True):
    """``cell`` a ConvLSTMCell that ``framework``'s cell can compute, or an error naming why.

    No framework but the seed has peepholes or layer normalisation; with
    ``one_convolution`` the framework also convolves ``[x, h]`` alike (SAME,
    stride 1, dilation 1), as PyTorch's and Flax's cells do (Keras does not).
    """
    if not isinstance(cell, ConvLSTMCell):
        raise TypeError(f"{argument}: expected a ConvLSTMCell ({framework} has no ConvGRU), "
                        f"got {type(cell).__name__}")
    for option, part in (("normalize", "layer normalisation"), ("peephole", "peephole weights")):
        if getattr(cell, option):
            raise ValueError(f"{argument}: expected {option}=False; {framework}'s ConvLSTM has "
                             f"no {part}, so no such model computes this cell")
    if one_convolution and not cell._default_input_conv:
        raise ValueError(f"{argument}: expected the input convolution SAME with stride 1 and "
                         f"dilation 1 ({framework} convolves x and h alike), got padding "
                         f"{cell.padding!r}, strides {cell.strides}, dilation_rate "
                         f"{cell.dilation_rate}")


def check_choice(value, choices, argument):
    if value not in choices:
        raise ValueError(f"{argument}: expected one of {list(choices)}, got {value!r}")
    return value


def lstm_cell(shape, filters, kernel, params, in_channels, **options):
    """A ConvLSTMCell with ``params`` (checked by the cell) and ``in_channels`` set."""
    cell = ConvLSTMCell(shape, filters, kernel, **options)
    cell.in_channels = in_channels
    cell.params = params
    cell._checked_params(np.float64)  # the contract: a wrong shape is an error now, not later
    return cell
