"""Weights in and out of other frameworks' ConvLSTMs: Keras, PyTorch, TensorFlow 1.

An engineer who wants to know whether their framework computes a ConvLSTM
right loads its weights here, runs refconv in float64 on the same inputs, and
compares. Every importer returns refconv cells with ``params`` set; every
exporter is its importer's inverse. refconv never imports a framework: the few
functions that hand back a framework's objects (:func:`to_torch`,
:func:`load_tf1_checkpoint`) import it when called.

The layouts (SPEC, last table), for ``C_in`` input channels, ``F`` filters and
a kernel ``k`` (N ints)::

    framework           weights                                      gate blocks
    ------------------  -------------------------------------------  ----------------
    refconv, seed, TF1  kernel [*k, C_in + F, 4F], bias [4F]         z, z_i, z_f, z_o
    Keras 3 (and 2)     kernel [*k, C_in, 4F],                       i, f, c, o
                        recurrent_kernel [*k, F, 4F], bias [4F]
    PyTorch (ndrplz)    cell_list.N.conv.weight [4F, C_in + F, *k],  i, f, o, g
                        cell_list.N.conv.bias [4F]

Only refconv and the seed have peepholes, layer normalisation and a
``forget_bias`` option; Keras and PyTorch keep the forget bias in the bias
values. PyTorch is channels first and ndrplz pads ``k // 2`` on both sides.

Every framework's candidate block (Keras's ``c``, PyTorch's ``g``) is refconv's
``z``: the fusion of x and h, squashed by ``activation`` (tanh), not a gate.
Keras splits refconv's one kernel in two: ``conv(concat([x, h]), kernel)``
equals ``conv(x, kernel[..., :C_in, :]) + conv(h, kernel[..., C_in:, :])``,
so the two layouts hold the same numbers.

States: refconv (like TF1) has ``LSTMStateTuple(c, h)``; Keras returns
``[h, c]`` (``outputs, h, c = layer(x)`` with ``return_state=True``) and takes
``initial_state=[h, c]``; ndrplz's cell takes ``[h, c]`` and returns ``(h, c)``.
:func:`state_from_keras` and :func:`state_to_keras` swap them.
"""

import numbers
import re
import warnings

import numpy as np

from ._cell import CHANNELS_FIRST, CHANNELS_LAST
from .activations import activation_name, get_activation
from .gru import ConvGRUCell
from .lstm import ConvLSTMCell, LSTMStateTuple
from .rnn import MultiRNNCell

__all__ = ["from_keras", "to_keras", "state_from_keras", "state_to_keras",
           "from_torch", "to_torch", "from_tf1", "to_tf1", "load_tf1_checkpoint",
           "InteropWarning", "PaddingWarning"]


class InteropWarning(UserWarning):
    """A framework's model and the refconv cell made from it may not compute the same numbers."""


class PaddingWarning(InteropWarning):
    """A PyTorch model pads ``k // 2`` on both sides of an even kernel, which is not SAME."""


# --- gate blocks --------------------------------------------------------------

# refconv's four blocks on the output-channel axis, in this order.
_REFCONV_GATES = ("z", "z_i", "z_f", "z_o")
# The letters frameworks use for them: i, f, o are the gates; the candidate is
# g (PyTorch), c (Keras) or z (refconv).
_GATE_LETTERS = {"i": "z_i", "f": "z_f", "o": "z_o", "g": "z", "c": "z", "z": "z"}


def _gate_names(gate_order, argument="gate_order"):
    """``"ifog"`` -> ``("z_i", "z_f", "z_o", "z")``: refconv's names, in the framework's order."""
    if not isinstance(gate_order, str) or len(gate_order) != 4 \
            or any(letter not in _GATE_LETTERS for letter in gate_order) \
            or sorted(_GATE_LETTERS[letter] for letter in gate_order) != sorted(_REFCONV_GATES):
        raise ValueError(f"{argument}: expected the order of the 4 gate blocks as 4 letters, one "
                         f"each of i (input gate), f (forget gate), o (output gate) and the "
                         f"candidate g, c or z (refconv's z), e.g. 'ifog' (ndrplz) or 'ifco' "
                         f"(Keras); got {gate_order!r}")
    return tuple(_GATE_LETTERS[letter] for letter in gate_order)


def _blocks_to_refconv(a, names, axis=-1):
    """Reorder ``a``'s 4 gate blocks along ``axis`` from the order ``names`` to z, z_i, z_f, z_o."""
    blocks = dict(zip(names, np.split(a, 4, axis=axis)))
    return np.concatenate([blocks[name] for name in _REFCONV_GATES], axis=axis)


def _blocks_from_refconv(a, names, axis=-1):
    """The inverse of :func:`_blocks_to_refconv`: from z, z_i, z_f, z_o to the order ``names``."""
    blocks = dict(zip(_REFCONV_GATES, np.split(a, 4, axis=axis)))
    return np.concatenate([blocks[name] for name in names], axis=axis)


# --- arrays and checks -----------------------------------------------------------

