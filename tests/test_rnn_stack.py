"""MultiRNNCell.build: one seed, a stream per layer (reproducible, and never shared)."""

import numpy as np

from refconv import ConvGRUCell, ConvLSTMCell, MultiRNNCell


def stack(kind):
    Cell = ConvLSTMCell if kind == "lstm" else ConvGRUCell
    # in_channels = filters: every layer's parameters have the same shapes
    return MultiRNNCell([Cell([6, 5], 3, [3, 3]) for _ in range(3)])


def test_each_layer_draws_its_own_weights_and_the_seed_reproduces_them():
    for kind in ("lstm", "gru"):
        a, b, c = stack(kind), stack(kind), stack(kind)
        a.build(3, seed=7)
        b.build(3, seed=7)
        c.build(3, seed=8)
        for name in a.cells[0].params:
            layers = [layer.params[name] for layer in a.cells]
            if np.ptp(layers[0]) == 0:       # a constant initialisation (a bias, gamma)
                continue
            for i in range(3):
                for j in range(i):
                    assert not np.array_equal(layers[i], layers[j]), (kind, name, i, j)
                np.testing.assert_array_equal(layers[i], b.cells[i].params[name])
                assert not np.array_equal(layers[i], c.cells[i].params[name])


def test_a_stacks_gradient_has_every_layers_parameters_on_both_paths():
    """dynamic_rnn_grad of a 3-layer stack: a gradient per layer and name, the readable
    backward's equal to the fast one's; a stack passed as both directions sums the two."""
    from refconv import bidirectional_dynamic_rnn_grad, dynamic_rnn_grad
    rng = np.random.default_rng(2)
    cell = MultiRNNCell([ConvLSTMCell([5, 4], 3, [3, 3]), ConvGRUCell([5, 4], 2, [3, 3]),
                         ConvLSTMCell([5, 4], 2, [3, 3], normalize=False)])
    cell.build(2, seed=3)
    x = rng.standard_normal((2, 3, 5, 4, 2))
    d_out = rng.standard_normal((2, 3, 5, 4, 2))
    grads = [dynamic_rnn_grad(cell, x, d_out, reference=reference).params
             for reference in (True, False)]
    for g in grads:
        assert len(g) == 3
        for layer, layer_grad in zip(cell.cells, g):
            assert sorted(layer_grad) == sorted(layer.params)
            for name in layer.params:
                assert layer_grad[name].shape == layer.params[name].shape
                assert np.abs(layer_grad[name]).max() > 0, name
    for a, b in zip(*grads):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-9, atol=1e-12)
    both = bidirectional_dynamic_rnn_grad(cell, cell, x, (d_out, d_out), reference=True)
    assert both.params_fw is both.params_bw
    both = both.params_fw
    reversed_x = x[:, ::-1]
    backward = dynamic_rnn_grad(cell, reversed_x, d_out[:, ::-1], reference=True).params
    assert len(both) == 3
    for layer, forward, back, total in zip(cell.cells, grads[0], backward, both):
        for name in layer.params:
            np.testing.assert_allclose(total[name], forward[name] + back[name], rtol=1e-9,
                                       atol=1e-12)


def test_gradcheck_refuses_a_gradient_that_misses_a_layer(monkeypatch):
    """A stack's gradient without its top layer must not pass gradcheck as checked."""
    import importlib

    import pytest
    gradcheck_module = importlib.import_module("refconv.gradcheck")  # the name is the function
    cell = MultiRNNCell([ConvLSTMCell([4, 3], 2, [3, 3]), ConvGRUCell([4, 3], 2, [3, 3])])
    cell.build(1, seed=0)
    real = gradcheck_module.dynamic_rnn_grad

    def missing_top(*args, **kwargs):
        grads = real(*args, **kwargs)
        return grads._replace(params=grads.params[:1])

    monkeypatch.setattr(gradcheck_module, "dynamic_rnn_grad", missing_top)
    with pytest.raises(AssertionError, match="gradients for 1 layers of a 2-layer stack"):
        gradcheck_module.gradcheck(cell, np.ones((1, 2, 4, 3, 1)), max_entries=2)
