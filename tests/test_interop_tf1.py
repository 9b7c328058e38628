"""refconv against the seed's own cells run by TensorFlow, through ``from_tf1``, in float64.

The seed's ``ConvLSTMCell`` and ``ConvGRUCell`` are written here as the seed
writes them, on ``tf.compat.v1`` (TensorFlow 2.x with tf_keras and
``TF_USE_LEGACY_KERAS=1`` still has ``RNNCell``, ``dynamic_rnn`` and
``bidirectional_dynamic_rnn``), with ``tf.contrib.layers.layer_norm`` rebuilt
from ``tf.nn.moments`` and ``tf.nn.batch_normalization`` (epsilon 1e-12, its
variables named as contrib names them). Two adaptations: the variables take the
inputs' dtype (the seed's ``get_variable`` calls default to float32, so the seed
runs only in float32), and only ``channels_last`` (TensorFlow's CPU convolutions
refuse channels_first, and the seed's channels_first is broken anyway, see SPEC).

Each case runs a graph with random non-zero values in every variable, exports
``{v.name: value}``, and checks refconv's outputs and final states after
``from_tf1`` to ``rtol=1e-10``. Keras 2's hard sigmoid is checked here too,
against tf_keras's ConvLSTM2D.
"""

import numpy as np
import pytest

from _frameworks import assert_close, report_worst, require

import refconv
from refconv import (LSTMStateTuple, MultiRNNCell, bidirectional_dynamic_rnn, dynamic_rnn,
                     hard_sigmoid_keras2)
from refconv.interop import from_keras, from_tf1, keras_version_of, load_tf1_checkpoint, to_keras

tf = require("tensorflow")
require("tf_keras")  # what tf.compat.v1.nn.rnn_cell is made of since TF 2.16
v1 = tf.compat.v1


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    report_worst(request, "TensorFlow", f"TensorFlow {tf.__version__} (tf.compat.v1 graphs, "
                                        f"tf_keras)")


# --- the seed's cells ------------------------------------------------------------------

def layer_norm(inputs):
    """``tf.contrib.layers.layer_norm(inputs)`` with its defaults, rebuilt.

    Variables ``LayerNorm/beta`` then ``LayerNorm/gamma`` (``LayerNorm_1``, ...
    on later calls in the same scope), shaped like the last axis; mean and
    variance over every non-batch axis; epsilon 1e-12.
    """
    with v1.variable_scope(None, default_name="LayerNorm"):
        params_shape = inputs.shape[-1:]
        beta = v1.get_variable("beta", params_shape, inputs.dtype,
                               initializer=v1.zeros_initializer())
        gamma = v1.get_variable("gamma", params_shape, inputs.dtype,
                                initializer=v1.ones_initializer())
        mean, variance = tf.nn.moments(inputs, list(range(1, inputs.shape.rank)), keepdims=True)
        return tf.nn.batch_normalization(inputs, mean, variance, offset=beta, scale=gamma,
                                         variance_epsilon=1e-12)


class ConvLSTMCell(v1.nn.rnn_cell.RNNCell):
    """The seed's ConvLSTMCell (channels_last), variables in the inputs' dtype."""

    def __init__(self, shape, filters, kernel, forget_bias=1.0, activation=tf.tanh,
                 normalize=True, peephole=True, reuse=None):
        super().__init__(_reuse=reuse)
        self._kernel, self._filters = kernel, filters
        self._forget_bias, self._activation = forget_bias, activation
        self._normalize, self._peephole = normalize, peephole
        self._size = tf.TensorShape(shape + [filters])
        self._feature_axis = self._size.ndims

    @property
    def state_size(self):
        return v1.nn.rnn_cell.LSTMStateTuple(self._size, self._size)

    @property
    def output_size(self):
        return self._size

    def call(self, x, state):
        c, h = state
        x = tf.concat([x, h], axis=self._feature_axis)
        n, m = x.shape[-1], 4 * self._filters
        W = v1.get_variable("kernel", self._kernel + [n, m], x.dtype)
        y = v1.nn.convolution(x, W, "SAME")
        if not self._normalize:
            y += v1.get_variable("bias", [m], x.dtype, initializer=v1.zeros_initializer())
        z, z_i, z_f, z_o = tf.split(y, 4, axis=self._feature_axis)
        if self._peephole:
            z_i += v1.get_variable("W_ci", c.shape[1:], x.dtype) * c
            z_f += v1.get_variable("W_cf", c.shape[1:], x.dtype) * c
        if self._normalize:
            z, z_i, z_f = layer_norm(z), layer_norm(z_i), layer_norm(z_f)
        z_f = tf.sigmoid(z_f + self._forget_bias)
        z_i = tf.sigmoid(z_i)
        c = c * z_f + z_i * self._activation(z)
        if self._peephole:
            z_o += v1.get_variable("W_co", c.shape[1:], x.dtype) * c
        if self._normalize:
            z_o, c = layer_norm(z_o), layer_norm(c)
        z_o = tf.sigmoid(z_o)
        h = z_o * self._activation(c)
        return h, v1.nn.rnn_cell.LSTMStateTuple(c, h)