def _array(value, argument, dtype=np.float64):
    """``value`` as a NumPy array of ``dtype`` (None: its own); torch tensors included.

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
        raise TypeError(f"{argument}: expected a real numeric array, got dtype {a.dtype}")
    return a.astype(a.dtype if dtype is None else dtype)


def _check_shape(a, expected, argument, meaning=""):
    if a.shape != tuple(expected):
        raise ValueError(f"{argument}: expected shape {list(expected)}{meaning}, "
                         f"got {list(a.shape)}")


def _check_shape_arg(shape, n=None):
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


def _checked_cell_params(cell, argument="cell"):
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


def _fold_forget_bias(bias, cell):
    """``bias`` (blocks z, z_i, z_f, z_o) with ``cell.forget_bias`` added to z_f's block.

    ``sigmoid(conv + b_f + forget_bias)`` is ``sigmoid(conv + (b_f + forget_bias))``:
    frameworks without a forget-bias option keep it in the bias.
    """
    f = cell.filters
    bias = bias.copy()
    bias[2 * f:3 * f] += cell.forget_bias
    return bias


def _check_choice(value, choices, argument):
    if value not in choices:
        raise ValueError(f"{argument}: expected one of {list(choices)}, got {value!r}")
    return value


def _lstm_cell(shape, filters, kernel, params, in_channels, **options):
    """A ConvLSTMCell with ``params`` (checked by the cell) and ``in_channels`` set."""
    cell = ConvLSTMCell(shape, filters, kernel, **options)
    cell.in_channels = in_channels
    cell.params = params
    cell._checked_params(np.float64)  # the contract: a wrong shape is an error now, not later
    return cell


# --- Keras -----------------------------------------------------------------------

# Keras's activation names that refconv computes, per Keras major version. Keras 3's
# "hard_sigmoid" is clip(x / 6 + 1/2, 0, 1); Keras 2's (tf.keras, tf_keras) is
# clip(0.2 x + 1/2, 0, 1): the same name for two functions.
_KERAS_ACTIVATIONS = {
    3: {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "linear",
        "hard_sigmoid": "hard_sigmoid"},
    2: {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "linear",
        "hard_sigmoid": "hard_sigmoid_keras2"},
}


def _check_keras_version(keras_version):
    if isinstance(keras_version, bool) or keras_version not in (2, 3):
        raise ValueError(f"keras_version: expected 3 (Keras 3) or 2 (Keras 2: tf.keras up to "
                         f"TF 2.15, tf_keras), got {keras_version!r}")
    return keras_version


def _activation_from_keras(value, argument, keras_version):
    """A Keras config's activation (a name, None, or a serialized dict) -> refconv's name."""
    if value is None:
        value = "linear"  # Keras: activation=None means no activation
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        value = value["config"]  # {"class_name": "function", "config": "tanh", ...}
    names = _KERAS_ACTIVATIONS[keras_version]
    if not isinstance(value, str) or value not in names:
        raise ValueError(f"{argument}: expected a Keras {keras_version} activation that refconv "
                         f"computes, one of {sorted(names)}; got {value!r}")
    return names[value]


def _activation_to_keras(fn, argument, keras_version):
    """A cell's activation -> its Keras name, or an error if that Keras has none."""
    name = activation_name(fn)
    for keras_name, refconv_name in _KERAS_ACTIVATIONS[keras_version].items():
        if refconv_name == name:
            return keras_name
    known = sorted(_KERAS_ACTIVATIONS[keras_version].values())
    raise ValueError(f"{argument}: expected an activation Keras {keras_version} has, one of "
                     f"{known} (in refconv's names), got {name or fn!r}")


def _keras_ints(config, key, n, default):
    """A Keras tuple option (an int or N ints), as N ints."""
    value = config.get(key, default)
    values = [value] * n if isinstance(value, numbers.Integral) else value
    if isinstance(values, str) or not hasattr(values, "__len__") or len(values) != n \
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                   for v in values):
        raise ValueError(f"config[{key!r}]: expected an int or {n} positive ints (one per "
                         f"spatial axis), got {value!r}")
    return [int(v) for v in values]


