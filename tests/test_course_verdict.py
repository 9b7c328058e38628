"""The verdict outside the kernel, in-process: records, replays, seeds from a secret, the policy.

No kernel runs here: the kernel's side of a graded run (a recordable checker
inside a graded cell, ``REFCONV_GRADING`` set) is played in this process, then the
grading process's side (:func:`refconv.course.verdict.judge`) judges the record.
The oracle for the points is the share of cases a submission is built to pass.
"""

import json

import numpy as np
import pytest

import refconv
from refconv.exercises import check_conv1d, check_plain_step, check_same_padding, record
from refconv.exercises.convolution import _padding_case, _padding_slips
from refconv.exercises.report import CaseResult, Report

GRADE_ID = "check_plain_step"


def plain_step(x, c, h, params, forget_bias):
    """The right step, written out (no refconv step)."""
    y = refconv.conv_nd(np.concatenate([x, h], axis=-1), params["kernel"]) + params["bias"]
    z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
    z_f, z_i, z = refconv.sigmoid(z_f + forget_bias), refconv.sigmoid(z_i), np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = refconv.sigmoid(z_o)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": z_o * np.tanh(c_new)}


def only_float64(x, c, h, params, forget_bias):
    """Right in float64 cases, wrong in float32 ones: passes exactly the float64 share."""
    result = plain_step(x, c, h, params, forget_bias)
    if x.dtype == np.float32:
        result["z"] = result["z"] + 1.0
    return result


def with_lstm_step(x, c, h, params, forget_bias):
    cell = refconv.ConvLSTMCell(list(x.shape[1:-1]), h.shape[-1], list(params["kernel"].shape[:2]),
                                forget_bias=forget_bias, peephole=False, normalize=False)
    cache = refconv.lstm_step(x, refconv.LSTMStateTuple(c, h), params, cell)[2]
    return {name: getattr(cache, name) for name in ("z", "z_i", "z_f", "c", "z_o", "h")}


@pytest.fixture
def grading(tmp_path, monkeypatch):
    """A task folder and the kernel's state inside the graded cell ``check_plain_step``."""
    def start(secret):
        task = {"notebook": "02.ipynb", "seeds": {GRADE_ID: record.derive_seed(secret, GRADE_ID)},
                "cells": {}}
        (tmp_path / "task.json").write_text(json.dumps(task))
        monkeypatch.setenv(record.GRADING_ENV, str(tmp_path))
        monkeypatch.setattr(record, "_GRADING", None)
        state = record._grading()
        state.grade_id = GRADE_ID              # what the pre_run_cell hook sets in a kernel
        return tmp_path / "result" / "records" / f"{GRADE_ID}.npz"
    yield start
    monkeypatch.setattr(record, "_GRADING", None)


def replayed(path, secret):
    meta, calls, answer = record.load_record(path)
    report = record.replay("check_plain_step", meta, calls, answer,
                           record.derive_seed(secret, GRADE_ID))
    return report


def test_a_record_replayed_in_the_grading_process_gives_exactly_the_share_of_cases_passed(grading):
    path = grading("secret A")
    kernel = check_plain_step(only_float64, seed=0)           # the cell's own seed is ignored
    report = replayed(path, "secret A")
    dtypes = [case.setup["dtype"] for case in report.cases]
    passed = dtypes.count("float64")
    assert 0 < passed < len(dtypes)
    assert [c.passed for c in report.cases] == [d == "float64" for d in dtypes]
    assert report.points(2) == round(2 * passed / len(dtypes), 2)
    assert [c.options for c in kernel.cases] == [c.options for c in report.cases]


def test_the_grade_is_computed_against_the_builds_own_secret(grading):
    path = grading("secret A")
    check_plain_step(plain_step)
    assert replayed(path, "secret A").points(2) == 2
    other = replayed(path, "secret B")                 # replayed against another build's cases
    assert other.points(2) == 0
    a = check_plain_step.unwrapped(plain_step, seed=record.derive_seed("secret A", GRADE_ID))
    b = check_plain_step.unwrapped(plain_step, seed=record.derive_seed("secret B", GRADE_ID))
    assert [c.options for c in a.cases] != [c.options for c in b.cases]


