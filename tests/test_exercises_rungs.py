"""Notebook 5's backward ladder, the crash reports, the BPTT loop's hints and the report's wording.

The learner solutions here are written from the forward's lines undone one by
one with NumPy and refconv's building blocks (conv_nd_backward,
layer_norm_backward), never from lstm_step_backward, which is the checkers'
reference.
"""

import numpy as np
import pytest

from refconv import conv_nd_backward, layer_norm_backward, lstm_step_backward
from refconv.exercises import (LSTM_BACKWARD_ORDER, check_bptt, check_conv1d,
                               check_layer_norm_step_backward, check_peephole_step_backward,
                               check_plain_step, check_plain_step_backward, check_same_padding)


def plain_backward(d_h, d_c_next, cache, params):
    """Rung 1 only: the plain step's backward (no peephole term, no layer norm anywhere)."""
    k, g = cache, {}
    tanh_c = np.tanh(k["c"])
    g["d_z_o"] = d_h * tanh_c
    g["d_c"] = d_c_next + d_h * k["z_o"] * (1 - tanh_c ** 2)
    g["d_z_o_in"] = g["d_z_o"] * k["z_o"] * (1 - k["z_o"])
    g["d_c_in"] = g["d_c"]
    g["d_z_f"] = g["d_c_in"] * k["c_prev"]
    g["d_z_i"] = g["d_c_in"] * k["z"]
    g["d_z"] = g["d_c_in"] * k["z_i"]
    g["d_z_f_in"] = g["d_z_f"] * k["z_f"] * (1 - k["z_f"])
    g["d_z_i_in"] = g["d_z_i"] * k["z_i"] * (1 - k["z_i"])
    g["d_z_in"] = g["d_z"] * (1 - k["z"] ** 2)
    g["d_c_prev"] = g["d_c_in"] * k["z_f"]
    d_y = np.concatenate([g["d_z_in"], g["d_z_i_in"], g["d_z_f_in"], g["d_z_o_in"]], axis=-1)
    g["d_bias"] = d_y.sum(axis=(0, 1, 2))
    d_xh, g["d_kernel"] = conv_nd_backward(np.concatenate([k["x"], k["h_prev"]], axis=-1),
                                           params["kernel"], d_y)
    g["d_x"], g["d_h_prev"] = np.split(d_xh, [k["x"].shape[-1]], axis=-1)
    return g


def full_backward(d_h, d_c_next, cache, params, bug=None):
    """Rungs 2 and 3: the peepholes' terms, and layer norm's backward where params has gammas."""
    k, g = cache, {}
    normalize = "c/gamma" in params

    def ln_back(name, v, d_out):
        if not normalize:
            return d_out
        d_v, g[f"d_{name}/gamma"], g[f"d_{name}/beta"] = layer_norm_backward(
            v, params[name + "/gamma"], d_out)
        return d_v

    tanh_c = np.tanh(k["c"])
    g["d_z_o"] = d_h * tanh_c
    g["d_c"] = d_c_next + d_h * k["z_o"] * (1 - tanh_c ** 2)
    d_z_o_in = ln_back("z_o", k["z_o_in"], g["d_z_o"] * k["z_o"] * (1 - k["z_o"]))
    d_c_in = ln_back("c", k["c_in"], g["d_c"])
    g["d_W_co"] = (d_z_o_in * k["c_in"]).sum(axis=0)
    g["d_z_o_in"], g["d_c_in"] = d_z_o_in, d_c_in + d_z_o_in * params["W_co"]
    g["d_z_f"] = g["d_c_in"] * k["c_prev"]
    g["d_z_i"] = g["d_c_in"] * k["z"]
    g["d_z"] = g["d_c_in"] * k["z_i"]
    g["d_z_f_in"] = ln_back("z_f", k["z_f_in"], g["d_z_f"] * k["z_f"] * (1 - k["z_f"]))
    g["d_z_i_in"] = ln_back("z_i", k["z_i_in"], g["d_z_i"] * k["z_i"] * (1 - k["z_i"]))
    g["d_z_in"] = ln_back("z", k["z_in"], g["d_z"] * (1 - k["z"] ** 2))
    g["d_W_ci"] = (g["d_z_i_in"] * k["c_prev"]).sum(axis=0)
    g["d_W_cf"] = (g["d_z_f_in"] * k["c_prev"]).sum(axis=0)
    peep = 0 if bug == "no peephole path" else \
        g["d_z_i_in"] * params["W_ci"] + g["d_z_f_in"] * params["W_cf"]
    g["d_c_prev"] = g["d_c_in"] * k["z_f"] + peep
    d_y = np.concatenate([g["d_z_in"], g["d_z_i_in"], g["d_z_f_in"], g["d_z_o_in"]], axis=-1)
    if not normalize:
        g["d_bias"] = d_y.sum(axis=(0, 1, 2))
    d_xh, g["d_kernel"] = conv_nd_backward(np.concatenate([k["x"], k["h_prev"]], axis=-1),
                                           params["kernel"], d_y)
    g["d_x"], g["d_h_prev"] = np.split(d_xh, [k["x"].shape[-1]], axis=-1)
    return g