def from_keras(config, weights, shape, *, keras_version=3):
    """A :class:`ConvLSTMCell` that computes what a Keras ``ConvLSTM1D/2D/3D`` layer computes.

    Keras's step, in refconv's names (``[x, h]`` convolved as two halves)::

        y = conv(x, kernel, strides, padding, dilation_rate) + bias
            + conv(h, recurrent_kernel, SAME)          # blocks i, f, c, o
        z_i, z_f, z_o = recurrent_activation(i, f, o)  # no forget bias but the bias's
        c = z_f * c + z_i * activation(c block)        # Keras's "c" block is refconv's z
        h = z_o * activation(c)

    so the cell has ``normalize=False``, ``peephole=False``, ``forget_bias=0.0``
    (Keras's ``unit_forget_bias`` only sets the initial bias: the trained
    forget bias is in the bias values) and the input-convolution options.

    What refconv's cell does not do, the user does:

    * the state: Keras's ``[h, c]`` is refconv's ``LSTMStateTuple(c, h)``
      (:func:`state_from_keras`);
    * ``go_backwards=True``: Keras reads the sequence from its last frame and
      returns the outputs *in that reading order*; compare with
      ``dynamic_rnn(cell, inputs[:, ::-1])`` as it comes, without reversing its
      outputs back (a warning says so);
    * ``dropout``/``recurrent_dropout`` act only in training, and a
      mixed-precision dtype policy computes in float16: compare in inference,
      with ``dtype="float64"``.

    Args:
        config: the layer's ``get_config()``. Keys absent take Keras's defaults
            (``padding="valid"``, ``data_format="channels_last"``, ...).
        weights: the layer's ``get_weights()``: ``[kernel [*k, C_in, 4F],
            recurrent_kernel [*k, F, 4F], bias [4F]]``, without the bias when
            ``use_bias`` is False.
        shape: the spatial size of the layer's input frames, N ints (N = 1, 2, 3
            for ConvLSTM1D, 2D, 3D). With ``padding="valid"`` or strides the state
            is smaller: ``cell.state_shape``.
        keras_version: 3, or 2 for a Keras 2 config (``tf.keras`` before TF 2.16,
            ``tf_keras``), where ``"hard_sigmoid"`` is ``clip(0.2 x + 0.5, 0, 1)``
            (refconv's ``"hard_sigmoid_keras2"``).

    Returns:
        A ConvLSTMCell with ``params = {"kernel": [*k, C_in + F, 4F], "bias": [4F]}``
        (blocks z, z_i, z_f, z_o) as float64; the bias is zeros without ``use_bias``.
    """
    keras_version = _check_keras_version(keras_version)
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a Keras layer's get_config() dict, "
                        f"got {type(config).__name__}")
    for key in ("filters", "kernel_size"):
        if key not in config:
            raise ValueError(f"config: expected the key {key!r} (a Keras ConvLSTM layer's "
                             f"get_config()), got keys {sorted(config)}")
    filters = config["filters"]
    if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters < 1:
        raise ValueError(f"config['filters']: expected a positive int, got {filters!r}")
    # N is the layer's rank: kernel_size's length, or shape's when kernel_size is one int.
    n = len(config["kernel_size"]) if hasattr(config["kernel_size"], "__len__") else None
    shape = _check_shape_arg(shape, n)
    n = len(shape)
    kernel_size = _keras_ints(config, "kernel_size", n, None)
    strides = _keras_ints(config, "strides", n, 1)
    dilation_rate = _keras_ints(config, "dilation_rate", n, 1)
    padding = str(config.get("padding", "valid")).lower()
    _check_choice(padding, ("valid", "same"), "config['padding']")
    data_format = config.get("data_format") or CHANNELS_LAST  # None: Keras's default
    _check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "config['data_format']")
    activation = _activation_from_keras(config.get("activation", "tanh"),
                                        "config['activation']", keras_version)
    recurrent_activation = _activation_from_keras(config.get("recurrent_activation", "sigmoid"),
                                                  "config['recurrent_activation']", keras_version)
    use_bias = config.get("use_bias", True)
    if not isinstance(use_bias, (bool, np.bool_)):
        raise TypeError(f"config['use_bias']: expected True or False, got {use_bias!r}")
    if config.get("go_backwards", False):
        warnings.warn("config['go_backwards'] is True: Keras reads each sequence from its last "
                      "frame and returns its outputs in that reversed order; refconv's cell "
                      "reads forwards, so run dynamic_rnn(cell, inputs[:, ::-1]) and compare "
                      "its outputs as they come (do not reverse them back)",
                      InteropWarning, stacklevel=2)

    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights: expected the list layer.get_weights(), "
                        f"got {type(weights).__name__}")
    expected = 3 if use_bias else 2
    if len(weights) != expected:
        raise ValueError(f"weights: expected {expected} arrays ([kernel, recurrent_kernel"
                         f"{', bias' if use_bias else ''}] with use_bias={bool(use_bias)}), "
                         f"got {len(weights)}")
    f = int(filters)
    w_x = _array(weights[0], "weights[0] (kernel)")
    if w_x.ndim != n + 2 or w_x.shape[:n] != tuple(kernel_size) or w_x.shape[-1] != 4 * f:
        raise ValueError(f"weights[0] (kernel): expected shape [{', '.join(map(str, kernel_size))}"
                         f", C_in, {4 * f}], got {list(w_x.shape)}")
    c_in = w_x.shape[-2]
    w_h = _array(weights[1], "weights[1] (recurrent_kernel)")
    _check_shape(w_h, (*kernel_size, f, 4 * f), "weights[1] (recurrent_kernel)")
    if use_bias:
        bias = _array(weights[2], "weights[2] (bias)")
        _check_shape(bias, (4 * f,), "weights[2] (bias)")
    else:
        bias = np.zeros(4 * f)

    keras_gates = _gate_names("ifco")
    kernel = np.concatenate([w_x, w_h], axis=-2)  # [*k, C_in + F, 4F]: refconv's one kernel
    params = {"kernel": _blocks_to_refconv(kernel, keras_gates),
              "bias": _blocks_to_refconv(bias, keras_gates)}
    return _lstm_cell(shape, f, kernel_size, params, c_in, forget_bias=0.0,
                      activation=activation, normalize=False, peephole=False,
                      data_format=data_format, recurrent_activation=recurrent_activation,
                      strides=strides, padding=padding, dilation_rate=dilation_rate)


def to_keras(cell, *, keras_version=3, dtype="float64"):
    """``(config, weights)`` for a Keras ``ConvLSTM{N}D`` that computes what ``cell`` computes.

    ``cell.forget_bias`` is folded into the forget gate's bias (Keras has no
    other place for it), so ``from_keras(*to_keras(cell), shape)`` gives the
    same numbers as ``cell`` with ``forget_bias=0.0``. Load the result with::

        layer = getattr(keras.layers, f"ConvLSTM{len(cell.shape)}D").from_config(config)
        layer.build((None, None, *frame))    # frame: [*shape, C_in] or [C_in, *shape]
        layer.set_weights(weights)
        outputs, h, c = layer(inputs)        # return_sequences and return_state are on

    Args:
        cell: a built ConvLSTMCell with ``normalize=False`` and ``peephole=False``
            (Keras has neither), 1 to 3 spatial axes, and activations Keras has.
        keras_version: 3, or 2 (then refconv's ``"hard_sigmoid_keras2"`` is
            Keras 2's ``"hard_sigmoid"``, and Keras 3's has no Keras 2 name).
        dtype: the layer's dtype, float64 by default (the oracle's).

    Returns:
        ``(config, [kernel [*k, C_in, 4F], recurrent_kernel [*k, F, 4F], bias [4F]])``,
        blocks i, f, c, o.
    """
    keras_version = _check_keras_version(keras_version)
    if not isinstance(cell, ConvLSTMCell):
        raise TypeError(f"cell: expected a ConvLSTMCell (Keras has no ConvGRU), "
                        f"got {type(cell).__name__}")
    if cell.normalize:
        raise ValueError("cell: expected normalize=False; Keras's ConvLSTM has no layer "
                         "normalisation, so no Keras layer computes this cell")
    if cell.peephole:
        raise ValueError("cell: expected peephole=False; Keras's ConvLSTM has no peephole "
                         "weights, so no Keras layer computes this cell")
    n = len(cell.shape)
    if n > 3:
        raise ValueError(f"cell: expected 1 to 3 spatial axes (Keras has ConvLSTM1D, 2D, 3D), "
                         f"got {n} (shape {cell.shape})")
    if max(cell.strides) > 1 and max(cell.dilation_rate) > 1:
        raise ValueError(f"cell: Keras refuses strides > 1 together with dilation_rate > 1; "
                         f"got strides {cell.strides} and dilation_rate {cell.dilation_rate}")
    activation = _activation_to_keras(cell.activation, "cell.activation", keras_version)
    recurrent_activation = _activation_to_keras(cell.recurrent_activation,
                                                "cell.recurrent_activation", keras_version)
    params = _checked_cell_params(cell)
    f, c_in = cell.filters, cell.in_channels

    keras_gates = _gate_names("ifco")
    kernel = _blocks_from_refconv(params["kernel"], keras_gates)
    bias = _blocks_from_refconv(_fold_forget_bias(params["bias"], cell), keras_gates)
    config = {"filters": f, "kernel_size": tuple(cell.kernel), "strides": tuple(cell.strides),
              "padding": cell.padding.lower(), "data_format": cell.data_format,
              "dilation_rate": tuple(cell.dilation_rate), "activation": activation,
              "recurrent_activation": recurrent_activation, "use_bias": True,
              "unit_forget_bias": False,  # the forget bias is already in the bias values
              "return_sequences": True, "return_state": True, "dtype": dtype}
    weights = [np.ascontiguousarray(kernel[..., :c_in, :]),
               np.ascontiguousarray(kernel[..., c_in:, :]), bias]
    return config, weights


