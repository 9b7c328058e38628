"""Convert Keras ConvLSTM2D models to TFLite, in a process of its own (run by tflite_keras).

``python -m refconv.conformance._tflite_convert FOLDER`` reads ``FOLDER/spec.json``
and ``FOLDER/weights.npz`` and writes, per model, the layers' ``get_config()``
(``FOLDER/configs.json``) and one ``.tflite`` file per conversion, or the
error that stopped it (``FOLDER/results.json``).

Why a process of its own: ``TFLiteConverter.from_keras_model`` needs Keras 3
on its TensorFlow backend, and a process that has already imported Keras on
another backend (a test session with PyTorch, say) cannot switch; and the
parent never has to import TensorFlow, only the interpreter.
"""

import contextlib
import io
import json
import os
import sys

from refconv.conformance.report import first_line


def main(folder):
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    with open(os.path.join(folder, "spec.json"), encoding="utf-8") as f:
        spec = json.load(f)
    weights = np.load(os.path.join(folder, "weights.npz"), allow_pickle=False)
    configs, results = {}, {}
    for model_spec in spec["models"]:
        name = model_spec["name"]
        try:
            model, layers = _build(model_spec, spec)
            for i, layer in enumerate(layers):
                layer.set_weights([weights[f"layer{i}/{j}"] for j in range(3)])
        except Exception as error:  # noqa: BLE001  a model Keras refuses is a row of the table
            for dtype in model_spec["dtypes"]:
                results[f"{name}|{dtype}"] = {"error": first_line(error)}
            continue
        configs[name] = [json.loads(json.dumps(layer.get_config(), default=str))
                         for layer in layers]
        for dtype in model_spec["dtypes"]:
            key = f"{name}|{dtype}"
            try:
                converter = tf.lite.TFLiteConverter.from_keras_model(model)
                if dtype == "float16 weights":
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                    converter.target_spec.supported_types = [tf.float16]
                elif dtype == "int8 dynamic range":
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                with contextlib.redirect_stdout(io.StringIO()):  # "Saved artifact at ..."
                    flatbuffer = converter.convert()
                path = os.path.join(folder, f"{len(results)}.tflite")
                with open(path, "wb") as f:
                    f.write(flatbuffer)
                results[key] = {"path": path, "output_names": list(model.output_names)}
            except Exception as error:  # noqa: BLE001
                results[key] = {"error": first_line(error)}
    versions = {"tensorflow": tf.__version__}
    with open(os.path.join(folder, "configs.json"), "w", encoding="utf-8") as f:
        json.dump(configs, f)
    with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"results": results, "versions": versions}, f)


def _build(model_spec, spec):
    """A model of stacked ConvLSTM2D layers: outputs, and the top layer's final h and c."""
    if model_spec["keras"] == 3:
        import keras
    else:
        import tf_keras as keras
    steps = spec["t_export"] if model_spec["fixed_t"] else None
    x = inputs = keras.Input((steps, *spec["size"], spec["channels"]), batch_size=spec["batch"])
    layers = []
    for i, filters in enumerate(spec["filters"]):
        top = i == len(spec["filters"]) - 1
        layer = keras.layers.ConvLSTM2D(filters, spec["kernel"], padding="same",
                                        return_sequences=True, return_state=top,
                                        unroll=model_spec["unroll"])
        layers.append(layer)
        x = layer(x)
    return keras.Model(inputs, list(x)), layers


def read_keras(path, folder):
    """Write what refconv needs of the ``.keras`` model at ``path`` into ``folder``.

    ``model.json``: the Keras version, each ConvLSTM layer's ``get_config()``, and the
    Candidate key of each model output (``outputs``, ``h``, ``c``, or null), with the
    outputs' names; ``weights.npz``: each layer's ``get_weights()``; or ``{"error": ...}``
    naming what cannot be mapped (a layer that is not a ConvLSTM, an output of another
    layer than the top one).
    """
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    result = {}
    try:
        model, version = _load_keras(path)
        layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
        other = [f"{layer.name} ({type(layer).__name__})" for layer in layers
                 if not type(layer).__name__.startswith("ConvLSTM")]
        if other or not layers:
            raise ValueError(f"cannot map {', '.join(other) or 'a model without layers'}: "
                             f"refconv maps a stack of ConvLSTM layers (outputs and states)")
        keys = []
        for tensor in model.outputs:
            layer, _, index = tensor._keras_history  # noqa: SLF001  the one way to ask
            if layer is not layers[-1]:
                raise ValueError(f"cannot map the output {tensor.name!r}: it is "
                                 f"{layer.name}'s, not the top layer's ({layers[-1].name})")
            sequence = layers[-1].return_sequences
            keys.append((["outputs" if sequence else "h", "h", "c"])[index])
        result = {"keras_version": version, "output_names": list(model.output_names),
                  "keys": keys,
                  "configs": [json.loads(json.dumps(layer.get_config(), default=str))
                              for layer in layers]}
        np.savez(os.path.join(folder, "weights.npz"),
                 **{f"layer{i}/{j}": w for i, layer in enumerate(layers)
                    for j, w in enumerate(layer.get_weights())})
    except Exception as error:  # noqa: BLE001  the parent prints it as one line
        result = {"error": first_line(error)}
    with open(os.path.join(folder, "model.json"), "w", encoding="utf-8") as f:
        json.dump(result, f)


def _load_keras(path):
    """The model at ``path`` and its Keras version: Keras 3, else tf_keras (Keras 2)."""
    import keras
    try:
        return keras.models.load_model(path, compile=False), 3
    except Exception:  # noqa: BLE001  a tf_keras file: try that Keras before giving up
        try:
            import tf_keras
        except ImportError:
            raise
        return tf_keras.models.load_model(path, compile=False), 2


if __name__ == "__main__":
    if sys.argv[1] == "--read":
        read_keras(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1])
