"""refconv against Keras 3's ConvLSTM1D/2D/3D, through ``from_keras`` and ``to_keras``, in float64.

Each case builds a real Keras layer (``dtype="float64"``), gives it random
non-zero weights and biases, runs it from a random initial state, and checks
that the refconv cell made from its config and weights gives the same outputs
and both final states to ``rtol=1e-10``. Between them the cases cover every
option that changes Keras's numbers: rank 1 to 3, padding valid and same,
strides (that do and do not divide the size), dilation, both data formats,
sigmoid and Keras 3's hard sigmoid, tanh/relu/linear, with and without bias.
Keras 2's hard sigmoid is checked against tf_keras in test_interop_tf1.py.
"""

import numpy as np
import pytest

from _frameworks import assert_close, report_worst, require

import refconv
from refconv import LSTMStateTuple, dynamic_rnn
from refconv.interop import (InteropWarning, from_keras, keras_version_of, state_from_keras,
                             state_to_keras, to_keras)

keras = require("keras")

# Keras's own NumPy 2 noise (its variables' __array__), not refconv's.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

# TensorFlow's CPU convolutions refuse channels_first; the torch and jax backends take both.
CHANNELS_FIRST_OK = keras.config.backend() != "tensorflow"


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    report_worst(request, "Keras", f"Keras {keras.__version__} ({keras.config.backend()} backend)")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


# rank, padding, strides, dilation, data_format, activation, recurrent_activation, use_bias,
# kernel
CASES = [
    (1, "same", 1, 1, "channels_last", "tanh", "sigmoid", True, [3]),
    (1, "valid", 2, 1, "channels_first", "tanh", "hard_sigmoid", True, [4]),
    (1, "same", 3, 1, "channels_last", "relu", "sigmoid", False, [2]),
    (2, "same", 2, 1, "channels_last", "tanh", "hard_sigmoid", True, [3, 2]),
    (2, "valid", 1, 2, "channels_first", "tanh", "sigmoid", True, [3, 3]),
    (2, "same", 1, [1, 2], "channels_first", "linear", "sigmoid", True, [2, 3]),
    (2, "valid", [2, 1], 1, "channels_last", "tanh", "sigmoid", False, [1, 3]),
    (3, "same", 1, 1, "channels_first", "tanh", "hard_sigmoid", True, [3, 1, 2]),
    (3, "valid", [1, 2, 1], 1, "channels_last", "tanh", "sigmoid", True, [2, 3, 1]),
    (3, "same", [2, 1, 2], 1, "channels_last", "relu", "hard_sigmoid", True, [3, 3, 3]),
]


def random_layer(case, seed):
    """A Keras ConvLSTM layer of ``case``, built, with random weights; and its inputs' shape."""
    rank, padding, strides, dilation, data_format, act, rec_act, use_bias, kernel = case
    rng = np.random.default_rng(seed)
    shape = [int(v) for v in rng.integers(5, 8, size=rank)] if rank < 3 \
        else [int(v) for v in rng.integers(3, 6, size=rank)]
    channels, filters = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    layer_class = getattr(keras.layers, f"ConvLSTM{rank}D")
    layer = layer_class(filters, kernel, strides=strides, padding=padding,
                        data_format=data_format, dilation_rate=dilation, activation=act,
                        recurrent_activation=rec_act, use_bias=use_bias, dtype="float64",
                        return_sequences=True, return_state=True)
    frame = [*shape, channels] if data_format == "channels_last" else [channels, *shape]
    layer.build((None, None, *frame))
    # Random everything, biases included, at a scale that keeps the gates off saturation.
    layer.set_weights([rng.uniform(-0.7, 0.7, size=w.shape) for w in layer.get_weights()])
    return layer, shape, frame, rng


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}d-{c[1]}-s{c[2]}-d{c[3]}-{c[4]}"
                         f"-{c[5]}-{c[6]}-bias{c[7]}")
def test_from_keras_matches_keras(case):
    if case[4] == "channels_first" and not CHANNELS_FIRST_OK:
        pytest.skip("Keras's TensorFlow backend refuses channels_first convolutions on CPU")
    layer, shape, frame, rng = random_layer(case, seed=CASES.index(case))
    batch, steps = 2, 4
    inputs = rng.standard_normal((batch, steps, *frame))

    assert keras_version_of(layer.get_config())[0] == 3  # read off the config
    cell = from_keras(layer.get_config(), layer.get_weights(), shape)
    state_frame = cell.output_size
    h0, c0 = rng.standard_normal((2, batch, *state_frame))
    outputs, h, c = layer(inputs, initial_state=[h0, c0])
    ref_outputs, ref_state = dynamic_rnn(cell, inputs,
                                         initial_state=state_from_keras([h0, c0]))

    assert ref_outputs.shape == tuple(numpy(outputs).shape)
    assert_close(ref_outputs, numpy(outputs), "Keras", "outputs")
    assert_close(ref_state.h, numpy(h), "Keras", "final h")
    assert_close(ref_state.c, numpy(c), "Keras", "final c")
    assert np.abs(ref_state.c).max() > 0.1  # a test of something: the states are not ~0


