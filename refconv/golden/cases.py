"""The golden cases: the matrix of configurations, and each case's arrays.

:func:`golden_cases` lists the configurations (LSTM and GRU, 1-3 D, options on
and off, both layouts, bidirectional); :func:`make_case` computes one case's
arrays, by the keys :mod:`refconv.golden` lists. Everything is seeded by the
case: the same case gives the same bits with any thread count.
"""

import numpy as np

from ..bptt import bidirectional_dynamic_rnn_grad, dynamic_rnn_grad
from ..gru import ConvGRUCell
from ..lstm import ConvLSTMCell, LSTMStateTuple
from ..rnn import bidirectional_dynamic_rnn, dynamic_rnn
from ..vocabulary import GRU_BLOCKS, LSTM_BLOCKS

__all__ = ["golden_cases", "make_case"]


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
    # ``sequence_length: None`` runs without lengths (every row full length), the path a
    # full-length ConvLSTM's gradients take by default (refconv.fast.lstm_grad); the file still
    # holds the lengths, all T, for a framework that wants them.
    lengths = (None if case["sequence_length"] is None
               else np.asarray(case["sequence_length"], dtype=np.int64))
    out = {"inputs": inputs,
           "sequence_length": np.full(batch, steps, np.int64) if lengths is None else lengths}
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
