"""Exact scores from the checkers (issue 29): a submission passing a known number of cases earns
exactly that share; near-misses at the tolerance edge; named mistakes; the drawn cases.

Every test calls a checker directly with a crafted student function (seconds, no kernel).
"""

import numpy as np
import pytest

from refconv import (LSTMStateTuple, ConvLSTMCell, conv_nd, conv_padding, dynamic_rnn,
                     reverse_sequence, sigmoid)
from refconv.exercises import (Suspect, check_bug_hunt, check_conv1d, check_mask_step,
                               check_plain_step, check_reverse_within_length, check_same_padding)
from refconv.exercises.bug_hunt import BUGS
from refconv.exercises.runs import FLOAT32_RTOL, compare, tolerances
from refconv.vocabulary import LSTM_QUANTITIES


def conv1d(x, kernel, before=None):
    """A learner's SAME cross-correlation as shifted slices; ``before`` zeros in front."""
    k, width = kernel.shape[0], x.shape[1]
    before = (k - 1) // 2 if before is None else before
    xp = np.pad(x, ((0, 0), (before, k - 1 - before), (0, 0)))
    return sum(xp[:, j:j + width] @ kernel[j] for j in range(k))


def scaled(factor):
    def student(x, kernel):
        return conv1d(x, kernel) * factor
    return student


# ------------------------------------------------------------------ exact shares and rounding

def test_conv1d_scores_by_the_share_of_cases_and_the_float32_tolerance_edge():
    """5 cases, the last float32: an error 2e-5 relative passes float32 only (1 of 5), 5e-4 none."""
    right = check_conv1d(conv1d)
    assert right.passed and right.points(2) == 2.0
    assert [c.setup["dtype"] for c in right.cases] == ["float64"] * 4 + ["float32"]
    inside = check_conv1d(scaled(1 + 2e-5))
    assert [c.passed for c in inside.cases] == [False] * 4 + [True]
    assert inside.points(2) == 0.4 and inside.points(5) == 1.0 and inside.points(1) == 0.2
    outside = check_conv1d(scaled(1 + 5e-4))     # 0.05% off
    assert [c.passed for c in outside.cases] == [False] * 5 and outside.points(2) == 0.0


def test_three_of_five_cases_earn_three_fifths():
    def three(x, kernel):
        return conv1d(x, kernel) if x.shape[1] <= cutoff else -conv1d(x, kernel)
    widths = sorted(c.setup["W"] for c in check_conv1d(conv1d).cases)
    cutoff = widths[2]
    report = check_conv1d(three)
    assert sum(c.passed for c in report.cases) == sum(w <= cutoff for w in widths)
    share = sum(w <= cutoff for w in widths) / 5
    assert report.points(2) == round(2 * share, 2) and report.points(1) == round(share, 2)


def test_the_float32_tolerance_is_looser_for_float32_only():
    assert tolerances(np.float64, 1e-9, 1e-12) == (1e-9, 1e-12)
    rtol, atol = tolerances(np.float32, 1e-9, 1e-12)
    assert rtol == FLOAT32_RTOL and 1e-5 <= rtol <= 1e-4 and atol <= 1e-5
    assert tolerances(np.float32, 1e-2, 1e-3) == (1e-2, 1e-3)


def test_compare_reports_the_worst_entry_and_counts_wrong_ones():
    reference = np.arange(24.0).reshape(2, 3, 4)
    yours = reference.copy()
    yours[1, 2, 0] += 5.0
    yours[0, 1, 3] += 0.5
    m = compare(0, "y", yours, reference, 1e-9, 1e-12)
    assert m.index == (1, 2, 0) and m.error == 5.0 and m.count == 2 and m.size == 24
    assert compare(0, "y", reference + 1e-14, reference, 1e-9, 1e-12) is None
    assert compare(0, "y", reference[:, :2], reference, 1e-9, 1e-12).problem.startswith("'y' has shape")


def test_a_function_returning_something_else_scores_zero_and_is_reported():
    report = check_conv1d(lambda x, k: [1, 2])
    assert not report.passed and report.points(2) == 0.0
    padding = check_same_padding(lambda n, k, s, d: None)
    assert padding.points(1) == 0.0
    lstm = check_plain_step(lambda *a, **o: [0.0])
    assert lstm.points(1) == 0.0 and "expected a dict" in str(lstm)