class ConvGRUCell(v1.nn.rnn_cell.RNNCell):
    """The seed's ConvGRUCell (channels_last), variables in the inputs' dtype."""

    def __init__(self, shape, filters, kernel, activation=tf.tanh, normalize=True, reuse=None):
        super().__init__(_reuse=reuse)
        self._filters, self._kernel = filters, kernel
        self._activation, self._normalize = activation, normalize
        self._size = tf.TensorShape(shape + [filters])
        self._feature_axis = self._size.ndims

    @property
    def state_size(self):
        return self._size

    @property
    def output_size(self):
        return self._size

    def call(self, x, h):
        channels = x.shape[self._feature_axis]
        with v1.variable_scope("gates"):
            inputs = tf.concat([x, h], axis=self._feature_axis)
            n, m = channels + self._filters, 2 * self._filters
            W = v1.get_variable("kernel", self._kernel + [n, m], x.dtype)
            y = v1.nn.convolution(inputs, W, "SAME")
            if self._normalize:
                r, u = tf.split(y, 2, axis=self._feature_axis)
                r, u = layer_norm(r), layer_norm(u)
            else:
                y += v1.get_variable("bias", [m], x.dtype, initializer=v1.ones_initializer())
                r, u = tf.split(y, 2, axis=self._feature_axis)
            r, u = tf.sigmoid(r), tf.sigmoid(u)
        with v1.variable_scope("candidate"):
            inputs = tf.concat([x, r * h], axis=self._feature_axis)
            n, m = channels + self._filters, self._filters
            W = v1.get_variable("kernel", self._kernel + [n, m], x.dtype)
            y = v1.nn.convolution(inputs, W, "SAME")
            if self._normalize:
                y = layer_norm(y)
            else:
                y += v1.get_variable("bias", [m], x.dtype, initializer=v1.zeros_initializer())
            h = u * h + (1 - u) * self._activation(y)
        return h, h


# --- running a graph -------------------------------------------------------------------

def run_graph(build, seed, checkpoint=None):
    """Build a float64 graph with ``build()``, fill every variable with random values, run it.

    ``seed``: an int or the test's own ``np.random.Generator``.

    Returns ``(results, variables)``: ``sess.run(build())`` and ``{v.name: value}``.
    Kernels, biases, peepholes and betas are uniform in [-0.5, 0.5], gammas in
    [0.5, 1.5]: nothing at its initial value, nothing zero.
    """
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        fetches = build()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for v in v1.global_variables():
                low = 0.5 if v.name.endswith("gamma:0") else -0.5
                sess.run(v.assign(rng.uniform(low, low + 1.0, size=v.shape)))
            results = sess.run(fetches)
            variables = {v.name: sess.run(v) for v in v1.global_variables()}
            if checkpoint is not None:
                v1.train.Saver().save(sess, checkpoint)
    return results, variables


def lstm_state(c, h):
    return v1.nn.rnn_cell.LSTMStateTuple(tf.constant(c), tf.constant(h))


def lengths_for(batch, steps, rng):
    """Random lengths in [0, T] with one full row and one empty row."""
    lengths = rng.integers(0, steps + 1, size=batch)
    lengths[0], lengths[-1] = steps, 0
    return lengths


# --- tests -----------------------------------------------------------------------------

LSTM_CASES = [  # shape, kernel, normalize, peephole, forget_bias
    ([9], [3], True, True, 1.0),
    ([9], [4], False, False, 0.5),
    ([6, 5], [3, 3], True, True, 1.0),
    ([6, 5], [2, 3], False, True, 1.0),
    ([5, 4], [1, 3], True, False, 0.0),
    ([3, 4, 3], [1, 3, 2], True, True, 1.0),
    ([3, 4, 3], [3, 1, 3], False, False, 1.0),
]


