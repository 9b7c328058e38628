"""What the tests against real frameworks (Keras, PyTorch, TensorFlow, Flax) share.

* :func:`require` imports a framework, or skips the module that needs it, or,
  where CI must run those tests (``REFCONV_REQUIRE_CROSSCHECK=1``), fails loudly.
* :func:`assert_close` compares in float64 at ``rtol=1e-10``, relative to the
  reference's scale, and remembers the worst error per framework, which each
  module prints at its end.
"""

import importlib
import importlib.util
import os

import numpy as np
import pytest

# Set before any framework is imported (pytest imports every test module before
# running one): Keras 3 picks its backend at import, and TensorFlow's
# tf.compat.v1.nn.rnn_cell lives in tf_keras only with TF_USE_LEGACY_KERAS.
if importlib.util.find_spec("torch") is not None:
    os.environ.setdefault("KERAS_BACKEND", "torch")  # lighter than TF, and takes channels_first
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # JAX: no probing for accelerators, no warning

RTOL = 1e-10
REQUIRE_VARIABLE = "REFCONV_REQUIRE_CROSSCHECK"
INSTALL = ('pip install -e ".[crosscheck]" && '
           'pip install --no-deps "tf-keras==2.21.*"')


def require(module_name):
    """Import ``module_name``; if it is missing, skip the calling test module, or fail under CI.

    A framework may be absent on a developer's machine (the tests of the
    others still run), but never where ``REFCONV_REQUIRE_CROSSCHECK=1``: there
    a missing framework must not pass as a skip.
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        message = (f"{module_name} is not importable ({error}); the crosscheck tests need it: "
                   f"{INSTALL}")
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {message}", pytrace=False)
        pytest.skip(message, allow_module_level=True)


_worst = {}


def relative_error(actual, expected):
    """``max |actual - expected| / max |expected|``: the error relative to the tensor's scale.

    Element-wise relative error would blow up on entries that are zero up to
    rounding; the scale of the whole tensor is what a float64 rounding error
    is relative to.
    """
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.max(np.abs(expected), initial=0.0)
    return float(np.max(np.abs(actual - expected), initial=0.0) / (scale if scale else 1.0))


def assert_close(actual, expected, framework, what="", rtol=RTOL):
    """Assert ``actual`` (refconv) matches ``expected`` (the framework); record the error."""
    error = relative_error(actual, expected)
    _worst[framework] = max(_worst.get(framework, (0.0, 0))[0], error), \
        _worst.get(framework, (0.0, 0))[1] + 1
    assert error <= rtol, f"{what}: relative error {error:.3g} > {rtol:g} against {framework}"


def report_worst(request, framework, label, rtol=RTOL):
    """Print the worst relative error seen against ``framework`` (a module fixture's teardown)."""
    worst, count = _worst.get(framework, (0.0, 0))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not count:
        return
    with capture.global_and_fixture_disabled():  # a line in the run's log, not in captured output
        reporter.write("\n")
        reporter.write_line(f"{label}: worst relative error {worst:.2e} over {count} "
                            f"compared tensors (tolerance {rtol:g})")
