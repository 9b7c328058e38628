"""Keras ConvLSTM2D -> TFLite -> the LiteRT interpreter, held against refconv (``deploy`` extra).

An optional adapter, loaded only when asked. Keras 3 and tf_keras models of
two stacked ``ConvLSTM2D`` layers (seeded weights, non-zero biases) are
converted by ``tf.lite.TFLiteConverter.from_keras_model`` in a process of its
own (:mod:`refconv.conformance._tflite_convert`: the converter needs Keras 3
on TensorFlow, whatever backend this process has loaded), as float32, float16
weights and dynamic-range int8, and run by ai-edge-litert's ``Interpreter``
with its default XNNPACK delegate and with the built-in kernels only. The
weights go into refconv through :func:`refconv.interop.from_keras` with each
layer's real ``get_config()``.

* looped (``unroll=False``, the time axis ``None``): the converter writes a
  WHILE loop, which runs any length; its gates stay inside the loop's subgraph,
  so only the outputs and the final state are compared;
* unrolled (``unroll=True``, Keras 3 only: tf_keras refuses to unroll a
  convolutional RNN): builtin ops per step, a fixed length, and with
  ``experimental_preserve_all_tensors`` every step's gates can be read. They are
  found by the cell's op names (``Sigmoid`` = i, ``Sigmoid_1`` = f, ``Tanh`` = the
  c block, refconv's z, ``Sigmoid_2`` = o) in each step's name scope; the
  converter folds the first step's ``f * c`` away (c starts at zero), so ``z_f``
  is compared from step 1.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from ai_edge_litert import interpreter as litert

from ..interop import from_keras
from ..rnn import MultiRNNCell
from .check import Candidate, check
from .report import ATOL, ERROR, REFUSED, RTOL, Row, first_line

__all__ = ["MODELS", "DTYPES", "RESOLVERS", "convert", "run", "locate", "conform"]

# name -> (keras version, unroll); unrolled models have a fixed length.
# tf_keras refuses to build "tf_keras unrolled": the report's header says so.
MODELS = {"keras3 looped": (3, False), "keras3 unrolled": (3, True),
          "tf_keras looped": (2, False), "tf_keras unrolled": (2, True)}
DTYPES = ("float32", "float16 weights", "int8 dynamic range")
# The interpreter's kernels: XNNPACK (its default delegate) or TFLite's built-in ones.
RESOLVERS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}
# The Keras cell's op name for each gate (refconv's names): i, f, c (z), o.
KERAS_GATE_OPS = {"Sigmoid": "z_i", "Sigmoid_1": "z_f", "Tanh": "z", "Sigmoid_2": "z_o"}
CONVERT_SECONDS = 900  # a generous bound on one conversion process


def make_weights(channels, filters, kernel, seed, scale=0.5):
    """Each layer's ``[kernel [k, k, C_in, 4F], recurrent_kernel [k, k, F, 4F], bias [4F]]``,
    float32, uniform in ``[-scale, scale]`` (so the forget bias is not Keras's 1)."""
    rng = np.random.default_rng(seed)
    weights, c_in = [], channels
    for f in filters:
        weights.append([((rng.random(shape) * 2 - 1) * scale).astype(np.float32)
                        for shape in ((kernel, kernel, c_in, 4 * f), (kernel, kernel, f, 4 * f),
                                      (4 * f,))])
        c_in = f
    return weights


def convert(conversions, *, channels, filters, kernel, size, batch, t_export, weights,
            folder):
    """Convert each ``(model, dtype)`` of ``conversions`` (MODELS, DTYPES), in a child process.

    Returns ``(configs, results)``: per model Keras built, the layers'
    ``get_config()`` (a model it refuses to build is absent); per
    ``"model|dtype"`` a ``{"path": ...}`` or ``{"error": ...}``.
    """
    spec = {"channels": channels, "filters": list(filters), "kernel": kernel, "size": list(size),
            "batch": batch, "t_export": t_export,
            "models": [{"name": name, "keras": MODELS[name][0], "unroll": MODELS[name][1],
                        "fixed_t": MODELS[name][1],
                        "dtypes": [d for m, d in conversions if m == name]}
                       for name in dict.fromkeys(m for m, _ in conversions)]}
    with open(os.path.join(folder, "spec.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f)
    np.savez(os.path.join(folder, "weights.npz"),
             **{f"layer{i}/{j}": w for i, layer in enumerate(weights) for j, w in enumerate(layer)})
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repository, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "refconv.conformance._tflite_convert", folder],
                          env=env, capture_output=True, text=True, timeout=CONVERT_SECONDS)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"the TFLite conversion process failed (exit {done.returncode}):\n"
                           f"{tail}")
    with open(os.path.join(folder, "configs.json"), encoding="utf-8") as f:
        configs = json.load(f)
    with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
        results = json.load(f)["results"]
    return configs, results


