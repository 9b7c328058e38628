"""Squashing functions, each with the derivative that backpropagation needs.

The gates use a *recurrent activation* (``sigmoid`` in the seed; Keras also
offers hard sigmoids); the fusion ``z`` and the cell output use an
*activation* (``tanh`` in the seed).

A cell accepts an activation by name (``"tanh"``) or as a known function
(``np.tanh``, :func:`sigmoid`); any other callable works for the forward pass
but has no known derivative.
"""

import numpy as np
from scipy.special import expit

__all__ = ["sigmoid", "tanh", "hard_sigmoid", "hard_sigmoid_keras2", "relu", "linear",
           "ACTIVATIONS", "activation_name", "get_activation", "derivative"]


def sigmoid(x):
    """``1 / (1 + exp(-x))``, without overflow for large ``|x|``.

    Written naively, ``exp(-x)`` overflows for ``x < -709`` (float64) or
    ``x < -88`` (float32) and NumPy warns; ``scipy.special.expit`` evaluates
    the two halves of the real line separately and never does.
    """
    return expit(x)


def tanh(x):
    """Hyperbolic tangent, ``np.tanh``."""
    return np.tanh(x)


def hard_sigmoid(x):
    """Keras 3's hard sigmoid: ``clip(x / 6 + 1 / 2, 0, 1)``."""
    return np.clip(x / 6 + 0.5, 0, 1)


def hard_sigmoid_keras2(x):
    """Keras 2's hard sigmoid: ``clip(0.2 x + 0.5, 0, 1)``."""
    return np.clip(0.2 * x + 0.5, 0, 1)


def relu(x):
    """``max(x, 0)``."""
    return np.maximum(x, 0)


def linear(x):
    """The identity."""
    return x


# name -> (function, derivative expressed through the input x and output y).
ACTIVATIONS = {
    "sigmoid": (sigmoid, lambda x, y: y * (1 - y)),
    "tanh": (tanh, lambda x, y: 1 - y * y),
    "hard_sigmoid": (hard_sigmoid, lambda x, y: ((x > -3) & (x < 3)) / 6),
    "hard_sigmoid_keras2": (hard_sigmoid_keras2, lambda x, y: ((x > -2.5) & (x < 2.5)) * 0.2),
    "relu": (relu, lambda x, y: (x > 0) * 1.0),
    "linear": (linear, lambda x, y: np.ones_like(x)),
}

_ALIASES = {np.tanh: "tanh", expit: "sigmoid"}


def activation_name(fn):
    """The registry name of ``fn`` (a name or a known function), or None for another callable."""
    if isinstance(fn, str):
        return fn if fn in ACTIVATIONS else None
    for name, (f, _) in ACTIVATIONS.items():
        if fn is f:
            return name
    return _ALIASES.get(fn)


def get_activation(fn, argument="activation"):
    """Return the callable for ``fn`` (a name from :data:`ACTIVATIONS` or a callable)."""
    if isinstance(fn, str):
        if fn not in ACTIVATIONS:
            raise ValueError(f"{argument}: expected one of {sorted(ACTIVATIONS)} or a callable, "
                             f"got {fn!r}")
        return ACTIVATIONS[fn][0]
    if not callable(fn):
        raise TypeError(f"{argument}: expected a name or a callable, got {type(fn).__name__}")
    return fn


def derivative(fn, argument="activation"):
    """``d fn(x) / dx`` as a function of the input ``x`` and the output ``y = fn(x)``.

    Backpropagation needs it for every activation it passes through; a callable
    that is not one of :data:`ACTIVATIONS` has none, and that is an error.
    """
    name = activation_name(fn)
    if name is None:
        raise ValueError(f"{argument}: no derivative is known for {fn!r}; gradients need one "
                         f"of {sorted(ACTIVATIONS)} (by name or as refconv's/NumPy's function)")
    return ACTIVATIONS[name][1]
