"""The user's own ONNX file and the PyTorch weights it was exported from, held against refconv.

``refconv conformance --onnx MODEL.onnx --torch-state STATE.pt`` answers a
deployment engineer's question: does the file I ship compute what my trained
weights mean? The weights are a PyTorch ConvLSTM's ``state_dict`` of one
convolution over ``cat([x, h])`` per layer (ndrplz/ConvLSTM_pytorch's keys,
``cell_list.N.conv.weight``/``bias``) saved with ``torch.save`` and read with
``weights_only=True`` (nothing else is unpickled), or a refconv ``.npz`` of
parameters (:func:`refconv.conformance.own.npz_cell`).

What refconv needs beyond the weights is read from the file:

* the input signature ``[B, T, C, H, W]`` (or ``[B, T, H, W, C]``: the axis of
  the weights' ``C_in`` says which), each axis fixed or dynamic;
* the gate order, by what each block of a ``Conv -> Split(4)`` does (the block
  reaching ``tanh`` is ``g``; the sigmoid multiplied by it is ``i``, the one
  multiplied by ``tanh(c)`` is ``o``, the last ``f``), and the forget bias, a
  constant ``Add`` between the ``f`` block and its sigmoid;
* the length the graph computes: an exporter that unrolls the loop (both
  PyTorch exporters do) writes one ``Split`` per step, so a "dynamic" T has a
  length after all, which is what the other length's row shows.

``--gate-order``/``--forget-bias`` give what a graph does not show.
"""

import os

import numpy as np
import onnx
import onnxruntime as ort

from ..interop._common import gate_names
from .onnx_graph import _Graph, gate_path, instrument, locate, not_exposed
from .onnx_torch import _row

__all__ = ["read_signature", "read_layout", "output_keys", "conform_file"]

DEFAULT_STEPS = 8  # the length a file with a dynamic, not unrolled, T is run at first