def test_patching_the_report_in_the_kernel_changes_nothing_here(grading, monkeypatch):
    path = grading("s")
    monkeypatch.setattr(Report, "points", lambda self, n: n)
    assert check_plain_step(lambda *a, **k: {}).points(2) == 2      # in the kernel: fooled
    monkeypatch.undo()
    grading("s")
    check_plain_step(lambda *a, **k: {})
    assert replayed(path, "s").points(2) == 0


def test_refconvs_own_step_is_unavailable_in_a_graded_case_and_noted_in_practice(grading):
    practice = check_plain_step(with_lstm_step)
    assert practice.passed and "refconv.lstm_step" in str(practice).splitlines()[-1]
    path = grading("s")
    check_plain_step(with_lstm_step)
    report = replayed(path, "s")
    assert report.points(2) == 0
    assert "refconv.lstm_step is not available while check_plain_step grades" in str(report)
    assert refconv.lstm_step.__module__ == "refconv.lstm"           # put back afterwards
    assert check_plain_step.unwrapped(with_lstm_step).passed


def test_a_record_never_unpickles_and_a_forged_one_is_refused(tmp_path):
    path = tmp_path / "r.npz"
    record.save_record(path, "check_plain_step", GRADE_ID, "f",
                       [{"z": np.ones(3), "t": (1, [2.5, None])}, {"__raised__": "E: x"}, object()])
    meta, calls, _ = record.load_record(path)
    assert calls[0]["t"] == (1, [2.5, None]) and np.array_equal(calls[0]["z"], np.ones(3))
    assert isinstance(calls[2], record.Unsupported)
    np.savez(tmp_path / "bad.npz", __meta__=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="not a readable record"):
        record.load_record(tmp_path / "bad.npz")


def test_points_round_to_two_decimals():
    cases = [CaseResult({}, ("y",), np.zeros((1, 1)), first=None if n == 0 else object())
             for n in range(3)]
    assert Report("t", "f", cases, 0, 0).points(2) == 0.67
    assert Report("t", "f", cases, 0, 0).points(1) == 0.33
    assert Report("t", "f", [], 0, 0).points(2) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2029, 123456789])
def test_every_padding_case_can_show_every_named_slip(seed):
    rng = np.random.default_rng(seed)
    for _ in range(4):
        stride, dilation, examples = _padding_case(rng)
        assert stride > 1 and dilation > 1
        for slip in _padding_slips(3, 3, 2, 2):
            assert any(tuple(_padding_slips(n, k, stride, dilation)[slip])
                       != tuple(refconv.conv_padding(n, k, stride, dilation)) for n, k in examples)


def test_every_conv1d_case_fails_a_flipped_kernel_and_a_front_padded_one():
    def conv1d(x, kernel, before=None):
        k, width = kernel.shape[0], x.shape[1]
        before = (k - 1) // 2 if before is None else before(k)
        xp = np.pad(x, ((0, 0), (before, k - 1 - before), (0, 0)))
        return sum(xp[:, j:j + width] @ kernel[j] for j in range(k))
    for seed in (0, 7):
        assert check_conv1d(conv1d, seed=seed).passed
        flipped = check_conv1d(lambda x, w: conv1d(x, w[::-1]), seed=seed)
        front = check_conv1d(lambda x, w: conv1d(x, w, lambda k: k // 2), seed=seed)
        assert flipped.points(2) == 0 and front.points(2) == 0
        padding = check_same_padding(lambda n, k, s, d: refconv.conv_padding(n, k, 1, d), seed=seed)
        assert padding.points(2) == 0


def _task(tmp_path, secret, records, run=None):
    """A task folder as refconv.course.run leaves it, and the reference notebook."""
    import nbformat
    from refconv.course.grade import prepare_task
    reference = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("report = check_plain_step(plain_step)\nreport.points(2)",
                                  metadata={"nbgrader": {"grade": True, "grade_id": GRADE_ID,
                                                         "points": 2, "locked": True,
                                                         "solution": False}}),
        nbformat.v4.new_markdown_cell("YOUR ANSWER HERE", metadata={"nbgrader": {
            "grade": True, "grade_id": "q", "points": 1, "solution": True}})])
    task = prepare_task(nbformat.from_dict(json.loads(json.dumps(reference))), reference,
                        tmp_path / "task", "x.ipynb", secret)
    (task / "result" / "records").mkdir(parents=True)
    for name, (checker, grade_id, calls) in records.items():
        record.save_record(task / "result" / "records" / name, checker, grade_id, "f", calls)
    (task / "result" / "result.json").write_text(json.dumps(run or {"status": "ok"}))
    nbformat.write(reference, str(task / "result" / "executed.ipynb"))
    return task, reference


