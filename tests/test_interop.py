"""The importers and exporters without any framework: round trips, layouts, and bad input.

* Every exporter is its importer's inverse (``from_keras(*to_keras(cell))`` is
  ``cell``, and so on), parameter for parameter.
* The layouts are right: Keras's and ndrplz's steps written here in NumPy,
  from their equations, compute what the imported cells compute (the real
  frameworks are in test_interop_keras/torch/tf1.py).
* Bad input is an error that names the argument, with expected and actual.
"""

import warnings

import numpy as np
import pytest

from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, conv_nd, dynamic_rnn, sigmoid)
from refconv.interop import (InteropWarning, PaddingWarning, from_keras, from_tf1, from_torch,
                             state_from_keras, state_to_keras, to_keras, to_tf1, to_torch)


def lstm(shape, filters=3, kernel=None, channels=2, seed=0, **options):
    """A built ConvLSTMCell with random parameters, biases included (Keras's and PyTorch's kind)."""
    options = {"normalize": False, "peephole": False, "forget_bias": 0.0, **options}
    cell = ConvLSTMCell(shape, filters, kernel or [3] * len(shape), **options)
    cell.build(channels, seed=seed)
    rng = np.random.default_rng(seed)
    for name in cell.params:
        if "kernel" not in name:  # biases, peepholes, gammas and betas away from 0 and 1
            cell.params[name] = rng.uniform(-0.5, 0.5, size=cell.params[name].shape) + \
                (1.0 if name.endswith("gamma") else 0.0)
    return cell


def gru(shape, filters=2, kernel=None, channels=2, seed=0, normalize=True):
    cell = ConvGRUCell(shape, filters, kernel or [3] * len(shape), normalize=normalize)
    cell.build(channels, seed=seed)
    rng = np.random.default_rng(seed)
    for name in cell.params:
        if "kernel" not in name:
            cell.params[name] = rng.uniform(0.5, 1.5, size=cell.params[name].shape)
    return cell


def assert_same_params(a, b):
    assert type(a) is type(b)
    if isinstance(a, MultiRNNCell):
        assert len(a.cells) == len(b.cells)
        for x, y in zip(a.cells, b.cells):
            assert_same_params(x, y)
        return
    assert sorted(a.params) == sorted(b.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    for option in ("shape", "filters", "kernel", "normalize", "data_format", "in_channels"):
        assert getattr(a, option) == getattr(b, option), option


# --- Keras ---------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {},
    {"data_format": "channels_first", "recurrent_activation": "hard_sigmoid"},
    {"padding": "valid", "strides": [2, 1], "activation": "relu"},
    {"dilation_rate": [1, 2], "recurrent_activation": "hard_sigmoid_keras2"},
])
def test_to_keras_then_from_keras_is_the_identity(options):
    keras_version = 2 if options.get("recurrent_activation") == "hard_sigmoid_keras2" else 3
    cell = lstm([7, 6], kernel=[3, 2], forget_bias=0.0, **options)
    config, weights = to_keras(cell, keras_version=keras_version)
    assert [w.shape for w in weights] == [(3, 2, 2, 12), (3, 2, 3, 12), (12,)]
    again = from_keras(config, weights, [7, 6], keras_version=keras_version)
    assert_same_params(cell, again)
    assert again.strides == cell.strides and again.padding == cell.padding
    assert again.dilation_rate == cell.dilation_rate
    assert again.recurrent_activation is cell.recurrent_activation
    # ... and back again gives Keras the very same arrays.
    for a, b in zip(to_keras(again, keras_version=keras_version)[1], weights):
        np.testing.assert_array_equal(a, b)


def test_to_keras_folds_the_forget_bias():
    cell = lstm([6], forget_bias=1.0)
    again = from_keras(*to_keras(cell), [6])
    assert again.forget_bias == 0.0
    x = np.random.default_rng(1).standard_normal((2, 4, 6, 2))
    np.testing.assert_allclose(dynamic_rnn(again, x)[0], dynamic_rnn(cell, x)[0],
                               rtol=1e-13, atol=1e-15)