@pytest.mark.parametrize("seed", range(6))
def test_random_configurations(seed):
    """Options drawn at random (seeded), beyond the hand-picked cases."""
    rng = np.random.default_rng(1000 + seed)
    rank = int(rng.integers(1, 4))
    kernel = [int(k) for k in rng.integers(1, 4, size=rank)]
    use_strides = bool(rng.integers(0, 2))  # Keras refuses strides > 1 with dilation > 1
    strides = [int(s) for s in rng.integers(1, 3, size=rank)] if use_strides else 1
    dilation = 1 if use_strides else [int(d) for d in rng.integers(1, 3, size=rank)]
    data_format = ["channels_last", "channels_first"][int(rng.integers(0, 2))] \
        if CHANNELS_FIRST_OK else "channels_last"
    case = (rank, ["same", "valid"][int(rng.integers(0, 2))], strides, dilation, data_format,
            ["tanh", "relu"][int(rng.integers(0, 2))],
            ["sigmoid", "hard_sigmoid"][int(rng.integers(0, 2))], bool(rng.integers(0, 2)),
            kernel)
    layer, shape, frame, rng = random_layer(case, seed=2000 + seed)
    inputs = rng.standard_normal((2, 3, *frame))
    cell = from_keras(layer.get_config(), layer.get_weights(), shape)
    h0, c0 = rng.standard_normal((2, 2, *cell.output_size))
    outputs, h, c = layer(inputs, initial_state=[h0, c0])
    ref_outputs, ref_state = dynamic_rnn(cell, inputs, initial_state=LSTMStateTuple(c0, h0))
    assert_close(ref_outputs, numpy(outputs), "Keras", f"outputs of {case}")
    assert_close(ref_state.h, numpy(h), "Keras", f"final h of {case}")
    assert_close(ref_state.c, numpy(c), "Keras", f"final c of {case}")


def test_zero_initial_state_and_final_state_order():
    """Keras's default zero state is refconv's; ``[h, c]`` comes back as LSTMStateTuple(c, h)."""
    layer, shape, frame, rng = random_layer(CASES[3], seed=7)
    inputs = rng.standard_normal((3, 5, *frame))
    outputs, h, c = layer(inputs)
    cell = from_keras(layer.get_config(), layer.get_weights(), shape)
    ref_outputs, ref_state = dynamic_rnn(cell, inputs)
    assert_close(ref_outputs, numpy(outputs), "Keras", "outputs")
    as_keras = state_to_keras(ref_state)
    assert_close(as_keras[0], numpy(h), "Keras", "h")
    assert_close(as_keras[1], numpy(c), "Keras", "c")


def test_go_backwards_is_a_reversal_the_user_does():
    """Keras reads backwards and returns outputs in reading order: refconv on inputs[:, ::-1]."""
    layer, shape, frame, rng = random_layer(CASES[0], seed=11)
    config = {**layer.get_config(), "go_backwards": True}
    backwards = keras.layers.ConvLSTM1D.from_config(config)
    backwards.build((None, None, *frame))
    backwards.set_weights(layer.get_weights())
    inputs = rng.standard_normal((2, 5, *frame))
    outputs, h, c = backwards(inputs)
    with pytest.warns(InteropWarning, match="go_backwards"):
        cell = from_keras(backwards.get_config(), backwards.get_weights(), shape)
    ref_outputs, ref_state = dynamic_rnn(cell, inputs[:, ::-1])
    assert_close(ref_outputs, numpy(outputs), "Keras", "outputs (processing order)")
    assert_close(ref_state.c, numpy(c), "Keras", "final c")


@pytest.mark.parametrize("rank, data_format", [(1, "channels_last"), (2, "channels_first"),
                                               (3, "channels_last")])
def test_to_keras_loads_into_keras(rank, data_format):
    """A refconv cell (forget_bias 1, strides or padding valid) exported, loaded, run by Keras."""
    if data_format == "channels_first" and not CHANNELS_FIRST_OK:
        pytest.skip("Keras's TensorFlow backend refuses channels_first convolutions on CPU")
    rng = np.random.default_rng(rank)
    shape = [6, 5, 4][:rank]
    cell = refconv.ConvLSTMCell(shape, 3, [3, 2, 3][:rank], forget_bias=1.0, normalize=False,
                                peephole=False, data_format=data_format,
                                recurrent_activation="hard_sigmoid",
                                strides=[2, 1, 1][:rank], padding="valid" if rank == 2 else "same")
    cell.build(2, seed=rank)
    cell.params["bias"] = rng.uniform(-0.5, 0.5, size=12)
    config, weights = to_keras(cell)
    layer = getattr(keras.layers, f"ConvLSTM{rank}D").from_config(config)
    frame = [*shape, 2] if data_format == "channels_last" else [2, *shape]
    layer.build((None, None, *frame))
    layer.set_weights(weights)
    inputs = rng.standard_normal((2, 4, *frame))
    state = LSTMStateTuple(*rng.standard_normal((2, 2, *cell.output_size)))
    outputs, h, c = layer(inputs, initial_state=state_to_keras(state))
    ref_outputs, ref_state = dynamic_rnn(cell, inputs, initial_state=state)
    assert_close(ref_outputs, numpy(outputs), "Keras", "outputs")
    assert_close(ref_state.h, numpy(h), "Keras", "final h")
    assert_close(ref_state.c, numpy(c), "Keras", "final c")
