"""Keras's ConvLSTM1D/2D/3D (Keras 3, and Keras 2: ``tf.keras`` before TF 2.16, ``tf_keras``).

Keras keeps refconv's one kernel as two, ``kernel [*k, C_in, 4F]`` for the
input and ``recurrent_kernel [*k, F, 4F]`` for the state, with the gate blocks
in the order i, f, c, o (Keras's ``c`` is refconv's ``z``), and returns its
state as ``[h, c]``.
"""

import numbers
import warnings

import numpy as np

from .._cell import CHANNELS_FIRST, CHANNELS_LAST
from ..activations import activation_name
from ..lstm import LSTMStateTuple
from ._common import (InteropWarning, as_array, blocks_from_refconv, blocks_to_refconv,
                      check_choice, check_plain_lstm, check_shape, check_shape_arg,
                      checked_cell_params, fold_forget_bias, gate_names, lstm_cell)

__all__ = ["from_keras", "to_keras", "state_from_keras", "state_to_keras", "keras_version_of"]

# Keras's gate blocks on the kernels' output-channel axis (its "c" is refconv's z).
KERAS_GATE_ORDER = "ifco"

# Every key a Keras 3 or Keras 2 ConvLSTM layer's get_config() writes. A key outside these
# (a hand-written "paddding") would silently leave its option at Keras's default.
_KERAS_CONFIG_KEYS = frozenset("""
    name trainable dtype return_sequences return_state go_backwards stateful unroll
    zero_output_for_mask time_major filters kernel_size strides padding data_format
    dilation_rate activation recurrent_activation use_bias kernel_initializer
    recurrent_initializer bias_initializer unit_forget_bias kernel_regularizer
    recurrent_regularizer bias_regularizer activity_regularizer kernel_constraint
    recurrent_constraint bias_constraint dropout recurrent_dropout seed
    batch_input_shape input_shape batch_size""".split())

# Keras's activation names that refconv computes, per Keras major version. Keras 3's
# "hard_sigmoid" is clip(x / 6 + 1/2, 0, 1); Keras 2's (tf.keras, tf_keras) is
# clip(0.2 x + 1/2, 0, 1): the same name for two functions.
_KERAS_ACTIVATIONS = {
    3: {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "linear",
        "hard_sigmoid": "hard_sigmoid"},
    2: {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "linear",
        "hard_sigmoid": "hard_sigmoid_keras2"},
}


def _check_keras_version(keras_version, allow_none=False):
    if isinstance(keras_version, bool) or keras_version not in ((2, 3, None) if allow_none
                                                                 else (2, 3)):
        raise ValueError(f"keras_version: expected 3 (Keras 3) or 2 (Keras 2: tf.keras up to "
                         f"TF 2.15, tf_keras)"
                         + (", or None to read it off the config" if allow_none else "")
                         + f", got {keras_version!r}")
    return keras_version


def keras_version_of(config):
    """The Keras major version a layer's ``get_config()`` was written by: ``(2, 3 or None, why)``.

    Keras 2's recurrent layers (``tf.keras`` up to TF 2.15, ``tf_keras``) write a
    ``time_major`` key, and a mixed-precision ``dtype`` as a ``"Policy"``;
    Keras 3's ConvLSTM writes a ``seed`` key and its ``dtype`` as a
    ``"DTypePolicy"`` dict. A plain-string ``dtype`` says nothing (Keras 2
    writes one, and Keras 3 reads one), nor does a config that shows signs of
    both or of neither (e.g. one written by hand): then the version is None.
    """
    signs = {2: [], 3: []}
    if "time_major" in config:
        signs[2].append("a 'time_major' key")
    if "seed" in config:
        signs[3].append("a 'seed' key")
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        policy = dtype.get("class_name")
        if policy == "Policy":
            signs[2].append("dtype a Keras 2 'Policy'")
        elif isinstance(policy, str) and policy.endswith("DTypePolicy"):
            signs[3].append(f"dtype a Keras 3 {policy!r}")
    if bool(signs[2]) == bool(signs[3]):
        both = signs[2] + signs[3]
        return None, (f"signs of both ({', '.join(both)})" if both
                      else "no 'time_major' or 'seed' key, no dtype policy")
    version = 2 if signs[2] else 3
    return version, ", ".join(signs[version])


