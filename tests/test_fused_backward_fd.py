"""The default backward of a full-length LSTM against central differences (issue 18, item 6).

``dynamic_rnn_grad`` of a ConvLSTM run without ``sequence_length`` takes the
fused backward (the default; ``gradcheck`` with lengths never reaches it).
Here it is held to finite differences computed in this file
(``_oracles.central_differences``) of
``L = sum(outputs * d_outputs) + sum(final_state * d_state)``, with the
*readable* forward (``dynamic_rnn(..., reference=True)``) so that the two sides
share no code. float64; random non-zero upstream gradients, biases,
gamma/beta and peepholes; random initial state; seeded random geometries in
1-D, 2-D and 3-D, odd and even kernels, both data formats, layer norm and
peepholes on and off. Per tensor, the relative error over a seeded sample of
entries must stay below 1e-7.

To be sure the backward under test is not the readable one, the public
``refconv.lstm_step_backward`` is watched: it must not run.
"""

import numpy as np
import pytest

import refconv
from refconv import ConvLSTMCell, LSTMStateTuple
from _oracles import (central_differences, frame, randomize, relative_error, sample_index,
                      wrap_everywhere)

TOLERANCE = 1e-7
ENTRIES = 6  # per tensor, sampled


def geometry(seed):
    """A small random ConvLSTM run, from ``seed``."""
    rng = np.random.default_rng(seed)
    n = 1 + seed % 3
    shape = [int(v) for v in rng.integers(2, 5 if n < 3 else 3, n)]
    kernel = [int(v) for v in rng.integers(1, 4, n)]
    return dict(shape=shape, kernel=kernel, c_in=int(rng.integers(1, 3)),
                filters=int(rng.integers(1, 3)), batch=int(rng.integers(1, 3)),
                steps=int(rng.integers(2, 4)),
                fmt=["channels_last", "channels_first"][seed % 2],
                normalize=bool(seed % 4 != 3), peephole=bool(seed % 5 != 4),
                forget_bias=float(rng.uniform(-1, 1.5)))


@pytest.mark.parametrize("seed", range(8))
def test_fused_backward_against_central_differences(monkeypatch, seed):
    g = geometry(seed)
    rng = np.random.default_rng(100 + seed)
    cell = ConvLSTMCell(g["shape"], g["filters"], g["kernel"], forget_bias=g["forget_bias"],
                        normalize=g["normalize"], peephole=g["peephole"], data_format=g["fmt"])
    cell.build(g["c_in"], seed=seed)
    randomize(cell, rng, scale=0.5)
    inputs = rng.standard_normal((g["batch"], g["steps"], *frame(g["fmt"], g["shape"], g["c_in"])))
    s = (g["batch"], *cell.output_size)
    c0, h0 = rng.standard_normal(s), rng.standard_normal(s)
    d_out = rng.standard_normal((g["batch"], g["steps"], *cell.output_size))
    d_c, d_h = rng.standard_normal(s), rng.standard_normal(s)

    readable_calls = wrap_everywhere(monkeypatch, refconv.lstm_step_backward)
    grads = refconv.dynamic_rnn_grad(cell, inputs, d_out, LSTMStateTuple(d_c, d_h),
                                     initial_state=LSTMStateTuple(c0, h0))
    assert not readable_calls, "a full-length LSTM's default backward is the readable one"

    params = {name: np.array(v, dtype=float) for name, v in cell.params.items()}
    cell.params = params  # perturbed in place below

    def loss():
        out, (c, h) = refconv.dynamic_rnn(cell, inputs, initial_state=LSTMStateTuple(c0, h0),
                                          reference=True)
        return float((out * d_out).sum() + (c * d_c).sum() + (h * d_h).sum())

    tensors = {"inputs": (inputs, grads.inputs), "initial_state.c": (c0, grads.initial_state.c),
               "initial_state.h": (h0, grads.initial_state.h)}
    tensors.update({name: (params[name], grads.params[name]) for name in params})
    assert set(grads.params) == set(params)
    errors = {}
    for name, (value, analytic) in tensors.items():
        assert analytic.shape == value.shape, name
        index = sample_index(value.size, ENTRIES, rng)
        numeric = central_differences(loss, value, index)
        assert np.abs(numeric).max() > 0, f"{name}: the sampled gradient is zero, nothing compared"
        errors[name] = relative_error(analytic.reshape(-1)[index], numeric)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, (g, {k: f"{v:.1e}" for k, v in errors.items()})
