"""PyTorch ConvLSTM -> ONNX -> ONNX Runtime, held against refconv (needs the ``deploy`` extra).

An optional adapter: it imports torch, onnx and onnxruntime, so refconv loads
it only when asked (``refconv conformance``, or an import of this module).

The model is written the way ndrplz/ConvLSTM_pytorch writes its ConvLSTM (one
``Conv2d`` over ``cat([x, h])``, blocks i, f, o, g, ``k // 2`` zeros on both
sides, layers in ``cell_list``), so :func:`refconv.interop.from_torch` imports
its weights with its defaults. It is exported by the TorchScript exporter
(``dynamo=False``, the time axis declared dynamic) and by the dynamo exporter
(``Dim("T")``), and run by ONNX Runtime at each graph optimisation level.

What ONNX Runtime returns is the model's outputs and final state; the gates
are read by instrumenting a copy of the graph: both exporters unroll the time
loop into one ``Conv -> Split(4)`` per layer and step, whose four outputs go
(through elementwise ops, a forget bias ``Add`` say) to the gate activations,
and :func:`locate` (:mod:`refconv.conformance.onnx_graph`) names those
activations' outputs (and each step's ``c = f * c + i * g`` and
``h = o * tanh(c)``) so that :func:`instrument` can make them graph outputs.
ONNX Runtime cannot
fuse away a tensor that is a graph output, so the gates come from the
instrumented copy and the outputs and state from the graph as exported.

Measured here (torch 2.13.0, onnx 1.23, onnxruntime 1.32, an AMD EPYC with
AVX2): float32 runs agree with refconv's float64 to 2e-7 to 1.2e-6 of the
tensors' scale at every optimisation level; ONNX Runtime has no float64
``Conv``, so float32 is what is checked.
"""

import contextlib
import io
import logging
import os
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from ..interop import from_torch
from ..vocabulary import LSTM_QUANTITIES
from .check import Candidate, check
# the graph's gates are found by onnx_graph; re-exported here, where the notebooks look
from .onnx_graph import NDRPLZ_BLOCKS, _source, gate_path, instrument, locate, not_exposed
from .report import ATOL, ERROR, REFUSED, RTOL, Row, first_line

__all__ = ["NdrplzConvLSTM", "make_model", "export", "locate", "not_exposed", "gate_path",
           "instrument", "run",
           "float16_weights", "int8_dynamic", "plant_activation", "swap_blocks",
           "OPT_LEVELS", "EXPORTERS", "conform"]

# ONNX Runtime's graph optimisation levels, by the name the table uses.
OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
              "extended": "ORT_ENABLE_EXTENDED", "layout": "ORT_ENABLE_LAYOUT",
              "all": "ORT_ENABLE_ALL"}
EXPORTERS = ("torchscript", "dynamo")
OPSET = 17


# --- the model: ndrplz/ConvLSTM_pytorch's ----------------------------------------------

class NdrplzCell(torch.nn.Module):
    """One layer: ``conv(cat([x, h]))`` split into i, f, o, g; padding ``k // 2`` on both sides."""

    def __init__(self, input_dim, hidden_dim, kernel_size, forget_bias=0.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.forget_bias = forget_bias  # ndrplz has none; some ports add sigmoid(f + 1)
        self.conv = torch.nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size,
                                    padding=(kernel_size[0] // 2, kernel_size[1] // 2))

    def forward(self, x, state):
        h, c = state
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden_dim, dim=1)
        if self.forget_bias:
            f = f + self.forget_bias
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class NdrplzConvLSTM(torch.nn.Module):
    """Layers of :class:`NdrplzCell` over ``x [B, T, C, H, W]`` (batch first), from zeros.

    Returns what a deployment exports: the top layer's outputs ``[B, T, F, H, W]``
    and its final ``h`` and ``c`` ``[B, F, H, W]``.
    """

    def __init__(self, input_dim, hidden_dims, kernel_sizes, forget_bias=0.0):
        super().__init__()
        inputs = [input_dim, *hidden_dims[:-1]]
        self.cell_list = torch.nn.ModuleList(
            NdrplzCell(c, f, k, forget_bias) for c, f, k in zip(inputs, hidden_dims, kernel_sizes))

    def forward(self, x):
        """``(outputs, h, c)`` for ``x`` ``[B, T, C, H, W]``, as the class says."""
        batch, steps, _, height, width = x.shape
        for cell in self.cell_list:
            h = c = x.new_zeros(batch, cell.hidden_dim, height, width)
            sequence = []
            for t in range(steps):
                h, c = cell(x[:, t], (h, c))
                sequence.append(h)
            x = torch.stack(sequence, dim=1)
        return x, h, c


def make_model(channels=4, filters=(8, 8), kernel=3, seed=0, scale=0.5, forget_bias=0.0):
    """An :class:`NdrplzConvLSTM` in float32, every parameter (biases too) uniform in
    ``[-scale, scale]``; ``forget_bias``: a constant its forward adds to ``f`` (not ndrplz's)."""
    model = NdrplzConvLSTM(channels, list(filters), [(kernel, kernel)] * len(filters),
                           forget_bias).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * scale)
    return model


