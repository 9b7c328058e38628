"""Golden vectors: refconv's answers, written to ``.npz`` files any language can read.

``write_golden(out_dir)`` writes one ``<case>.npz`` per configuration and a
``manifest.json`` (each case's configuration, refconv's version, the dtype and
the SHA-256 of every file). A case's arrays, by key (batch-major, float64)::

    inputs                  [B, T, *frame]
    sequence_length         [B] (int64)
    initial_state/c, /h     (LSTM) or initial_state/h (GRU)
    params/<name>           every entry of cell.params (SPEC's names)
    outputs                 [B, T, *S]
    final_state/c, /h       or final_state/h
    gates/<name>            [B, T, *S]: z, z_i, z_f, z_o, c, h or r, u, candidate, h
    d_outputs, d_state/...  the fixed upstream gradients
    grad/inputs, grad/initial_state/..., grad/params/<name>

A bidirectional case has the same keys under ``fw/`` and ``bw/`` for
everything that belongs to a direction (``inputs``, ``sequence_length`` and
``grad/inputs`` stay at the top level). Writes are atomic (a temporary file,
then a rename), so an interrupted run never leaves a half-written case, and
:func:`load_case` never unpickles and checks the SHA-256.
"""

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from . import __version__
from .bptt import bidirectional_dynamic_rnn_grad, dynamic_rnn_grad
from .gru import ConvGRUCell
from .lstm import ConvLSTMCell, LSTMStateTuple
from .rnn import bidirectional_dynamic_rnn, dynamic_rnn
from .vocabulary import GRU_BLOCKS, LSTM_BLOCKS

__all__ = ["golden_cases", "make_case", "write_golden", "load_case", "load_manifest"]

MANIFEST = "manifest.json"


def golden_cases():
    """The matrix of configurations: LSTM and GRU, 1-3 D, options on and off, both layouts."""
    kernels = {1: [2], 2: [3, 2], 3: [1, 3, 2]}  # even sizes on purpose
    shapes = {1: [9], 2: [7, 6], 3: [5, 4, 6]}
    cases = []
    for n in (1, 2, 3):
        for data_format in ("channels_last", "channels_first"):
            fmt = "cl" if data_format == "channels_last" else "cf"
            for normalize in (True, False):
                for peephole in (True, False):
                    cases.append(dict(
                        name=f"lstm_{n}d_{fmt}_{'ln' if normalize else 'noln'}_"
                             f"{'peep' if peephole else 'nopeep'}",
                        cell="lstm", shape=shapes[n], filters=3, kernel=kernels[n],
                        normalize=normalize, peephole=peephole, forget_bias=1.0,
                        data_format=data_format, bidirectional=False))
                cases.append(dict(
                    name=f"gru_{n}d_{fmt}_{'ln' if normalize else 'noln'}",
                    cell="gru", shape=shapes[n], filters=3, kernel=kernels[n],
                    normalize=normalize, data_format=data_format, bidirectional=False))
    for n in (1, 3):
        for cell in ("lstm", "gru"):
            case = dict(name=f"{cell}_{n}d_cl_bidirectional", cell=cell, shape=shapes[n],
                        filters=2, kernel=[3] * n, normalize=True,
                        data_format="channels_last", bidirectional=True)
            if cell == "lstm":
                case.update(peephole=True, forget_bias=1.0)
            cases.append(case)
    for i, case in enumerate(cases):
        case.update(seed=i, batch=3, timesteps=4, in_channels=2, dtype="float64",
                    sequence_length=[4, 0, 2] if i % 2 else [4, 4, 1])
    return cases


def _cell(case, which=""):
    options = dict(shape=case["shape"], filters=case["filters"], kernel=case["kernel"],
                   normalize=case["normalize"], data_format=case["data_format"])
    if case["cell"] == "lstm":
        cell = ConvLSTMCell(forget_bias=case["forget_bias"], peephole=case["peephole"], **options)
    else:
        cell = ConvGRUCell(**options)
    seed = case["seed"] * 2 + (which == "bw")
    cell.build(case["in_channels"], seed=seed)
    # Off their initial values (ones, zeros): a framework that ignores a bias must fail.
    rng = np.random.default_rng(10_000 + seed)
    for name, value in cell.params.items():
        cell.params[name] = value + 0.2 * rng.standard_normal(value.shape)
    return cell


def _state(cell, batch, rng):
    size = (batch, *cell.output_size)
    if isinstance(cell, ConvLSTMCell):
        return LSTMStateTuple(rng.standard_normal(size), rng.standard_normal(size))
    return rng.standard_normal(size)


def _flat_state(prefix, state):
    if isinstance(state, LSTMStateTuple):
        return {f"{prefix}/c": state.c, f"{prefix}/h": state.h}
    return {f"{prefix}/h": state}