@pytest.mark.parametrize("shape, kernel, normalize, peephole, forget_bias", LSTM_CASES)
def test_lstm_dynamic_rnn(shape, kernel, normalize, peephole, forget_bias):
    """Random initial state, and lengths including T and 0."""
    rng = np.random.default_rng(len(shape) * 10 + kernel[0])
    batch, steps, channels, filters = 3, 4, 2, 3
    x = rng.standard_normal((batch, steps, *shape, channels))
    c0, h0 = rng.standard_normal((2, batch, *shape, filters))
    lengths = lengths_for(batch, steps, rng)

    def build():
        cell = ConvLSTMCell(shape, filters, kernel, forget_bias, normalize=normalize,
                            peephole=peephole)
        return v1.nn.dynamic_rnn(cell, tf.constant(x), sequence_length=tf.constant(lengths),
                                 initial_state=lstm_state(c0, h0))

    (outputs, state), variables = run_graph(build, seed=rng)
    cell = from_tf1(variables, shape, forget_bias=forget_bias)
    assert (cell.normalize, cell.peephole) == (normalize, peephole)
    ref_outputs, ref_state = dynamic_rnn(cell, x, sequence_length=lengths,
                                         initial_state=LSTMStateTuple(c0, h0))
    assert_close(ref_outputs, outputs, "TensorFlow", "outputs")
    assert_close(ref_state.c, state.c, "TensorFlow", "final c")
    assert_close(ref_state.h, state.h, "TensorFlow", "final h")


@pytest.mark.parametrize("shape, kernel, normalize", [([8], [3], True), ([6, 5], [3, 2], False),
                                                      ([6, 5], [3, 3], True),
                                                      ([3, 4, 3], [1, 3, 3], False)])
def test_gru_dynamic_rnn(shape, kernel, normalize):
    rng = np.random.default_rng(len(shape) * 10 + kernel[-1])
    batch, steps, channels, filters = 3, 4, 2, 3
    x = rng.standard_normal((batch, steps, *shape, channels))
    h0 = rng.standard_normal((batch, *shape, filters))
    lengths = lengths_for(batch, steps, rng)

    def build():
        cell = ConvGRUCell(shape, filters, kernel, normalize=normalize)
        return v1.nn.dynamic_rnn(cell, tf.constant(x), sequence_length=tf.constant(lengths),
                                 initial_state=tf.constant(h0))

    (outputs, state), variables = run_graph(build, seed=rng)
    cell = from_tf1(variables, shape)
    assert isinstance(cell, refconv.ConvGRUCell) and cell.normalize == normalize
    ref_outputs, ref_state = dynamic_rnn(cell, x, sequence_length=lengths, initial_state=h0)
    assert_close(ref_outputs, outputs, "TensorFlow", "outputs")
    assert_close(ref_state, state, "TensorFlow", "final h")


@pytest.mark.parametrize("kind, shape, kernel, shared, with_lengths", [
    ("lstm", [9], [3], True, True),          # the seed's test.py: one cell passed twice
    ("lstm", [6, 5], [3, 3], False, True),
    ("gru", [8], [2], True, True),
    ("gru", [3, 4, 3], [1, 3, 3], True, False),  # 3-D: TF's ReverseSequence refuses rank 6
    ("lstm", [3, 4, 3], [3, 1, 1], False, False),
])
def test_bidirectional(kind, shape, kernel, shared, with_lengths):
    """Both directions from their own random initial states; a shared cell comes back shared."""
    rng = np.random.default_rng(len(shape) + 7 * shared)
    batch, steps, channels, filters = 3, 4, 2, 2
    x = rng.standard_normal((batch, steps, *shape, channels))
    lengths = lengths_for(batch, steps, rng) if with_lengths else None
    states = rng.standard_normal((2, 2, batch, *shape, filters))  # direction, (c, h)
    if kind == "lstm":
        initial = [LSTMStateTuple(*s) for s in states]
    else:
        initial = [s[1] for s in states]

    def make():
        if kind == "lstm":
            return ConvLSTMCell(shape, filters, kernel)
        return ConvGRUCell(shape, filters, kernel)

    def build():
        cell_fw = make()
        cell_bw = cell_fw if shared else make()
        tf_initial = [lstm_state(*s) if kind == "lstm" else tf.constant(s) for s in initial]
        return v1.nn.bidirectional_dynamic_rnn(
            cell_fw, cell_bw, tf.constant(x), initial_state_fw=tf_initial[0],
            initial_state_bw=tf_initial[1],
            sequence_length=None if lengths is None else tf.constant(lengths))

    ((out_fw, out_bw), (state_fw, state_bw)), variables = run_graph(build, seed=rng)
    assert any("/bw/" in name for name in variables) != shared  # TF: a shared cell lives in fw
    cell_fw, cell_bw = from_tf1(variables, shape)
    assert (cell_fw is cell_bw) == shared
    (ref_fw, ref_bw), (ref_state_fw, ref_state_bw) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, x, sequence_length=lengths, initial_state_fw=initial[0],
        initial_state_bw=initial[1])
    assert_close(ref_fw, out_fw, "TensorFlow", "forward outputs")
    assert_close(ref_bw, out_bw, "TensorFlow", "backward outputs")
    for ref, got in ((ref_state_fw, state_fw), (ref_state_bw, state_bw)):
        for a, b in zip(ref if kind == "lstm" else [ref], got if kind == "lstm" else [got]):
            assert_close(a, b, "TensorFlow", "final states")