def keras_numpy(config, weights, x, h, c):
    """Keras 3's ConvLSTM step, equation by equation (its ConvLSTMCell.call), in NumPy."""
    kernel, recurrent_kernel, bias = weights
    fmt = config["data_format"]
    ca = -1 if fmt == "channels_last" else 1
    shape = [1] * x.ndim
    shape[ca] = -1
    hard_sigmoid = (lambda v: np.clip(v / 6 + 0.5, 0, 1))  # Keras 3
    act = {"sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid}[config["recurrent_activation"]]
    y = conv_nd(x, kernel, config["strides"], config["padding"], config["dilation_rate"], fmt) \
        + conv_nd(h, recurrent_kernel, data_format=fmt) + bias.reshape(shape)
    i, f, g, o = np.split(y, 4, axis=ca)  # Keras's blocks i, f, c, o
    c = act(f) * c + act(i) * np.tanh(g)
    return act(o) * np.tanh(c), c


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_from_keras_layout_against_keras_equations(data_format):
    rng = np.random.default_rng(2)
    config = {"filters": 2, "kernel_size": (3, 2), "strides": (2, 1), "padding": "same",
              "data_format": data_format, "dilation_rate": (1, 1), "activation": "tanh",
              "recurrent_activation": "hard_sigmoid", "use_bias": True,
              "seed": None}  # Keras 3's key: its hard_sigmoid is x / 6 + 1/2
    weights = [rng.uniform(-1, 1, (3, 2, 3, 8)), rng.uniform(-1, 1, (3, 2, 2, 8)),
               rng.uniform(-1, 1, 8)]
    cell = from_keras(config, weights, [7, 5])
    frame = (7, 5, 3) if data_format == "channels_last" else (3, 7, 5)
    x = rng.standard_normal((2, 3, *frame))
    h, c = rng.standard_normal((2, 2, *cell.output_size))
    outputs, state = dynamic_rnn(cell, x, initial_state=state_from_keras([h, c]))
    for t in range(3):
        h, c = keras_numpy(config, weights, x[:, t], h, c)
        np.testing.assert_allclose(outputs[:, t], h, rtol=1e-12, atol=1e-14)
    assert state_to_keras(state)[1] is state.c
    np.testing.assert_allclose(state.c, c, rtol=1e-12, atol=1e-14)


def test_from_keras_defaults_and_no_bias():
    """Missing keys take Keras's defaults (padding valid!); use_bias=False means a zero bias."""
    rng = np.random.default_rng(3)
    cell = from_keras({"filters": 2, "kernel_size": 3, "use_bias": False},
                      [rng.standard_normal((3, 3, 1, 8)), rng.standard_normal((3, 3, 2, 8))],
                      [6, 5])
    assert cell.padding == "VALID" and cell.state_shape == [4, 3]
    assert cell.data_format == "channels_last" and cell.kernel == [3, 3]
    np.testing.assert_array_equal(cell.params["bias"], np.zeros(8))
    assert (cell.normalize, cell.peephole, cell.forget_bias) == (False, False, 0.0)


def test_keras_activation_names_by_version():
    config = {"filters": 1, "kernel_size": [1], "recurrent_activation": "hard_sigmoid",
              "activation": {"module": "keras.activations", "class_name": "function",
                             "config": "relu"}}
    weights = [np.ones((1, 1, 4)), np.ones((1, 1, 4)), np.zeros(4)]
    v3, v2 = (from_keras(config, weights, [3], keras_version=v) for v in (3, 2))
    x = np.array([2.0])
    assert v3.recurrent_activation(x) == pytest.approx(2 / 6 + 0.5)
    assert v2.recurrent_activation(x) == pytest.approx(0.2 * 2 + 0.5)
    assert v3.activation(np.array([-1.0])) == 0.0  # relu
    assert from_keras({**config, "activation": None}, weights, [3],
                      keras_version=3).activation(x) == 2.0


def test_from_keras_warns_about_go_backwards():
    config = {"filters": 1, "kernel_size": [1], "go_backwards": True}
    with pytest.warns(InteropWarning, match=r"inputs\[:, ::-1\]"):
        from_keras(config, [np.ones((1, 1, 4)), np.ones((1, 1, 4)), np.zeros(4)], [3])


@pytest.mark.parametrize("change, error, match", [
    (dict(config="no"), TypeError, r"config: expected a Keras layer's get_config\(\) dict"),
    (dict(config={"kernel_size": [3]}), ValueError, r"config: expected the key 'filters'"),
    (dict(config={"filters": 2, "kernel_size": [3], "padding": "causal"}), ValueError,
     r"config\['padding'\]: expected one of \['valid', 'same'\], got 'causal'"),
    (dict(config={"filters": 2, "kernel_size": [3], "activation": "gelu"}), ValueError,
     r"config\['activation'\]: expected a Keras 3 activation .* got 'gelu'"),
    (dict(config={"filters": 2, "kernel_size": [3], "strides": [1, 1]}), ValueError,
     r"config\['strides'\]: expected an int or 1 positive ints"),
    (dict(shape=[7, 7]), ValueError, r"shape: expected 1 ints .* got 2"),
    (dict(weights=np.zeros(3)), TypeError, r"weights: expected the list layer.get_weights\(\)"),
    (dict(weights=[np.zeros((3, 1, 8))] * 2), ValueError, r"weights: expected 3 arrays"),
    (dict(weights=[np.zeros((3, 1, 4)), np.zeros((3, 2, 8)), np.zeros(8)]), ValueError,
     r"weights\[0\] \(kernel\): expected shape \[3, C_in, 8\], got \[3, 1, 4\]"),
    (dict(weights=[np.zeros((3, 1, 8)), np.zeros((2, 2, 8)), np.zeros(8)]), ValueError,
     r"weights\[1\] \(recurrent_kernel\): expected shape \[3, 2, 8\], got \[2, 2, 8\]"),
    (dict(weights=[np.zeros((3, 1, 8)), np.zeros((3, 2, 8)), np.zeros(4)]), ValueError,
     r"weights\[2\] \(bias\): expected shape \[8\], got \[4\]"),
    (dict(weights=[np.zeros((3, 1, 8), dtype=complex), np.zeros((3, 2, 8)), np.zeros(8)]),
     TypeError, r"weights\[0\] \(kernel\): expected a real numeric array, got dtype complex128"),
    (dict(keras_version="3"), ValueError, r"keras_version: expected 3 .* or 2"),
])
def test_from_keras_bad_input(change, error, match):
    arguments = {"config": {"filters": 2, "kernel_size": [3], "padding": "same"},
                 "weights": [np.zeros((3, 1, 8)), np.zeros((3, 2, 8)), np.zeros(8)],
                 "shape": [7], **change}
    keras_version = arguments.pop("keras_version", 3)
    with pytest.raises(error, match=match):
        from_keras(**arguments, keras_version=keras_version)


@pytest.mark.parametrize("cell, error, match", [
    (lambda: gru([5]), TypeError, r"cell: expected a ConvLSTMCell \(Keras has no ConvGRU\)"),
    (lambda: lstm([5], normalize=True), ValueError, r"cell: expected normalize=False"),
    (lambda: lstm([5], peephole=True), ValueError, r"cell: expected peephole=False"),
    (lambda: lstm([3, 3, 3, 3]), ValueError, r"cell: expected 1 to 3 spatial axes"),
    (lambda: lstm([9], strides=2, dilation_rate=2), ValueError, r"strides > 1 together"),
    (lambda: lstm([5], activation=np.sin), ValueError, r"cell.activation: expected an "
                                                       r"activation Keras 3 has"),
    (lambda: lstm([5], recurrent_activation="hard_sigmoid_keras2"), ValueError,
     r"cell.recurrent_activation: .* got 'hard_sigmoid_keras2'"),
    (lambda: ConvLSTMCell([5], 2, [3], normalize=False, peephole=False), ValueError,
     r"cell: has no parameters yet"),
])
def test_to_keras_bad_input(cell, error, match):
    with pytest.raises(error, match=match):
        to_keras(cell())


def test_keras_state_helpers():
    h, c = np.ones((1, 2)), np.zeros((1, 2))
    state = state_from_keras([h, c])
    assert isinstance(state, LSTMStateTuple)
    assert state.h is not None and (state.h == 1).all() and (state.c == 0).all()
    assert state_to_keras(state)[0] is state.h
    with pytest.raises(TypeError, match=r"state: expected Keras's \[h, c\], got list of "
                                        r"length 3"):
        state_from_keras([h, c, c])


# --- PyTorch ----------------------------------------------------------------------------

@pytest.mark.parametrize("gate_order, input_order", [("ifog", "xh"), ("ifgo", "hx"),
                                                     ("zifo", "xh"), ("ofci", "hx")])
def test_to_torch_then_from_torch_is_the_identity(gate_order, input_order):
    multi = MultiRNNCell([lstm([6, 5], 3, [3, 1], seed=1, data_format="channels_first"),
                          lstm([6, 5], 2, [1, 5], channels=3, seed=2,
                               data_format="channels_first")])
    state_dict = to_torch(multi, gate_order=gate_order, input_order=input_order, as_numpy=True)
    assert [(k, v.shape) for k, v in state_dict.items()] == [
        ("cell_list.0.conv.weight", (12, 5, 3, 1)), ("cell_list.0.conv.bias", (12,)),
        ("cell_list.1.conv.weight", (8, 5, 1, 5)), ("cell_list.1.conv.bias", (8,))]
    again = from_torch(state_dict, [6, 5], gate_order=gate_order, input_order=input_order)
    assert_same_params(multi, again)


def test_from_torch_prefix_without_layer_gives_one_cell():
    cell = lstm([9], 2, [5], seed=4, data_format="channels_first")
    state_dict = to_torch(cell, prefix="encoder.conv.", as_numpy=True)
    assert sorted(state_dict) == ["encoder.conv.bias", "encoder.conv.weight"]
    again = from_torch(state_dict, [9], prefix="encoder.conv.")
    assert isinstance(again, ConvLSTMCell)
    assert_same_params(cell, again)
    # No bias in the state dict (a Conv made with bias=False): a zero bias.
    del state_dict["encoder.conv.bias"]
    assert not from_torch(state_dict, [9], prefix="encoder.conv.").params["bias"].any()


def ndrplz_numpy(weight, bias, x, h, c):
    """ndrplz's cell in NumPy: pad k // 2 on both sides, [out, in, *k] weight, blocks i f o g."""
    xh = np.concatenate([x, h], axis=1)
    pads = [(0, 0), (0, 0)] + [(k // 2, k // 2) for k in weight.shape[2:]]
    kernel = weight.transpose(*range(2, weight.ndim), 1, 0)
    y = conv_nd(np.pad(xh, pads), kernel, padding="VALID", data_format="channels_first")
    y = y + bias.reshape(1, -1, *[1] * (x.ndim - 2))
    i, f, o, g = np.split(y, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def test_from_torch_layout_against_ndrplz_equations():
    rng = np.random.default_rng(5)
    weight, bias = rng.uniform(-0.5, 0.5, (12, 5, 3, 5)), rng.uniform(-0.5, 0.5, 12)
    cell = from_torch({"cell_list.0.conv.weight": weight, "cell_list.0.conv.bias": bias},
                      [6, 7]).cells[0]
    x = rng.standard_normal((2, 3, 2, 6, 7))
    h, c = rng.standard_normal((2, 2, 3, 6, 7))
    outputs, state = dynamic_rnn(cell, x, initial_state=LSTMStateTuple(c, h))
    for t in range(3):
        h, c = ndrplz_numpy(weight, bias, x[:, t], h, c)
        np.testing.assert_allclose(outputs[:, t], h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state.c, c, rtol=1e-12, atol=1e-14)


def test_from_torch_reads_torch_like_tensors():
    """Anything with detach/cpu/numpy (a torch tensor) is read, widened to float64."""
    class FakeTensor:
        dtype = "torch.float32"

        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def is_floating_point(self):
            return True

        def numpy(self):
            return self.a

    weight = np.random.default_rng(6).standard_normal((8, 3, 3)).astype(np.float32)
    cell = from_torch({"conv.weight": FakeTensor(weight)}, [5], prefix="conv.")
    assert cell.params["kernel"].dtype == np.float64
    # [out, in, k] -> [k, in, out], blocks i f o g -> z i f o (F = 2: g is channels 6, 7)
    np.testing.assert_array_equal(cell.params["kernel"],
                                  weight.transpose(2, 1, 0)[..., [6, 7, 0, 1, 2, 3, 4, 5]])


def test_even_kernels_warn():
    state_dict = to_torch(lstm([6, 6], 2, [2, 3], data_format="channels_first"), prefix="c.",
                          padding="same", as_numpy=True)
    with pytest.warns(PaddingWarning, match=r"kernel \[2, 3\] is even on axes \[0\]"):
        from_torch(state_dict, [6, 6], prefix="c.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_torch(state_dict, [6, 6], prefix="c.", padding="same")


@pytest.mark.parametrize("change, error, match", [
    (dict(state_dict=[1, 2]), TypeError, r"state_dict: expected a mapping"),
    (dict(state_dict={"x.weight": np.zeros((8, 3, 3))}), ValueError,
     r"state_dict: expected the key 'cell_list.0.conv.weight' .* got the keys \['x.weight'\]"),
    (dict(gate_order="ifoo"), ValueError, r"gate_order: expected the order of the 4 gate blocks"),
    (dict(gate_order="ifgz"), ValueError, r"gate_order: .* got 'ifgz'"),
    (dict(input_order="x,h"), ValueError, r"input_order: expected one of \['xh', 'hx'\]"),
    (dict(padding="k/2"), ValueError, r"padding: expected one of \['k//2', 'same'\]"),
    (dict(shape=[5, 5]), ValueError, r"shape: expected 1 ints .* got 2"),
    (dict(shape=5), ValueError, r"shape: expected the spatial size"),
    (dict(state_dict={"cell_list.0.conv.weight": np.zeros((6, 3, 3))}), ValueError,
     r"state_dict\['cell_list.0.conv.weight'\]: expected shape \[4F, C_in \+ F, \*kernel\]"),
    (dict(state_dict={"cell_list.0.conv.weight": np.zeros((8, 3, 3)),
                      "cell_list.0.conv.bias": np.zeros(4)}), ValueError,
     r"state_dict\['cell_list.0.conv.bias'\]: expected shape \[8\], got \[4\]"),
    (dict(state_dict={"cell_list.0.conv.weight": np.zeros((8, 3, 3)),
                      "cell_list.1.conv.weight": np.zeros((8, 5, 3))}), ValueError,
     r"state_dict\['cell_list.1.conv.weight'\]: expected 2 \+ F input channels"),
])
def test_from_torch_bad_input(change, error, match):
    arguments = {"state_dict": {"cell_list.0.conv.weight": np.zeros((8, 3, 3))}, "shape": [5],
                 **change}
    with pytest.raises(error, match=match):
        from_torch(**arguments)


@pytest.mark.parametrize("cell, kwargs, error, match", [
    (lambda: gru([5]), {}, TypeError, r"cell: expected a ConvLSTMCell or a MultiRNNCell"),
    (lambda: MultiRNNCell([lstm([5])]), {"prefix": "conv."}, ValueError,
     r"prefix: expected '\{layer\}' in it"),
    (lambda: lstm([5], normalize=True), {}, ValueError, r"cell: expected normalize=False"),
    (lambda: lstm([9], strides=2), {}, ValueError, r"cell: expected the input convolution SAME"),
    (lambda: lstm([5], recurrent_activation="hard_sigmoid"), {}, ValueError,
     r"cell.recurrent_activation: expected the model's recurrent_activation 'sigmoid' .*"
     r"got 'hard_sigmoid'"),
    (lambda: lstm([5]), {"gate_order": "abcd"}, ValueError, r"gate_order: "),
])
def test_to_torch_bad_input(cell, kwargs, error, match):
    with pytest.raises(error, match=match):
        to_torch(cell(), as_numpy=True, **kwargs)


# --- TensorFlow 1 ----------------------------------------------------------------------------

@pytest.mark.parametrize("normalize, peephole", [(True, True), (True, False), (False, True),
                                                 (False, False)])
def test_to_tf1_then_from_tf1_is_the_identity_lstm(normalize, peephole):
    cell = lstm([5, 4], 3, [3, 2], normalize=normalize, peephole=peephole, forget_bias=0.7)
    variables = to_tf1(cell)
    expected = {"rnn/conv_lstm_cell/kernel"}
    expected |= {f"rnn/conv_lstm_cell/W_c{g}" for g in "ifo"} if peephole else set()
    expected |= {f"rnn/conv_lstm_cell/{n}/{p}" for n in ("LayerNorm", "LayerNorm_1",
                 "LayerNorm_2", "LayerNorm_3", "LayerNorm_4") for p in ("beta", "gamma")} \
        if normalize else {"rnn/conv_lstm_cell/bias"}
    assert set(variables) == expected
    with_suffix = {name + ":0": value for name, value in variables.items()}  # as v.name says
    again = from_tf1(with_suffix, None if peephole else [5, 4], forget_bias=0.7)
    assert_same_params(cell, again)
    assert again.peephole == peephole and again.forget_bias == 0.7


def test_tf1_shape_from_channels_first_peepholes():
    """W_ci is one frame of the state: [F, *shape] in channels_first, read as such."""
    cell = lstm([5, 4], 3, [3, 2], peephole=True, data_format="channels_first", forget_bias=1.0)
    variables = to_tf1(cell)
    assert variables["rnn/conv_lstm_cell/W_ci"].shape == (3, 5, 4)
    assert_same_params(cell, from_tf1(variables, data_format="channels_first"))
    # Read as channels_last, W_ci's last axis (4) is not F = 3: W_ci is named, not shape.
    with pytest.raises(ValueError, match=r"variables\['rnn/conv_lstm_cell/W_ci'\]: expected "
                                         r"shape \[\*shape, 3\] .*channels_last.* got \[3, 5, 4\]"):
        from_tf1(variables, [5, 4])


def test_to_tf1_bad_input():
    with pytest.raises(TypeError, match=r"cell: expected a cell or a pair \(cell_fw, cell_bw\), "
                                        r"got a tuple of length 3"):
        to_tf1((lstm([5]),) * 3)
    with pytest.raises(ValueError, match=r"cell: expected the seed's input convolution"):
        to_tf1(lstm([9], strides=2))
    with pytest.raises(TypeError, match=r"cell\[1\]: expected a ConvLSTMCell, ConvGRUCell"):
        to_tf1((lstm([5]), "cell"))


def test_tf1_layer_norms_in_call_order():
    """LayerNorm is z's, LayerNorm_1 z_i's, ... LayerNorm_4 c's; the GRU's r, u, candidate."""
    variables = to_tf1(lstm([4], normalize=True))
    for i, gate in enumerate(["z", "z_i", "z_f", "z_o", "c"]):
        scope = "LayerNorm" + (f"_{i}" if i else "")
        np.testing.assert_array_equal(variables[f"rnn/conv_lstm_cell/{scope}/gamma"],
                                      from_tf1(variables, [4]).params[f"{gate}/gamma"])
    cell = gru([4])
    variables = to_tf1(cell)
    for gate, name in [("r", "gates/LayerNorm"), ("u", "gates/LayerNorm_1"),
                       ("candidate", "candidate/LayerNorm")]:
        np.testing.assert_array_equal(variables[f"rnn/conv_gru_cell/{name}/beta"],
                                      cell.params[f"{gate}/beta"])


@pytest.mark.parametrize("normalize", [True, False])
def test_to_tf1_then_from_tf1_is_the_identity_gru(normalize):
    cell = gru([3, 4, 3], 2, [1, 3, 3], normalize=normalize)
    again = from_tf1(to_tf1(cell, scope="encoder/rnn"), [3, 4, 3])
    assert_same_params(cell, again)


def test_tf1_multi_and_bidirectional_structures():
    multi = MultiRNNCell([lstm([6], 3, [3]), gru([6], 2, [3], channels=3)])
    again = from_tf1(to_tf1(multi), [6])
    assert_same_params(multi, again)
    assert "rnn/multi_rnn_cell/cell_1/conv_gru_cell/gates/kernel" in to_tf1(multi)

    fw, bw = lstm([6], seed=1), lstm([6], seed=2)
    variables = to_tf1((fw, bw))
    assert "bidirectional_rnn/bw/conv_lstm_cell/kernel" in variables
    got_fw, got_bw = from_tf1(variables, [6])
    assert_same_params(fw, got_fw)
    assert_same_params(bw, got_bw)

    shared = lstm([6], normalize=True, peephole=True, forget_bias=1.0)  # from_tf1's default
    variables = to_tf1((shared, shared))
    assert not any("/bw/" in name for name in variables)  # as TF: created once, under fw
    got_fw, got_bw = from_tf1(variables)
    assert got_fw is got_bw
    assert_same_params(shared, got_fw)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 2))
    np.testing.assert_array_equal(bidirectional_dynamic_rnn(got_fw, got_bw, x)[0][1],
                                  bidirectional_dynamic_rnn(shared, shared, x)[0][1])


def test_from_tf1_ignores_other_variables_and_picks_a_scope():
    variables = {**to_tf1(lstm([5], peephole=True)),
                 **to_tf1(gru([5]), scope="decoder/rnn"),
                 "global_step": np.array(10), "dense/kernel": np.zeros((3, 4)),
                 "rnn/conv_lstm_cell/kernel/Adam": np.zeros((3, 5, 12))}
    with pytest.raises(ValueError, match=r"variables: found the cells of 2 RNNs: "
                                         r"\['decoder/rnn/conv_gru_cell', 'rnn/conv_lstm_cell'\]; "
                                         r"pass scope= to choose one"):
        from_tf1(variables)
    assert isinstance(from_tf1(variables, scope="rnn"), ConvLSTMCell)
    assert isinstance(from_tf1(variables, [5], scope="decoder"), ConvGRUCell)


@pytest.mark.parametrize("variables, kwargs, error, match", [
    ([], {}, TypeError, r"variables: expected a dict name -> array"),
    ({"rnn/dense/kernel": np.zeros((3, 4))}, {}, ValueError,
     r"variables: expected a ConvLSTM or ConvGRU cell's variables, such as "
     r"'rnn/conv_lstm_cell/kernel'"),
    ({"rnn/conv_lstm_cell/kernel": np.zeros((3, 5, 12))}, {}, ValueError,
     r"shape: required, since the cells have no peephole weights"),
    ({"rnn/conv_lstm_cell/kernel": np.zeros((3, 5, 12))}, {"shape": [4]}, ValueError,
     r"variables: missing 'rnn/conv_lstm_cell/bias' \(refconv's 'bias'\)"),
    ({"rnn/conv_lstm_cell/kernel": np.zeros((3, 5, 12)),
      "rnn/conv_lstm_cell/bias": np.zeros(8)}, {"shape": [4]}, ValueError,
     r"variables\['rnn/conv_lstm_cell/bias'\]: expected shape \[12\] \(refconv's 'bias'\), "
     r"got \[8\]"),
    ({"rnn/conv_lstm_cell/kernel": np.zeros((3, 5, 12)),
      "rnn/conv_lstm_cell/bias": np.zeros(12)}, {"shape": [4, 4]}, ValueError,
     r"variables\['rnn/conv_lstm_cell/kernel'\]: expected shape \[\*kernel \(2 ints\)"),
    ({"rnn/conv_lstm_cell/kernel": np.zeros((3, 5, 12)),
      "rnn/conv_lstm_cell/W_ci": np.zeros((4, 3))}, {"shape": [5]}, ValueError,
     r"shape: expected \[4\] \(the spatial size of 'rnn/conv_lstm_cell/W_ci'"),
    ({"bidirectional_rnn/bw/conv_lstm_cell/kernel": np.zeros((3, 5, 12)),
      "bidirectional_rnn/bw/conv_lstm_cell/bias": np.zeros(12)}, {"shape": [4]}, ValueError,
     r"variables: expected the forward cell of a bidirectional RNN"),
    ({"rnn/conv_lstm_cell/kernel": np.zeros((3, 5, 12)),
      "rnn/conv_lstm_cell/bias": np.zeros(12), "x": 1}, {"shape": [4], "data_format": "NC"},
     ValueError, r"data_format: expected one of"),
    ({0: np.zeros(3)}, {}, TypeError, r"variables: expected string keys"),
])
def test_from_tf1_bad_input(variables, kwargs, error, match):
    with pytest.raises(error, match=match):
        from_tf1(variables, **kwargs)


def test_from_tf1_missing_layer_norm_and_bias_with_layer_norm():
    variables = to_tf1(lstm([4], normalize=True))
    del variables["rnn/conv_lstm_cell/LayerNorm_3/gamma"]
    with pytest.raises(ValueError, match=r"missing 'rnn/conv_lstm_cell/LayerNorm_3/gamma' "
                                         r"\(refconv's 'z_o/gamma'\)"):
        from_tf1(variables, [4])
    variables = {**to_tf1(lstm([4], normalize=True)), "rnn/conv_lstm_cell/bias": np.zeros(12)}
    with pytest.raises(ValueError, match=r"got both 'rnn/conv_lstm_cell/bias' and layer norms"):
        from_tf1(variables, [4])
