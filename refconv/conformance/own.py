"""The user's own model: a deployed file and the weights it came from, held against refconv.

:func:`check_model` takes the two files a deployment engineer has, the file
they ship and the trained weights, and returns the same :class:`Report` as
:func:`refconv.conformance.run`:

* ``check_model("m.onnx", "m.pt")``: an ONNX file run by ONNX Runtime, against
  a PyTorch ConvLSTM's ``state_dict`` (or a refconv ``.npz``, see
  :class:`Weights`) (:mod:`refconv.conformance.own_onnx`);
* ``check_model("m.tflite", "m.keras")``: a TFLite file run by LiteRT, against
  the Keras model it was converted from (:mod:`refconv.conformance.own_tflite`).

Everything else has a default: the input's batch, length and layout are read
from the file, the inputs are seeded, and the file is also fed another length
(a fixed length refuses it: REFUSED; an unrolled one silently returns fewer
steps: TRUNCATED).
"""

import importlib
import os

import numpy as np

from ..interop import from_torch
from ..lstm import ConvLSTMCell
from ..rnn import MultiRNNCell
from .environment import describe
from .report import ATOL, RTOL, Report

__all__ = ["check_model", "Weights", "MODEL_SUFFIXES", "WEIGHT_SUFFIXES"]

# The deployed file's suffix -> (its adapter, the weights' suffixes it takes, runtime name).
MODEL_SUFFIXES = {".onnx": ("refconv.conformance.own_onnx", (".pt", ".pth", ".npz"),
                            "onnxruntime"),
                  ".tflite": ("refconv.conformance.own_tflite", (".keras",), "tflite")}
WEIGHT_SUFFIXES = (".pt", ".pth", ".npz", ".keras")


def check_model(model, weights, *, gate_order=None, forget_bias=None, rtol=RTOL, atol=ATOL,
                seed=0, timesteps=None, t_other=None, batch=2):
    """Hold the deployed file ``model`` against refconv's run of ``weights``: a :class:`Report`.

    Args:
        model: an ``.onnx`` or ``.tflite`` file.
        weights: for ONNX, a PyTorch ``state_dict`` (``.pt``/``.pth``, saved with
            ``torch.save(model.state_dict(), path)``) or a refconv ``.npz``; for
            TFLite, the ``.keras`` file it was converted from.
        gate_order, forget_bias: ONNX only; None reads them from the graph.
        rtol, atol: the tolerance (``|d| <= atol + rtol |refconv|``).
        seed: of the inputs.
        timesteps: the first length, where the file's T is dynamic (default 8).
        t_other: the other length (default the first + 3).
        batch: where the file's batch is dynamic.

    Raises:
        ValueError: a file that is missing, of the wrong kind, or that the
            importer cannot map (the message names what).
        ImportError: the runtime's packages are not installed (with the install line).
    """
    from . import available, install_hint

    adapter, kinds, runtime = _kind(model, weights)
    missing = available(runtime)
    if missing:
        raise ImportError(f"{os.path.basename(model)} needs {missing}, not installed here: "
                          f"{install_hint()}")
    options = {"gate_order": gate_order, "forget_bias": forget_bias}
    if runtime == "tflite":
        if gate_order is not None or forget_bias is not None:
            raise ValueError("gate_order, forget_bias: a .keras file says both; they are for "
                             "an .onnx file's PyTorch weights")
        options = {}
    rows, notes = importlib.import_module(adapter).conform_file(
        os.fspath(model), os.fspath(weights), rtol=rtol, atol=atol, seed=seed,
        timesteps=timesteps, t_other=t_other, batch=batch, **options)
    environment = describe()
    environment["skipped"] = []
    environment["read"] = notes
    return Report([environment], rows, rtol, atol)


def _kind(model, weights):
    """The adapter, the weights' suffixes and the runtime of ``model``, or a one-line error."""
    for path, argument in ((model, "model"), (weights, "weights")):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{argument}: expected a file path, got {type(path).__name__}")
        if not os.path.isfile(path):
            raise ValueError(f"{argument}: {os.fspath(path)}: no such file")
    suffix = os.path.splitext(os.fspath(model))[1].lower()
    if suffix not in MODEL_SUFFIXES:
        raise ValueError(f"model: expected an .onnx or .tflite file, got {os.fspath(model)}")
    adapter, kinds, runtime = MODEL_SUFFIXES[suffix]
    if os.path.splitext(os.fspath(weights))[1].lower() not in kinds:
        raise ValueError(f"weights: expected a {' or '.join(kinds)} file for an {suffix} model, "
                         f"got {os.fspath(weights)}")
    return adapter, kinds, runtime