def test_multi_rnn_cell_and_checkpoint(tmp_path):
    """A MultiRNNCell (LSTM then GRU) saved by a Saver, read back with load_tf1_checkpoint."""
    rng = np.random.default_rng(42)
    shape, batch, steps = [5, 4], 2, 3
    x = rng.standard_normal((batch, steps, *shape, 2))
    checkpoint = str(tmp_path / "model.ckpt")

    def build():
        cell = v1.nn.rnn_cell.MultiRNNCell([ConvLSTMCell(shape, 3, [3, 3], peephole=False),
                                            ConvGRUCell(shape, 2, [1, 3], normalize=False)])
        return v1.nn.dynamic_rnn(cell, tf.constant(x), dtype=tf.float64)

    (outputs, state), variables = run_graph(build, seed=rng, checkpoint=checkpoint)
    from_checkpoint = load_tf1_checkpoint(checkpoint)
    assert set(from_checkpoint) == {name[:-2] for name in variables}
    multi = from_tf1(from_checkpoint, shape)
    assert isinstance(multi, MultiRNNCell)
    ref_outputs, ref_state = dynamic_rnn(multi, x)
    assert_close(ref_outputs, outputs, "TensorFlow", "outputs")
    assert_close(ref_state[0].c, state[0].c, "TensorFlow", "final c of layer 0")
    assert_close(ref_state[1], state[1], "TensorFlow", "final h of layer 1")


def test_reverse_sequence_refuses_rank_6():
    """SPEC's note: TensorFlow cannot run a 3-D bidirectional RNN with sequence_length."""
    with tf.Graph().as_default(), v1.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError, match="ReverseSequence"):
            sess.run(v1.reverse_sequence(tf.zeros([2, 3, 1, 1, 1, 1]), tf.constant([1, 2]),
                                         seq_axis=1, batch_axis=0))


# --- Keras 2: tf_keras's ConvLSTM2D, whose hard_sigmoid is 0.2 x + 0.5 -------------------

@pytest.mark.parametrize("padding, strides", [("same", 1), ("valid", 2)])
def test_keras2_hard_sigmoid(padding, strides):
    tf_keras = require("tf_keras")
    rng = np.random.default_rng(5)
    shape, channels, filters = [7, 6], 2, 3
    layer = tf_keras.layers.ConvLSTM2D(filters, (3, 2), padding=padding, strides=strides,
                                       recurrent_activation="hard_sigmoid", dtype="float64",
                                       return_sequences=True, return_state=True)
    layer.build((None, None, *shape, channels))
    layer.set_weights([rng.uniform(-0.7, 0.7, size=w.shape) for w in layer.get_weights()])
    x = rng.standard_normal((2, 4, *shape, channels))
    config = layer.get_config()
    assert keras_version_of(config)[0] == 2
    cell = from_keras(config, layer.get_weights(), shape)  # default arguments: Keras 2 read off
    assert cell.recurrent_activation is hard_sigmoid_keras2
    h0, c0 = rng.standard_normal((2, 2, *cell.output_size))
    outputs, h, c = layer(x, initial_state=[tf.constant(h0), tf.constant(c0)])
    ref_outputs, ref_state = dynamic_rnn(cell, x, initial_state=LSTMStateTuple(c0, h0))
    assert_close(ref_outputs, outputs.numpy(), "TensorFlow", "Keras 2 outputs")
    assert_close(ref_state.c, c.numpy(), "TensorFlow", "Keras 2 final c")
    # ... Keras 3's reading of the same config is refused, and would be a different function.
    with pytest.raises(ValueError, match=r"keras_version: expected 2 or None \(the config is "
                                         r"Keras 2's: it has a 'time_major' key\), got 3"):
        from_keras(config, layer.get_weights(), shape, keras_version=3)
    unmarked = {key: value for key, value in config.items() if key != "time_major"}
    keras3 = from_keras(unmarked, layer.get_weights(), shape, keras_version=3)
    assert np.abs(dynamic_rnn(keras3, x)[0] - layer(x)[0].numpy()).max() > 1e-3

    # Back: a refconv cell with Keras 2's hard sigmoid, loaded into tf_keras.
    config, weights = to_keras(cell, keras_version=2)
    again = tf_keras.layers.ConvLSTM2D.from_config(config)
    again.build((None, None, *shape, channels))
    again.set_weights(weights)
    outputs = again(x, initial_state=[tf.constant(h0), tf.constant(c0)])[0]
    assert_close(ref_outputs, outputs.numpy(), "TensorFlow",
                 "to_keras(keras_version=2) outputs")
