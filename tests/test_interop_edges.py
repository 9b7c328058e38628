"""The importers at their edges, without any framework: no silent guesses, clear errors.

* Flax's layout from its equations (written here in NumPy, with explicit
  zero padding, independently of refconv's SAME): every zero padding Flax
  has maps exactly; the paddings that cannot are refused by name.
* Keras's major version read off the config; a contradiction refused.
* ``from_torch``: a gap in the layers, a key it does not know under its prefix
  (a misspelled ``conv.Bias``) are errors; keys outside the prefix a warning.
* ``to_torch(bias=False)``, ``from_torch(forget_bias=)``.
* Every layer's outputs of a stack (``return_all_layers``), on the fast path.
* Each error names the field, what was expected and what came.
"""

import re
import warnings

import numpy as np
import pytest

from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, dynamic_rnn, sigmoid)
from refconv.interop import (InteropWarning, flax_rnn, from_flax, from_keras, from_tf1,
                             from_torch, keras_version_of, to_flax, to_keras, to_tf1, to_torch)
from refconv.interop.flax import embed_kernel, flax_padding


def lstm(shape, filters=3, kernel=None, channels=2, seed=0, **options):
    """A built ConvLSTMCell with random parameters and a random bias (Keras's/PyTorch's kind)."""
    options = {"normalize": False, "peephole": False, "forget_bias": 0.0, **options}
    cell = ConvLSTMCell(shape, filters, kernel or [3] * len(shape), **options)
    cell.build(channels, seed=seed)
    if "bias" in cell.params:
        rng = np.random.default_rng(seed)
        cell.params["bias"] = rng.uniform(-0.5, 0.5, cell.params["bias"].shape)
    return cell


# --- Flax, from its equations -----------------------------------------------------

def conv_explicit(x, kernel, pads):
    """Cross-correlation of ``x [B, *n, C]`` with ``kernel [*k, C, O]``, ``pads`` zeros: a loop."""
    n = len(pads)
    x = np.pad(x, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    k = kernel.shape[:n]
    out_shape = [x.shape[1 + a] - k[a] + 1 for a in range(n)]
    out = np.zeros((x.shape[0], *out_shape, kernel.shape[-1]))
    for tap in np.ndindex(*k):
        window = x[(slice(None), *[slice(t, t + o) for t, o in zip(tap, out_shape)])]
        out += window @ kernel[tap]
    return out


def flax_numpy_step(params, pads, x, c, h):
    """Flax's ConvLSTMCell.__call__, line by line, in NumPy (blocks i, g, f, o; f + 1)."""
    gates = conv_explicit(x, params["ih"]["kernel"], pads) + params["ih"].get("bias", 0) \
        + conv_explicit(h, params["hh"]["kernel"], pads) + params["hh"].get("bias", 0)
    i, g, f, o = np.split(gates, 4, axis=-1)
    f = sigmoid(f + 1)
    c = f * c + sigmoid(i) * np.tanh(g)
    return c, sigmoid(o) * np.tanh(c)


def random_flax_params(kernel_size, channels, features, use_bias, seed):
    rng = np.random.default_rng(seed)
    params = {"ih": {"kernel": rng.uniform(-0.7, 0.7, (*kernel_size, channels, 4 * features))},
              "hh": {"kernel": rng.uniform(-0.7, 0.7, (*kernel_size, features, 4 * features))}}
    if use_bias:
        params["ih"]["bias"] = rng.uniform(-0.7, 0.7, 4 * features)
        params["hh"]["bias"] = rng.uniform(-0.7, 0.7, 4 * features)
    return params


@pytest.mark.parametrize("kernel_size, padding, pads", [
    ((3,), "SAME", [(1, 1)]),
    ((4,), "SAME", [(1, 2)]),
    ((4,), "SAME_LOWER", [(2, 1)]),
    ((5,), "CAUSAL", [(4, 0)]),
    ((3,), [(0, 2)], [(0, 2)]),
    ((2, 3), [(1, 0), 1], [(1, 0), (1, 1)]),
    ((3, 3), 1, [(1, 1), (1, 1)]),
    ((1, 4, 2), [(0, 0), (3, 0), (0, 1)], [(0, 0), (3, 0), (0, 1)]),
    ((3,), [(-1, 3)], [(-1, 3)]),  # lax crops on a negative pad: still an exact embedding
])
def test_every_zero_padding_flax_has_maps_exactly(kernel_size, padding, pads):
    assert flax_padding(padding, kernel_size) == pads
    shape = [6, 5, 4][:len(kernel_size)]
    params = random_flax_params(kernel_size, 2, 3, True, seed=len(pads))
    cell = from_flax({"params": params}, shape, padding=padding)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, *shape, 2))
    c, h = rng.standard_normal((2, 2, *shape, 3))
    outputs, state = dynamic_rnn(cell, x, initial_state=LSTMStateTuple(c, h))
    if min(lo for lo, _ in pads) < 0:  # np.pad cannot crop: compare through embed_kernel only
        return
    for t in range(3):
        c, h = flax_numpy_step(params, pads, x[:, t], c, h)
        np.testing.assert_allclose(outputs[:, t], h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state.c, c, rtol=1e-12, atol=1e-14)