def _resolve_keras_version(config, keras_version):
    """``keras_version`` as given (checked against the config) or as the config says."""
    keras_version = _check_keras_version(keras_version, allow_none=True)
    detected, why = keras_version_of(config)
    if keras_version is not None and detected is not None and keras_version != detected:
        raise ValueError(f"keras_version: expected {detected} or None (the config is Keras "
                         f"{detected}'s: it has {why}), got {keras_version}; a Keras "
                         f"{detected} layer's 'hard_sigmoid' is not Keras {keras_version}'s")
    if keras_version is not None:
        return keras_version
    if detected is not None:
        return detected
    hard = [key for key in ("activation", "recurrent_activation")
            if _activation_key(config.get(key)) == "hard_sigmoid"]
    if hard:
        raise ValueError(f"keras_version: expected 2 or 3 for this config: it shows {why}, so "
                         f"refconv cannot tell which Keras wrote it, and config[{hard[0]!r}] "
                         f"'hard_sigmoid' is clip(0.2 x + 0.5, 0, 1) in Keras 2 but "
                         f"clip(x / 6 + 0.5, 0, 1) in Keras 3; got None")
    return 3  # every other activation is the same function in both


def _activation_key(value):
    """A config's activation as its name when it is one (serialized dicts unwrapped)."""
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        return value["config"]
    return value


def _activation_from_keras(value, argument, keras_version):
    """A Keras config's activation (a name, None, or a serialized dict) -> refconv's name."""
    if value is None:
        value = "linear"  # Keras: activation=None means no activation
    value = _activation_key(value)  # {"class_name": "function", "config": "tanh", ...}
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


