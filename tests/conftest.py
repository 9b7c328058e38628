"""Helpers and fixtures the test files share.

Import the helpers by name (``from conftest import jitter``): pytest puts this
folder on ``sys.path``.
"""

import numpy as np

from _oracles import central_differences
from refconv import ConvLSTMCell, LSTMStateTuple, MultiRNNCell
from refconv._tree import tree_map


def layers(cell):
    """The cells of a stack, or ``[cell]``."""
    return cell.cells if isinstance(cell, MultiRNNCell) else [cell]


def jitter(cell, rng, scale=0.3):
    """Move every parameter off its initial value: gamma off 1, beta and biases off 0
    (defaults hide bugs). Every layer of a stack."""
    for layer in layers(cell):
        for name, value in layer.params.items():
            layer.params[name] = value + scale * rng.standard_normal(value.shape)


def random_state(cell, batch, rng):
    """A random state of the cell's structure (a tuple per layer for a stack)."""
    if isinstance(cell, MultiRNNCell):
        return tuple(random_state(layer, batch, rng) for layer in cell.cells)
    size = (batch, *cell.output_size)
    if isinstance(cell, ConvLSTMCell):
        return LSTMStateTuple(rng.standard_normal(size), rng.standard_normal(size))
    return rng.standard_normal(size)


def leaves(tree):
    """The arrays of a nested state or gradient, in order."""
    out = []
    tree_map(out.append, tree)
    return out


def numeric_gradient(f, array, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to every entry of ``array``
    (perturbed in place, restored): ``_oracles.central_differences`` over every index."""
    return central_differences(f, array, np.arange(array.size), eps).reshape(array.shape)
