"""TensorFlow 1: the seed's own variables, by the names a TF1 checkpoint gives them.

The layout is refconv's (refconv *is* the seed's meaning), so the work here
is names: the scopes of ``dynamic_rnn``, ``bidirectional_dynamic_rnn`` and
``MultiRNNCell``, and TF1's ``LayerNorm``, ``LayerNorm_1``, ... numbering
(:mod:`refconv.vocabulary`).
"""

import re

import numpy as np

from .._cell import CHANNELS_FIRST, CHANNELS_LAST
from ..gru import ConvGRUCell
from ..lstm import ConvLSTMCell
from ..rnn import MultiRNNCell
from ..vocabulary import LSTM_PEEPHOLES, TF1_GRU_NORM_SCOPES, TF1_LSTM_NORM_SCOPES
from ._common import as_array, check_choice, check_shape, check_shape_arg, checked_cell_params

__all__ = ["from_tf1", "to_tf1", "load_tf1_checkpoint"]

# TF1's default names for the seed's cells (the class name in snake case).
_TF1_CELL_NAMES = {ConvLSTMCell: "conv_lstm_cell", ConvGRUCell: "conv_gru_cell"}


def _tf1_suffixes(kind, normalize, peephole):
    """refconv's parameter name -> the TF1 variable's name inside the cell's scope."""
    names = {}
    if kind == "lstm":
        names["kernel"] = "kernel"
        if not normalize:
            names["bias"] = "bias"
        if peephole:
            names.update({w: w for w in LSTM_PEEPHOLES})
        if normalize:  # LayerNorm, LayerNorm_1, ... in the order the seed calls them
            for quantity, norm in TF1_LSTM_NORM_SCOPES.items():
                for p in ("gamma", "beta"):
                    names[f"{quantity}/{p}"] = f"{norm}/{p}"
    else:
        for scope in ("gates", "candidate"):
            names[f"{scope}/kernel"] = f"{scope}/kernel"
            if not normalize:
                names[f"{scope}/bias"] = f"{scope}/bias"
        if normalize:  # r, u in the gates scope, then the candidate's own
            for quantity, norm in TF1_GRU_NORM_SCOPES.items():
                for p in ("gamma", "beta"):
                    names[f"{quantity}/{p}"] = f"{norm}/{p}"
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
    check_choice(data_format, (CHANNELS_LAST, CHANNELS_FIRST), "data_format")
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
    """The spatial shape: given, or read off the peephole weights ``S`` (one frame of the state).

    The three peephole weights of a cell must agree; one that does not is
    named, whichever of them it is (the first one read is not taken on trust).
    """
    inferred = source = None
    for cell_scope, kind in sorted(cells.items()):
        if kind != "lstm" or cell_scope + "/W_ci" not in variables:
            continue
        filters = np.shape(variables[cell_scope + "/kernel"])[-1] // 4
        names = [f"{cell_scope}/{w}" for w in LSTM_PEEPHOLES if f"{cell_scope}/{w}" in variables]
        shapes = {name: list(np.shape(variables[name])) for name in names}
        counts = {}
        for s in shapes.values():
            counts[tuple(s)] = counts.get(tuple(s), 0) + 1
        # The shape of one frame of the state: what most of them have, F channels.
        frame = [s for s in counts if len(s) >= 2
                 and (s[-1] if data_format == CHANNELS_LAST else s[0]) == filters]
        frame = max(frame, key=counts.get) if frame else None
        for name in names:
            if frame is None or tuple(shapes[name]) != frame:
                others = [n for n in names if n != name and tuple(shapes[n]) == frame]
                expected = (f"{list(frame)} like {others}" if frame and others else
                            f"[*shape, {filters}]" if data_format == CHANNELS_LAST else
                            f"[{filters}, *shape]")
                raise ValueError(f"variables[{name!r}]: expected shape {expected} (one frame of "
                                 f"the state, {data_format}, F = {filters} channels as "
                                 f"'{cell_scope}/kernel' says), got {shapes[name]}")
        source = names[0]
        inferred = list(frame[:-1] if data_format == CHANNELS_LAST else frame[1:])
        break
    if shape is None:
        if inferred is None:
            raise ValueError("shape: required, since the cells have no peephole weights and "
                             "no other variable records the frames' spatial size")
        return inferred
    shape = check_shape_arg(shape)
    if inferred is not None and shape != inferred:
        raise ValueError(f"shape: expected {inferred} (the spatial size of {source!r} and the "
                         f"other peephole weights, {data_format}), got {shape}")
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
        params[param] = as_array(variables[name], f"variables[{name!r}]")
        check_shape(params[param], specs[param][0], f"variables[{name!r}]",
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
    params = checked_cell_params(cell, argument)
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