def state_from_keras(state):
    """Keras's ConvLSTM state ``[h, c]`` -> refconv's ``LSTMStateTuple(c, h)``."""
    if not isinstance(state, (list, tuple)) or len(state) != 2:
        raise TypeError(f"state: expected Keras's [h, c], got {type(state).__name__}"
                        + (f" of length {len(state)}" if isinstance(state, (list, tuple)) else ""))
    h, c = state
    return LSTMStateTuple(_array(c, "state[1] (c)", dtype=None), _array(h, "state[0] (h)", None))


def state_to_keras(state):
    """refconv's ``LSTMStateTuple(c, h)`` -> Keras's ``[h, c]`` (for ``initial_state=``)."""
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"state: expected LSTMStateTuple(c, h), got {type(state).__name__}")
    c, h = state
    return [h, c]


# --- PyTorch ------------------------------------------------------------------------

_TORCH_PADDINGS = ("k//2", "same")


def _warn_even_kernel(kernel, padding, argument, stacklevel=3):
    """Say when a model padding ``k // 2`` on both sides is not refconv's SAME (an even kernel)."""
    even = [axis for axis, k in enumerate(kernel) if k % 2 == 0]
    if padding == "k//2" and even:
        warnings.warn(
            f"{argument}: kernel {list(kernel)} is even on axes {even}. A model that pads "
            f"k // 2 on both sides (as ndrplz/ConvLSTM_pytorch does) makes its convolution one "
            f"larger than its input on those axes, so its state cannot keep the input's size "
            f"(ndrplz's cell then fails with a size mismatch); refconv uses SAME (TensorFlow's: "
            f"one more zero after than before), which is what PyTorch's padding='same' does. "
            f"If the model uses padding='same', pass padding='same' and this warning goes.",
            PaddingWarning, stacklevel=stacklevel)


def _torch_prefixes(state_dict, prefix):
    """The prefix of each layer: ``prefix`` with ``{layer}`` = 0, 1, ... while the weights exist."""
    if "{layer}" not in prefix:
        return [prefix]
    prefixes = []
    while prefix.replace("{layer}", str(len(prefixes))) + "weight" in state_dict:
        prefixes.append(prefix.replace("{layer}", str(len(prefixes))))
    return prefixes