def reference_cell(configs, weights, size, keras_version):
    """refconv's cells with the model's weights, through :func:`refconv.interop.from_keras`."""
    cells = [from_keras(config, [w.astype(np.float64) for w in layer], list(size),
                        keras_version=keras_version)
             for config, layer in zip(configs, weights)]
    return MultiRNNCell(cells)


def interpreter(path, resolver="xnnpack", preserve=False):
    """A LiteRT interpreter of the file at ``path``; ``preserve`` keeps every tensor readable."""
    if resolver not in RESOLVERS:
        raise ValueError(f"resolver: expected one of {list(RESOLVERS)}, got {resolver!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserve_all_tensors' "for debugging" notice
        return litert.Interpreter(
            model_path=path, num_threads=1, experimental_preserve_all_tensors=preserve,
            experimental_op_resolver_type=getattr(litert.OpResolverType, RESOLVERS[resolver]))


def locate(it):
    """Each layer's and step's gate tensors: ``{(layer, step): {name: tensor index}}``.

    By name: ``.../<layer scope>/<cell scope>/<op>`` with op in KERAS_GATE_OPS;
    layers and steps are numbered in the order their scopes first appear among
    the ops as they run. ``c`` is what the cell's ``Tanh_1`` reads and ``h`` the
    ``Mul`` of ``Tanh_1``, found by the ops' inputs and outputs.
    """
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    ops = it._get_ops_details()  # noqa: SLF001  the interpreter's one listing of its ops
    readers = {}
    for op in ops:
        for i in op["inputs"]:
            readers.setdefault(int(i), []).append(op)
    layers, steps, found = [], {}, {}
    for op in ops:
        if op["op_name"] not in ("LOGISTIC", "TANH"):
            continue
        out = int(op["outputs"][0])
        parts = names.get(out, "").split(";")[0].split("/")
        if len(parts) < 3 or "lstm_cell" not in parts[-2]:
            continue
        layer_scope, cell_scope, leaf = parts[-3], parts[-2], parts[-1]
        # Only gate ops number the steps: they read h, so they run in step order, while
        # the converter may hoist later steps' input convolutions before them.
        if layer_scope not in layers:
            layers.append(layer_scope)
        layer = layers.index(layer_scope)
        order = steps.setdefault(layer, [])
        if cell_scope not in order:
            order.append(cell_scope)
        gates = found.setdefault((layer, order.index(cell_scope)), {})
        if leaf in KERAS_GATE_OPS:
            gates[KERAS_GATE_OPS[leaf]] = out
        elif leaf == "Tanh_1" and op["op_name"] == "TANH":
            gates["c"] = int(op["inputs"][0])
            products = [r for r in readers.get(out, []) if r["op_name"] == "MUL"]
            if len(products) == 1:
                gates["h"] = int(products[0]["outputs"][0])
    return found


def run(path, x, resolver="xnnpack", gates=False, output_names=None,
        keys=("outputs", "h", "c")):
    """Run the TFLite file at ``path`` on ``x [B, T, H, W, C]``: a :class:`Candidate`.

    The input is resized to ``x``'s length (a fixed-length model refuses with an
    error). With ``gates``, every tensor is kept and each located gate of each
    step is read (a gate missing at some first steps is compared from the first
    step that has it: ``candidate.first_step``). ``output_names``: the model's
    outputs (outputs, h, c) as its signature names them, where they are not
    ``output_0, output_1, output_2``; ``keys``: the Candidate's name of each output
    (None: not compared).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    it = interpreter(path, resolver, preserve=gates)
    runner = it.get_signature_runner()
    (name,) = runner.get_input_details()
    out = runner(**{name: x})
    # Keras 3's signature numbers its outputs; tf_keras's names them after the model's outputs.
    names = [f"output_{i}" for i in range(len(keys))]
    if not all(k in out for k in names) and output_names:
        names = output_names
    candidate = Candidate({key: out[n] for key, n in zip(keys, names) if key})
    if gates:
        located = locate(it)
        for layer in sorted({layer for layer, _ in located}):
            steps = sorted(step for l, step in located if l == layer)
            for quantity in ("z", "z_i", "z_f", "z_o", "c", "h"):
                have = [t for t in steps if quantity in located[(layer, t)]]
                if have and have == list(range(have[0], len(steps))):
                    key = f"layer{layer}/{quantity}"
                    candidate[key] = np.stack(
                        [it.get_tensor(located[(layer, t)][quantity]) for t in have], axis=1)
                    if have[0]:
                        candidate.first_step[key] = have[0]
    return candidate


def conform(*, models=tuple(MODELS), dtypes=DTYPES, conversions=None,
            resolvers=tuple(RESOLVERS), channels=8, filters=(16, 16), kernel=3, size=(10, 10),
            batch=2, t_export=8, t_other=None, seed=0,
            rtol=RTOL, atol=ATOL, reduced=True, skipped=None):
    """Convert seeded Keras ConvLSTM2D models to TFLite and hold them against refconv: Rows.

    For each model (MODELS) and each interpreter kernel set (RESOLVERS): float32
    at the export's length ``t_export`` and at ``t_other`` (default
    ``t_export + 3``); with ``reduced``, float16 weights and dynamic-range int8
    (XNNPACK only). ``conversions``, a list of ``(model, dtype)``, picks some of
    those pairs instead. A model Keras refuses to build is named in ``skipped``.
    """
    t_other = t_export + 3 if t_other is None else t_other
    if t_other == t_export:
        raise ValueError(f"t_other: expected a length other than t_export={t_export}, "
                         f"got {t_other}")
    if conversions is None:
        conversions = [(m, d) for m in models for d in dtypes if reduced or d == "float32"]
    for model, dtype in conversions:
        if model not in MODELS or dtype not in DTYPES:
            raise ValueError(f"conversions: expected pairs of a model in {list(MODELS)} and a "
                             f"dtype in {list(DTYPES)}, got {(model, dtype)}")
    if (any(MODELS[m][0] == 2 for m, _ in conversions)
            and importlib.util.find_spec("tf_keras") is None):
        if skipped is not None:
            skipped.append("tf_keras models: tf_keras is not installed")
        conversions = [(m, d) for m, d in conversions if MODELS[m][0] != 2]
    models = list(dict.fromkeys(m for m, _ in conversions))
    weights = make_weights(channels, filters, kernel, seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, max(t_export, t_other), *size, channels)).astype(np.float32)
    runtime = f"litert {_version()}"
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        configs, results = convert(conversions, channels=channels, filters=filters,
                                   kernel=kernel, size=size, batch=batch, t_export=t_export,
                                   weights=weights, folder=folder)
        for model in models:
            keras_version, unrolled = MODELS[model]
            if model not in configs:
                if skipped is not None:
                    error = next(r["error"] for key, r in results.items()
                                 if key.startswith(model + "|"))
                    skipped.append(f"{model}: Keras refused to build it ({error})")
                continue
            cell = reference_cell(configs[model], weights, size, keras_version)
            exported = t_export if unrolled else None
            baseline = None  # the float32 conversion's outputs at t_export, by XNNPACK
            for dtype in [d for m, d in conversions if m == model]:
                result = results[f"{model}|{dtype}"]
                for resolver in (resolvers if dtype == "float32" else resolvers[:1]):
                    fields = dict(runtime=runtime, exporter=model, options=resolver, dtype=dtype,
                                  t_export=exported)
                    if "error" in result:
                        rows.append(Row(**fields, t_run=t_export, status=ERROR, errors={},
                                        note=f"conversion failed: {result['error']}"))
                        break
                    lengths = [t_export] + ([t_other] if dtype == "float32" else [])
                    for steps in lengths:
                        row, outputs = _row(result, cell, x[:, :steps], resolver, unrolled,
                                            None if dtype == "float32" else baseline,
                                            rtol=rtol, atol=atol, **fields)
                        rows.append(row)
                        if dtype == "float32" and steps == t_export and baseline is None:
                            baseline = outputs
    return rows


def _row(result, cell, x, resolver, gates, baseline=None, **fields):
    """One row, and the outputs (None where the run raised); ``baseline``: the float32
    conversion's outputs on the same inputs, to tell a conversion that reduced nothing."""
    try:
        candidate = run(result["path"], x, resolver, gates=gates,
                        output_names=result.get("output_names"),
                        keys=result.get("keys", ("outputs", "h", "c")))
    except Exception as error:  # noqa: BLE001  the interpreter's refusal is what the row reports
        refused = fields["t_export"] is not None and x.shape[1] != fields["t_export"]
        return Row(fields["runtime"], fields["exporter"], fields["options"], fields["dtype"],
                   fields["t_export"], x.shape[1], REFUSED if refused else ERROR, {},
                   note=("raised an error for a length other than the export's: "
                         if refused else "raised: ") + first_line(error)), None
    row = check(cell, x, candidate, **fields)
    if baseline is not None and np.array_equal(candidate["outputs"], baseline):
        row = row._replace(note="; ".join(filter(None, [
            row.note, "the same bits as the float32 conversion: nothing was reduced (TFLite "
                      "quantizes only weights of 1024 elements or more)"])))
    return row, candidate["outputs"]


def _version():
    import importlib.metadata
    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return "?"
