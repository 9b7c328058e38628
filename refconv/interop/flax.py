"""Flax's ``flax.linen.ConvLSTMCell`` (JAX): weights in and out, and its ``nn.RNN`` run over time.

Flax's step, read from its code (``flax/linen/recurrent.py``; its docstring
is wrong on two points: the blocks are i, g, f, o, not i, f, g, o, and the 1
is added to the forget gate at every step, not to the bias at initialisation)::

    gates = conv(x, ih.kernel) + ih.bias + conv(h, hh.kernel) + hh.bias   # both or no biases
    i, g, f, o = split(gates, 4)                  # g is refconv's z
    f = sigmoid(f + 1)                            # the 1 is not in the parameters
    c = f * c + sigmoid(i) * tanh(g)
    h = sigmoid(o) * tanh(c)                      # carry (c, h), like refconv's state

In refconv's names: one kernel ``concat([ih.kernel, hh.kernel])`` over
``[x, h]``, the bias ``ih.bias + hh.bias``, ``forget_bias=1.0``, no peephole,
no layer norm, channels last. refconv never imports JAX: the parameters come
and go as arrays (``np.asarray`` reads a JAX array).

Padding: Flax gives both convolutions its ``padding``. refconv pads SAME
(TensorFlow's: ``(k - 1) // 2`` zeros before, ``k // 2`` after), which is
Flax's ``"SAME"``. Any other zero padding that keeps the frame's size, ``lo``
zeros before and ``hi`` after with ``lo + hi = k - 1`` (explicit pairs,
``"SAME_LOWER"``, 1-D ``"CAUSAL"``), is SAME for a larger kernel whose extra
taps are zeros (:func:`embed_kernel`), so it maps exactly. ``"CIRCULAR"`` and
``"REFLECT"`` pad with copies of the frame, not zeros, and ``"VALID"`` or
strides shrink ``x``'s convolution but not ``h``'s, so Flax's own cell fails.
"""

import numbers

import numpy as np

from .._cell import CHANNELS_FIRST, CHANNELS_LAST
from ..activations import activation_name
from ..lstm import ConvLSTMCell, LSTMStateTuple
from ..rnn import dynamic_rnn
from ._common import (as_array, blocks_from_refconv, blocks_to_refconv, check_choice,
                      check_plain_lstm, check_shape, check_shape_arg, checked_cell_params,
                      fold_forget_bias, gate_names, lstm_cell)

__all__ = ["from_flax", "to_flax", "flax_rnn", "flax_padding", "embed_kernel"]

# Flax's gate blocks on the kernels' output-channel axis (its g is refconv's z).
FLAX_GATE_ORDER = "igfo"
# The constant Flax adds to the forget gate at every step: refconv's forget_bias.
FLAX_FORGET_BIAS = 1.0
# Flax pads with copies of the frame for these, which refconv (zero padding) cannot express.
_NOT_ZERO_PADDING = ("CIRCULAR", "REFLECT")


