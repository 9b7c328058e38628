"""refconv against Flax's ``flax.linen.ConvLSTMCell`` (JAX), through ``from_flax`` and ``to_flax``.

Each case builds a real Flax cell, gives it random non-zero parameters (biases
in both convolutions), steps it from a random carry ``(c, h)``, and checks that
the refconv cell made from its parameters gives the same outputs and final
carry: to ``rtol=1e-10`` in float64 (JAX with ``jax_enable_x64``), and to about
1e-5 for a float32 Flax cell (refconv in float64 from the same float32
numbers). Between them the cases cover 1-D to 3-D, odd, even and uneven
kernels, bias on and off, SAME, SAME_LOWER, explicit ``(lo, hi)`` pairs and
CAUSAL padding. ``nn.RNN``'s ``seq_lengths`` is checked against
:func:`flax_rnn`, and a wrong gate order or forget bias must be caught.
Shapes are small: JAX compiles each new shape.
"""

import numpy as np
import pytest

from _frameworks import assert_close, relative_error, report_worst, require

from refconv import ConvLSTMCell, LSTMStateTuple, dynamic_rnn
from refconv.interop import flax_rnn, from_flax, to_flax
from refconv.interop import flax as interop_flax

jax = require("jax")
jax.config.update("jax_enable_x64", True)  # float64 in JAX: the oracle's precision
jnp = jax.numpy
nn = require("flax.linen")
flax = require("flax")

RTOL_FLOAT32 = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    report_worst(request, "Flax", f"Flax {flax.__version__} (JAX {jax.__version__}, x64)")
    report_worst(request, "Flax float32", f"Flax {flax.__version__} in float32", RTOL_FLOAT32)


def flax_cell(kernel_size, padding, use_bias, features, channels, seed, dtype=jnp.float64):
    """A Flax ConvLSTMCell and its variables, every parameter uniform in [-0.7, 0.7]."""
    module = nn.ConvLSTMCell(features=features, kernel_size=kernel_size, padding=padding,
                             use_bias=use_bias, dtype=dtype, param_dtype=dtype)
    frame = (1, *[4] * len(kernel_size), channels)
    carry = (jax.ShapeDtypeStruct((*frame[:-1], features), dtype),) * 2
    # The tree Flax's init makes, traced, not run (running it compiles its initialisers: slow).
    shapes = jax.eval_shape(module.init, jax.random.key(0), carry,
                            jax.ShapeDtypeStruct(frame, dtype))
    rng = np.random.default_rng(seed)
    variables = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.uniform(-0.7, 0.7, size=a.shape), dtype), shapes)
    return module, variables


def run_flax(module, variables, x, carry):
    """Step the Flax cell over ``x [B, T, ...]`` (eagerly: no compilation of a scan)."""
    outputs = []
    for t in range(x.shape[1]):
        carry, y = module.apply(variables, carry, jnp.asarray(x[:, t]))
        outputs.append(np.asarray(y))
    return np.stack(outputs, axis=1), tuple(np.asarray(a) for a in carry)


# kernel_size, padding, use_bias, shape
CASES = [
    ((3,), "SAME", True, [7]),
    ((4,), "CAUSAL", True, [6]),
    ((2,), [(0, 1)], False, [5]),
    ((3, 2), "SAME", False, [5, 4]),
    ((2, 2), [(1, 0), (0, 1)], True, [4, 5]),
    ((2, 3), "SAME_LOWER", True, [4, 3]),
    ((3, 3), 1, True, [4, 4]),
    ((2, 3, 1), "SAME", True, [3, 4, 2]),
    ((3, 1, 2), [(2, 0), 0, (0, 1)], False, [3, 2, 3]),
]