class Weights:
    """A ConvLSTM's weights from a file: a PyTorch ``state_dict`` or a refconv ``.npz``.

    The ``.npz`` holds refconv's parameters (``kernel [*k, C_in + F, 4F]``, blocks
    z, z_i, z_f, z_o, and ``bias [4F]``) per layer: ``layer{L}/kernel`` and
    ``layer{L}/bias`` (``kernel`` and ``bias``, or ``params/kernel``, for one
    layer, as a golden case holds them). Neither is unpickled: the
    ``state_dict`` is read by ``torch.load(weights_only=True)``.
    """

    def __init__(self, kind, arrays, path):
        self.kind, self.arrays, self.path = kind, arrays, path

    @classmethod
    def read(cls, path):
        if path.lower().endswith(".npz"):
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {key: data[key] for key in data.files}
            except Exception as error:  # noqa: BLE001
                raise ValueError(f"weights: {path}: not a readable .npz ({_short(error)})") \
                    from None
            return cls("npz", _npz_layers(arrays, path), path)
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001  a pickled module is refused here
            raise ValueError(f"weights: {path}: expected a state_dict saved with "
                             f"torch.save(model.state_dict(), path), read with weights_only="
                             f"True ({_short(error)})") from None
        if not hasattr(state, "keys"):
            raise ValueError(f"weights: {path}: expected a state_dict (name -> tensor), got "
                             f"{type(state).__name__}")
        arrays = {key: value.detach().double().numpy() for key, value in state.items()
                  if hasattr(value, "detach")}
        return cls("torch", arrays, path)

    @property
    def c_in(self):
        """The first layer's input channels."""
        if self.kind == "npz":
            kernel = self.arrays[0]["kernel"]
            return kernel.shape[-2] - kernel.shape[-1] // 4
        weights = [v for k, v in self.arrays.items() if k.endswith("weight") and v.ndim == 4]
        if not weights:
            raise ValueError(f"weights: {self.path}: expected a Conv2d weight [4F, C_in + F, k, k]"
                             f" (ndrplz's cell_list.0.conv.weight), got the keys "
                             f"{sorted(self.arrays)[:8]}")
        first = self.arrays.get("cell_list.0.conv.weight", weights[0])
        return first.shape[1] - first.shape[0] // 4

    def layout(self, dims, argument, channels_axes):
        """``"channels_first"`` or ``"channels_last"``: which of ``channels_axes`` of the
        input ``dims`` has the weights' input channels."""
        first, last = channels_axes
        if dims[first] == self.c_in and dims[last] != self.c_in:
            return "channels_first"
        if dims[last] == self.c_in:
            return "channels_last"
        raise ValueError(f"{argument}: the input {list(dims)} has no axis of the weights' "
                         f"{self.c_in} input channels (at {first} or {last}): these are not "
                         f"this file's weights")

    def cell(self, size, layout, *, gate_order, forget_bias):
        """refconv's cells (a MultiRNNCell) with these weights, for frames of ``size``."""
        if None in size:
            raise ValueError(f"the input's spatial size is dynamic ({list(size)}); refconv needs "
                             f"it: export with a fixed H and W")
        if self.kind == "torch":
            return from_torch(self.arrays, list(size), gate_order=gate_order or "ifog",
                              forget_bias=forget_bias or 0.0, data_format=layout)
        cells = []
        for params in self.arrays:
            kernel = params["kernel"]
            cell = ConvLSTMCell(list(size), kernel.shape[-1] // 4, list(kernel.shape[:-2]),
                                forget_bias=forget_bias or 0.0, normalize=False,
                                peephole=False, data_format=layout)
            cell.params = params
            cells.append(cell)
        return MultiRNNCell(cells)


def _npz_layers(arrays, path):
    """``[{"kernel", "bias"}, ...]`` per layer from a refconv ``.npz``'s keys."""
    plain = {key.removeprefix("params/"): value for key, value in arrays.items()}
    if set(plain) == {"kernel", "bias"}:
        return [plain]
    layers = []
    while f"layer{len(layers)}/kernel" in arrays:
        layer = len(layers)
        layers.append({name: arrays.get(f"layer{layer}/{name}") for name in ("kernel", "bias")})
    if not layers or any(v is None for layer in layers for v in layer.values()) \
            or len(arrays) != 2 * len(layers):
        raise ValueError(f"weights: {path}: expected refconv parameters 'kernel' and 'bias' "
                         f"(one layer) or 'layer0/kernel', 'layer0/bias', ... , got the keys "
                         f"{sorted(arrays)[:8]}")
    return layers


def _short(error):
    return f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"