def test_judge_scores_the_record_of_the_cells_own_checker_and_leaves_answers_by_hand(
        tmp_path, grading):
    from refconv.course.verdict import judge
    path = grading("s")
    check_plain_step(only_float64)
    _, calls, _ = record.load_record(path)
    task, reference = _task(tmp_path, "s", {f"{GRADE_ID}.npz": ("check_plain_step", GRADE_ID,
                                                                 calls)})
    grades, _ = judge(task, reference, "s")
    assert grades[0].status == "graded" and grades[0].points == replayed(path, "s").points(2) > 0
    assert grades[1].by_hand and grades[1].status == "by hand"
    forged, reference = _task(tmp_path / "f", "s", {f"{GRADE_ID}.npz": (
        "check_conv1d", GRADE_ID, calls)})                  # another checker's record
    grades, _ = judge(forged, reference, "s")
    assert grades[0].points == 0 and grades[0].status == "error"
    assert "not check_plain_step's" in grades[0].feedback[0]


def test_the_secret_comes_from_the_build(tmp_path):
    from refconv.course.build import PUBLIC_SECRET, read_secret
    (tmp_path / "secret.txt").write_text("mine\n")
    assert read_secret(source=tmp_path) == "mine"
    assert read_secret(secret_file=tmp_path / "secret.txt") == "mine"
    assert read_secret(source=tmp_path / "nothing", warn=False) == PUBLIC_SECRET


def test_the_bptt_hint_for_a_state_not_carried_points_at_the_loop():
    from refconv.exercises import check_bptt

    def bptt(cell, params, caches, d_outputs, d_final_state):
        d_state, d_inputs, totals = d_final_state, [], {}
        for t in reversed(range(len(caches))):
            d_x, d_state, d_p = refconv.lstm_step_backward(d_outputs[:, t], d_state, caches[t],
                                                           params, cell)
            d_state = refconv.LSTMStateTuple(np.zeros_like(d_state.c), d_state.h)   # the slip
            d_inputs.insert(0, d_x)
            for name, value in d_p.items():
                totals[name] = totals.get(name, 0) + value
        return {"d_inputs": np.stack(d_inputs, axis=1), "d_initial_c": d_state.c,
                "d_initial_h": d_state.h, **{"d_" + n: v for n, v in totals.items()}}
    report = check_bptt(bptt, count=1)
    assert report.gate == "d_x" and "not carried back" in report.mistake
    assert "step t + 1" in report.hint(1) and "convolution" not in report.hint(1)


def test_a_checker_without_its_policy_is_refused_when_wrapped():
    """POLICY says which refconv functions a graded exercise may not call; a checker wrapped
    without an entry would be graded with nothing forbidden, so wrapping it is refused."""
    from refconv.exercises.record import POLICY, recordable

    def check_something_new(student):
        return None

    assert "check_something_new" not in POLICY
    with pytest.raises(ValueError, match="check_something_new has no entry"):
        recordable(check_something_new)