RUNGS = (check_plain_step_backward, check_peephole_step_backward, check_layer_norm_step_backward)


def test_a_learner_who_writes_only_the_plain_rung_gets_exactly_its_points():
    plain, peephole, layer_norm = (check(plain_backward) for check in RUNGS)
    assert plain.passed, plain.details()
    assert plain.points(1) == 1.0
    # every case of the next rungs has their part switched on: no free partial credit
    assert peephole.points(1) == 0 and layer_norm.points(1) == 0
    assert (peephole.gate, layer_norm.gate) == ("d_c_in", "d_z_o_in")   # the first to differ
    # the rung's cases: float64 and float32, random forget biases, even kernels, no keywords
    assert {case.setup["dtype"] for case in plain.cases} == {"float64", "float32"}
    assert all(case.options == {} for case in plain.cases)
    assert len({case.setup["forget_bias"] for case in plain.cases}) == len(plain.cases)
    assert any(k % 2 == 0 for case in plain.cases for k in case.setup["kernel"])
    assert plain.cases[0].names == LSTM_BACKWARD_ORDER + ("d_kernel", "d_bias")


def test_each_rung_passes_its_own_solution_and_names_its_parameters():
    peephole = check_peephole_step_backward(full_backward)
    layer_norm = check_layer_norm_step_backward(full_backward)
    assert peephole.passed and layer_norm.passed, peephole.details() + layer_norm.details()
    assert peephole.cases[0].names[-3:] == ("d_W_ci", "d_W_cf", "d_W_co")
    assert "d_bias" not in layer_norm.cases[0].names and "d_c/gamma" in layer_norm.cases[0].names
    assert not check_plain_step_backward(full_backward).passed    # no d_bias there: not rung 1
    broken = check_peephole_step_backward(lambda *a: full_backward(*a, bug="no peephole path"))
    assert (broken.gate, broken.step, broken.points(2)) == ("d_c_prev", 0, 0)
    assert "peephole paths" in broken.hint(2)                       # named, when asked