def test_embed_kernel_is_the_smallest_same_kernel():
    kernel = np.arange(3.0).reshape(3, 1, 1)
    embedded, offsets = embed_kernel(kernel, [(2, 0)])  # CAUSAL k=3 -> SAME k=5
    assert offsets == [(0, 2)] and embedded[:, 0, 0].tolist() == [0, 1, 2, 0, 0]
    embedded, offsets = embed_kernel(kernel, [(1, 1)])  # SAME already
    assert offsets == [(0, 0)]


def test_to_flax_then_from_flax_keeps_the_numbers():
    cell = lstm([6, 5], kernel=[2, 3], forget_bias=0.7)
    config, variables = to_flax(cell)
    assert config == {"features": 3, "kernel_size": (2, 3), "padding": "SAME", "use_bias": True}
    assert np.array_equal(variables["params"]["hh"]["bias"], np.zeros(12))
    again = from_flax(variables, [6, 5], **config)
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 5, 2))
    np.testing.assert_allclose(dynamic_rnn(again, x)[0], dynamic_rnn(cell, x)[0],
                               rtol=1e-13, atol=1e-15)
    # The equations: to_flax's parameters in Flax's step give the cell's outputs.
    c = h = np.zeros((2, 6, 5, 3))
    c, h = flax_numpy_step(variables["params"], [(0, 1), (1, 1)], x[:, 0], c, h)
    np.testing.assert_allclose(dynamic_rnn(cell, x[:, :1])[0][:, 0], h, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("padding, match", [
    ("CIRCULAR", r"padding: 'CIRCULAR' pads with copies of the frame \(wrapped around\), "
                 r"not zeros"),
    ("REFLECT", r"padding: 'REFLECT' pads with copies of the frame \(mirrored\), not zeros"),
    ("VALID", r"padding: 'VALID' shrinks x's convolution but not h's"),
    ("CAUSAL", r"padding: 'CAUSAL' is 1-D only in Flax .* kernel_size \[3, 3\]"),
    ([(1, 1), (0, 1)], r"padding: expected lo \+ hi = k - 1 = 2 on axis 1 .* \(0, 1\)"),
    ("full", r"padding: expected 'SAME', 'SAME_LOWER', 'CAUSAL', an int .* got 'full'"),
    ([1], r"padding: expected .*one per spatial axis of kernel_size \[3, 3\]\); got \[1\]"),
])
def test_from_flax_refuses_paddings_it_cannot_map(padding, match):
    params = random_flax_params((3, 3), 2, 2, True, seed=0)
    with pytest.raises(ValueError, match=match):
        from_flax(params, [5, 5], padding=padding)


@pytest.mark.parametrize("change, error, match", [
    (lambda p: {"params": {"ih": p["ih"]}}, ValueError,
     r"params\['params'\]: expected the keys 'ih' and 'hh' .* got \['ih'\]"),
    (lambda p: {**p, "extra": {}}, ValueError, r"params: expected the keys 'ih' and 'hh'"),
    (lambda p: {"ih": {**p["ih"], "Bias": p["ih"]["bias"]}, "hh": p["hh"]}, ValueError,
     r"params\['ih'\]: expected the keys 'kernel' and 'bias' .* got \['Bias', 'bias', 'kernel'\]"),
    (lambda p: {"ih": p["ih"], "hh": {"kernel": p["hh"]["kernel"]}}, ValueError,
     r"params: expected a bias in both 'ih' and 'hh' or in neither .* in ih only"),
    (lambda p: {"ih": {**p["ih"], "kernel": p["ih"]["kernel"][..., :0, :]}, "hh": p["hh"]},
     ValueError, r"params\['ih'\]\['kernel'\]: expected shape \[3, 3, C_in, 8\] with C_in >= 1"),
    (lambda p: {"ih": p["ih"], "hh": {**p["hh"], "kernel": p["hh"]["kernel"][..., :7]}},
     ValueError, r"params\['hh'\]\['kernel'\]: expected shape \[\*kernel_size, F, 4F\]"),
    (lambda p: {"ih": {**p["ih"], "bias": p["ih"]["bias"][:4]}, "hh": p["hh"]}, ValueError,
     r"params\['ih'\]\['bias'\]: expected shape \[8\], got \[4\]"),
    (lambda p: [p], TypeError, r"params: expected a mapping .* got list"),
])
def test_from_flax_bad_trees(change, error, match):
    params = random_flax_params((3, 3), 2, 2, True, seed=0)
    with pytest.raises(error, match=match):
        from_flax(change(params), [5, 5])


@pytest.mark.parametrize("options, match", [
    ({"strides": 2}, r"strides: expected None or 1 on every axis .* got 2"),
    ({"features": 3}, r"features: expected 2 \(the kernels' F\), got 3"),
    ({"kernel_size": (3, 2)}, r"kernel_size: expected \[3, 3\] .* got \(3, 2\)"),
    ({"use_bias": False}, r"use_bias: expected True \(the parameters have biases\), got False"),
    ({"data_format": "NHWC"}, r"data_format: expected one of"),
])
def test_from_flax_checks_the_attributes_it_is_given(options, match):
    params = random_flax_params((3, 3), 2, 2, True, seed=0)
    from_flax(params, [5, 5], strides=(1, 1), features=2, kernel_size=3, use_bias=True)
    with pytest.raises(ValueError, match=match):
        from_flax(params, [5, 5], **options)


@pytest.mark.parametrize("cell, options, error, match", [
    (lambda: ConvGRUCell([5], 2, [3]), {}, TypeError, r"cell: expected a ConvLSTMCell \(Flax"),
    (lambda: lstm([5], normalize=True), {}, ValueError, r"cell: expected normalize=False"),
    (lambda: lstm([5], peephole=True), {}, ValueError, r"cell: expected peephole=False"),
    (lambda: lstm([9], strides=2), {}, ValueError, r"cell: expected the input convolution SAME"),
    (lambda: lstm([5], activation="relu"), {}, ValueError,
     r"cell.activation, cell.recurrent_activation: expected \('tanh', 'sigmoid'\) .* "
     r"got \('relu', 'sigmoid'\)"),
    (lambda: lstm([5]), {"use_bias": False}, ValueError,
     r"use_bias: False needs the cell's bias, with forget_bias - 1 = -1 folded"),
    (lambda: lstm([5]), {"use_bias": "no"}, TypeError, r"use_bias: expected True or False"),
])
def test_to_flax_bad_input(cell, options, error, match):
    with pytest.raises(error, match=match):
        to_flax(cell(), **options)


def test_flax_rnn_semantics_from_refconv_runs():
    """flax_rnn's rules, checked on refconv's own runs: outputs never zeroed, length-0 carry."""
    cell = lstm([5], forget_bias=1.0)
    x = np.random.default_rng(3).standard_normal((3, 4, 5, 2))
    lengths = np.array([4, 0, 2])
    carry, outputs = flax_rnn(cell, x, seq_lengths=lengths)
    full_outputs, full_state = dynamic_rnn(cell, x)
    np.testing.assert_array_equal(outputs, full_outputs)  # Flax runs all T steps
    _, stopped = dynamic_rnn(cell, x, lengths)
    np.testing.assert_array_equal(carry.c[[0, 2]], stopped.c[[0, 2]])
    np.testing.assert_array_equal(carry.c[1], full_state.c[1])  # index -1: after all T
    # reverse + keep_order: the valid part lines up with TensorFlow's backward direction.
    _, bw_outputs = flax_rnn(cell, x, seq_lengths=lengths, reverse=True, keep_order=True)
    (_, tf_bw), _ = bidirectional_dynamic_rnn(cell, cell, x, lengths)
    np.testing.assert_allclose(bw_outputs[2, :2], tf_bw[2, :2], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(bw_outputs[0], tf_bw[0], rtol=1e-13, atol=1e-15)
    # time_major: the same numbers with the first two axes swapped.
    tm_carry, tm_outputs = flax_rnn(cell, x.swapaxes(0, 1), seq_lengths=lengths, reverse=True,
                                    keep_order=True, time_major=True)
    np.testing.assert_array_equal(tm_outputs.swapaxes(0, 1), bw_outputs)
    np.testing.assert_array_equal(tm_carry.c,
                                  flax_rnn(cell, x, seq_lengths=lengths, reverse=True)[0].c)
    with pytest.raises(ValueError, match=r"seq_lengths: expected 3 ints in \[0, 4\]"):
        flax_rnn(cell, x, seq_lengths=[5, 0, 1])
    with pytest.raises(TypeError, match=r"initial_carry: expected Flax's carry \(c, h\)"):
        flax_rnn(cell, x, initial_carry=np.zeros((3, 5, 3)))


# --- Keras: the major version from the config ---------------------------------------

KERAS2 = {"filters": 1, "kernel_size": [1], "recurrent_activation": "hard_sigmoid",
          "dtype": "float64", "time_major": False}
KERAS3 = {"filters": 1, "kernel_size": [1], "recurrent_activation": "hard_sigmoid", "seed": None,
          "dtype": {"module": "keras", "class_name": "DTypePolicy",
                    "config": {"name": "float64"}, "registered_name": None}}
WEIGHTS = [np.ones((1, 1, 4)), np.ones((1, 1, 4)), np.zeros(4)]


def test_keras_version_read_off_the_config():
    assert keras_version_of(KERAS2)[0] == 2 and keras_version_of(KERAS3)[0] == 3
    assert keras_version_of({**KERAS2, "dtype": {"class_name": "Policy",
                                                 "config": {"name": "mixed_float16"}}})[0] == 2
    assert keras_version_of({"filters": 1})[0] is None
    assert keras_version_of({**KERAS2, "seed": 1})[0] is None  # signs of both
    x = np.array([2.0])
    assert from_keras(KERAS2, WEIGHTS, [3]).recurrent_activation(x) == pytest.approx(0.9)
    assert from_keras(KERAS3, WEIGHTS, [3]).recurrent_activation(x) == pytest.approx(2 / 6 + .5)
    # Without hard_sigmoid the version changes nothing: an unmarked config is read.
    assert from_keras({"filters": 1, "kernel_size": [1]}, WEIGHTS, [3]).kernel == [1]


@pytest.mark.parametrize("config, version, match", [
    (KERAS2, 3, r"keras_version: expected 2 or None \(the config is Keras 2's: it has a "
                r"'time_major' key\), got 3"),
    (KERAS3, 2, r"keras_version: expected 3 or None \(the config is Keras 3's: it has a "
                r"'seed' key, dtype a Keras 3 'DTypePolicy'\), got 2"),
    ({"filters": 1, "kernel_size": [1], "recurrent_activation": "hard_sigmoid"}, None,
     r"keras_version: expected 2 or 3 for this config: it shows no 'time_major' or 'seed' key.*"
     r"config\['recurrent_activation'\] 'hard_sigmoid' is clip\(0.2 x"),
])
def test_keras_version_contradiction_or_silence_is_an_error(config, version, match):
    with pytest.raises(ValueError, match=match):
        from_keras(config, WEIGHTS, [3], keras_version=version)


@pytest.mark.parametrize("version", [2, 3])
def test_to_keras_marks_its_version(version):
    cell = lstm([5], recurrent_activation="hard_sigmoid_keras2" if version == 2 else "hard_sigmoid")
    config, weights = to_keras(cell, keras_version=version)
    assert keras_version_of(config)[0] == version
    again = from_keras(config, weights, [5])  # no keras_version: read off the config
    assert again.recurrent_activation is cell.recurrent_activation


# --- PyTorch: no silent guesses ------------------------------------------------------

def ndrplz_state_dict(layers=2, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    out, c_in = {}, 2
    for layer in range(layers):
        out[f"cell_list.{layer}.conv.weight"] = rng.uniform(-0.5, 0.5, (12, c_in + 3, 3, 3))
        if bias:
            out[f"cell_list.{layer}.conv.bias"] = rng.uniform(-0.5, 0.5, 12)
        c_in = 3
    return out


def test_from_torch_refuses_a_gap_in_the_layers():
    state_dict = ndrplz_state_dict(3)
    del state_dict["cell_list.1.conv.weight"], state_dict["cell_list.1.conv.bias"]
    with pytest.raises(ValueError, match=r"state_dict: expected layers 0 to 2 without gaps under "
                                         r"prefix 'cell_list.\{layer\}.conv.', got layers "
                                         r"\[0, 2\]: no cell_list.1.conv.weight"):
        from_torch(state_dict, [5, 5])


def test_from_torch_refuses_a_misspelled_key_under_its_prefix():
    state_dict = ndrplz_state_dict(1)
    state_dict["cell_list.0.conv.Bias"] = state_dict.pop("cell_list.0.conv.bias")
    with pytest.raises(ValueError, match=r"state_dict: expected only 'cell_list.0.conv.weight' "
                                         r"and 'cell_list.0.conv.bias' under 'cell_list.0.conv.'"
                                         r".* got also \['cell_list.0.conv.Bias'\]"):
        from_torch(state_dict, [5, 5])
    state_dict = ndrplz_state_dict(1)
    state_dict["cell_list.0.conv.bias_extra"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"got also \['cell_list.0.conv.bias_extra'\]"):
        from_torch(state_dict, [5, 5])
    state_dict = ndrplz_state_dict(2)
    del state_dict["cell_list.1.conv.weight"]
    with pytest.raises(ValueError, match=r"state_dict: expected 'cell_list.1.conv.weight' "
                                         r"\(layer 1's convolution\), got only"):
        from_torch(state_dict, [5, 5])


def test_from_torch_lists_the_keys_it_does_not_use():
    state_dict = {**ndrplz_state_dict(1), "head.weight": np.zeros((1, 3)),
                  "cell_list.0.cnv.bias": np.zeros(12)}
    with pytest.warns(InteropWarning, match=r"state_dict: 2 keys outside prefix "
                                            r"'cell_list.\{layer\}.conv.' are not used .*"
                                            r"\['cell_list.0.cnv.bias', 'head.weight'\]"):
        multi = from_torch(state_dict, [5, 5])
    assert len(multi.cells) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only the ConvLSTM's keys: silent
        from_torch(ndrplz_state_dict(2), [5, 5])
        from_torch({"conv.weight": np.zeros((8, 3, 3)), "conv.bias": np.zeros(8)}, [4],
                   prefix="conv.")


def test_to_torch_without_bias_and_forget_bias_round_trip():
    state_dict = ndrplz_state_dict(2, bias=False)
    multi = from_torch(state_dict, [5, 5])
    exported = to_torch(multi, bias=False, as_numpy=True)
    assert sorted(exported) == sorted(state_dict)  # no bias keys
    for name, value in state_dict.items():
        np.testing.assert_array_equal(exported[name], value)
    with pytest.raises(ValueError, match=r"bias: False needs cell.cells\[0\]'s bias, with "
                                         r"forget_bias 0 - 0 folded into z_f's block, to be "
                                         r"zero; its largest entry is"):
        to_torch(from_torch(ndrplz_state_dict(2), [5, 5]), bias=False)
    # A model adding 1 to its forget gate: the cell keeps it as forget_bias, the bias stays.
    with_bias = ndrplz_state_dict(1)
    cell = from_torch(with_bias, [5, 5], forget_bias=1.0)
    assert cell.cells[0].forget_bias == 1.0
    again = to_torch(cell, forget_bias=1.0, as_numpy=True)
    np.testing.assert_array_equal(again["cell_list.0.conv.bias"],
                                  with_bias["cell_list.0.conv.bias"])
    folded = to_torch(cell, as_numpy=True)["cell_list.0.conv.bias"]  # into an ndrplz model
    np.testing.assert_array_equal(folded - with_bias["cell_list.0.conv.bias"],
                                  np.repeat([0.0, 1.0, 0.0, 0.0], 3))  # i, f, o, g: f got +1
    with pytest.raises(ValueError, match=r"forget_bias: expected a finite number .* got nan"):
        from_torch(with_bias, [5, 5], forget_bias=float("nan"))
    with pytest.raises(TypeError, match=r"bias: expected True or False .* got 'no'"):
        to_torch(cell, bias="no")


def test_to_torch_names_the_activation_that_differs():
    def swish(v):
        return v * sigmoid(v)

    cell = lstm([5], activation=swish)
    arrays = to_torch(cell, activation=swish, as_numpy=True)  # the same function: fine
    assert sorted(arrays) == ["cell_list.0.conv.bias", "cell_list.0.conv.weight"]
    with pytest.raises(ValueError, match=r"cell.activation: expected the model's activation "
                                         r"'tanh' \(to_torch's activation=\), got <function .*"
                                         r"swish.*a function refconv has no name for"):
        to_torch(cell, as_numpy=True)
    with pytest.raises(ValueError, match=r"cell.recurrent_activation: expected the model's "
                                         r"recurrent_activation 'hard_sigmoid' .* got 'sigmoid'"):
        to_torch(lstm([5]), recurrent_activation="hard_sigmoid", as_numpy=True)


# --- unclear errors of the importers, each naming its field --------------------------

@pytest.mark.parametrize("config, weights, error, match", [
    ({"filters": 2, "kernel_size": [3]}, [np.zeros((3, 0, 8)), np.zeros((3, 2, 8)), np.zeros(8)],
     ValueError, r"weights\[0\] \(kernel\): expected shape \[3, C_in, 8\] with C_in >= 1 input "
                 r"channels, got \[3, 0, 8\]"),
    ({"filters": 2, "kernel_size": "3"}, None, ValueError,
     r"config\['kernel_size'\]: expected an int or 1 to 3 positive ints .* got '3'"),
    ({"filters": 2, "kernel_size": [3], "go_backwards": "False"}, None, TypeError,
     r"config\['go_backwards'\]: expected True or False, got 'False'"),
])
def test_keras_errors_name_the_field(config, weights, error, match):
    weights = weights or [np.zeros((3, 1, 8)), np.zeros((3, 2, 8)), np.zeros(8)]
    with pytest.raises(error, match=match):
        from_keras(config, weights, [7], keras_version=3)


def test_keras_keys_no_layer_writes_are_listed():
    config = {"filters": 2, "kernel_size": [3], "paddding": "same"}
    weights = [np.zeros((3, 1, 8)), np.zeros((3, 2, 8)), np.zeros(8)]
    with pytest.warns(InteropWarning, match=r"config: keys that no Keras ConvLSTM layer writes "
                                            r"are not used: \['paddding'\]"):
        assert from_keras(config, weights, [7]).padding == "VALID"


@pytest.mark.parametrize("bad", [np.zeros((5, 5, 3)), np.zeros((5, 4, 2)), np.zeros((5, 4))])
@pytest.mark.parametrize("shape", [None, [5, 4]])
def test_tf1_a_bad_peephole_is_named(bad, shape):
    cell = ConvLSTMCell([5, 4], 3, [3, 3], normalize=False)
    cell.build(2, seed=0)
    variables = to_tf1(cell)
    variables["rnn/conv_lstm_cell/W_ci"] = bad
    with pytest.raises(ValueError, match=re.escape("variables['rnn/conv_lstm_cell/W_ci']: "
                                                   "expected shape [5, 4, 3] like")):
        from_tf1(variables, shape)


# --- every layer of a stack ------------------------------------------------------------

def stack(seed=1):
    multi = MultiRNNCell([ConvLSTMCell([6, 5], 3, [3, 3]),
                          ConvGRUCell([6, 5], 2, [1, 3], normalize=False),
                          ConvLSTMCell([6, 5], 2, [2, 3], peephole=False)])
    multi.build(2, seed=seed)
    return multi


@pytest.mark.parametrize("lengths", [None, np.array([5, 0, 3])])
def test_return_all_layers_gives_every_layer_on_the_fast_path(lengths):
    multi = stack()
    x = np.random.default_rng(0).standard_normal((3, 5, 6, 5, 2))
    top, state = dynamic_rnn(multi, x, lengths)
    layers, all_state = dynamic_rnn(multi, x, lengths, return_all_layers=True)
    assert [a.shape[-1] for a in layers] == [3, 2, 2]
    np.testing.assert_array_equal(layers[-1], top)  # the same bits as the stack's own run
    for a, b in zip(all_state, state):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, _, gates = dynamic_rnn(multi, x, lengths, return_gates=True, reference=True)
    for layer, g in zip(layers, gates):  # the readable steps, layer by layer
        np.testing.assert_allclose(layer, g["h"], rtol=1e-12, atol=1e-14)
    single, _ = dynamic_rnn(multi.cells[0], x, lengths, return_all_layers=True)
    assert isinstance(single, list) and len(single) == 1
    np.testing.assert_array_equal(single[0], layers[0])


def test_return_all_layers_bidirectional():
    multi_fw, multi_bw = stack(1), stack(2)
    x = np.random.default_rng(1).standard_normal((2, 4, 6, 5, 2))
    lengths = np.array([4, 2])
    (fw, bw), states = bidirectional_dynamic_rnn(multi_fw, multi_bw, x, lengths,
                                                 return_all_layers=True)
    (top_fw, top_bw), top_states = bidirectional_dynamic_rnn(multi_fw, multi_bw, x, lengths)
    np.testing.assert_array_equal(fw[-1], top_fw)
    np.testing.assert_array_equal(bw[-1], top_bw)
    _, _, (_, gates_bw) = bidirectional_dynamic_rnn(multi_fw, multi_bw, x, lengths,
                                                    return_gates=True, reference=True)
    for layer, g in zip(bw, gates_bw):  # reversed back like the outputs
        np.testing.assert_allclose(layer, g["h"], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(states[1][0].c, top_states[1][0].c)