def from_torch(state_dict, shape, *, prefix="cell_list.{layer}.conv.", gate_order="ifog",
               input_order="xh", padding="k//2", activation="tanh",
               recurrent_activation="sigmoid", data_format=CHANNELS_FIRST):
    """refconv cells from a PyTorch ConvLSTM's ``state_dict()``: one convolution over ``[x, h]``.

    The default describes ndrplz/ConvLSTM_pytorch: per layer ``N``,
    ``cell_list.N.conv.weight [4F, C_in + F, *k]`` and ``cell_list.N.conv.bias
    [4F]``, the input ``[x, h]`` on the second axis, the gate blocks ``i, f, o, g``
    (``g`` is refconv's ``z``), ``padding = k // 2`` on both sides, sigmoid
    gates and tanh. Its step is refconv's with ``normalize=False``,
    ``peephole=False`` and ``forget_bias=0.0``. Another PyTorch ConvLSTM of that
    shape is one line, e.g. gates chunked as ``i, f, g, o`` over ``cat([h, x])``
    with ``padding="same"``::

        from_torch(sd, [64, 64], prefix="cells.{layer}.gates.", gate_order="ifgo",
                   input_order="hx", padding="same")

    PyTorch's weight ``[out, in, *k]`` becomes refconv's ``[*k, in, out]``; both
    cross-correlate (no flip). An odd kernel padded ``k // 2`` on both sides is
    SAME; an even one is not (a :class:`PaddingWarning` says so).

    Args:
        state_dict: name -> tensor (torch tensors or arrays; made float64).
        shape: the spatial size of the input frames, N ints (the weight has N + 2 axes).
        prefix: the keys before ``weight``/``bias``; ``{layer}`` stands for the
            layer's index (0, 1, ... as long as the weights exist). Without it,
            one layer.
        gate_order: the 4 output blocks' order, letters i, f, o and g (or c, z).
        input_order: ``"xh"`` when the convolution reads ``cat([x, h])``, ``"hx"``
            for ``cat([h, x])``.
        padding: ``"k//2"`` (both sides, ndrplz) or ``"same"`` (PyTorch's
            ``padding="same"``); only used to warn.
        activation, recurrent_activation: the model's (names or callables).
        data_format: of the refconv cells; PyTorch's ``[B, C, *shape]`` frames are
            ``"channels_first"``.

    Returns:
        A :class:`MultiRNNCell` of ConvLSTMCells when ``prefix`` has ``{layer}``
        (the state is a tuple of ``LSTMStateTuple(c, h)``, one per layer; ndrplz's
        per-layer ``[h, c]``), else one ConvLSTMCell.
    """
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise TypeError(f"state_dict: expected a mapping name -> tensor (model.state_dict()), "
                        f"got {type(state_dict).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a string such as 'cell_list.{{layer}}.conv.', "
                        f"got {type(prefix).__name__}")
    names = _gate_names(gate_order)
    _check_choice(input_order, ("xh", "hx"), "input_order")
    _check_choice(padding, _TORCH_PADDINGS, "padding")
    _check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "data_format")
    prefixes = _torch_prefixes(state_dict, prefix)
    if not prefixes or prefixes[0] + "weight" not in state_dict:
        first = prefix.replace("{layer}", "0") + "weight"
        keys = sorted(state_dict.keys())
        raise ValueError(f"state_dict: expected the key {first!r} (prefix={prefix!r}); "
                         f"got the keys {keys[:12]}{' ...' if len(keys) > 12 else ''}")

    cells = []
    for layer, p in enumerate(prefixes):
        weight = _array(state_dict[p + "weight"], f"state_dict[{p + 'weight'!r}]")
        if weight.ndim < 3 or weight.shape[0] % 4 or weight.shape[1] <= weight.shape[0] // 4:
            raise ValueError(f"state_dict[{p + 'weight'!r}]: expected shape "
                             f"[4F, C_in + F, *kernel] with C_in >= 1, got {list(weight.shape)}")
        f = weight.shape[0] // 4
        c_in = weight.shape[1] - f
        n = weight.ndim - 2
        if layer == 0:
            shape = _check_shape_arg(shape, n)
        elif len(shape) != n:
            raise ValueError(f"state_dict[{p + 'weight'!r}]: expected {len(shape)} spatial "
                             f"axes like layer 0, got shape {list(weight.shape)}")
        if layer and c_in != cells[-1].filters:
            raise ValueError(f"state_dict[{p + 'weight'!r}]: expected {cells[-1].filters} + F "
                             f"input channels (layer {layer} reads layer {layer - 1}'s "
                             f"{cells[-1].filters} channels), got shape {list(weight.shape)}")
        if p + "bias" in state_dict:
            bias = _array(state_dict[p + "bias"], f"state_dict[{p + 'bias'!r}]")
            _check_shape(bias, (4 * f,), f"state_dict[{p + 'bias'!r}]")
        else:  # a convolution made with bias=False
            bias = np.zeros(4 * f)
        kernel_size = list(weight.shape[2:])
        _warn_even_kernel(kernel_size, padding, f"state_dict[{p + 'weight'!r}]")
        kernel = weight.transpose(*range(2, n + 2), 1, 0)  # [out, in, *k] -> [*k, in, out]
        if input_order == "hx":  # refconv reads [x, h]: move the F channels of h after x's
            kernel = np.concatenate([kernel[..., f:, :], kernel[..., :f, :]], axis=-2)
        params = {"kernel": _blocks_to_refconv(kernel, names),
                  "bias": _blocks_to_refconv(bias, names)}
        cells.append(_lstm_cell(shape, f, kernel_size, params, c_in, forget_bias=0.0,
                                activation=activation, normalize=False, peephole=False,
                                data_format=data_format,
                                recurrent_activation=recurrent_activation))
    return MultiRNNCell(cells) if "{layer}" in prefix else cells[0]


