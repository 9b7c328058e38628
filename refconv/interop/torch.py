"""PyTorch ConvLSTMs of one convolution over ``[x, h]`` (ndrplz/ConvLSTM_pytorch by default).

``conv.weight [4F, C_in + F, *k]`` and ``conv.bias [4F]`` per layer, blocks
i, f, o, g (``g`` is refconv's ``z``), channels first. The name of this module
is the framework's; ``import torch`` inside it still reads PyTorch (absolute
imports), and only :func:`to_torch` does so, when called.
"""

import warnings

import numpy as np

from .._cell import CHANNELS_FIRST, CHANNELS_LAST
from ..activations import activation_name, get_activation
from ..lstm import ConvLSTMCell
from ..rnn import MultiRNNCell
from ._common import (PaddingWarning, as_array, blocks_from_refconv, blocks_to_refconv,
                      check_choice, check_shape, check_shape_arg, checked_cell_params,
                      fold_forget_bias, gate_names, lstm_cell)

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
    names = gate_names(gate_order)
    check_choice(input_order, ("xh", "hx"), "input_order")
    check_choice(padding, _TORCH_PADDINGS, "padding")
    check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "data_format")
    prefixes = _torch_prefixes(state_dict, prefix)
    if not prefixes or prefixes[0] + "weight" not in state_dict:
        first = prefix.replace("{layer}", "0") + "weight"
        keys = sorted(state_dict.keys())
        raise ValueError(f"state_dict: expected the key {first!r} (prefix={prefix!r}); "
                         f"got the keys {keys[:12]}{' ...' if len(keys) > 12 else ''}")

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
        cells.append(lstm_cell(shape, f, kernel_size, params, c_in, forget_bias=0.0,
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
    names = gate_names(gate_order)
    check_choice(input_order, ("xh", "hx"), "input_order")
    check_choice(padding, _TORCH_PADDINGS, "padding")
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
        params = checked_cell_params(c, argument)
        n = len(c.shape)
        _warn_even_kernel(c.kernel, padding, f"{argument}.kernel")
        kernel = params["kernel"]
        if input_order == "hx":
            kernel = np.concatenate([kernel[..., c.in_channels:, :],
                                     kernel[..., :c.in_channels, :]], axis=-2)
        kernel = blocks_from_refconv(kernel, names)
        bias = fold_forget_bias(params["bias"], c)
        p = prefix.replace("{layer}", str(layer))
        arrays[p + "weight"] = np.ascontiguousarray(kernel.transpose(n + 1, n, *range(n)))
        arrays[p + "bias"] = blocks_from_refconv(bias, names)
    if as_numpy:
        return arrays
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch: PyTorch is not installed; pass as_numpy=True for NumPy "
                          "arrays, or install torch") from None
    return {name: torch.from_numpy(a) for name, a in arrays.items()}