@pytest.mark.parametrize("kernel_size, padding, use_bias, shape", CASES)
def test_from_flax_matches_flax(kernel_size, padding, use_bias, shape):
    seed = len(shape) * 10 + kernel_size[0]
    module, variables = flax_cell(kernel_size, padding, use_bias, 3, 2, seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, *shape, 2))
    c0, h0 = rng.standard_normal((2, 2, *shape, 3))
    outputs, (c, h) = run_flax(module, variables, x, (c0, h0))

    cell = from_flax(variables, shape, padding=padding)  # JAX arrays, Flax's whole tree
    assert (cell.forget_bias, cell.normalize, cell.peephole) == (1.0, False, False)
    ref_outputs, ref_state = dynamic_rnn(cell, x, initial_state=LSTMStateTuple(c0, h0))
    what = f"{kernel_size} {padding!r} bias={use_bias}"
    assert_close(ref_outputs, outputs, "Flax", f"{what}: outputs")
    assert_close(ref_state.c, c, "Flax", f"{what}: final c")
    assert_close(ref_state.h, h, "Flax", f"{what}: final h")


def test_float32_flax_cell_within_float32_rounding():
    """A float32 Flax cell against refconv in float64 from the same float32 numbers."""
    module, variables = flax_cell((3, 2), "SAME", True, 4, 3, seed=7, dtype=jnp.float32)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 5, 4, 3)).astype(np.float32)
    c0, h0 = rng.standard_normal((2, 2, 5, 4, 4)).astype(np.float32)
    outputs, (c, _) = run_flax(module, variables, x, (c0, h0))
    assert outputs.dtype == np.float32
    cell = from_flax(variables["params"], [5, 4], dtype=jnp.float32, param_dtype=jnp.float32)
    assert cell.params["kernel"].dtype == np.float64  # float32 widens exactly
    ref_outputs, ref_state = dynamic_rnn(cell, x.astype(np.float64),
                                         initial_state=LSTMStateTuple(c0.astype(np.float64),
                                                                       h0.astype(np.float64)))
    assert_close(ref_outputs, outputs, "Flax float32", "outputs", rtol=RTOL_FLOAT32)
    assert_close(ref_state.c, c, "Flax float32", "final c", rtol=RTOL_FLOAT32)
    assert relative_error(ref_outputs, outputs) > 1e-9  # float32 was really used


def test_bfloat16_parameters_widen_exactly():
    module, variables = flax_cell((3,), "SAME", True, 2, 1, seed=15, dtype=jnp.bfloat16)
    cell = from_flax(variables, [5])
    kernel = np.concatenate([np.asarray(variables["params"][conv]["kernel"], np.float32)
                             for conv in ("ih", "hh")], axis=-2)
    assert cell.params["kernel"].dtype == np.float64
    assert sorted(np.unique(cell.params["kernel"])) == sorted(np.unique(kernel.astype(np.float64)))


def test_to_flax_round_trip_through_flax():
    """A refconv cell (forget_bias 0.3, random bias) -> to_flax -> Flax: the same numbers."""
    cell = ConvLSTMCell([5, 4], 3, [2, 3], forget_bias=0.3, normalize=False, peephole=False)
    cell.build(2, seed=11)
    rng = np.random.default_rng(11)
    cell.params["bias"] = rng.uniform(-0.5, 0.5, size=12)
    config, variables = to_flax(cell)
    module = nn.ConvLSTMCell(**config, param_dtype=jnp.float64)
    x = rng.standard_normal((2, 4, 5, 4, 2))
    c0, h0 = rng.standard_normal((2, 2, 5, 4, 3))
    outputs, (c, h) = run_flax(module, variables, x, (c0, h0))
    ref_outputs, ref_state = dynamic_rnn(cell, x, initial_state=LSTMStateTuple(c0, h0))
    assert_close(ref_outputs, outputs, "Flax", "to_flax: outputs")
    assert_close(ref_state.c, c, "Flax", "to_flax: final c")
    assert_close(ref_state.h, h, "Flax", "to_flax: final h")
    # And back: Flax's parameters give the cell's numbers again (forget bias 1, bias moved).
    again = from_flax(variables, [5, 4], **config)
    assert_close(dynamic_rnn(again, x, initial_state=LSTMStateTuple(c0, h0))[0], outputs,
                 "Flax", "from_flax(to_flax(cell)): outputs")