def to_torch(cell, *, prefix="cell_list.{layer}.conv.", gate_order="ifog", input_order="xh",
             padding="k//2", activation="tanh", recurrent_activation="sigmoid", as_numpy=False):
    """A ``state_dict`` for a PyTorch ConvLSTM (ndrplz's by default): :func:`from_torch` inverted.

    ``model.load_state_dict(to_torch(cell))`` then computes what ``cell``
    computes (with the cell's ``forget_bias`` folded into the forget gate's
    bias). The arguments describe the PyTorch model, as for :func:`from_torch`;
    the cell's activations must be the model's.

    Args:
        cell: a built ConvLSTMCell (a ``{layer}`` in ``prefix`` makes it layer 0),
            or a MultiRNNCell of them (``prefix`` must then have ``{layer}``);
            ``normalize=False``, ``peephole=False``, the input convolution SAME with
            stride and dilation 1.
        as_numpy: return NumPy arrays instead of float64 torch tensors (then
            torch need not be installed).

    Returns:
        ``{prefix + "weight": [4F, C_in + F, *k], prefix + "bias": [4F], ...}``.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a string, got {type(prefix).__name__}")
    names = _gate_names(gate_order)
    _check_choice(input_order, ("xh", "hx"), "input_order")
    _check_choice(padding, _TORCH_PADDINGS, "padding")
    if isinstance(cell, MultiRNNCell):
        if "{layer}" not in prefix:
            raise ValueError(f"prefix: expected '{{layer}}' in it for a MultiRNNCell of "
                             f"{len(cell.cells)} layers, got {prefix!r}")
        layers = [(f"cell.cells[{i}]", c) for i, c in enumerate(cell.cells)]
    elif isinstance(cell, ConvLSTMCell):
        layers = [("cell", cell)]
    else:
        raise TypeError(f"cell: expected a ConvLSTMCell or a MultiRNNCell of them, "
                        f"got {type(cell).__name__}")
    model_activations = (activation_name(get_activation(activation, "activation")),
                         activation_name(get_activation(recurrent_activation,
                                                        "recurrent_activation")))

    arrays = {}
    for layer, (argument, c) in enumerate(layers):
        if not isinstance(c, ConvLSTMCell):
            raise TypeError(f"{argument}: expected a ConvLSTMCell, got {type(c).__name__}")
        for option, value in (("normalize", c.normalize), ("peephole", c.peephole)):
            if value:
                raise ValueError(f"{argument}: expected {option}=False; a PyTorch ConvLSTM of "
                                 f"one convolution over [x, h] has no {option} part")
        if not c._default_input_conv:
            raise ValueError(f"{argument}: expected the input convolution SAME with stride 1 "
                             f"and dilation 1 (one convolution over [x, h]), got padding "
                             f"{c.padding!r}, strides {c.strides}, dilation_rate {c.dilation_rate}")
        cell_activations = (activation_name(c.activation), activation_name(c.recurrent_activation))
        if cell_activations != model_activations or None in cell_activations:
            raise ValueError(f"{argument}: expected activation and recurrent_activation "
                             f"{model_activations} (the model's), got {cell_activations}")
        params = _checked_cell_params(c, argument)
        n = len(c.shape)
        _warn_even_kernel(c.kernel, padding, f"{argument}.kernel")
        kernel = params["kernel"]
        if input_order == "hx":
            kernel = np.concatenate([kernel[..., c.in_channels:, :],
                                     kernel[..., :c.in_channels, :]], axis=-2)
        kernel = _blocks_from_refconv(kernel, names)
        bias = _fold_forget_bias(params["bias"], c)
        p = prefix.replace("{layer}", str(layer))
        arrays[p + "weight"] = np.ascontiguousarray(kernel.transpose(n + 1, n, *range(n)))
        arrays[p + "bias"] = _blocks_from_refconv(bias, names)
    if as_numpy:
        return arrays
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch: PyTorch is not installed; pass as_numpy=True for NumPy "
                          "arrays, or install torch") from None
    return {name: torch.from_numpy(a) for name, a in arrays.items()}


# --- TensorFlow 1 --------------------------------------------------------------------

# TF1's default names for the seed's cells (the class name in snake case).
_TF1_CELL_NAMES = {ConvLSTMCell: "conv_lstm_cell", ConvGRUCell: "conv_gru_cell"}


def _layer_norm_scope(i):
    """TF1 numbers the layer norms of one scope in call order: LayerNorm, LayerNorm_1, ..."""
    return "LayerNorm" if i == 0 else f"LayerNorm_{i}"


def _tf1_suffixes(kind, normalize, peephole):
    """refconv's parameter name -> the TF1 variable's name inside the cell's scope."""
    names = {}
    if kind == "lstm":
        names["kernel"] = "kernel"
        if not normalize:
            names["bias"] = "bias"
        if peephole:
            names.update({w: w for w in ("W_ci", "W_cf", "W_co")})
        if normalize:  # the seed normalises z, z_i, z_f, then z_o, c
            for i, gate in enumerate(("z", "z_i", "z_f", "z_o", "c")):
                for p in ("gamma", "beta"):
                    names[f"{gate}/{p}"] = f"{_layer_norm_scope(i)}/{p}"
    else:
        for scope in ("gates", "candidate"):
            names[f"{scope}/kernel"] = f"{scope}/kernel"
            if not normalize:
                names[f"{scope}/bias"] = f"{scope}/bias"
        if normalize:  # r, u in the gates scope, then the candidate's own
            for gate, norm in (("r", "gates/LayerNorm"), ("u", "gates/LayerNorm_1"),
                               ("candidate", "candidate/LayerNorm")):
                for p in ("gamma", "beta"):
                    names[f"{gate}/{p}"] = f"{norm}/{p}"
    return names


def _tf1_variables(variables, scope):
    """``{name: value}`` with TF's ``:0`` output suffix dropped, restricted to ``scope``."""
    if not hasattr(variables, "items"):
        raise TypeError(f"variables: expected a dict name -> array (e.g. {{v.name: sess.run(v)}}"
                        f"), got {type(variables).__name__}")
    out = {}
    for name, value in variables.items():
        if not isinstance(name, str):
            raise TypeError(f"variables: expected string keys (TF variable names), "
                            f"got {name!r}")
        out[re.sub(r":\d+$", "", name)] = value
    if scope is not None:
        if not isinstance(scope, str):
            raise TypeError(f"scope: expected a string such as 'rnn', got {type(scope).__name__}")
        scope = scope.rstrip("/")
        out = {name: v for name, v in out.items() if name.startswith(scope + "/")}
    return out


def _tf1_cells(variables):
    """Every cell scope in ``variables``: ``{scope: "lstm" or "gru"}``."""
    cells = {}
    for name, value in variables.items():
        if not name.endswith("/kernel") or np.ndim(value) < 3:  # dense kernels have 2 axes
            continue
        scope = name[:-len("/kernel")]
        if scope.endswith("/gates") and scope[:-len("/gates")] + "/candidate/kernel" in variables:
            cells[scope[:-len("/gates")]] = "gru"
        elif not scope.endswith(("/gates", "/candidate")) and np.shape(value)[-1] % 4 == 0:
            cells[scope] = "lstm"
    return cells


def _tf1_place(scope):
    """Where a cell sits: ``(rnn, direction, layer)``.

    ``rnn`` is the scope with the direction, the layer index and the cell's own
    name replaced by placeholders, so cells of one RNN share it; ``direction``
    is "fw", "bw" or None; ``layer`` the MultiRNNCell index or None.
    """
    parts = scope.split("/")
    direction = layer = None
    for i, part in enumerate(parts[:-1]):
        if part in ("fw", "bw"):
            direction, parts[i] = part, "{direction}"
        match = re.fullmatch(r"cell_(\d+)", part)
        if match and i and parts[i - 1] == "multi_rnn_cell":
            layer, parts[i] = int(match.group(1)), "{layer}"
    parts[-1] = "{cell}"
    return "/".join(parts), direction, layer


