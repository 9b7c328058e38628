"""PyTorch ConvLSTMs of one convolution over ``[x, h]`` (ndrplz/ConvLSTM_pytorch by default).

``conv.weight [4F, C_in + F, *k]`` and ``conv.bias [4F]`` per layer, blocks
i, f, o, g (``g`` is refconv's ``z``), channels first. The name of this module
is the framework's; ``import torch`` inside it still reads PyTorch (absolute
imports), and only :func:`to_torch` does so, when called.
"""

import numbers
import re
import warnings

import numpy as np

from .._cell import CHANNELS_FIRST, CHANNELS_LAST
from ..activations import activation_name, get_activation
from ..lstm import ConvLSTMCell
from ..rnn import MultiRNNCell
from ._common import (InteropWarning, PaddingWarning, as_array, blocks_from_refconv,
                      blocks_to_refconv, check_choice, check_plain_lstm, check_shape,
                      check_shape_arg, checked_cell_params, fold_forget_bias, gate_names,
                      lstm_cell)

__all__ = ["from_torch", "to_torch"]

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


def _torch_layers(state_dict, prefix):
    """Every key of ``state_dict`` under ``prefix``: ``{layer: {suffix: key}}``, and the others.

    ``{layer}`` in ``prefix`` matches a layer index (``0``, ``1``, ... written as
    PyTorch writes them); without it every key under ``prefix`` is layer 0.
    """
    if prefix.count("{layer}") > 1:
        raise ValueError(f"prefix: expected '{{layer}}' at most once, got {prefix!r}")
    before, _, after = prefix.partition("{layer}")
    index = r"(0|[1-9][0-9]*)" if "{layer}" in prefix else r"()"
    pattern = re.compile(re.escape(before) + index + re.escape(after) + r"(.*)", re.DOTALL)
    layers, outside = {}, []
    for key in state_dict.keys():
        if not isinstance(key, str):
            raise TypeError(f"state_dict: expected string keys (parameter names), got {key!r}")
        match = pattern.fullmatch(key)
        if match is None:
            outside.append(key)
        else:
            layers.setdefault(int(match.group(1) or 0), {})[match.group(2)] = key
    return layers, outside


def _listed(keys, most=12):
    keys = sorted(keys)
    return f"{keys[:most]}{' ...' if len(keys) > most else ''}"


def _torch_prefixes(state_dict, prefix):
    """The prefix of each layer, 0, 1, ...; every key under ``prefix`` used, or an error.

    A gap in the layers (``cell_list.0`` and ``.2`` without ``.1``) and a key
    under ``prefix`` that is neither ``weight`` nor ``bias`` (``conv.Bias``)
    are errors: ignoring them would compute another model. Keys outside
    ``prefix`` (other modules of the model) are left alone with an
    :class:`InteropWarning` that lists them.
    """
    layers, outside = _torch_layers(state_dict, prefix)
    first = prefix.replace("{layer}", "0") + "weight"
    if 0 not in layers or "weight" not in layers[0]:
        raise ValueError(f"state_dict: expected the key {first!r} (prefix={prefix!r}); "
                         f"got the keys {_listed(state_dict.keys())}")
    missing = sorted(set(range(max(layers) + 1)) - set(layers))
    if missing:
        raise ValueError(f"state_dict: expected layers 0 to {max(layers)} without gaps under "
                         f"prefix {prefix!r}, got layers {sorted(layers)}: no "
                         f"{prefix.replace('{layer}', str(missing[0]))}weight")
    prefixes = [prefix.replace("{layer}", str(layer)) for layer in range(len(layers))]
    for layer, p in enumerate(prefixes):
        unknown = [key for suffix, key in layers[layer].items() if suffix not in ("weight", "bias")]
        if unknown:
            raise ValueError(f"state_dict: expected only {p + 'weight'!r} and {p + 'bias'!r} "
                             f"under {p!r} (one convolution over [x, h]), got also "
                             f"{_listed(unknown)}; a misspelled key would silently be a zero "
                             f"bias or a missing part, so it is an error")
        if "weight" not in layers[layer]:
            raise ValueError(f"state_dict: expected {p + 'weight'!r} (layer {layer}'s "
                             f"convolution), got only {_listed(layers[layer].values())}")
    if outside:
        warnings.warn(f"state_dict: {len(outside)} keys outside prefix {prefix!r} are not used "
                      f"(other parts of the model?): {_listed(outside)}; pass only the "
                      f"ConvLSTM's keys to silence this", InteropWarning, stacklevel=3)
    return prefixes