def read_signature(model):
    """``[(name or None), ...]`` of the one graph input: an int for a fixed axis, None for a
    dynamic one; with the input's name."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"--onnx: expected one input (the sequence), got "
                         f"{[i.name for i in inputs]}")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 5:
        raise ValueError(f"--onnx: expected an input of 5 axes [B, T, C, H, W] or "
                         f"[B, T, H, W, C], got {len(dims)} ({_dims(dims)})")
    return inputs[0].name, dims


def _dims(dims):
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def read_layout(model):
    """``(gate_order, forget_bias)`` as the graph computes them; each None where the graph
    does not show it (a block whose path to its activation is not plain, layers or steps that
    disagree)."""
    graph = _Graph(model)
    orders, biases = set(), set()
    for _, _, split in graph.steps():
        paths = [gate_path(graph, block) for block in split.output]
        if any(path is None for path in paths):
            continue
        roles = _roles(graph, [path[-1].output[0] for path in paths],
                       [path[-1].op_type for path in paths])
        if roles is None:
            continue
        orders.add("".join(roles))
        biases.add(_constant_shift(graph, paths[roles.index("f")]))
    order = orders.pop() if len(orders) == 1 else None
    bias = biases.pop() if len(biases) == 1 else None
    return order, bias


def _roles(graph, outs, ops):
    """Each block's letter (i, f, o, g) by what its activation's output is multiplied with."""
    tanh = [k for k, op in enumerate(ops) if op == "Tanh"]
    if len(tanh) != 1:
        return None
    g = tanh[0]
    roles = ["g" if k == g else None for k in range(4)]
    for k in range(4):
        if k == g:
            continue
        partners = [name for m in graph.readers.get(outs[k], []) if m.op_type == "Mul"
                    for name in m.input if name != outs[k]]
        if outs[g] in partners:
            roles[k] = "i"
        elif any(_is_tanh_of_add(graph, name) for name in partners):
            roles[k] = "o"
        else:
            roles[k] = "f"
    return roles if sorted(roles) == ["f", "g", "i", "o"] else None


def _is_tanh_of_add(graph, name):
    node = graph.producer.get(name)
    if node is None or node.op_type != "Tanh":
        return False
    source = graph.producer.get(node.input[0])
    return source is not None and source.op_type == "Add"


def _constant_shift(graph, path):
    """The constant a gate's path adds before its activation (0.0 for none), or None where the
    path does more than add a scalar (a scale, a clamp)."""
    shift = 0.0
    for node in path[:-1]:
        if node.op_type in ("Cast", "Identity"):
            continue
        if node.op_type not in ("Add", "Sub"):
            return None
        (other,) = [name for name in node.input if graph.constant(name) is not None] or [None]
        value = None if other is None else np.asarray(graph.constant(other), np.float64)
        if value is None or value.size != 1:
            return None
        sign = -1.0 if node.op_type == "Sub" and node.input[1] == other else 1.0
        if node.op_type == "Sub" and node.input[0] == other:
            return None  # const - f: not a shift of f
        shift += sign * float(value.reshape(()))
    return shift


def output_keys(model):
    """The Candidate key of each graph output: the first of 5 axes is ``outputs``, then those
    of 4 axes ``h`` and ``c`` in order (what an ndrplz-style forward returns)."""
    keys, frames = [], iter(("h", "c"))
    for output in model.graph.output:
        rank = len(output.type.tensor_type.shape.dim)
        if rank == 5 and "outputs" not in keys:
            keys.append("outputs")
        elif rank == 4:
            keys.append(next(frames, None))
        else:
            keys.append(None)
    if "outputs" not in keys:
        raise ValueError(f"--onnx: expected an output of 5 axes (the sequence of outputs), got "
                         f"{[o.name for o in model.graph.output]} of "
                         f"{[len(o.type.tensor_type.shape.dim) for o in model.graph.output]} "
                         f"axes")
    return tuple(keys)


def _load_onnx(path):
    try:
        return onnx.load(path)
    except Exception as error:  # noqa: BLE001  a damaged file is the user's to hear about
        raise ValueError(f"--onnx: {path}: not an ONNX model ({type(error).__name__}: "
                         f"{' '.join(str(error).split())[:200]})") from None


def conform_file(path, weights, *, gate_order=None, forget_bias=None, rtol, atol, seed=0,
                 timesteps=None, t_other=None, batch=2):
    """Rows of the ONNX file at ``path`` run by ONNX Runtime, against the weights ``weights``.

    Args:
        path: the ``.onnx`` file.
        weights: a PyTorch ``state_dict`` (``.pt``, ``.pth``) or a refconv ``.npz``.
        gate_order, forget_bias: None: read from the graph (:func:`read_layout`).
        timesteps: the length to run first where the file's T is dynamic and not
            unrolled (default 8); t_other: another length (default that + 3).
        batch: where the file's batch is dynamic.

    Returns:
        ``(rows, notes)``: Rows (float32 at the graph's own length and at another)
        and lines for the report's header (what was read from the file).
    """
    from .own import Weights  # the weights' readers are shared with the TFLite path

    weights = Weights.read(weights)
    model = _load_onnx(path)
    name, dims = read_signature(model)
    order, bias = read_layout(model)
    notes = []
    if gate_order is None and weights.kind == "torch":
        if order is None:
            raise ValueError(f"--onnx: cannot read the gate order from {os.path.basename(path)} "
                             f"(no Conv -> Split(4) whose blocks reach sigmoid, sigmoid, sigmoid "
                             f"and tanh); pass --gate-order (ndrplz: ifog)")
        gate_order = order
        notes.append(f"gate order read from the graph: {order}")
    if forget_bias is None:
        if bias is None:
            raise ValueError(f"--onnx: cannot read the forget bias from "
                             f"{os.path.basename(path)} (the f block's path to its sigmoid is "
                             f"not a constant Add); pass --forget-bias (ndrplz: 0)")
        forget_bias = bias
        notes.append(f"forget bias read from the graph: {bias:g}")
    # the split's blocks are named in the weights' order (the graph's, when read from it)
    located = locate(model, gate_names(gate_order or "ifog"))
    unrolled = len({step for _, step in located})
    layout = weights.layout(dims, "--onnx", channels_axes=(2, 4))
    size = dims[3:5] if layout == "channels_first" else dims[2:4]
    cell = weights.cell(size, layout, gate_order=gate_order, forget_bias=forget_bias)
    if dims[1] is not None:
        t_export, how = dims[1], "fixed"
    elif unrolled:
        t_export, how = unrolled, f"declared dynamic, unrolled to {unrolled} steps"
    else:
        t_export, how = timesteps or DEFAULT_STEPS, "dynamic"
    t_other = t_export + 3 if t_other is None else t_other
    batch = dims[0] if dims[0] is not None else batch
    c_in = weights.c_in
    notes.append(f"input {name!r} {_dims(dims)} ({layout}): batch "
                 f"{'fixed' if dims[0] is not None else 'dynamic'}, T {how}")
    missing = not_exposed(located)
    if missing:
        notes.append(f"gate not exposed (no activation reached through elementwise ops): "
                     f"{', '.join(missing)}")
    keys = output_keys(model)
    rng = np.random.default_rng(seed)
    frame = (c_in, *size) if layout == "channels_first" else (*size, c_in)
    x = rng.standard_normal((batch, max(t_export, t_other), *frame)).astype(np.float32)
    probe = instrument(model, located)
    runtime = f"onnxruntime {ort.__version__}"
    exporter = os.path.basename(path)
    rows = []
    for steps in (t_export, t_other):
        rows.append(_row(model, probe, located, cell, x[:, :steps], opt="all", keys=keys,
                         rtol=rtol, atol=atol, runtime=runtime, exporter=exporter,
                         options="opt=all", dtype="float32",
                         t_export=None if how == "dynamic" else t_export))
    return rows, notes