def from_tf1(variables, shape=None, *, data_format=CHANNELS_LAST, forget_bias=1.0,
             activation="tanh", scope=None):
    """refconv cells from the seed's TF1 variables, named as a TF1 checkpoint names them.

    The names (``:0`` suffixes allowed) are the seed's, under the scope of
    ``tf.nn.dynamic_rnn`` (``rnn``) or ``bidirectional_dynamic_rnn``
    (``bidirectional_rnn/fw``, ``.../bw``), and ``multi_rnn_cell/cell_N`` for a
    ``MultiRNNCell``::

        rnn/conv_lstm_cell/kernel               [*k, C_in + F, 4F]  blocks z, z_i, z_f, z_o
        rnn/conv_lstm_cell/bias                 [4F]                without normalize
        rnn/conv_lstm_cell/W_ci, W_cf, W_co     S                   with peephole
        rnn/conv_lstm_cell/LayerNorm/gamma,beta [F]                 z's layer norm; then
            LayerNorm_1 (z_i), LayerNorm_2 (z_f), LayerNorm_3 (z_o), LayerNorm_4 (c)
        rnn/conv_gru_cell/gates/kernel          [*k, C_in + F, 2F]  blocks r, u
        rnn/conv_gru_cell/gates/LayerNorm, gates/LayerNorm_1        r's, u's layer norm
        rnn/conv_gru_cell/candidate/kernel      [*k, C_in + F, F]
        rnn/conv_gru_cell/candidate/LayerNorm   (or gates/bias, candidate/bias)

    ``normalize`` and ``peephole`` are read off which names exist. One cell
    passed as both directions of ``bidirectional_dynamic_rnn`` has its
    variables only under ``fw`` (TF creates them once); it comes back as the
    same cell object twice, which refconv's ``bidirectional_dynamic_rnn`` also
    treats as shared weights. Names of other layers, optimizer slots and
    counters in a checkpoint are ignored.

    Args:
        variables: name -> array, e.g. ``{v.name: sess.run(v) for v in
            tf.compat.v1.global_variables()}`` or :func:`load_tf1_checkpoint`.
        shape: the frames' spatial size; read off the peephole weights when there
            are some (then, if given, it must agree), required otherwise.
        data_format, forget_bias, activation: the seed's constructor arguments,
            which no variable records (defaults: the seed's).
        scope: keep only the names under this scope (e.g. ``"encoder/rnn"``), to
            choose among several RNNs.

    Returns:
        Mirroring what TF built: a ConvLSTMCell or ConvGRUCell; a MultiRNNCell;
        or for a bidirectional RNN the pair ``(cell_fw, cell_bw)`` (the same
        object twice when shared), ready for
        ``bidirectional_dynamic_rnn(*pair, inputs)``.
    """
    variables = _tf1_variables(variables, scope)
    cells = _tf1_cells(variables)
    where = f" under scope {scope!r}" if scope is not None else ""
    if not cells:
        names = sorted(variables)
        raise ValueError(f"variables: expected a ConvLSTM or ConvGRU cell's variables{where}, "
                         f"such as 'rnn/conv_lstm_cell/kernel' or "
                         f"'rnn/conv_gru_cell/gates/kernel'; got the names "
                         f"{names[:12]}{' ...' if len(names) > 12 else ''}")
    places = {}
    for cell_scope in sorted(cells):
        rnn, direction, layer = _tf1_place(cell_scope)
        places.setdefault(rnn, {})
        if (direction, layer) in places[rnn]:
            raise ValueError(f"variables: expected one cell per place{where}, got two: "
                             f"{places[rnn][direction, layer]!r} and {cell_scope!r}; pass scope= "
                             f"to choose")
        places[rnn][direction, layer] = cell_scope
    if len(places) > 1:
        raise ValueError(f"variables: found the cells of {len(places)} RNNs{where}: "
                         f"{sorted(cells)}; pass scope= to choose one")
    (place,) = places.values()
    _check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "data_format")
    shape = _tf1_shape(variables, cells, shape, data_format)

    def build(direction):
        layers = sorted((layer, s) for (d, layer), s in place.items() if d == direction)
        if [layer for layer, _ in layers] == [None]:
            return _tf1_cell(variables, layers[0][1], cells[layers[0][1]], shape, data_format,
                             forget_bias, activation)
        if None in [layer for layer, _ in layers] \
                or [layer for layer, _ in layers] != list(range(len(layers))):
            raise ValueError(f"variables: expected MultiRNNCell layers cell_0, cell_1, ... "
                             f"without gaps, got the cells {[s for _, s in layers]}")
        built = []
        for layer, s in layers:
            built.append(_tf1_cell(variables, s, cells[s], shape, data_format, forget_bias,
                                   activation))
            if layer and built[-1].in_channels != built[-2].filters:
                raise ValueError(f"variables: expected {s!r} to read {built[-2].filters} "
                                 f"channels (the filters of the layer below), got "
                                 f"{built[-1].in_channels}")
        return MultiRNNCell(built)

    directions = {d for d, _ in place}
    if directions == {None}:
        return build(None)
    if "fw" not in directions:
        raise ValueError(f"variables: expected the forward cell of a bidirectional RNN (under "
                         f"'.../fw/'), got only {sorted(place.values())}")
    cell_fw = build("fw")
    cell_bw = build("bw") if "bw" in directions else cell_fw  # one cell passed twice
    return cell_fw, cell_bw


def _tf1_shape(variables, cells, shape, data_format):
    """The spatial shape: given, or read off a peephole weight ``S`` (one frame of the state)."""
    inferred = source = None
    for cell_scope, kind in sorted(cells.items()):
        if kind == "lstm" and cell_scope + "/W_ci" in variables:
            source = cell_scope + "/W_ci"
            s = list(np.shape(variables[source]))
            inferred = s[:-1] if data_format == CHANNELS_LAST else s[1:]
            if not inferred:
                raise ValueError(f"variables[{source!r}]: expected one frame of the state "
                                 f"(spatial axes and channels), got shape {s}")
            break
    if shape is None:
        if inferred is None:
            raise ValueError("shape: required, since the cells have no peephole weights and "
                             "no other variable records the frames' spatial size")
        return inferred
    shape = _check_shape_arg(shape)
    if inferred is not None and shape != inferred:
        raise ValueError(f"shape: expected {inferred} (the spatial size of {source!r}, "
                         f"{data_format}), got {shape}")
    return shape