def make_case(case):
    """Compute one case's arrays (a dict key -> array, the keys of the module docstring)."""
    rng = np.random.default_rng(case["seed"])
    cell = _cell(case)
    channels = case["in_channels"]
    frame = ((*case["shape"], channels) if case["data_format"] == "channels_last"
             else (channels, *case["shape"]))
    batch, steps = case["batch"], case["timesteps"]
    inputs = rng.standard_normal((batch, steps, *frame))
    lengths = np.asarray(case["sequence_length"], dtype=np.int64)
    out = {"inputs": inputs, "sequence_length": lengths}
    out_shape = (batch, steps, *cell.output_size)
    if not case["bidirectional"]:
        state0 = _state(cell, batch, rng)
        d_outputs = rng.standard_normal(out_shape)
        d_state = _state(cell, batch, rng)
        outputs, final, gates = dynamic_rnn(cell, inputs, lengths, state0, return_gates=True)
        grads = dynamic_rnn_grad(cell, inputs, d_outputs, d_state, sequence_length=lengths,
                                 initial_state=state0)
        out.update(_direction("", cell, state0, outputs, final, gates, d_outputs, d_state,
                              grads.initial_state, grads.params))
        out["grad/inputs"] = grads.inputs
        return out
    cell_bw = _cell(case, "bw")
    states0 = (_state(cell, batch, rng), _state(cell_bw, batch, rng))
    d_outputs = (rng.standard_normal(out_shape), rng.standard_normal(out_shape))
    d_states = (_state(cell, batch, rng), _state(cell_bw, batch, rng))
    outputs, finals, gates = bidirectional_dynamic_rnn(
        cell, cell_bw, inputs, lengths, *states0, return_gates=True)
    grads = bidirectional_dynamic_rnn_grad(cell, cell_bw, inputs, d_outputs, d_states,
                                           sequence_length=lengths,
                                           initial_state_fw=states0[0],
                                           initial_state_bw=states0[1])
    for i, (prefix, c) in enumerate((("fw/", cell), ("bw/", cell_bw))):
        out.update(_direction(prefix, c, states0[i], outputs[i], finals[i], gates[i],
                              d_outputs[i], d_states[i],
                              (grads.initial_state_fw, grads.initial_state_bw)[i],
                              (grads.params_fw, grads.params_bw)[i]))
    out["grad/inputs"] = grads.inputs
    return out


def _direction(prefix, cell, state0, outputs, final, gates, d_outputs, d_state, d_state0,
               d_params):
    out = {}
    out.update(_flat_state(prefix + "initial_state", state0))
    out.update({f"{prefix}params/{k}": v for k, v in cell.params.items()})
    out[prefix + "outputs"] = outputs
    out.update(_flat_state(prefix + "final_state", final))
    out.update({f"{prefix}gates/{k}": gates[k] for k in _gate_file_order(gates)})
    out[prefix + "d_outputs"] = d_outputs
    out.update(_flat_state(prefix + "d_state", d_state))
    out.update(_flat_state(prefix + "grad/initial_state", d_state0))
    out.update({f"{prefix}grad/params/{k}": v for k, v in d_params.items()})
    return out


def _gate_file_order(gates):
    """The gates in the order a case's file holds them: the kernel's blocks, then the rest.

    The members' order is part of a file's bytes, and so of the manifest's SHA-256s:
    it stays what it has always been (LSTM z, z_i, z_f, z_o, c, h), whatever order
    ``return_gates`` uses (the computed one, c before z_o).
    """
    blocks = LSTM_BLOCKS if "z" in gates else GRU_BLOCKS
    return [*blocks, *(name for name in gates if name not in blocks)]


def write_golden(out_dir, cases=None):
    """Write every case's ``.npz`` and ``manifest.json`` into ``out_dir``; return the manifest."""
    cases = golden_cases() if cases is None else cases
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"refconv_version": __version__, "dtype": "float64",
                "layout": "batch-major: inputs [B, T, *frame], outputs and gates [B, T, *S]",
                "cases": {}}
    for case in cases:
        arrays = make_case(case)
        filename = case["name"] + ".npz"
        _atomic_write(os.path.join(out_dir, filename), lambda f: np.savez(f, **arrays))
        manifest["cases"][case["name"]] = {
            "file": filename, "sha256": _sha256(os.path.join(out_dir, filename)),
            "config": case, "keys": sorted(arrays)}
    text = json.dumps(manifest, indent=1, sort_keys=True)
    _atomic_write(os.path.join(out_dir, MANIFEST), lambda f: f.write(text.encode()))
    return manifest


def load_manifest(directory):
    """Read ``manifest.json`` of a golden directory, with a clear error when it is missing or bad."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory}: no {MANIFEST}; expected a folder written by "
                                f"'refconv golden'")
    try:
        with open(path) as f:
            manifest = json.load(f)
        manifest["cases"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a refconv manifest ({error})") from None
    return manifest


def load_case(path, sha256=None):
    """Load one case's arrays (dict key -> array), never unpickling.

    Args:
        path: the ``.npz`` file.
        sha256: the expected hex digest (from the manifest); a mismatch is an error.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such golden file")
    if sha256 is not None:
        actual = _sha256(path)
        if actual != sha256:
            raise ValueError(f"{path}: SHA-256 {actual} differs from the manifest's {sha256}; "
                             f"the file was altered or truncated")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path, write):
    """Write through ``write(file)`` into a temporary file beside ``path``, then rename it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
