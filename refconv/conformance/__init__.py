"""Conformance for deployment: a deployed ConvLSTM held against refconv, per step and gate.

An engineer rarely ships the training framework: they export a PyTorch
ConvLSTM to ONNX and run it in ONNX Runtime, or convert a Keras ConvLSTM2D to
TFLite. :func:`run` does that for each runtime this environment has, imports
the same weights into refconv (:mod:`refconv.interop`), and reports per
deployed configuration the worst error of the outputs, the final state and
each gate, and the first layer, gate and step outside the tolerance
(:class:`Report`; ``str()`` is the table). A sequence length other than the
export's is always tried, and a runtime that silently returns fewer steps is
reported as ``TRUNCATED``.

refconv never imports a framework on its own: each runtime's adapter
(:mod:`refconv.conformance.onnx_torch`, :mod:`refconv.conformance.tflite_keras`)
is imported only when that runtime is asked for. Reports from several
environments (say, one with PyTorch and one with TensorFlow) merge into one
(:func:`merge`).
"""

import importlib
import importlib.util

from .check import Candidate, check, reference
from .environment import describe
from .own import check_model
from .report import (ATOL, ERROR, FAILED, OK, REFUSED, RTOL, TRUNCATED, Report, Row, load,
                     merge)

__all__ = ["run", "check_model", "RUNTIMES", "LOADS_A_RUNTIME", "available", "install_hint", "Report", "Row", "Candidate", "check", "reference",
           "load", "merge", "describe", "RTOL", "ATOL",
           "OK", "FAILED", "TRUNCATED", "REFUSED", "ERROR"]


# runtime -> (adapter module, the packages it needs)
RUNTIMES = {
    "onnxruntime": ("refconv.conformance.onnx_torch", ("torch", "onnx", "onnxruntime")),
    "tflite": ("refconv.conformance.tflite_keras", ("tensorflow", "ai_edge_litert")),
}
# Every module of this package that imports a runtime when loaded, and what it imports: the
# adapters above, and the user's-own-model modules (imported only when a user's file is checked).
LOADS_A_RUNTIME = {**dict(RUNTIMES.values()),
                   "refconv.conformance.onnx_graph": ("onnx",),
                   "refconv.conformance.own_onnx": ("onnx", "onnxruntime"),
                   "refconv.conformance.own_tflite": ("tensorflow", "ai_edge_litert")}


def install_hint():
    """What installs every runtime ``refconv conformance`` runs, from a clone of refconv."""
    return ('pip install -e ".[deploy]" && pip install --no-deps "tf-keras==2.21.*" '
            '(from a clone of refconv; tf-keras, for the tf_keras rows, pins an older '
            'TensorFlow unless installed without its dependencies)')


def available(runtime):
    """The packages ``runtime`` needs that are missing here (empty: it can run)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime: expected one of {list(RUNTIMES)}, got {runtime!r}")
    return [name for name in RUNTIMES[runtime][1] if importlib.util.find_spec(name) is None]


def run(runtimes=None, *, rtol=RTOL, atol=ATOL, seed=0, t_export=8, t_other=None,
        reduced=True, **options):
    """Deploy seeded ConvLSTMs to each runtime and compare with refconv: a :class:`Report`.

    Args:
        runtimes: names from :data:`RUNTIMES`; None: every one whose packages are
            installed (a named runtime whose packages are missing is an error).
        rtol, atol: the tolerance (``|d| <= atol + rtol |refconv|`` element-wise).
        seed: of the weights and inputs.
        t_export: the sequence length the models are exported or converted with.
        t_other: another length every deployment is also fed (default ``t_export + 3``).
        reduced: also float16-weight and int8 conversions.
        options: passed to each adapter's ``conform`` (``exporters``, ``opt_levels``, ...).

    Returns:
        A :class:`Report` of one run: this environment and its rows.
    """
    if runtimes is None:
        runtimes = [name for name in RUNTIMES if not available(name)]
    else:
        runtimes = list(runtimes)
        for name in runtimes:
            missing = available(name)
            if missing:
                raise ImportError(f"runtimes: {name!r} needs {missing}, not installed here: "
                                  f"{install_hint()}")
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol, atol: expected values >= 0, got {rtol} and {atol}")
    environment = describe()
    skipped = [f"{name}: needs {available(name)}" for name in RUNTIMES
               if name not in runtimes and available(name)]
    rows = []
    for name in runtimes:
        adapter = importlib.import_module(RUNTIMES[name][0])
        rows.extend(adapter.conform(rtol=rtol, atol=atol, seed=seed, t_export=t_export,
                                    t_other=t_other, reduced=reduced, skipped=skipped,
                                    **options))
    environment["skipped"] = skipped
    return Report([environment], rows, rtol, atol)
