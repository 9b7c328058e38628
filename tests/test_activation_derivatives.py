"""Every activation's derivative against central differences, over its whole range.

``refconv.activations.derivative(name)(x, y)`` is what backpropagation uses. The
gradient tests reach a hard sigmoid's edges only where a random pre-activation
happens to fall, so a derivative with the wrong linear range (Keras 2's
``|x| < 2.5`` for Keras 3's ``|x| < 3``) passed them: here every function is
checked on a dense grid over [-8, 8] (float64), away from its kinks, where
the central difference of the function itself is exact to ~1e-9.
"""

import numpy as np
import pytest

from refconv.activations import ACTIVATIONS, derivative, get_activation

# Where each function has no derivative (the central difference straddles a kink).
KINKS = {"hard_sigmoid": [-3.0, 3.0], "hard_sigmoid_keras2": [-2.5, 2.5], "relu": [0.0]}
EPS = 1e-6


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_against_central_differences(name):
    fn = get_activation(name)
    x = np.linspace(-8, 8, 16001)
    for kink in KINKS.get(name, []):
        x = x[np.abs(x - kink) > 10 * EPS]
    numeric = (fn(x + EPS) - fn(x - EPS)) / (2 * EPS)
    analytic = derivative(name)(x, fn(x))
    assert np.shape(analytic) == x.shape
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_the_grid_reaches_every_linear_range_edge():
    """The kinks are inside the grid, and each piecewise function is flat beyond them."""
    x = np.linspace(-8, 8, 16001)
    for name, kinks in KINKS.items():
        assert x.min() < min(kinks) and max(kinks) < x.max()
        slope = derivative(name)(x, get_activation(name)(x))
        assert slope[0] == 0 and slope[len(x) // 2 + 100] > 0, name