# ------------------------------------------------------------------ notebook 1

def test_same_padding_right_and_each_slip_in_every_case():
    right = check_same_padding(conv_padding)
    assert right.passed and right.points(4) == 4.0
    slips = {"swapped": lambda n, k, s, d: conv_padding(n, k, s, d)[::-1],
             "stride": lambda n, k, s, d: conv_padding(n, k, 1, d),
             "dilation": lambda n, k, s, d: conv_padding(n, k, s, 1),
             "symmetric": lambda n, k, s, d: (((k - 1) * d) // 2, ((k - 1) * d) // 2)}
    for seed in range(6):
        for word, slip in slips.items():
            report = check_same_padding(slip, seed=seed)
            assert report.points(4) == 0.0, (seed, word)
    assert "swapped" in check_same_padding(slips["swapped"]).mistake
    after_wrong = check_same_padding(lambda n, k, s, d: (conv_padding(n, k, s, d)[0],
                                                          conv_padding(n, k, s, 1)[1]))
    assert after_wrong.gate == "padding_after" and "dilation" in after_wrong.mistake
    for seed in range(4):     # each case's wrong padding_after is named (it may read as swapped)
        report = check_same_padding(lambda n, k, s, d: (conv_padding(n, k, s, d)[0],
                                                         conv_padding(n, k, s, 1)[1]), seed=seed)
        named = [case.first.mistake or "" for case in report.cases]
        assert all("dilation" in m or "swapped" in m for m in named), (seed, named)
        assert sum("dilation" in m for m in named) >= 3, (seed, named)


def test_conv1d_named_slips():
    front = check_conv1d(lambda x, k: conv1d(x, k, before=k.shape[0] // 2))
    assert front.gate == "y" and "in front" in front.mistake and front.points(1) == 0.0
    flipped = check_conv1d(lambda x, k: conv1d(x, k[::-1]))
    assert "flipped" in flipped.mistake


# ------------------------------------------------------------------ notebook 2: the cell

def plain_step(x, c, h, params, forget_bias, bug=None):
    y = conv_nd(np.concatenate([x, h], axis=-1), params["kernel"]) + params["bias"]
    z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
    fb = {"no forget bias": 0.0, "hard-coded": 1.0}.get(bug, forget_bias)
    z_f = sigmoid(z_f + fb)
    z_i, z = sigmoid(z_i), np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = sigmoid(z_o)
    h_new = z_o * np.tanh(c_new)
    if bug == "float32 near miss":
        h_new = h_new * (1 + 2e-5)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}


def student(bug):
    def fn(*args, **options):
        return plain_step(*args, bug=bug, **options)
    return fn


def test_plain_step_exact_scores_and_named_forget_bias_slips():
    right = check_plain_step(plain_step)
    assert right.passed and right.points(3) == 3.0
    dtypes = [c.setup["dtype"] for c in right.cases]
    assert dtypes == ["float64"] * 3 + ["float32"] * 2
    biases = [c.options["forget_bias"] for c in right.cases]
    assert all(abs(b - 1.0) >= 0.25 for b in biases)
    near = check_plain_step(student("float32 near miss"))     # right at float32's tolerance
    assert [c.passed for c in near.cases] == [False] * 3 + [True] * 2
    assert near.points(3) == 1.2 and near.points(2) == 0.8 and near.gate == "h"
    for bug, words in (("no forget bias", "no forget_bias"), ("hard-coded", "hard-coded")):
        report = check_plain_step(student(bug))
        assert report.points(3) == 0.0 and report.gate == "z_f" and words in report.mistake, bug


def test_forget_bias_draws_stay_away_from_one_over_many_seeds():
    for seed in range(30):
        for case in check_plain_step(plain_step, seed=seed, count=5).cases:
            assert abs(case.options["forget_bias"] - 1.0) >= 0.25
    hard = [check_plain_step(student("hard-coded"), seed=s).points(1) for s in range(8)]
    assert hard == [0.0] * 8


def test_explicit_cases_are_checked():
    report = check_plain_step(plain_step, cases=[{"forget_bias": 1.5}, {"forget_bias": -0.5}])
    assert report.passed and [c.options["forget_bias"] for c in report.cases] == [1.5, -0.5]
    with pytest.raises(ValueError, match="peephole"):
        check_plain_step(plain_step, cases=[{"forget_bias": 1.5, "peephole": True}])
    with pytest.raises(ValueError, match="at least one"):
        check_plain_step(plain_step, cases=[])


# ------------------------------------------------------------------ notebook 4: masking

def masked(t, lengths, h_new, state_new, state_old, off_by_one=False):
    alive = ((t <= lengths) if off_by_one else (t < lengths)).reshape(-1, 1, 1, 1)
    return (np.where(alive, h_new, 0.0),
            LSTMStateTuple(*(np.where(alive, n, o) for n, o in zip(state_new, state_old))))


def test_mask_step_exact_scores_and_the_off_by_one_named():
    right = check_mask_step(masked)
    assert right.passed and right.points(2) == 2.0
    assert [c.setup["dtype"] for c in right.cases] == ["float64", "float64", "float32"]
    for case in right.cases:
        lengths = case.setup["sequence_length"]
        assert 0 in lengths and 5 in lengths
    late = check_mask_step(lambda *a: masked(*a, off_by_one=True))
    assert late.points(2) == 0.0 and "off by one" in late.mistake


def test_mask_reference_is_dynamic_rnns_own():
    """An independent oracle: dynamic_rnn over the whole video, row by row at its length."""
    cell = ConvLSTMCell([4, 5], 2, [3, 2])
    cell.build(1, seed=3)
    video = np.random.default_rng(3).standard_normal((3, 4, 4, 5, 1))
    lengths = np.array([0, 2, 4])
    outputs, final = dynamic_rnn(cell, video, sequence_length=lengths)
    for b, n in enumerate(lengths):
        assert np.all(outputs[b, n:] == 0)
    report = check_mask_step(lambda t, n, h, s, o: (h, s))     # never masks
    assert report.points(1) == 0.0


def test_reverse_within_length_exact():
    def reverse(x, lengths):
        out = x.copy()
        for b, n in enumerate(lengths):
            out[b, :n] = x[b, :n][::-1]
        return out
    right = check_reverse_within_length(reverse)
    assert right.passed and right.points(3) == 3.0
    whole = check_reverse_within_length(lambda x, n: x[:, ::-1])
    assert whole.points(3) == 0.0 and "all T steps" in whole.mistake


# ------------------------------------------------------------------ notebook 6: the bug hunt

def first_difference(seed):
    """The oracle: the first (step, quantity) where the suspect's gates leave refconv's."""
    suspect = Suspect(seed)
    from refconv.data import moving_shapes
    video = moving_shapes(batch_size=2, timesteps=8, shape=(12, 10), channels=1, seed=seed)
    _, _, right = dynamic_rnn(suspect.cell, video, return_gates=True)
    _, wrong = suspect.run(video)
    for t in range(video.shape[1]):
        worst = [np.max(np.abs(right[q][:, t] - wrong[q][:, t])) for q in LSTM_QUANTITIES]
        bad = [q for q, w in zip(LSTM_QUANTITIES, worst) if w > 1e-9]
        if bad:
            return t, bad[0]
    return None


def test_every_planted_bug_is_reachable_and_changes_the_run():
    assert sorted(Suspect(s).bug for s in range(len(BUGS))) == sorted(BUGS)
    for seed in range(len(BUGS)):
        assert first_difference(seed) is not None, Suspect(seed).bug


def test_bug_hunt_scores_the_right_answer_and_only_it():
    for seed in range(len(BUGS)):
        step, gate = first_difference(seed)
        assert check_bug_hunt({"step": step, "gate": gate}, seed).points(1) == 1.0, seed
        other = next(q for q in LSTM_QUANTITIES if q != gate)
        wrong_gate = check_bug_hunt({"step": step, "gate": other}, seed)
        assert wrong_gate.points(1) == 0.0 and wrong_gate.gate == "gate", seed
        assert check_bug_hunt({"step": step + 1, "gate": gate}, seed).points(1) == 0.0
    finder = check_bug_hunt(lambda suspect, video: dict(zip(("step", "gate"),
                                                            first_difference(suspect.seed))),
                            seeds=range(len(BUGS)))
    assert finder.points(5) == 5.0