def from_keras(config, weights, shape, *, keras_version=None):
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
        keras_version: None (default) reads it off the config
            (:func:`keras_version_of`); 3, or 2 for a Keras 2 config (``tf.keras``
            before TF 2.16, ``tf_keras``), where ``"hard_sigmoid"`` is
            ``clip(0.2 x + 0.5, 0, 1)`` (refconv's ``"hard_sigmoid_keras2"``). A
            version that contradicts the config is an error, and so is None for a
            config that does not say when it uses ``"hard_sigmoid"``.

    Returns:
        A ConvLSTMCell with ``params = {"kernel": [*k, C_in + F, 4F], "bias": [4F]}``
        (blocks z, z_i, z_f, z_o) as float64; the bias is zeros without ``use_bias``.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a Keras layer's get_config() dict, "
                        f"got {type(config).__name__}")
    unknown = sorted(map(str, set(config) - _KERAS_CONFIG_KEYS))
    if unknown:
        warnings.warn(f"config: keys that no Keras ConvLSTM layer writes are not used: {unknown} "
                      f"(a misspelled option keeps Keras's default)", InteropWarning,
                      stacklevel=2)
    keras_version = _resolve_keras_version(config, keras_version)
    for key in ("filters", "kernel_size"):
        if key not in config:
            raise ValueError(f"config: expected the key {key!r} (a Keras ConvLSTM layer's "
                             f"get_config()), got keys {sorted(config)}")
    filters = config["filters"]
    if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters < 1:
        raise ValueError(f"config['filters']: expected a positive int, got {filters!r}")
    # N is the layer's rank: kernel_size's length, or shape's when kernel_size is one int.
    kernel_size = config["kernel_size"]
    if isinstance(kernel_size, (str, bool)) or not (isinstance(kernel_size, numbers.Integral)
                                                    or isinstance(kernel_size, (list, tuple))):
        raise ValueError(f"config['kernel_size']: expected an int or 1 to 3 positive ints (one "
                         f"per spatial axis), got {kernel_size!r}")
    n = len(kernel_size) if isinstance(kernel_size, (list, tuple)) else None
    shape = check_shape_arg(shape, n)
    n = len(shape)
    kernel_size = _keras_ints(config, "kernel_size", n, None)
    strides = _keras_ints(config, "strides", n, 1)
    dilation_rate = _keras_ints(config, "dilation_rate", n, 1)
    padding = str(config.get("padding", "valid")).lower()
    check_choice(padding, ("valid", "same"), "config['padding']")
    data_format = config.get("data_format") or CHANNELS_LAST  # None: Keras's default
    check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "config['data_format']")
    activation = _activation_from_keras(config.get("activation", "tanh"),
                                        "config['activation']", keras_version)
    recurrent_activation = _activation_from_keras(config.get("recurrent_activation", "sigmoid"),
                                                  "config['recurrent_activation']", keras_version)
    use_bias = config.get("use_bias", True)
    if not isinstance(use_bias, (bool, np.bool_)):
        raise TypeError(f"config['use_bias']: expected True or False, got {use_bias!r}")
    go_backwards = config.get("go_backwards", False)
    if not isinstance(go_backwards, (bool, np.bool_)):
        raise TypeError(f"config['go_backwards']: expected True or False, got {go_backwards!r}")
    if go_backwards:
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
    w_x = as_array(weights[0], "weights[0] (kernel)")
    if w_x.ndim != n + 2 or w_x.shape[:n] != tuple(kernel_size) or w_x.shape[-1] != 4 * f:
        raise ValueError(f"weights[0] (kernel): expected shape [{', '.join(map(str, kernel_size))}"
                         f", C_in, {4 * f}], got {list(w_x.shape)}")
    c_in = w_x.shape[-2]
    if c_in < 1:
        raise ValueError(f"weights[0] (kernel): expected shape [{', '.join(map(str, kernel_size))}"
                         f", C_in, {4 * f}] with C_in >= 1 input channels, got "
                         f"{list(w_x.shape)}")
    w_h = as_array(weights[1], "weights[1] (recurrent_kernel)")
    check_shape(w_h, (*kernel_size, f, 4 * f), "weights[1] (recurrent_kernel)")
    if use_bias:
        bias = as_array(weights[2], "weights[2] (bias)")
        check_shape(bias, (4 * f,), "weights[2] (bias)")
    else:
        bias = np.zeros(4 * f)

    keras_gates = gate_names(KERAS_GATE_ORDER)
    kernel = np.concatenate([w_x, w_h], axis=-2)  # [*k, C_in + F, 4F]: refconv's one kernel
    params = {"kernel": blocks_to_refconv(kernel, keras_gates),
              "bias": blocks_to_refconv(bias, keras_gates)}
    return lstm_cell(shape, f, kernel_size, params, c_in, forget_bias=0.0,
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
        blocks i, f, c, o. The config carries its version's mark (``"seed": None``
        for Keras 3, ``"time_major": False`` for Keras 2), so that :func:`from_keras`
        reads it back without being told.
    """
    keras_version = _check_keras_version(keras_version)
    check_plain_lstm(cell, "cell", "Keras", one_convolution=False)
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
    params = checked_cell_params(cell)
    f, c_in = cell.filters, cell.in_channels

    keras_gates = gate_names(KERAS_GATE_ORDER)
    kernel = blocks_from_refconv(params["kernel"], keras_gates)
    bias = blocks_from_refconv(fold_forget_bias(params["bias"], cell), keras_gates)
    config = {"filters": f, "kernel_size": tuple(cell.kernel), "strides": tuple(cell.strides),
              "padding": cell.padding.lower(), "data_format": cell.data_format,
              "dilation_rate": tuple(cell.dilation_rate), "activation": activation,
              "recurrent_activation": recurrent_activation, "use_bias": True,
              "unit_forget_bias": False,  # the forget bias is already in the bias values
              "return_sequences": True, "return_state": True, "dtype": dtype}
    # What marks the config as this version's for from_keras (keras_version_of).
    config.update({"time_major": False} if keras_version == 2 else {"seed": None})
    weights = [np.ascontiguousarray(kernel[..., :c_in, :]),
               np.ascontiguousarray(kernel[..., c_in:, :]), bias]
    return config, weights


def state_from_keras(state):
    """Keras's ConvLSTM state ``[h, c]`` -> refconv's ``LSTMStateTuple(c, h)``."""
    if not isinstance(state, (list, tuple)) or len(state) != 2:
        raise TypeError(f"state: expected Keras's [h, c], got {type(state).__name__}"
                        + (f" of length {len(state)}" if isinstance(state, (list, tuple)) else ""))
    h, c = state
    return LSTMStateTuple(as_array(c, "state[1] (c)", dtype=None),
                          as_array(h, "state[0] (h)", dtype=None))


def state_to_keras(state):
    """refconv's ``LSTMStateTuple(c, h)`` -> Keras's ``[h, c]`` (for ``initial_state=``)."""
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"state: expected LSTMStateTuple(c, h), got {type(state).__name__}")
    c, h = state
    return [h, c]