def test_a_crash_reports_the_shapes_given_and_expected_and_the_line(tmp_path, monkeypatch):
    # a learner's file, so that the report can quote the learner's line
    (tmp_path / "learner.py").write_text(
        "import numpy as np\n"
        "def masked(x, c, h, params, forget_bias):\n"
        "    alive = np.ones(x.shape[0])\n"
        "    kept = c * alive\n"
        "    return {'z': kept}\n"
        "def padded(x, kernel):\n"
        "    return np.pad(x, ((1, 1), (0, 0)))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from learner import masked, padded

    report = check_plain_step(masked)
    assert report.gate is None and report.mismatch.crash is not None
    text = str(report)
    assert "it was given: x [2, 9, 8, 2], c [2, 9, 8, 3], h [2, 9, 8, 3], params {kernel " in text
    assert "it must return: z [2, 9, 8, 3], z_i [2, 9, 8, 3]" in text
    assert "it raised at line 4, in masked: kept = c * alive" in text
    assert "the arrays on that line: c [2, 9, 8, 3], alive [2]" in text
    assert "more help: report.hint(2) (which axis)" in text
    line, axis, rule = report.hint(1), report.hint(2), report.hint(3)
    assert "kept = c * alive" in line and "alive [2]" in line
    assert "axis -1 holds 3 against 2" in axis and "(c or h)" in axis and "(alive)" in axis
    assert "from the LAST axis" in rule and "reshape(-1, 1, 1, 1)" in rule
    assert axis.endswith("(report.hint(3): more)") and axis.count("report.hint") == 1
    shown = str(check_plain_step(masked, hints=2))        # the axis shown unasked: said once
    assert "axis -1 holds 3 against 2" in shown and shown.count("report.hint(3)") == 1

    report = check_conv1d(padded)
    assert "it was given: x [2, " in str(report) and "it must return: y [2, " in str(report)
    assert "in padded: return np.pad(x, ((1, 1), (0, 0)))" in str(report)
    assert "one pair per axis" in report.hint(2) and "array with 3 axes" in report.hint(2)


def test_a_crash_in_the_backward_rung_shows_the_gradients_given():
    def wrong_axis(d_h, d_c_next, cache, params):
        return {"d_z_o": d_h * np.tanh(cache["c"]).sum(axis=0)[..., None]}

    report = check_plain_step_backward(wrong_axis)
    text = str(report)
    assert "it was given: d_h [2, 9, 8, 3], d_c_next [2, 9, 8, 3], cache {x [2, 9, 8, 2]" in text
    assert "it must return: d_z_o [2, 9, 8, 3], d_c [2, 9, 8, 3]" in text
    expected = dict(report.mismatch.crash["expected"])          # the whole list, in order
    assert expected["d_kernel"] == "[3, 3, 5, 12]" and expected["d_bias"] == "[12]"
    assert "and 6 more (the exercise's text lists them)" in text


def bptt(cell, params, caches, d_outputs, d_final_state, bug=None):
    d_state = d_final_state
    if bug == "starts from zeros":
        d_state = type(d_state)(*(np.zeros_like(a) for a in d_state))
    d_inputs, totals = [None] * len(caches), {}
    for t in reversed(range(len(caches))):
        d_h = d_outputs[:, t]
        if bug == "h counted twice":                 # the notebook's sentence, taken literally
            d_h = d_h + d_state.h
        d_inputs[t], d_state, d_p = lstm_step_backward(d_h, d_state, caches[t], params, cell)
        for name, value in d_p.items():
            totals[name] = totals.get(name, 0) + value
    return {"d_inputs": np.stack(d_inputs, axis=1), "d_initial_c": d_state.c,
            "d_initial_h": d_state.h, **{"d_" + n: v for n, v in totals.items()}}


@pytest.mark.parametrize("bug, named", [("h counted twice", "counted twice"),
                                        ("starts from zeros", "starts from zeros")])
def test_a_bptt_loop_slip_gets_a_hint_about_the_loop_not_the_convolution(bug, named):
    report = check_bptt(lambda *a: bptt(*a, bug=bug))
    assert (report.gate, report.step) == ("d_x", 4)          # the last step: the loop's first
    assert named in report.mistake and named not in str(report)
    hints = str(report) + report.hint(1) + report.hint(2) + report.hint(3)
    assert "conv_nd_backward" not in hints and "concat" not in hints
    assert "d_state" in report.hint(1) and named in report.hint(2)
    assert "adds d_state.h to its d_h itself" in report.hint(3)
    assert check_bptt(bptt).passed


def test_the_report_wording():
    # a single number is shown as two numbers, not "at [] = []"; no "t=" for examples
    report = check_same_padding(lambda n, k, s, d: ((k - 1) // 2, (k - 1) // 2))
    text = str(report) + report.details()
    m = report.mismatch
    assert "at [] = []" not in text and f"yours {m.yours:.3g}, reference {m.reference:.3g}" in text
    assert "t=0" not in text and "#0" in text
    # "right before it" read as "also wrong": the report says they were right
    report = check_plain_step_backward(lambda d_h, d_c, cache, params: {
        **plain_backward(d_h, d_c, cache, params), "d_z_i": d_h})
    assert "computed before it at that time step, and right: d_z_o, d_c, d_z_o_in, d_c_in, " \
           "d_z_f" in str(report)
    assert "t=0" in report.details()


def test_an_unwritten_exercise_says_so_and_lists_what_to_return():
    def plain_step_backward(d_h, d_c_next, cache, params):
        raise NotImplementedError()

    report = check_plain_step_backward(plain_step_backward)
    text = str(report)
    assert "not written yet" in text and "more help" not in text and "which axis" not in text
    assert "it must return: d_z_o [2, 9, 8, 3]" in text and "and 6 more" in text
    assert "not written yet" in report.hint(1) and report.hint(3) == report.hint(1)
    bptt_report = str(check_bptt(lambda *args: 1 / 0))
    assert "it must return: d_inputs [2, 5, 9, 8, 2], d_initial_c [2, 9, 8, 3]" in bptt_report


def test_notebook_5_grades_the_backward_in_three_rungs_and_tags_its_teacher_cell():
    import pathlib
    import sys
    notebooks = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
    sys.path.insert(0, str(notebooks))
    try:
        import run
    finally:
        sys.path.remove(str(notebooks))
    nb = run.build(notebooks / "05_learning.ipynb")
    graded = [(c.metadata["nbgrader"]["grade_id"], c.metadata["nbgrader"]["points"])
              for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
              and c.cell_type == "code"]
    assert graded[:3] == [("check_plain_step_backward", 2), ("check_peephole_step_backward", 1),
                          ("check_layer_norm_step_backward", 1)]
    teachers = [c for c in nb.cells if "For teachers" in c.source]
    assert teachers and all(c.metadata.get("tags") == ["instructor-only"] for c in teachers)
    words = run.build(notebooks / "01_convolution.ipynb")
    assert any("**the seed**" in c.source and "**a random seed**" in c.source for c in words.cells)
    for name in ("01_convolution", "02_convlstm_gates", "03_convgru_vs_lstm", "04_time",
                 "05_learning"):
        student_text = "\n".join(c.source for c in run.build(notebooks / f"{name}.ipynb").cells
                                 if "instructor-only" not in c.metadata.get("tags", []))
        assert "SPEC.md" not in student_text and "COURSE.md" not in student_text, name
        assert "**Time: about" in student_text, name


def test_points_read_the_same_in_the_notebook_and_from_the_grader():
    report = check_plain_step_backward(plain_backward, count=3)
    points = report.points(2)
    assert points == 2.0 and isinstance(points, float)
    assert repr(points) == "2.0"                          # what nbgrader reads (text/plain)
    assert str(points) == "2 / 2" and "**2 / 2**" in points._repr_markdown_()
    half = check_peephole_step_backward(full_backward, count=3)
    assert f"{half.points(1):g} / 1" == str(half.points(1))   # the grader's format


def test_a_channels_first_mix_up_gets_the_concatenation_axis(tmp_path, monkeypatch):
    (tmp_path / "learner_cf.py").write_text(
        "import numpy as np\n"
        "def layer_norm_step(x, c, h, params, forget_bias, norm_epsilon, data_format):\n"
        "    xh = np.concatenate([x, h], axis=-1)\n"
        "    return {'z': xh}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from learner_cf import layer_norm_step
    from refconv.exercises import check_layer_norm_step

    report = check_layer_norm_step(layer_norm_step, cases=[{"data_format": "channels_first",
                                                            "norm_epsilon": 1e-3}])
    failing = report.failed_case
    assert failing.options["data_format"] == "channels_first" and report.gate is None
    assert "xh = np.concatenate([x, h], axis=-1)" in str(report)
    axis = report.hint(2)
    assert "along axis 1, array 0 has 2 and array 1 has 3" in axis
    assert "channels_first the channels are axis 1" in axis and "x [2, 2, 9, 8]" in axis