def flax_padding(padding, kernel_size):
    """Flax's ``padding`` attribute as ``[(lo, hi), ...]`` zeros per spatial axis.

    Args:
        padding: as ``flax.linen.ConvLSTMCell`` takes it: ``"SAME"``,
            ``"SAME_LOWER"``, ``"CAUSAL"`` (1-D only, as in Flax), an int ``p``
            (``(p, p)`` on every axis), or N ints or ``(lo, hi)`` pairs.
        kernel_size: N ints.

    Returns:
        N pairs ``(lo, hi)`` with ``lo + hi = k - 1`` (the frame keeps its size).

    Raises:
        ValueError: for ``"CIRCULAR"``, ``"REFLECT"`` (not zero padding),
        ``"VALID"`` and any padding that changes the frame's size (Flax's own
        cell cannot add its two convolutions then).
    """
    n = len(kernel_size)
    if isinstance(padding, str):
        name = padding.upper()
        if name in _NOT_ZERO_PADDING:
            raise ValueError(f"padding: {padding!r} pads with copies of the frame "
                             f"({'wrapped around' if name == 'CIRCULAR' else 'mirrored'}), not "
                             f"zeros; refconv pads with zeros only, so no refconv cell computes "
                             f"this Flax cell. Zero paddings map exactly: 'SAME', 'SAME_LOWER', "
                             f"'CAUSAL' or (lo, hi) pairs with lo + hi = k - 1")
        if name == "SAME":
            return [((k - 1) // 2, k // 2) for k in kernel_size]
        if name == "SAME_LOWER":
            return [(k // 2, (k - 1) // 2) for k in kernel_size]
        if name == "CAUSAL":
            if n != 1:
                raise ValueError(f"padding: 'CAUSAL' is 1-D only in Flax (its Conv refuses it "
                                 f"for {n} spatial axes); got kernel_size {list(kernel_size)}")
            return [(kernel_size[0] - 1, 0)]
        if name == "VALID":
            raise ValueError(f"padding: 'VALID' shrinks x's convolution but not h's, so Flax's "
                             f"ConvLSTMCell cannot add them (it fails for any kernel larger "
                             f"than 1); expected a padding that keeps the frame's size: 'SAME', "
                             f"'SAME_LOWER', 'CAUSAL' or (lo, hi) pairs with lo + hi = k - 1")
        raise ValueError(f"padding: expected 'SAME', 'SAME_LOWER', 'CAUSAL', an int or {n} "
                         f"ints or (lo, hi) pairs; got {padding!r}")

    def whole(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if whole(padding):
        pairs = [(int(padding), int(padding))] * n
    elif isinstance(padding, (list, tuple)) and len(padding) == n and all(
            whole(p) or (isinstance(p, (list, tuple)) and len(p) == 2 and all(map(whole, p)))
            for p in padding):
        pairs = [(int(p), int(p)) if whole(p) else (int(p[0]), int(p[1])) for p in padding]
    else:
        raise ValueError(f"padding: expected 'SAME', 'SAME_LOWER', 'CAUSAL', an int or {n} "
                         f"ints or (lo, hi) pairs (one per spatial axis of kernel_size "
                         f"{list(kernel_size)}); got {padding!r}")
    for axis, ((lo, hi), k) in enumerate(zip(pairs, kernel_size)):
        if lo + hi != k - 1:
            raise ValueError(f"padding: expected lo + hi = k - 1 = {k - 1} on axis {axis} (so "
                             f"that x's and h's convolutions keep the frame's size, as Flax's "
                             f"cell needs), got (lo, hi) = ({lo}, {hi}) in {padding!r}")
    return pairs


def embed_kernel(kernel, pads):
    """``kernel [*k, C, 4F]`` padded by ``pads`` -> a zero-embedded kernel that SAME pads alike.

    A convolution padded ``lo`` zeros before and ``hi = k - 1 - lo`` after
    reads, for output position ``p``, the inputs ``p - lo + j`` for the taps
    ``j = 0 .. k - 1``. SAME on a kernel of size ``K`` pads ``(K - 1) // 2``
    before; putting ``a = (K - 1) // 2 - lo`` zero taps before the kernel and
    ``K - k - a`` after keeps every tap on the same input, so the outputs are
    the same numbers (each extra term is an exact zero). ``K`` is the smallest
    size for which both counts are >= 0.

    Returns:
        ``(embedded, offsets)``: the kernel ``[*K, C, 4F]`` and, per axis, the
        zero taps before and after: ``[(a, b), ...]``.
    """
    offsets = []
    for k, (lo, _) in zip(kernel.shape[:-2], pads):
        grow = 0
        while (grow + k - 1) // 2 - lo < 0 or grow - ((grow + k - 1) // 2 - lo) < 0:
            grow += 1
        before = (grow + k - 1) // 2 - lo
        offsets.append((before, grow - before))
    return np.pad(kernel, offsets + [(0, 0), (0, 0)]), offsets


def _mapping(value, argument):
    if not hasattr(value, "keys") or not hasattr(value, "__getitem__"):
        raise TypeError(f"{argument}: expected a mapping (Flax's parameter dict), "
                        f"got {type(value).__name__}")
    return value


def _cell_params(params):
    """The ``{"ih": ..., "hh": ...}`` level of Flax's tree, and the path to it for messages.

    Accepts what ``module.init`` returns (``{"params": {...}}``), its
    ``["params"]``, and ``nn.RNN``'s (``{"params": {"cell": {...}}}``).
    """
    path = "params"
    tree = _mapping(params, path)
    for wrapper in ("params", "cell"):
        if set(tree.keys()) == {wrapper}:
            path += f"[{wrapper!r}]"
            tree = _mapping(tree[wrapper], path)
    keys = set(tree.keys())
    if keys != {"ih", "hh"}:
        raise ValueError(f"{path}: expected the keys 'ih' and 'hh' (a flax.linen.ConvLSTMCell's "
                         f"input and hidden convolutions; or {{'params': ...}} around them), "
                         f"got {sorted(map(str, keys))}")
    return tree, path


def from_flax(params, shape, *, padding="SAME", strides=None, features=None, kernel_size=None,
              use_bias=None, dtype=None, param_dtype=None, data_format=CHANNELS_LAST):
    """A :class:`ConvLSTMCell` that computes what a ``flax.linen.ConvLSTMCell`` computes.

    The keyword arguments after ``shape`` are the Flax cell's attributes (so
    ``from_flax(variables, shape, **config)`` reads :func:`to_flax`'s output);
    only ``padding`` and ``strides`` change the numbers, ``features``,
    ``kernel_size`` and ``use_bias``, when given, are checked against the
    arrays, and ``dtype``/``param_dtype`` (what Flax computes and stores in)
    do not change the mapping: compare a float32 Flax cell at float32's tolerance.

    Args:
        params: what ``module.init(...)`` returns (``{"params": {"ih": {"kernel",
            "bias"}, "hh": {"kernel", "bias"}}}``), its ``["params"]``, or an
            ``nn.RNN``'s (``{"params": {"cell": ...}}``); arrays of any float
            dtype (JAX arrays included), made float64. ``ih.kernel [*k, C_in, 4F]``,
            ``hh.kernel [*k, F, 4F]``, biases ``[4F]`` in both or neither.
        shape: the frames' spatial size, N ints (the kernels have N + 2 axes).
        padding: the Flax cell's ``padding`` (:func:`flax_padding`).
        strides: the Flax cell's ``strides``: None or all 1 (others make Flax's
            own cell fail).
        data_format: of the refconv cell; Flax's frames are channels last.

    Returns:
        A ConvLSTMCell with ``forget_bias=1.0``, ``normalize=False``,
        ``peephole=False``, ``params = {"kernel": [*K, C_in + F, 4F], "bias":
        [4F]}`` (blocks z, z_i, z_f, z_o), where ``K = k`` for SAME and larger,
        with zero taps, for other paddings (:func:`embed_kernel`). Flax's carry
        ``(c, h)`` is refconv's ``LSTMStateTuple(c, h)`` as it is.
    """
    tree, path = _cell_params(params)
    arrays = {}
    for conv in ("ih", "hh"):
        entry = _mapping(tree[conv], f"{path}[{conv!r}]")
        keys = set(entry.keys())
        if keys not in ({"kernel"}, {"kernel", "bias"}):
            raise ValueError(f"{path}[{conv!r}]: expected the keys 'kernel' and 'bias' (or only "
                             f"'kernel' with use_bias=False), got {sorted(map(str, keys))}")
        for key in sorted(keys):
            arrays[conv, key] = as_array(entry[key], f"{path}[{conv!r}][{key!r}]")
    has_bias = ("ih", "bias") in arrays
    if has_bias != (("hh", "bias") in arrays):
        raise ValueError(f"{path}: expected a bias in both 'ih' and 'hh' or in neither (Flax's "
                         f"use_bias sets both), got one in {'ih' if has_bias else 'hh'} only")
    if use_bias is not None and bool(use_bias) != has_bias:
        raise ValueError(f"use_bias: expected {has_bias} (the parameters "
                         f"{'have' if has_bias else 'have no'} biases), got {use_bias!r}")

    w_x, w_h = arrays["ih", "kernel"], arrays["hh", "kernel"]
    where_x, where_h = f"{path}['ih']['kernel']", f"{path}['hh']['kernel']"
    if w_h.ndim < 3 or w_h.shape[-1] != 4 * w_h.shape[-2] or w_h.shape[-2] < 1:
        raise ValueError(f"{where_h}: expected shape [*kernel_size, F, 4F] with F >= 1, "
                         f"got {list(w_h.shape)}")
    f = w_h.shape[-2]
    k = list(w_h.shape[:-2])
    if w_x.ndim != w_h.ndim or list(w_x.shape[:-2]) != k or w_x.shape[-1] != 4 * f \
            or w_x.shape[-2] < 1:
        raise ValueError(f"{where_x}: expected shape [{', '.join(map(str, k))}, C_in, {4 * f}] "
                         f"with C_in >= 1 (like {where_h} {list(w_h.shape)}), "
                         f"got {list(w_x.shape)}")
    if features is not None and features != f:
        raise ValueError(f"features: expected {f} (the kernels' F), got {features!r}")
    if kernel_size is not None:
        given = [kernel_size] * len(k) if isinstance(kernel_size, numbers.Integral) \
            else list(kernel_size) if hasattr(kernel_size, "__len__") else kernel_size
        if given != k:
            raise ValueError(f"kernel_size: expected {k} (the kernels' spatial axes), "
                             f"got {kernel_size!r}")
    shape = check_shape_arg(shape, len(k))
    if strides is not None:
        given = [strides] * len(k) if isinstance(strides, numbers.Integral) else strides
        if not hasattr(given, "__len__") or list(given) != [1] * len(k):
            raise ValueError(f"strides: expected None or 1 on every axis (with strides, x's "
                             f"convolution shrinks the frame and h's does not, so Flax's "
                             f"ConvLSTMCell cannot add them), got {strides!r}")
    check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "data_format")
    del dtype, param_dtype  # how Flax computes and stores, not what: no part of the mapping
    c_in = w_x.shape[-2]

    if has_bias:
        check_shape(arrays["ih", "bias"], (4 * f,), f"{path}['ih']['bias']")
        check_shape(arrays["hh", "bias"], (4 * f,), f"{path}['hh']['bias']")
    bias = arrays["ih", "bias"] + arrays["hh", "bias"] if has_bias else np.zeros(4 * f)
    kernel, offsets = embed_kernel(np.concatenate([w_x, w_h], axis=-2),
                                   flax_padding(padding, k))
    names = gate_names(FLAX_GATE_ORDER)
    params = {"kernel": blocks_to_refconv(kernel, names), "bias": blocks_to_refconv(bias, names)}
    return lstm_cell(shape, f, list(kernel.shape[:-2]), params, c_in,
                     forget_bias=FLAX_FORGET_BIAS, activation="tanh", normalize=False,
                     peephole=False, recurrent_activation="sigmoid", data_format=data_format)


def to_flax(cell, *, use_bias=True):
    """``(config, variables)`` for a ``flax.linen.ConvLSTMCell`` that computes what ``cell`` does.

    Use them as::

        module = flax.linen.ConvLSTMCell(**config)
        (c, h), h = module.apply(variables, (c, h), x)   # x [B, *shape, C_in], channels last

    The cell's ``forget_bias`` minus Flax's fixed 1 goes into the forget gate's
    bias, all of the bias into ``ih.bias`` (``hh.bias`` is zeros: Flax adds
    them). ``from_flax(variables, cell.shape, **config)`` gives back ``cell``'s
    numbers with ``forget_bias=1.0``.

    Args:
        cell: a built ConvLSTMCell with ``normalize=False``, ``peephole=False``,
            the seed's input convolution (SAME, stride 1, dilation 1), tanh and
            sigmoid (Flax's are fixed).
        use_bias: False for a Flax cell without biases; then the cell's bias,
            with its forget bias folded in, must be exactly zero.

    Returns:
        ``(config, variables)``: ``config`` holds ``features`` (F), ``kernel_size``
        (k), ``padding`` (``"SAME"``) and ``use_bias``; ``variables["params"]`` holds
        ``ih`` (``kernel`` ``[*k, C_in, 4F]``, ``bias`` ``[4F]``) and ``hh``
        (``kernel`` ``[*k, F, 4F]``, ``bias`` ``[4F]``), float64 NumPy arrays with the
        gate blocks in Flax's order i, g, f, o.
    """
    check_plain_lstm(cell, "cell", "Flax")
    squashing = (activation_name(cell.activation), activation_name(cell.recurrent_activation))
    if squashing != ("tanh", "sigmoid"):
        raise ValueError(f"cell.activation, cell.recurrent_activation: expected ('tanh', "
                         f"'sigmoid') (Flax's ConvLSTMCell has no others), got "
                         f"({squashing[0] or cell.activation!r}, "
                         f"{squashing[1] or cell.recurrent_activation!r})")
    if not isinstance(use_bias, (bool, np.bool_)):
        raise TypeError(f"use_bias: expected True or False, got {use_bias!r}")
    params = checked_cell_params(cell)
    f, c_in = cell.filters, cell.in_channels
    bias = fold_forget_bias(params["bias"], cell, FLAX_FORGET_BIAS)
    if not use_bias and np.any(bias):
        raise ValueError(f"use_bias: False needs the cell's bias, with forget_bias - 1 = "
                         f"{cell.forget_bias - FLAX_FORGET_BIAS:g} folded into z_f's block, to "
                         f"be zero; its largest entry is {np.abs(bias).max():.3g}")
    names = gate_names(FLAX_GATE_ORDER)
    kernel = blocks_from_refconv(params["kernel"], names)
    ih = {"kernel": np.ascontiguousarray(kernel[..., :c_in, :])}
    hh = {"kernel": np.ascontiguousarray(kernel[..., c_in:, :])}
    if use_bias:
        ih["bias"] = blocks_from_refconv(bias, names)
        hh["bias"] = np.zeros(4 * f)
    config = {"features": f, "kernel_size": tuple(cell.kernel), "padding": "SAME",
              "use_bias": bool(use_bias)}
    return config, {"params": {"ih": ih, "hh": hh}}


def flip_sequences(x, lengths, time_axis):
    """Flax's ``flip_sequences``: row ``b``'s first ``lengths[b]`` frames reversed, then the rest
    reversed after them (``tf.reverse_sequence`` would leave the rest in place)."""
    steps = x.shape[time_axis]
    x_tb = np.moveaxis(x, time_axis, 0)
    index = (np.arange(steps - 1, -1, -1)[:, None] + lengths[None, :]) % steps  # [T, B]
    return np.moveaxis(x_tb[index, np.arange(x.shape[1 - time_axis])[None, :]], 0, time_axis)


def flax_rnn(cell, inputs, *, seq_lengths=None, initial_carry=None, reverse=False,
             keep_order=False, time_major=False):
    """What ``flax.linen.RNN(flax_cell)(inputs, ...)`` returns, computed by refconv's ``cell``.

    Flax's ``nn.RNN`` treats ``seq_lengths`` unlike TensorFlow (and refconv's
    :func:`~refconv.dynamic_rnn`), so comparing a ragged batch needs care:

    * it runs every row for all T steps: past a row's length the outputs are
      the cell run on the padding frames, not zeros;
    * the carry it returns (with ``return_carry=True``) is the one after step
      ``length - 1``, except for a row of length 0, whose index ``-1`` picks
      the carry after **all T** steps (not the initial carry);
    * ``reverse=True`` reverses each row within its length and then the
      padding after it (:func:`flip_sequences`); ``keep_order=True`` flips the
      outputs back the same way.

    Only the entries ``t < length`` (and the carry of rows of length >= 1)
    mean anything; this function reproduces the rest too, so that a whole
    comparison passes or fails on refconv's numbers, with nothing masked.

    Args:
        cell: a built ConvLSTMCell (e.g. :func:`from_flax`'s).
        inputs: ``[B, T, *frame]`` (``[T, B, *frame]`` when ``time_major``).
        seq_lengths: None or B ints in ``[0, T]``.
        initial_carry: Flax's ``(c, h)``; zeros (Flax's ``carry_init``) when None.
        reverse, keep_order, time_major: as ``nn.RNN``'s.

    Returns:
        ``(carry, outputs)`` as ``nn.RNN(..., return_carry=True)``: ``carry`` an
        ``LSTMStateTuple(c, h)``, outputs shaped like refconv's.
    """
    if not isinstance(cell, ConvLSTMCell):
        raise TypeError(f"cell: expected a ConvLSTMCell (nn.RNN over a Flax ConvLSTMCell), "
                        f"got {type(cell).__name__}")
    inputs = np.asarray(inputs)
    if inputs.ndim < 3:
        raise ValueError(f"inputs: expected shape [B, T, *frame] (or [T, B, *frame] when "
                         f"time_major), got {list(inputs.shape)}")
    for name, value in (("reverse", reverse), ("keep_order", keep_order),
                        ("time_major", time_major)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {value!r}")
    time_axis = 0 if time_major else 1
    batch, steps = inputs.shape[1 - time_axis], inputs.shape[time_axis]
    lengths = None
    if seq_lengths is not None:
        lengths = np.asarray(seq_lengths)
        if lengths.dtype.kind not in "iu" or lengths.shape != (batch,) \
                or (lengths.size and (lengths.min() < 0 or lengths.max() > steps)):
            raise ValueError(f"seq_lengths: expected {batch} ints in [0, {steps}] (one per batch "
                             f"row), got {seq_lengths!r}")
        lengths = lengths.astype(np.int64)
    if initial_carry is not None and (not isinstance(initial_carry, (tuple, list))
                                      or len(initial_carry) != 2):
        raise TypeError(f"initial_carry: expected Flax's carry (c, h), got "
                        f"{type(initial_carry).__name__}")
    state = None if initial_carry is None else LSTMStateTuple(
        *(np.asarray(a) for a in initial_carry))
    if reverse:
        inputs = (np.flip(inputs, time_axis) if lengths is None
                  else flip_sequences(inputs, lengths, time_axis))
    outputs, carry = dynamic_rnn(cell, inputs, initial_state=state, time_major=time_major)
    if lengths is not None and np.any((lengths > 0) & (lengths < steps)):
        # Flax's carry of a row of length L >= 1 is the carry after step L - 1: TensorFlow's.
        _, stopped = dynamic_rnn(cell, inputs, np.where(lengths > 0, lengths, steps),
                                 initial_state=state, time_major=time_major)
        carry = stopped
    if reverse and keep_order:
        outputs = (np.flip(outputs, time_axis) if lengths is None
                   else flip_sequences(outputs, lengths, time_axis))
    return carry, outputs