def _tf1_cell(variables, cell_scope, kind, shape, data_format, forget_bias, activation):
    """One cell from the variables under ``cell_scope``."""
    main = cell_scope + ("/kernel" if kind == "lstm" else "/gates/kernel")
    kernel = variables[main]
    blocks = 4 if kind == "lstm" else 2
    k_shape = np.shape(kernel)
    f = k_shape[-1] // blocks
    if len(k_shape) != len(shape) + 2 or k_shape[-1] % blocks or k_shape[-2] <= f:
        raise ValueError(f"variables[{main!r}]: expected shape [*kernel ({len(shape)} ints), "
                         f"C_in + F, {blocks}F] with C_in >= 1, got {list(k_shape)}")
    c_in = k_shape[-2] - f
    has = {suffix: cell_scope + "/" + suffix in variables
           for suffix in ("LayerNorm/gamma", "gates/LayerNorm/gamma", "W_ci")}
    normalize = has["LayerNorm/gamma"] if kind == "lstm" else has["gates/LayerNorm/gamma"]
    options = dict(activation=activation, normalize=normalize, data_format=data_format)
    if kind == "lstm":
        cell = ConvLSTMCell(shape, f, list(k_shape[:-2]), forget_bias=forget_bias,
                            peephole=has["W_ci"], **options)
    else:
        cell = ConvGRUCell(shape, f, list(k_shape[:-2]), **options)
    specs = cell._param_specs(c_in)
    params = {}
    for param, suffix in _tf1_suffixes(kind, cell.normalize,
                                       getattr(cell, "peephole", False)).items():
        name = f"{cell_scope}/{suffix}"
        if name not in variables:
            flags = f"normalize={cell.normalize}" + (f", peephole={cell.peephole}"
                                                     if kind == "lstm" else "")
            raise ValueError(f"variables: missing {name!r} (refconv's {param!r}), which the "
                             f"seed's {kind.upper()} cell with {flags} creates (as the names "
                             f"under {cell_scope!r} say)")
        params[param] = _array(variables[name], f"variables[{name!r}]")
        _check_shape(params[param], specs[param][0], f"variables[{name!r}]",
                     f" (refconv's {param!r})")
    bias = f"{cell_scope}/{'bias' if kind == 'lstm' else 'gates/bias'}"
    if cell.normalize and bias in variables:
        raise ValueError(f"variables: got both {bias!r} and layer norms under {cell_scope!r}; "
                         f"the seed's cell has a bias only without layer normalisation")
    cell.in_channels = c_in
    cell.params = params
    return cell


def to_tf1(cell, scope=None):
    """The seed's TF1 variable names -> arrays for refconv cells: :func:`from_tf1` inverted.

    Args:
        cell: a built ConvLSTMCell, ConvGRUCell or MultiRNNCell, or a pair
            ``(cell_fw, cell_bw)`` for a bidirectional RNN (the same object twice:
            one shared cell, named only under ``fw``).
        scope: the RNN's scope; ``"rnn"`` (``dynamic_rnn``'s) or
            ``"bidirectional_rnn"`` by default.

    Returns:
        ``{"rnn/conv_lstm_cell/kernel": array, ...}`` (no ``:0`` suffixes), for
        a checkpoint or for assigning to a TF1 graph's variables.
    """
    if isinstance(cell, tuple) and not isinstance(cell, MultiRNNCell):
        if len(cell) != 2:
            raise TypeError(f"cell: expected a cell or a pair (cell_fw, cell_bw), got a tuple "
                            f"of length {len(cell)}")
        scope = "bidirectional_rnn" if scope is None else scope
        out = _tf1_names(cell[0], f"{scope}/fw", "cell[0]")
        if cell[1] is not cell[0]:
            out.update(_tf1_names(cell[1], f"{scope}/bw", "cell[1]"))
        return out
    return _tf1_names(cell, "rnn" if scope is None else scope, "cell")


def _tf1_names(cell, scope, argument):
    if isinstance(cell, MultiRNNCell):
        out = {}
        for i, c in enumerate(cell.cells):
            out.update(_tf1_names(c, f"{scope}/multi_rnn_cell/cell_{i}", f"{argument}.cells[{i}]"))
        return out
    if type(cell) not in _TF1_CELL_NAMES:
        raise TypeError(f"{argument}: expected a ConvLSTMCell, ConvGRUCell or MultiRNNCell, "
                        f"got {type(cell).__name__}")
    if isinstance(cell, ConvLSTMCell) and not cell._default_input_conv:
        raise ValueError(f"{argument}: expected the seed's input convolution (SAME, stride 1, "
                         f"dilation 1), got padding {cell.padding!r}, strides {cell.strides}, "
                         f"dilation_rate {cell.dilation_rate}")
    params = _checked_cell_params(cell, argument)
    kind = "lstm" if isinstance(cell, ConvLSTMCell) else "gru"
    prefix = f"{scope}/{_TF1_CELL_NAMES[type(cell)]}/"
    return {prefix + suffix: params[param].copy()
            for param, suffix in _tf1_suffixes(kind, cell.normalize,
                                               getattr(cell, "peephole", False)).items()}


def load_tf1_checkpoint(path):
    """Every variable of a TensorFlow checkpoint, as ``{name: array}``, for :func:`from_tf1`.

    Needs TensorFlow (any 2.x; it reads TF1 checkpoints too). Without it,
    export the variables where TensorFlow runs: ``{v.name: sess.run(v) for v
    in tf.compat.v1.global_variables()}``, saved with ``np.savez``.

    Args:
        path: the checkpoint's prefix (``model.ckpt-1000``) or its directory.
    """
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError("load_tf1_checkpoint: TensorFlow is not installed (pip install "
                          "tensorflow-cpu); or export the variables where it is, as "
                          "{v.name: sess.run(v)}, and pass that dict to from_tf1") from None
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
