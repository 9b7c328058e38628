"""Exercises for learners, each with a checker that says where a solution goes wrong.

Write a piece of a cell yourself, hand the function to its checker, and it tells
you **which quantity**, at **which step**, first differs from refconv, and by how
much; when the difference is a mistake it knows (swapped gate blocks, Keras's
block order, a per-channel layer norm, the old c where the new one belongs, u
and 1 - u swapped, a hard-coded forget bias...), it names it when asked
(``report.hint(2)``). When the function raises, the report shows the shapes it
was given, the shapes it must return and the line that raised::

    from refconv.exercises import check_plain_step

    def plain_step(x, c, h, params, forget_bias):
        ...                                    # the equations of one ConvLSTM step
        return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}

    report = check_plain_step(plain_step)
    print(report)          # compact: the first failure, a nudge
    report.hint(2)         # the mistake by name, when the checker recognises it
    report.hint(3)         # the formula
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
 5   :func:`check_plain_step_backward`       ``(d_h, d_c_next, cache, params) -> gradients``
 5   :func:`check_peephole_step_backward`    the same, with ``W_ci``, ``W_cf``, ``W_co``
 5   :func:`check_layer_norm_step_backward`  the same, with peepholes and layer norm
 5   :func:`check_lstm_step_backward`        ``(d_h, d_c_next, cache, params, ...)``, the switches
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

The package: :mod:`.report` (the report), :mod:`.hints` (the hints per quantity),
:mod:`.crash` (what a report says when the function raised),
:mod:`.mistakes` (the recognisable mistakes), :mod:`.runs` (cases and
comparison), :mod:`.record` (graded runs: the outputs recorded, the verdict computed
outside the kernel), and one module per subject: :mod:`.convolution`, :mod:`.cells`,
:mod:`.sequences`, :mod:`.backward`, :mod:`.bug_hunt`, :mod:`.gates`, :mod:`.deployment`.
"""

from . import backward, bug_hunt, cells, convolution, deployment, gates, sequences
from .backward import LSTM_BACKWARD_ORDER
from .bug_hunt import Suspect
from .cells import GRU_ORDER, LSTM_ORDER
from .hints import HINTS
from .record import POLICY, recordable, start_grading_hook
from .report import CaseResult, Mismatch, Report

# Every checker a graded cell may call is recordable (refconv.exercises.record): under
# `refconv course grade` it records the student's outputs and the grading process judges them.
check_same_padding = recordable(convolution.check_same_padding)
check_conv1d = recordable(convolution.check_conv1d)
check_plain_step = recordable(cells.check_plain_step)
check_peephole_step = recordable(cells.check_peephole_step)
check_layer_norm_step = recordable(cells.check_layer_norm_step)
check_lstm_step = recordable(cells.check_lstm_step)
check_gru_step = recordable(cells.check_gru_step)
check_mask_step = recordable(sequences.check_mask_step)
check_reverse_within_length = recordable(sequences.check_reverse_within_length)
check_plain_step_backward = recordable(backward.check_plain_step_backward)
check_peephole_step_backward = recordable(backward.check_peephole_step_backward)
check_layer_norm_step_backward = recordable(backward.check_layer_norm_step_backward)
check_lstm_step_backward = recordable(backward.check_lstm_step_backward)
check_bptt = recordable(backward.check_bptt)
check_bug_hunt = recordable(bug_hunt.check_bug_hunt)
check_reach = recordable(gates.check_reach)
check_ablation_guess = recordable(gates.check_ablation_guess)
check_scaled_errors = recordable(deployment.check_scaled_errors)
check_first_failure = recordable(deployment.check_first_failure)
start_grading_hook()

__all__ = ["check_lstm_step", "check_gru_step", "check_lstm_step_backward", "Report",
           "CaseResult", "Mismatch", "LSTM_ORDER", "GRU_ORDER", "LSTM_BACKWARD_ORDER",
           "check_same_padding", "check_conv1d", "check_plain_step", "check_peephole_step",
           "check_layer_norm_step", "check_mask_step", "check_reverse_within_length",
           "check_bptt", "check_bug_hunt", "Suspect", "HINTS", "POLICY",
           "check_plain_step_backward", "check_peephole_step_backward",
           "check_layer_norm_step_backward", "check_reach",
           "check_ablation_guess", "check_scaled_errors", "check_first_failure"]
