"""Checkers for notebook 1: TensorFlow's SAME padding amounts, and a 1-D convolution as shifted slices.

The references are refconv's own :func:`refconv.conv_padding` and
:func:`refconv.conv_nd`.
"""

import numpy as np

from ..conv import conv_nd, conv_padding
from .report import Report
from .runs import close, function_name, random_cases, run_case, tolerances

__all__ = ["check_same_padding", "check_conv1d"]

PADDING_GROUPS = ((1, 1), (2, 1), (1, 2), (3, 1))   # (stride, dilation) of each case
PADDING_EXAMPLES = ((7, 3), (7, 4), (8, 2), (5, 5), (6, 1), (9, 6), (4, 5), (10, 4))


def check_same_padding(student_fn, *, hints=True):
    """Check ``student_fn(n, k, stride, dilation) -> (before, after)``, TensorFlow's SAME.

    One case per ``(stride, dilation)``, each over eight ``(n, k)`` examples, odd
    and even kernels, kernels longer than the input too. The report names the
    first example whose ``padding_before`` or ``padding_after`` is wrong.
    """
    results = []
    for stride, dilation in PADDING_GROUPS:
        options = {"stride": stride, "dilation": dilation}
        labels = {i: f"n={n}, k={k}" for i, (n, k) in enumerate(PADDING_EXAMPLES)}

        def steps(stride=stride, dilation=dilation):
            for i, (n, k) in enumerate(PADDING_EXAMPLES):
                before, after = conv_padding(n, k, stride, dilation)
                reference = {"padding_before": np.array(before), "padding_after": np.array(after)}

                def call(n=n, k=k):
                    result = student_fn(n, k, stride, dilation)
                    try:
                        before, after = result
                    except (TypeError, ValueError):
                        return result
                    return {"padding_before": before, "padding_after": after}

                yield i, reference, call, {"n": n, "k": k, "stride": stride, "dilation": dilation,
                                           "given": {"n": n, "k": k, "stride": stride,
                                                     "dilation": dilation}}

        results.append(run_case(steps(), ("padding_before", "padding_after"), options,
                                len(PADDING_EXAMPLES), 0, 0, what="paddings",
                                recognise=_padding_mistake, index_labels={
                                    "padding_before": "[]", "padding_after": "[]"},
                                step_labels=labels))
    return Report("check_same_padding", function_name(student_fn), results, 0, 0, hints,
                  kind="padding", step_word="example")


def _padding_mistake(name, yours, student, reference, context):
    n, k, s, d = context["n"], context["k"], context["stride"], context["dilation"]
    side = 0 if name == "padding_before" else 1
    span = (k - 1) * d + 1
    slips = [
        ("before and after swapped: TensorFlow puts the odd zero AFTER",
         conv_padding(n, k, s, d)[1 - side]),
        ("symmetric padding (k - 1) // 2 on both sides: TensorFlow puts the odd zero AFTER",
         (span - 1) // 2),
        ("your padding ignores the stride: SAME keeps ceil(n / stride) outputs",
         conv_padding(n, k, 1, d)[side]),
        ("your padding ignores the dilation: the kernel spans (k - 1) * dilation + 1",
         conv_padding(n, k, s, 1)[side])]
    for label, value in slips:
        if value != reference[name] and close(yours, np.array(value), 0, 0):
            return label
    return None


def check_conv1d(student_fn, *, count=5, seed=0, rtol=1e-9, atol=1e-12, hints=True):
    """Check ``student_fn(x, kernel) -> y``: a 1-D SAME cross-correlation, channels_last.

    ``x`` ``[B, W, C]``, ``kernel`` ``[k, C, F]``, ``y`` ``[B, W, F]``. ``count``
    random cases: odd and even kernels, a kernel as long as the input, one
    channel and several, float32 as well as float64. The reference is
    ``refconv.conv_nd``.
    """
    def draw(rng, n):
        width = int(rng.integers(5, 12))
        k = (3, 4, 1, 2, width)[n % 5]
        return ({}, {"B": 2, "W": width, "C": int(rng.integers(1, 4)), "F": int(rng.integers(1, 4)),
                     "k": k, "dtype": "float32" if n == count - 1 else "float64"})

    results = []
    for options, setup in random_cases(seed, count, draw):
        rng = np.random.default_rng(setup["seed"])
        dtype = np.dtype(setup["dtype"])
        x = rng.standard_normal((setup["B"], setup["W"], setup["C"])).astype(dtype)
        kernel = rng.standard_normal((setup["k"], setup["C"], setup["F"])).astype(dtype)
        case_rtol, case_atol = tolerances(dtype, rtol, max(atol, 1e-12))

        def steps(x=x, kernel=kernel):
            def call():
                return {"y": student_fn(x.copy(), kernel.copy())}
            yield 0, {"y": conv_nd(x, kernel)}, call, {"x": x, "kernel": kernel,
                                                        "rtol": case_rtol, "atol": case_atol,
                                                        "given": {"x": x, "kernel": kernel}}

        shown = {key: value for key, value in setup.items() if key != "seed"}
        results.append(run_case(steps(), ("y",), options, 1, case_rtol, case_atol,
                                what="outputs", setup=shown, recognise=_conv_mistake,
                                index_labels={"y": "[batch, position, channel]"}))
    return Report("check_conv1d", function_name(student_fn), results, rtol, atol, hints,
                  kind="conv", step_word="example")


def _shifted(x, kernel, before):
    """The slip's output: SAME size, but with ``before`` zeros in front (and the rest after)."""
    k, width = kernel.shape[0], x.shape[1]
    xp = np.pad(x, ((0, 0), (before, k - 1 - before), (0, 0)))
    return sum(xp[:, j:j + width] @ kernel[j] for j in range(k))


def _conv_mistake(name, yours, student, reference, context):
    x, kernel = context["x"], context["kernel"]
    k = kernel.shape[0]
    slips = [("the kernel is flipped: that is a convolution in the textbook sense; "
              "TensorFlow's (and refconv's) is a cross-correlation, no flip",
              lambda: conv_nd(x, kernel[::-1].copy())),
             ("the odd zero of an even kernel's padding is in front: TensorFlow puts it AFTER",
              lambda: _shifted(x, kernel, k // 2) if k % 2 == 0 else None)]
    for label, make in slips:
        candidate = make()
        if candidate is not None and close(yours, candidate, context["rtol"], context["atol"]):
            return label
    return None
