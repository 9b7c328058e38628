"""Exercises for learners, each with a checker that says where a solution goes wrong.

Write a piece of a cell yourself, hand the function to its checker, and it tells
you **which quantity**, at **which step**, first differs from refconv, and by how
much; when the difference is a mistake it knows (swapped gate blocks, Keras's
block order, a per-channel layer norm, the old c where the new one belongs, u
and 1 - u swapped, a hard-coded forget bias...), it names it::

    from refconv.exercises import check_plain_step

    def plain_step(x, c, h, params, forget_bias):
        ...                                    # the equations of one ConvLSTM step
        return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}

    report = check_plain_step(plain_step)
    print(report)          # compact: the first failure, a nudge
    report.hint(2)         # the formula, when the nudge was not enough
    print(report.details())  # one line per case, and the table per quantity and step

The ladder, notebook by notebook:

===  ======================================  ==============================================
 nb  checker                                 the learner's function
===  ======================================  ==============================================
 1   :func:`check_same_padding`              ``(n, k, stride, dilation) -> (before, after)``
 1   :func:`check_conv1d`                    ``(x, kernel) -> y``, SAME, as shifted slices
 2   :func:`check_plain_step`                ``(x, c, h, params, forget_bias) -> gates``
 2   :func:`check_peephole_step`             the same, with ``W_ci``, ``W_cf``, ``W_co``
 2   :func:`check_layer_norm_step`           ``(..., forget_bias, norm_epsilon, data_format)``
 2   :func:`check_lstm_step`                 ``(x, c, h, params, peephole, normalize, forget_bias)``
 3   :func:`check_gru_step`                  ``(x, h, params, normalize) -> r, u, candidate, h``
 4   :func:`check_mask_step`                 ``(t, sequence_length, h_new, state_new, state_old)``
 4   :func:`check_reverse_within_length`     ``(x, sequence_length) -> reversed``
 5   :func:`check_lstm_step_backward`        ``(d_h, d_c, cache, params, ...) -> gradients``
 5   :func:`check_bptt`                      ``(cell, params, caches, d_outputs, d_final_state)``
 6   :func:`check_bug_hunt`                  ``{"gate": ..., "step": ...}`` for a :class:`Suspect`
 7   :func:`check_reach`                     ``(kernel, dilation, steps) -> pixels``
 7   :func:`check_ablation_guess`            ``{task: (gate, value, which)}``
 8   :func:`check_scaled_errors`             ``(candidate, reference) -> {name: error}``
 8   :func:`check_first_failure`             ``(errors, atol) -> (layer, name, t)``
===  ======================================  ==============================================

How a checker cannot be fooled: every case draws its own forget bias (never
1.0), layer-norm epsilon, kernel (even sizes too), data format where the
exercise takes one, float64 and float32, and seed; every gamma, beta, bias and
peephole weight is random; the initial state is random. Each step starts from
the reference state (teacher forcing), so each step is judged on its own, and
the quantities are compared in the order they are computed: the first that
differs is where the bug is.

A checker returns a :class:`Report`: ``print`` it (or let Jupyter show it), test
``report.passed``, read ``report.gate``, ``report.step``, ``report.error``,
``report.mistake`` and ``report.options`` of the first difference, or turn it
into points with ``report.points(out_of)`` (the share of cases passed), which is
what the notebooks' graded cells do.

The package: :mod:`.report` (the report), :mod:`.hints` (two tiers of hints),
:mod:`.mistakes` (the recognisable mistakes), :mod:`.runs` (cases and
comparison), and one module per subject: :mod:`.convolution`, :mod:`.cells`,
:mod:`.sequences`, :mod:`.backward`, :mod:`.bug_hunt`.
"""

from .backward import LSTM_BACKWARD_ORDER, check_bptt, check_lstm_step_backward
from .bug_hunt import Suspect, check_bug_hunt
from .cells import (GRU_ORDER, LSTM_ORDER, check_gru_step, check_layer_norm_step,
                    check_lstm_step, check_peephole_step, check_plain_step)
from .convolution import check_conv1d, check_same_padding
from .deployment import check_first_failure, check_scaled_errors
from .gates import check_ablation_guess, check_reach
from .hints import HINTS
from .report import CaseResult, Mismatch, Report
from .sequences import check_mask_step, check_reverse_within_length

__all__ = ["check_lstm_step", "check_gru_step", "check_lstm_step_backward", "Report",
           "CaseResult", "Mismatch", "LSTM_ORDER", "GRU_ORDER", "LSTM_BACKWARD_ORDER",
           "check_same_padding", "check_conv1d", "check_plain_step", "check_peephole_step",
           "check_layer_norm_step", "check_mask_step", "check_reverse_within_length",
           "check_bptt", "check_bug_hunt", "Suspect", "HINTS",
           "check_reach", "check_ablation_guess", "check_scaled_errors", "check_first_failure"]