def _check_forget_bias(value, argument="forget_bias"):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value):
        raise ValueError(f"{argument}: expected a finite number (the constant the model adds to "
                         f"the forget gate at every step; 0.0 for ndrplz), got {value!r}")
    return float(value)


def from_torch(state_dict, shape, *, prefix="cell_list.{layer}.conv.", gate_order="ifog",
               input_order="xh", padding="k//2", activation="tanh",
               recurrent_activation="sigmoid", data_format=CHANNELS_FIRST, forget_bias=0.0):
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
            layer's index (0, 1, ..., without gaps). Without it, one layer. A key
            under ``prefix`` other than ``weight`` and ``bias`` is an error; keys
            outside it are not used (an :class:`InteropWarning` lists them).
        gate_order: the 4 output blocks' order, letters i, f, o and g (or c, z).
        input_order: ``"xh"`` when the convolution reads ``cat([x, h])``, ``"hx"``
            for ``cat([h, x])``.
        padding: ``"k//2"`` (both sides, ndrplz) or ``"same"`` (PyTorch's
            ``padding="same"``); only used to warn.
        activation, recurrent_activation: the model's (names or callables).
        data_format: of the refconv cells; PyTorch's ``[B, C, *shape]`` frames are
            ``"channels_first"``.
        forget_bias: a constant the model adds to the forget gate at every step,
            outside its parameters (``sigmoid(f + 1)``, as Flax and some PyTorch
            ports do); 0.0 for ndrplz, whose forget bias is all in ``conv.bias``.
            It becomes the cells' ``forget_bias``.

    Returns:
        A :class:`MultiRNNCell` of ConvLSTMCells when ``prefix`` has ``{layer}``
        (the state is a tuple of ``LSTMStateTuple(c, h)``, one per layer; ndrplz's
        per-layer ``[h, c]``), else one ConvLSTMCell.

    ndrplz's ``ConvLSTM(..., batch_first=False)`` reads ``[T, B, C, *shape]``
    but always *returns* ``[B, T, F, *shape]`` outputs (it permutes its input
    to batch first and never back), while refconv's ``time_major=True`` returns
    ``[T, B, ...]``: compare ``dynamic_rnn(cell, x, time_major=True)[0]`` with
    ndrplz's outputs swapped, ``outputs.transpose(0, 1)``. Its
    ``return_all_layers=True`` is refconv's ``dynamic_rnn(...,
    return_all_layers=True)``.
    """
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise TypeError(f"state_dict: expected a mapping name -> tensor (model.state_dict()), "
                        f"got {type(state_dict).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a string such as 'cell_list.{{layer}}.conv.', "
                        f"got {type(prefix).__name__}")
    names = gate_names(gate_order)
    check_choice(input_order, ("xh", "hx"), "input_order")
    check_choice(padding, _TORCH_PADDINGS, "padding")
    check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "data_format")
    forget_bias = _check_forget_bias(forget_bias)
    prefixes = _torch_prefixes(state_dict, prefix)

    cells = []
    for layer, p in enumerate(prefixes):
        weight = as_array(state_dict[p + "weight"], f"state_dict[{p + 'weight'!r}]")
        if weight.ndim < 3 or weight.shape[0] % 4 or weight.shape[1] <= weight.shape[0] // 4:
            raise ValueError(f"state_dict[{p + 'weight'!r}]: expected shape "
                             f"[4F, C_in + F, *kernel] with C_in >= 1, got {list(weight.shape)}")
        f = weight.shape[0] // 4
        c_in = weight.shape[1] - f
        n = weight.ndim - 2
        if layer == 0:
            shape = check_shape_arg(shape, n)
        elif len(shape) != n:
            raise ValueError(f"state_dict[{p + 'weight'!r}]: expected {len(shape)} spatial "
                             f"axes like layer 0, got shape {list(weight.shape)}")
        if layer and c_in != cells[-1].filters:
            raise ValueError(f"state_dict[{p + 'weight'!r}]: expected {cells[-1].filters} + F "
                             f"input channels (layer {layer} reads layer {layer - 1}'s "
                             f"{cells[-1].filters} channels), got shape {list(weight.shape)}")
        if p + "bias" in state_dict:
            bias = as_array(state_dict[p + "bias"], f"state_dict[{p + 'bias'!r}]")
            check_shape(bias, (4 * f,), f"state_dict[{p + 'bias'!r}]")
        else:  # a convolution made with bias=False
            bias = np.zeros(4 * f)
        kernel_size = list(weight.shape[2:])
        _warn_even_kernel(kernel_size, padding, f"state_dict[{p + 'weight'!r}]")
        kernel = weight.transpose(*range(2, n + 2), 1, 0)  # [out, in, *k] -> [*k, in, out]
        if input_order == "hx":  # refconv reads [x, h]: move the F channels of h after x's
            kernel = np.concatenate([kernel[..., f:, :], kernel[..., :f, :]], axis=-2)
        params = {"kernel": blocks_to_refconv(kernel, names),
                  "bias": blocks_to_refconv(bias, names)}
        cells.append(lstm_cell(shape, f, kernel_size, params, c_in, forget_bias=forget_bias,
                                activation=activation, normalize=False, peephole=False,
                                data_format=data_format,
                                recurrent_activation=recurrent_activation))
    return MultiRNNCell(cells) if "{layer}" in prefix else cells[0]


def to_torch(cell, *, prefix="cell_list.{layer}.conv.", gate_order="ifog", input_order="xh",
             padding="k//2", activation="tanh", recurrent_activation="sigmoid", as_numpy=False,
             bias=True, forget_bias=0.0):
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
        bias: False for a model whose convolutions have no bias (ndrplz's
            ``bias=False``): no ``bias`` keys, and the cell's bias, with its
            forget bias folded in, must be exactly zero.
        forget_bias: the constant the model adds to the forget gate (as in
            :func:`from_torch`); the cell's ``forget_bias`` minus this goes into
            the bias.

    Returns:
        ``{prefix + "weight": [4F, C_in + F, *k], prefix + "bias": [4F], ...}``.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a string, got {type(prefix).__name__}")
    names = gate_names(gate_order)
    check_choice(input_order, ("xh", "hx"), "input_order")
    check_choice(padding, _TORCH_PADDINGS, "padding")
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias: expected True or False (whether the model's convolutions have "
                        f"a bias), got {bias!r}")
    forget_bias = _check_forget_bias(forget_bias)
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
    model = (get_activation(activation, "activation"),
             get_activation(recurrent_activation, "recurrent_activation"))

    arrays = {}
    for layer, (argument, c) in enumerate(layers):
        check_plain_lstm(c, argument, "PyTorch (one convolution over [x, h])")
        for option, fn, model_fn in (("activation", c.activation, model[0]),
                                     ("recurrent_activation", c.recurrent_activation, model[1])):
            name, model_name = activation_name(fn), activation_name(model_fn)
            if fn is not model_fn and (name is None or name != model_name):
                raise ValueError(f"{argument}.{option}: expected the model's {option} "
                                 f"{model_name or model_fn!r} (to_torch's {option}=), got "
                                 f"{name or fn!r}" + ("" if name and model_name else
                                                      "; a function refconv has no name for "
                                                      "matches only when it is the same object"))
        params = checked_cell_params(c, argument)
        n = len(c.shape)
        _warn_even_kernel(c.kernel, padding, f"{argument}.kernel")
        kernel = params["kernel"]
        if input_order == "hx":
            kernel = np.concatenate([kernel[..., c.in_channels:, :],
                                     kernel[..., :c.in_channels, :]], axis=-2)
        kernel = blocks_from_refconv(kernel, names)
        folded = fold_forget_bias(params["bias"], c, forget_bias)
        if not bias and np.any(folded):
            raise ValueError(f"bias: False needs {argument}'s bias, with forget_bias "
                             f"{c.forget_bias:g} - {forget_bias:g} folded into z_f's block, to be "
                             f"zero; its largest entry is {np.abs(folded).max():.3g}")
        p = prefix.replace("{layer}", str(layer))
        arrays[p + "weight"] = np.ascontiguousarray(kernel.transpose(n + 1, n, *range(n)))
        if bias:
            arrays[p + "bias"] = blocks_from_refconv(folded, names)
    if as_numpy:
        return arrays
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch: PyTorch is not installed; pass as_numpy=True for NumPy "
                          "arrays, or install torch") from None
    return {name: torch.from_numpy(a) for name, a in arrays.items()}


