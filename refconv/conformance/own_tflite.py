"""The user's own TFLite file and the Keras model it was converted from, held against refconv.

``refconv conformance --tflite MODEL.tflite --keras MODEL.keras``: the ``.keras``
file is read in a process of its own (:func:`refconv.conformance._tflite_convert.read_keras`:
Keras 3 on TensorFlow, or tf_keras), which hands back each ConvLSTM layer's
``get_config()`` and ``get_weights()``; :func:`refconv.interop.from_keras` builds
refconv's cells from them. The TFLite file's input signature says the batch,
the length (fixed: an unrolled model, whose every step's gates are read;
dynamic: a WHILE loop, whose gates stay inside its subgraph) and the frame.
"""

import functools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from .report import Row  # noqa: F401  (the rows come from tflite_keras._row)
from .tflite_keras import _row, _version, interpreter, reference_cell

__all__ = ["read_keras", "conform_file"]

DEFAULT_STEPS = 8
READ_SECONDS = 300


def read_keras(path):
    """``(description, weights)`` of the ``.keras`` file: see ``_tflite_convert.read_keras``.

    A process that checks several files against one model reads it once (the
    child process that imports TensorFlow costs seconds): the answer is kept
    while the file's size and modification time stay the same.
    """
    info = os.stat(path)
    return _read_keras(os.path.abspath(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_keras(path, size, mtime):
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items()
               if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repository, env.get("PYTHONPATH")]))
        done = subprocess.run([sys.executable, "-m", "refconv.conformance._tflite_convert",
                               "--read", os.path.abspath(path), folder], env=env,
                              capture_output=True, text=True, timeout=READ_SECONDS)
        model_json = os.path.join(folder, "model.json")
        if done.returncode != 0 or not os.path.exists(model_json):
            tail = " ".join(done.stderr.strip().splitlines()[-1:])
            raise ValueError(f"--keras: {path}: reading it failed ({tail})")
        with open(model_json, encoding="utf-8") as f:
            description = json.load(f)
        if "error" in description:
            raise ValueError(f"--keras: {path}: {description['error']}")
        with np.load(os.path.join(folder, "weights.npz"), allow_pickle=False) as data:
            weights = [[data[f"layer{i}/{j}"] for j in range(3) if f"layer{i}/{j}" in data.files]
                       for i in range(len(description["configs"]))]
    return description, weights


def conform_file(path, weights, *, rtol, atol, seed=0, timesteps=None, t_other=None, batch=2):
    """Rows of the TFLite file at ``path`` run by LiteRT, against the ``.keras`` ``weights``:
    ``(rows, notes)``, as :func:`refconv.conformance.own_onnx.conform_file`."""
    description, layer_weights = read_keras(weights)
    if "outputs" not in description["keys"]:
        raise ValueError(f"--keras: {weights}: the model returns no sequence (its top layer has "
                         f"return_sequences=False): refconv compares outputs step by step")
    try:
        it = interpreter(path)
        details = it.get_input_details()
    except Exception as error:  # noqa: BLE001
        raise ValueError(f"--tflite: {path}: not a TFLite model LiteRT can load "
                         f"({type(error).__name__}: {' '.join(str(error).split())[:160]})") \
            from None
    if len(details) != 1 or len(details[0]["shape_signature"]) != 5:
        raise ValueError(f"--tflite: {path}: expected one input of 5 axes [B, T, H, W, C], got "
                         f"{[list(d['shape_signature']) for d in details]}")
    dims = [None if d < 0 else int(d) for d in details[0]["shape_signature"]]
    configs = description["configs"]
    layout = configs[0].get("data_format") or "channels_last"
    size = dims[2:4] if layout == "channels_last" else dims[3:5]
    c_in = dims[4] if layout == "channels_last" else dims[2]
    kernel = layer_weights[0][0]
    if c_in != kernel.shape[-2]:
        raise ValueError(f"--tflite: the input {dims} has {c_in} channels, the Keras model's "
                         f"first kernel {list(kernel.shape)} reads {kernel.shape[-2]}: these "
                         f"are not this file's weights")
    if None in size:
        raise ValueError(f"--tflite: the input's spatial size is dynamic ({dims}); refconv "
                         f"needs it")
    cell = reference_cell(configs, [[w.astype(np.float64) for w in layer]
                                    for layer in layer_weights], size,
                          description["keras_version"])
    fixed = dims[1] is not None
    t_export = dims[1] if fixed else (timesteps or DEFAULT_STEPS)
    t_other = t_export + 3 if t_other is None else t_other
    batch = dims[0] if dims[0] is not None else batch
    notes = [f"Keras {description['keras_version']} model: {len(configs)} ConvLSTM layers; "
             f"outputs {description['keys']}",
             f"input {_dims(dims)} ({layout}): batch "
             f"{'fixed' if dims[0] is not None else 'dynamic'}, T "
             f"{'fixed (unrolled: every step gates read)' if fixed else 'dynamic (a loop: its gates are not exposed)'}"]
    frame = (*size, c_in) if layout == "channels_last" else (c_in, *size)
    x = np.random.default_rng(seed).standard_normal(
        (batch, max(t_export, t_other), *frame)).astype(np.float32)
    result = {"path": path, "output_names": description["output_names"],
              "keys": description["keys"]}
    rows = []
    for steps in (t_export, t_other):
        row, _ = _row(result, cell, x[:, :steps], "xnnpack", fixed, rtol=rtol, atol=atol,
                      runtime=f"litert {_version()}", exporter=os.path.basename(path),
                      options="xnnpack", dtype="float32", t_export=t_export if fixed else None)
        rows.append(row)
    return rows, notes


def _dims(dims):
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