def test_to_flax_without_bias_loads_into_a_flax_cell_without_bias():
    cell = ConvLSTMCell([6], 2, [3], forget_bias=1.0, normalize=False, peephole=False)
    cell.build(1, seed=12)  # bias zeros; forget_bias 1 is Flax's own
    config, variables = to_flax(cell, use_bias=False)
    module = nn.ConvLSTMCell(**config, param_dtype=jnp.float64)
    template = jax.eval_shape(module.init, jax.random.key(0),
                              (jax.ShapeDtypeStruct((1, 6, 2), jnp.float64),) * 2,
                              jax.ShapeDtypeStruct((1, 6, 1), jnp.float64))
    assert jax.tree_util.tree_structure(template) == jax.tree_util.tree_structure(variables)
    x = np.random.default_rng(12).standard_normal((1, 3, 6, 1))
    zeros = (np.zeros((1, 6, 2)),) * 2
    assert_close(dynamic_rnn(cell, x)[0], run_flax(module, variables, x, zeros)[0], "Flax",
                 "to_flax(use_bias=False): outputs")


@pytest.mark.parametrize("change", ["gate order from Flax's docstring", "no forget bias"])
def test_a_wrong_mapping_is_caught(change, monkeypatch):
    """The comparison can fail: the docstring's i, f, g, o, or forgetting Flax's +1."""
    module, variables = flax_cell((3,), "SAME", True, 3, 2, seed=13)
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 4, 6, 2))
    outputs, _ = run_flax(module, variables, x, (np.zeros((2, 6, 3)),) * 2)
    if change == "no forget bias":
        monkeypatch.setattr(interop_flax, "FLAX_FORGET_BIAS", 0.0)
    else:
        monkeypatch.setattr(interop_flax, "FLAX_GATE_ORDER", "ifgo")
    wrong = from_flax(variables, [6])
    assert relative_error(dynamic_rnn(wrong, x)[0], outputs) > 1e-3


def test_sequence_lengths_as_flax_rnn_returns_them():
    """nn.RNN with seq_lengths: outputs past a length are not zeros, a length-0 row's carry is
    the one after all T steps; flax_rnn reproduces both, forwards and reversed."""
    module, variables = flax_cell((3,), "SAME", True, 2, 2, seed=14)
    rnn = nn.RNN(module)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 4, 5, 2))
    c0, h0 = rng.standard_normal((2, 3, 5, 2))
    lengths = np.array([4, 0, 2])
    cell = from_flax({"params": {"cell": variables["params"]}}, [5])  # nn.RNN's tree
    for reverse in (False, True):
        carry, outputs = rnn.apply({"params": {"cell": variables["params"]}}, jnp.asarray(x),
                                   initial_carry=(jnp.asarray(c0), jnp.asarray(h0)),
                                   seq_lengths=jnp.asarray(lengths), return_carry=True,
                                   reverse=reverse, keep_order=reverse)
        ref_carry, ref_outputs = flax_rnn(cell, x, seq_lengths=lengths, initial_carry=(c0, h0),
                                          reverse=reverse, keep_order=reverse)
        assert_close(ref_outputs, np.asarray(outputs), "Flax", f"nn.RNN reverse={reverse}")
        assert_close(ref_carry.c, np.asarray(carry[0]), "Flax", f"nn.RNN carry c, {reverse}")
        assert_close(ref_carry.h, np.asarray(carry[1]), "Flax", f"nn.RNN carry h, {reverse}")
        # What differs from TensorFlow's (refconv's dynamic_rnn) semantics, and only that:
        assert np.abs(np.asarray(outputs)[2, 2:]).max() > 0.01  # past the length: not zeros
        if not reverse:
            tf_outputs, tf_state = dynamic_rnn(cell, x, lengths, LSTMStateTuple(c0, h0))
            np.testing.assert_array_equal(tf_outputs[2, :2], ref_outputs[2, :2])
            np.testing.assert_array_equal(tf_state.c[[0, 2]], ref_carry.c[[0, 2]])
            assert np.abs(tf_state.c[1] - c0[1]).max() == 0  # TF: length 0 keeps the carry
            assert np.abs(ref_carry.c[1] - c0[1]).max() > 0.01  # Flax: it ran all T steps