def reference_cell(model, size, forget_bias=0.0):
    """refconv's cells with the model's weights, through :func:`refconv.interop.from_torch`."""
    state = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    return from_torch(state, list(size), forget_bias=forget_bias)


# --- exporting ---------------------------------------------------------------------------

def export(model, x, exporter="torchscript"):
    """An ``onnx.ModelProto`` of ``model`` traced on ``x [B, T, C, H, W]`` (float32).

    ``"torchscript"`` (``dynamo=False``) declares the batch and time axes dynamic
    (``dynamic_axes``); ``"dynamo"`` declares ``Dim("T")``. Both unroll the loop
    over ``T``: what each does with another length is what the report shows.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter: expected one of {list(EXPORTERS)}, got {exporter!r}")
    x = torch.from_numpy(np.ascontiguousarray(x))
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        path = os.path.join(folder, "model.onnx")
        if exporter == "torchscript":
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=OPSET,
                              input_names=["x"], output_names=["outputs", "h", "c"],
                              dynamic_axes={"x": {0: "B", 1: "T"}, "outputs": {0: "B", 1: "T"},
                                            "h": {0: "B"}, "c": {0: "B"}})
        else:
            program = torch.onnx.export(model, (x,), dynamo=True, verbose=False,
                                        dynamic_shapes={"x": {1: torch.export.Dim("T")}})
            program.save(path)
        return onnx.load(path)


@contextlib.contextmanager
def _quiet(name):
    """Only errors from the logger ``name`` (the dynamo exporter's notes on torchvision ops)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- deployment variants and planted bugs ------------------------------------------------

def float16_weights(model):
    """``model`` with every float initializer stored as float16 and cast back to float32 at run
    time: what "float16 weights" conversions do."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or len(init.dims) == 0:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16),
                                       init.name + "_float16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    for i, node in enumerate(casts):
        graph.node.insert(i, node)
    return copy


def int8_dynamic(model):
    """``model`` with its convolutions quantized by ONNX Runtime's dynamic quantization (uint8
    weights and activations, ``ConvInteger``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source, target = os.path.join(folder, "in.onnx"), os.path.join(folder, "out.onnx")
        onnx.save(model, source)
        with _quiet(None):  # the root logger: its advice to pre-process, on every call
            quantize_dynamic(source, target, op_types_to_quantize=["Conv"],
                             weight_type=QuantType.QUInt8)
        return onnx.load(target)


def plant_activation(model, layer, step, gate, op="HardSigmoid"):
    """A copy of ``model`` whose ``gate`` at ``layer`` and ``step`` runs ``op`` instead: a planted
    bug."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    located = locate(copy)
    if (layer, step) not in located or gate not in located[(layer, step)]:
        raise ValueError(f"layer, step, gate: expected a located gate (layers and steps "
                         f"{sorted(located)}), got {(layer, step, gate)}")
    target = located[(layer, step)][gate]
    node = next(n for n in copy.graph.node if target in n.output)
    node.op_type = op
    return copy


def swap_blocks(model, layer, first="z_o", second="z"):
    """A copy of ``model`` where every step of ``layer`` reads blocks ``first`` and ``second``
    swapped: a model whose gate order disagrees with its weights' (a planted bug)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    producer = {out: node for node in copy.graph.node for out in node.output}
    a, b = NDRPLZ_BLOCKS.index(first), NDRPLZ_BLOCKS.index(second)
    swapped = 0
    weights = []
    for node in copy.graph.node:
        if node.op_type != "Split" or len(node.output) != 4:
            continue
        conv = producer.get(node.input[0])
        if conv is None or conv.op_type != "Conv":
            continue
        weight = _source(conv.input[1], producer)
        if weight not in weights:
            weights.append(weight)
        if weights.index(weight) == layer:
            outputs = list(node.output)
            outputs[a], outputs[b] = outputs[b], outputs[a]
            del node.output[:]
            node.output.extend(outputs)
            swapped += 1
    if not swapped:
        raise ValueError(f"layer: expected a layer of the graph (0 to {len(weights) - 1}), "
                         f"got {layer}")
    return copy


# --- running -----------------------------------------------------------------------------

def session(model, opt="all"):
    """An ONNX Runtime CPU session of ``model`` at graph optimisation level ``opt`` (OPT_LEVELS)."""
    if opt not in OPT_LEVELS:
        raise ValueError(f"opt: expected one of {list(OPT_LEVELS)}, got {opt!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt])
    options.log_severity_level = 4  # a failing run raises; its log line would repeat it
    options.intra_op_num_threads = 1  # the same kernels' reductions, whatever the machine's load
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def run(model, x, opt="all", probe=None, located=None, keys=("outputs", "h", "c")):
    """Run ``model`` on ``x`` in ONNX Runtime: a :class:`Candidate`.

    The outputs, ``h`` and ``c`` come from ``model`` itself (``keys``: the
    Candidate's name of each graph output in order, None for one to leave out);
    each step's gates (``located``: :func:`locate` of the float32 graph) from
    ``probe``, the instrumented copy (:func:`instrument`) after the same
    conversion as ``model``. Without ``probe``, the graph is located and
    instrumented here.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    plain = session(model, opt)
    returned = plain.run(None, {plain.get_inputs()[0].name: x})
    candidate = Candidate({key: value for key, value in zip(keys, returned) if key})
    if probe is None:
        located = locate(model)
        probe = instrument(model, located)
    probing = session(probe, opt)
    names = [o.name for o in probing.get_outputs()]
    values = dict(zip(names, probing.run(None, {probing.get_inputs()[0].name: x})))
    for layer in sorted({layer for layer, _ in located}):
        steps = sorted(step for l, step in located if l == layer)
        for name in LSTM_QUANTITIES:
            if all(name in located[(layer, t)] and located[(layer, t)][name] in values
                   for t in steps):
                candidate[f"layer{layer}/{name}"] = np.stack(
                    [values[located[(layer, t)][name]] for t in steps], axis=1)
    return candidate


# --- the rows of the table -----------------------------------------------------------------

def conform(*, exporters=EXPORTERS, opt_levels=tuple(OPT_LEVELS), channels=4, filters=(8, 8),
            kernel=3, size=(12, 12), batch=2, t_export=8, t_other=None, seed=0, rtol=RTOL,
            atol=ATOL, reduced=True, skipped=None):
    """Export a seeded ndrplz ConvLSTM and hold ONNX Runtime against refconv: a list of Rows.

    For each exporter: float32 at every optimisation level at the export's own
    length ``t_export``; float32 at another length ``t_other`` (default
    ``t_export + 3``); with ``reduced``, float16 weights and int8 dynamic
    quantization at ``t_export``. An exporter that cannot run here (the dynamo
    exporter without onnxscript) is left out and named in ``skipped`` (a list).
    """
    t_other = t_export + 3 if t_other is None else t_other
    if t_other == t_export:
        raise ValueError(f"t_other: expected a length other than t_export={t_export}, "
                         f"got {t_other}")
    model = make_model(channels, filters, kernel, seed)
    cell = reference_cell(model, size)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, max(t_export, t_other), channels, *size)).astype(np.float32)
    runtime = f"onnxruntime {ort.__version__}"
    rows = []
    for exporter in exporters:
        try:
            exported = export(model, x[:, :t_export], exporter)
        except ImportError as error:  # the dynamo exporter needs onnxscript
            if skipped is not None:
                skipped.append(f"{exporter} exporter: {error}")
            continue
        except Exception as error:  # noqa: BLE001  an exporter's failure is a finding
            rows.append(Row(runtime, exporter, "-", "float32", t_export, t_export, ERROR, {},
                            note=f"export failed: {first_line(error)}"))
            continue
        label = f"{exporter} opset {OPSET}"
        located = locate(exported)
        probe = instrument(exported, located)
        variants = [("float32", exported, probe, opt, t_export) for opt in opt_levels]
        variants.append(("float32", exported, probe, opt_levels[-1], t_other))
        if reduced:
            variants.append(("float16 weights", float16_weights(exported),
                             float16_weights(probe), opt_levels[-1], t_export))
            variants.append(("int8 dynamic", int8_dynamic(exported), int8_dynamic(probe),
                             opt_levels[-1], t_export))
        for dtype, variant, variant_probe, opt, steps in variants:
            rows.append(_row(variant, variant_probe, located, cell, x[:, :steps], rtol=rtol,
                             atol=atol, runtime=runtime, exporter=label, options=f"opt={opt}",
                             dtype=dtype, t_export=t_export, opt=opt))
    return rows


def _row(model, probe, located, cell, x, *, opt, keys=("outputs", "h", "c"), **fields):
    """Run one variant and check it; a run that raises becomes an ERROR (at the export's
    length) or REFUSED (at another) row."""
    try:
        candidate = run(model, x, opt, probe, located, keys)
    except Exception as error:  # noqa: BLE001  the runtime's refusal is what the row reports
        refused = x.shape[1] != fields["t_export"]
        return Row(fields["runtime"], fields["exporter"], fields["options"], fields["dtype"],
                   fields["t_export"], x.shape[1], REFUSED if refused else ERROR, {},
                   note=("raised an error for a length other than the export's: "
                         if refused else "raised: ") + first_line(error))
    return check(cell, x, candidate, **fields)
