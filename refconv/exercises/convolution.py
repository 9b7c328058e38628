"""Checkers for notebook 1: TensorFlow's SAME padding amounts, and a 1-D convolution as shifted slices.

The references are refconv's own :func:`refconv.conv_padding` and
:func:`refconv.conv_nd`.
"""

import numpy as np

from ..conv import conv_nd, conv_padding
from .report import Report
from .runs import close, function_name, random_cases, run_case, tolerances

__all__ = ["check_same_padding", "check_conv1d"]

PADDING_EXAMPLES = 8                     # (n, k) examples per case


def _padding_slips(n, k, s, d):
    """The paddings each known slip gives for ``(n, k, stride s, dilation d)``, by its sentence."""
    right = conv_padding(n, k, s, d)
    span = (k - 1) * d + 1
    return {"before and after swapped: TensorFlow puts the odd zero AFTER": right[::-1],
            "symmetric padding (k - 1) // 2 on both sides: TensorFlow puts the odd zero AFTER":
                ((span - 1) // 2, (span - 1) // 2),
            "your padding ignores the stride: SAME keeps ceil(n / stride) outputs":
                conv_padding(n, k, 1, d),
            "your padding ignores the dilation: the kernel spans (k - 1) * dilation + 1":
                conv_padding(n, k, s, 1)}


def _padding_case(rng):
    """A stride and dilation above 1 and eight ``(n, k)``, drawn until every slip shows."""
    while True:
        stride, dilation = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        examples = [(int(rng.integers(3, 13)), int(rng.integers(1, 7)))
                    for _ in range(PADDING_EXAMPLES)]
        shown = {slip for n, k in examples
                 for slip, pair in _padding_slips(n, k, stride, dilation).items()
                 if tuple(pair) != tuple(conv_padding(n, k, stride, dilation))}
        if len(shown) == 4:
            return stride, dilation, examples


def check_same_padding(student_fn, *, count=4, seed=0, hints=True):
    """Check ``student_fn(n, k, stride, dilation) -> (before, after)``, TensorFlow's SAME.

    ``count`` cases, each a stride and a dilation (both above 1) over eight
    ``(n, k)`` examples, odd and even kernels, kernels longer than the input too,
    drawn so that every slip the checker names changes some example's answer in
    every case. The report names the first example whose ``padding_before`` or
    ``padding_after`` is wrong.
    """
    def draw(rng, n):
        stride, dilation, examples = _padding_case(rng)
        return {"stride": stride, "dilation": dilation}, {"examples": examples}

    results = []
    for options, setup in random_cases(seed, count, draw):
        stride, dilation, examples = options["stride"], options["dilation"], setup["examples"]
        labels = {i: f"n={n}, k={k}" for i, (n, k) in enumerate(examples)}

        def steps(stride=stride, dilation=dilation, examples=examples):
            for i, (n, k) in enumerate(examples):
                before, after = conv_padding(n, k, stride, dilation)
                reference = {"padding_before": np.array(before), "padding_after": np.array(after)}

                def call(n=n, k=k):
                    result = student_fn(n, k, stride, dilation)
                    try:
                        before, after = result
                    except (TypeError, ValueError):
                        return result
                    return {"padding_before": before, "padding_after": after}

                yield i, reference, call, {"n": n, "k": k, "stride": stride, "dilation": dilation}

        results.append(run_case(steps(), ("padding_before", "padding_after"), options,
                                len(examples), 0, 0, what="paddings",
                                recognise=_padding_mistake, index_labels={
                                    "padding_before": "[]", "padding_after": "[]"},
                                step_labels=labels))
    return Report("check_same_padding", function_name(student_fn), results, 0, 0, hints,
                  kind="padding", step_word="example")


def _padding_mistake(name, yours, student, reference, context):
    n, k, s, d = context["n"], context["k"], context["stride"], context["dilation"]
    side = 0 if name == "padding_before" else 1
    slips = {label: pair for label, pair in _padding_slips(n, k, s, d).items()
             if pair[side] != reference[name] and close(yours, np.array(pair[side]), 0, 0)}
    both = (student.get("padding_before"), student.get("padding_after"))
    for label, pair in slips.items():      # one that explains both sides first
        if all(close(np.asarray(v, dtype=np.float64), np.array(p), 0, 0)
               for v, p in zip(both, pair) if v is not None):
            return label
    return next(iter(slips), None)


def check_conv1d(student_fn, *, count=5, seed=0, rtol=1e-9, atol=1e-12, hints=True):
    """Check ``student_fn(x, kernel) -> y``: a 1-D SAME cross-correlation, channels_last.

    ``x`` ``[B, W, C]``, ``kernel`` ``[k, C, F]``, ``y`` ``[B, W, F]``. ``count``
    random cases, each two examples on one input: an odd kernel (3 or 5) and an
    even one (2, 4, or as long as an even-width input), so that both named slips
    (a flipped kernel, the odd zero in front) change the answer in every case;
    one channel and several, float32 as well as float64. The reference is
    ``refconv.conv_nd``.
    """
    def draw(rng, n):
        width = int(rng.integers(5, 12))
        even = (2, 4, width - width % 2)[n % 3]
        return ({}, {"B": 2, "W": width, "C": int(rng.integers(1, 4)), "F": int(rng.integers(1, 4)),
                     "k": (int(rng.choice([3, 5])), even),
                     "dtype": "float32" if n == count - 1 else "float64"})

    results = []
    for options, setup in random_cases(seed, count, draw):
        rng = np.random.default_rng(setup["seed"])
        dtype = np.dtype(setup["dtype"])
        x = rng.standard_normal((setup["B"], setup["W"], setup["C"])).astype(dtype)
        kernels = [rng.standard_normal((k, setup["C"], setup["F"])).astype(dtype)
                   for k in setup["k"]]
        case_rtol, case_atol = tolerances(dtype, rtol, max(atol, 1e-12))

        def steps(x=x, kernels=kernels):
            for t, kernel in enumerate(kernels):
                def call(kernel=kernel):
                    return {"y": student_fn(x.copy(), kernel.copy())}
                yield t, {"y": conv_nd(x, kernel)}, call, {"x": x, "kernel": kernel,
                                                            "rtol": case_rtol, "atol": case_atol}

        shown = {key: value for key, value in setup.items() if key != "seed"}
        results.append(run_case(steps(), ("y",), options, len(kernels), case_rtol, case_atol,
                                what="outputs", setup=shown, recognise=_conv_mistake,
                                index_labels={"y": "[batch, position, channel]"},
                                step_labels={t: f"k={k}" for t, k in enumerate(setup["k"])}))
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
