"""Glorot-uniform initial weights with TensorFlow's fans (issue 18, item 4).

TF1's ``tf.get_variable`` draws the seed's kernels and peephole weights from
``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``, with the fans as
TensorFlow's ``_compute_fans`` counts them (written out again here, from TF's
rule, not imported from refconv):

* rank 1 ``[n]``: ``fan_in = fan_out = n``; rank 2 ``[a, b]``: ``a``, ``b``;
* rank >= 3: ``receptive = prod(shape[:-2])``, ``fan_in = shape[-2] * receptive``,
  ``fan_out = shape[-1] * receptive`` (a conv kernel ``[*k, C_in + F, 4F]``:
  ``prod(k) * (C_in + F)`` and ``prod(k) * 4F``; a 2-D peephole weight ``[H, W, F]``
  in channels_last: ``H * W`` and ``H * F``).

For tensors of thousands of entries the largest magnitude of a uniform draw
lies within 1 % of ``l`` (the chance that it does not is ``0.99^N``, below
``e^-25`` here) and never beyond it, and the whole sample passes a
Kolmogorov-Smirnov test against ``U(-l, l)``; a wrong fan moves ``l`` by far
more than 1 %.
"""

import math

import numpy as np
import pytest
from scipy import stats

from refconv import ConvGRUCell, ConvLSTMCell


def tf_fans(shape):
    """TensorFlow's ``_compute_fans``."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_limit(shape):
    fan_in, fan_out = tf_fans(shape)
    return math.sqrt(6.0 / (fan_in + fan_out))


def assert_glorot(w, name):
    limit = glorot_limit(w.shape)
    largest = np.abs(w).max()
    assert largest <= limit, f"{name}: {largest} beyond the Glorot limit {limit}"
    assert largest >= 0.99 * limit, (f"{name}: largest magnitude {largest:.5f}, expected within "
                                     f"1% of the Glorot limit {limit:.5f} ({w.size} entries)")
    p = stats.kstest(w.ravel(), stats.uniform(loc=-limit, scale=2 * limit).cdf).pvalue
    assert p > 1e-3, f"{name}: not U(-{limit:.4f}, {limit:.4f}) (KS p = {p:.1e})"


def test_tf_fans_by_hand():
    assert tf_fans([5, 5, 11, 32]) == (275, 800)
    assert tf_fans([30, 40, 8]) == (1200, 240)
    assert tf_fans([50, 16]) == (50, 16)
    assert tf_fans([7]) == (7, 7)


@pytest.mark.parametrize("kernel,c_in,filters", [([5, 5], 3, 8), ([3, 3, 3], 2, 4), ([9], 4, 16)])
def test_lstm_kernel_glorot_bound(kernel, c_in, filters):
    cell = ConvLSTMCell([4] * len(kernel), filters, kernel)
    cell.build(c_in, seed=len(kernel))
    w = cell.params["kernel"]
    assert w.shape == (*kernel, c_in + filters, 4 * filters)
    assert_glorot(w, "kernel")


@pytest.mark.parametrize("kernel,c_in,filters", [([5, 5], 3, 8), ([3, 3, 3], 2, 12)])
def test_gru_kernels_glorot_bound(kernel, c_in, filters):
    cell = ConvGRUCell([4] * len(kernel), filters, kernel)
    cell.build(c_in, seed=7)
    assert_glorot(cell.params["gates/kernel"], "gates/kernel")
    assert_glorot(cell.params["candidate/kernel"], "candidate/kernel")


@pytest.mark.parametrize("shape,filters,fmt", [([30, 40], 8, "channels_last"),
                                               ([30, 40], 8, "channels_first"),
                                               ([400], 16, "channels_last"),
                                               ([12, 10, 8], 4, "channels_last")])
def test_peephole_glorot_bound(shape, filters, fmt):
    """The peephole weights are shaped like one frame of c, so their fans follow the layout."""
    cell = ConvLSTMCell(shape, filters, [1] * len(shape), data_format=fmt)
    cell.build(1, seed=3)
    for name in ("W_ci", "W_cf", "W_co"):
        w = cell.params[name]
        assert w.shape == tuple(cell.output_size)
        assert_glorot(w, name)
    assert not np.array_equal(cell.params["W_ci"], cell.params["W_cf"])  # three draws


def test_same_seed_same_bits_other_seed_other_bits():
    def params(seed):
        cell = ConvLSTMCell([6, 5], 3, [3, 2])
        cell.build(2, seed=seed)
        return cell.params

    a, b, c = params(11), params(11), params(12)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["kernel"], c["kernel"])
    assert not np.array_equal(a["W_co"], c["W_co"])
