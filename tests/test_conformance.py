"""refconv.conformance: deployed ConvLSTMs (ONNX Runtime, TFLite) held against refconv.

The oracle is refconv's float64 run of the weights the importers read from the
framework's model. The checker itself is tested first without any framework,
on candidates made from refconv's own run with a known error planted at a
known layer, gate and step. Then real runtimes: a PyTorch ConvLSTM exported to
ONNX (TorchScript and dynamo exporters) and run by ONNX Runtime at each graph
optimisation level, Keras ConvLSTM2D converted to TFLite (looped and
unrolled) and run by LiteRT, where float32 must agree to a few 1e-6 of the
tensors' scale (measured: 3e-7 to 3e-6), a time length other than the export's
must be reported (TRUNCATED when the runtime silently returns fewer steps),
planted deployment bugs must be found at their gate and step, and float16 /
int8 conversions must fail from step 0.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from _frameworks import REQUIRE_VARIABLE, require

import refconv
from refconv import conformance
from refconv.conformance import (ATOL, FAILED, OK, REFUSED, RTOL, TRUNCATED, Candidate, Report,
                                 check, reference)
from refconv.conformance.report import load, merge

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What float32 runtimes reach here is 3e-7 to 3e-6 (of the tensors' scale); a test that
# allows 1e-5 would still pass a kernel 10 times worse than any measured.
FLOAT32 = 1e-5
FIELDS = dict(runtime="test", exporter="refconv", options="-", dtype="float32", t_export=6)


def _cell_and_inputs(seed=0, batch=2, steps=6):
    rng = np.random.default_rng(seed)
    cells = [refconv.ConvLSTMCell([5, 4], f, [3, 3], normalize=False, peephole=False,
                                  forget_bias=0.0, data_format="channels_first")
             for f in (3, 4)]
    cell = refconv.MultiRNNCell(cells)
    x = rng.standard_normal((batch, steps, 2, 5, 4))
    # the cells' parameters are random and non-zero: set them through the public params
    for layer, c_in in zip(cells, (2, 3)):
        layer.params = {"kernel": rng.uniform(-0.5, 0.5, (3, 3, c_in + layer.filters,
                                                          4 * layer.filters)),
                        "bias": rng.uniform(-0.5, 0.5, 4 * layer.filters)}
    return cell, x


def _candidate(cell, x):
    return Candidate({k: v.copy() for k, v in reference(cell, x).items()})


# --- the checker, without a framework -----------------------------------------------------

def test_a_candidate_equal_to_refconv_passes_with_every_quantity_compared():
    cell, x = _cell_and_inputs()
    row = check(cell, x, _candidate(cell, x), rtol=RTOL, atol=ATOL, **FIELDS)
    assert row.status == OK and row.first_failure is None
    assert set(row.errors) == {"outputs", "h", "c", "z", "z_i", "z_f", "z_o"}
    assert max(row.errors.values()) == 0.0


@pytest.mark.parametrize("layer, name, step", [(0, "z_f", 3), (1, "z", 0), (1, "z_o", 5),
                                               (0, "c", 2)])
def test_an_error_planted_in_one_gate_is_found_at_its_layer_gate_and_step(layer, name, step):
    """The error also reaches later quantities (c, h, the next layer): the first is named."""
    cell, x = _cell_and_inputs(seed=step)
    candidate = _candidate(cell, x)
    candidate[f"layer{layer}/{name}"][:, step] += 1e-3
    row = check(cell, x, candidate, rtol=RTOL, atol=ATOL, **FIELDS)
    assert row.status == FAILED
    assert row.first_failure == f"layer{layer} {name} t={step}"


def test_an_error_in_the_outputs_alone_is_named_after_the_gates_are_cleared():
    cell, x = _cell_and_inputs()
    candidate = _candidate(cell, x)
    candidate["outputs"][:, 4] *= 1.001
    row = check(cell, x, candidate, rtol=RTOL, atol=ATOL, **FIELDS)
    assert (row.status, row.first_failure) == (FAILED, "outputs t=4")


def test_fewer_steps_returned_than_fed_is_reported_as_truncation():
    """A runtime that returns 4 of 6 steps, right ones, without an error: TRUNCATED, and the
    final state (refconv's after all 6 steps) is wrong."""
    cell, x = _cell_and_inputs()
    short = _candidate(cell, x[:, :4])
    row = check(cell, x, short, rtol=RTOL, atol=ATOL, **FIELDS)
    assert row.status == TRUNCATED
    assert "fed T=6, returned 4 steps" in row.note
    assert row.errors["outputs"] == 0.0 and row.errors["h"] > 1e-3


def test_a_gate_the_graph_starts_computing_late_is_compared_from_there():
    cell, x = _cell_and_inputs()
    candidate = _candidate(cell, x)
    candidate["layer0/z_f"] = candidate["layer0/z_f"][:, 1:].copy()
    candidate.first_step["layer0/z_f"] = 1
    assert check(cell, x, candidate, rtol=RTOL, atol=ATOL, **FIELDS).status == OK
    candidate["layer0/z_f"][:, 2] += 1e-3  # the array's step 2 is the sequence's step 3
    row = check(cell, x, candidate, rtol=RTOL, atol=ATOL, **FIELDS)
    assert row.first_failure == "layer0 z_f t=3"


def test_a_candidate_without_outputs_is_an_error_naming_it():
    cell, x = _cell_and_inputs()
    with pytest.raises(ValueError, match="candidate: expected the key 'outputs'"):
        check(cell, x, Candidate(h=np.zeros(1)), rtol=RTOL, atol=ATOL, **FIELDS)


def _report(status=OK, rtol=RTOL, atol=ATOL, t_run=6):
    row = conformance.Row("rt 1", "ex", "opt", "float32", 6, t_run, status,
                          {"outputs": 1e-7, "z_f": 2e-7}, None, "")
    return Report([conformance.describe()], [row], rtol, atol)


def test_reports_round_trip_through_json_and_merge_with_their_environments(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _report().save(a)
    _report(TRUNCATED, t_run=9).save(b)
    assert load(a) == _report()
    merged = merge([a, b])
    assert len(merged.runs) == 2 and [row.run for row in merged.rows] == [0, 1]
    table = merged.table()
    assert "run 0:" in table and "run 1:" in table and "TRUNCATED" in table
    assert "numpy" in table  # each run's header has its versions


def test_merging_reports_of_different_tolerances_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="same --rtol/--atol"):
        merge([_report(), _report(rtol=1e-3)])
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="expected a report with format"):
        load(path)


def test_the_report_passes_only_when_float32_at_the_export_length_passes():
    assert _report(OK).passed
    assert not _report(FAILED).passed
    assert _report(REFUSED, t_run=9).passed      # a fixed length, refused loudly: a finding
    assert not Report([], [], RTOL, ATOL).passed  # a table of nothing passes nothing


def test_the_environment_header_names_versions_and_cpu_features():
    env = conformance.describe()
    assert env["versions"]["refconv"] == refconv.__version__
    assert env["cpu"]["cores"] >= 1 and isinstance(env["cpu"]["features"], list)


def test_refconv_and_its_command_line_import_no_framework():
    code = ("import sys, refconv, refconv.conformance, refconv.cli; refconv.cli._parser(); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tensorflow', 'keras', "
            "'ai_edge_litert') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_command_merges_reports_and_rejects_bad_arguments(tmp_path, capsys):
    from refconv.cli import main
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _report().save(a)
    _report(FAILED).save(b)
    assert main(["conformance", "--merge", str(a)]) == 0
    assert main(["conformance", "--merge", str(a), str(b)]) == 1
    assert "run 1:" in capsys.readouterr().out
    assert main(["conformance", "--merge", str(tmp_path / "missing.json")]) == 2
    for bad in ("-1", "nan", "inf"):
        with pytest.raises(SystemExit) as exit_:
            main(["conformance", "--rtol", bad])
        assert exit_.value.code == 2
        assert f"--rtol: expected a finite number" in capsys.readouterr().err


# --- ONNX Runtime: a PyTorch (ndrplz) ConvLSTM exported to ONNX --------------------------

@pytest.fixture(scope="module")
def onnx_torch():
    for name in ("torch", "onnx", "onnxruntime"):
        require(name)
    from refconv.conformance import onnx_torch
    return onnx_torch


@pytest.fixture(scope="module")
def exported(onnx_torch):
    """A two-layer ndrplz ConvLSTM (F = 3, 4), its refconv cells, inputs of 8 steps, and its
    TorchScript export at T = 5."""
    model = onnx_torch.make_model(channels=2, filters=(3, 4), kernel=3, seed=1)
    cell = onnx_torch.reference_cell(model, (6, 5))
    x = np.random.default_rng(1).standard_normal((2, 8, 2, 6, 5)).astype(np.float32)
    return model, cell, x, onnx_torch.export(model, x[:, :5], "torchscript")


def _ort_row(onnx_torch, graph, cell, x, opt="all", **fields):
    located = onnx_torch.locate(graph)
    candidate = onnx_torch.run(graph, x, opt, onnx_torch.instrument(graph, located), located)
    return check(cell, x, candidate, rtol=RTOL, atol=ATOL, runtime="ort", exporter="ts",
                 options=opt, dtype="float32", t_export=5, **fields), candidate


@pytest.mark.parametrize("opt", ["disable", "basic", "extended", "layout", "all"])
def test_onnx_runtime_float32_agrees_with_refconv_at_every_optimisation_level(onnx_torch,
                                                                              exported, opt):
    _, cell, x, graph = exported
    row, candidate = _ort_row(onnx_torch, graph, cell, x[:, :5], opt)
    assert row.status == OK, row
    # every gate, and each step's c and h, of both layers was read from the graph
    assert {f"layer{layer}/{name}" for layer in (0, 1)
            for name in ("z", "z_i", "z_f", "z_o", "c", "h")} <= set(candidate)
    assert 0 < max(row.errors.values()) <= FLOAT32, row.errors


def test_the_torchscript_export_silently_truncates_a_longer_sequence(onnx_torch, exported):
    """Exported at T = 5 with T declared dynamic, fed 8 steps: 5 come back, no error."""
    _, cell, x, graph = exported
    row, _ = _ort_row(onnx_torch, graph, cell, x)
    assert row.status == TRUNCATED
    assert "fed T=8, returned 5 steps without an error" in row.note
    assert row.errors["outputs"] <= FLOAT32 and row.errors["h"] > 1e-2


def test_the_torchscript_export_refuses_a_shorter_sequence(onnx_torch, exported):
    _, cell, x, graph = exported
    row = onnx_torch._row(graph, onnx_torch.instrument(graph), onnx_torch.locate(graph), cell,
                          x[:, :3], opt="all", rtol=RTOL, atol=ATOL, runtime="ort",
                          exporter="ts", options="all", dtype="float32", t_export=5)
    assert row.status == REFUSED and "Gather" in row.note


@pytest.mark.parametrize("layer, step", [(0, 4), (1, 2)])
def test_a_planted_hard_sigmoid_forget_gate_is_found_at_its_layer_and_step(onnx_torch, exported,
                                                                           layer, step):
    _, cell, x, graph = exported
    planted = onnx_torch.plant_activation(graph, layer, step, "z_f", "HardSigmoid")
    row, _ = _ort_row(onnx_torch, planted, cell, x[:, :5])
    assert (row.status, row.first_failure) == (FAILED, f"layer{layer} z_f t={step}")


def test_swapped_gate_blocks_are_found_at_the_first_gate_and_step_0(onnx_torch, exported):
    """The graph reads blocks o and g the other way round: z (tanh of o's block) is first."""
    _, cell, x, graph = exported
    row, _ = _ort_row(onnx_torch, onnx_torch.swap_blocks(graph, 1, "z_o", "z"), cell, x[:, :5])
    assert (row.status, row.first_failure) == (FAILED, "layer1 z t=0")


@pytest.mark.parametrize("convert", ["float16_weights", "int8_dynamic"])
def test_reduced_precision_conversions_fail_from_step_0(onnx_torch, exported, convert):
    _, cell, x, graph = exported
    reduced = getattr(onnx_torch, convert)
    located = onnx_torch.locate(graph)
    candidate = onnx_torch.run(reduced(graph), x[:, :5], "all",
                               reduced(onnx_torch.instrument(graph, located)), located)
    row = check(cell, x[:, :5], candidate, rtol=RTOL, atol=ATOL, runtime="ort", exporter="ts",
                options="all", dtype=convert, t_export=5)
    assert row.status == FAILED and row.first_failure.endswith(" t=0"), row
    assert row.errors["z"] > 1e-4


def test_the_dynamo_export_fixes_the_length_and_refuses_another(onnx_torch):
    """Dim("T") notwithstanding, the dynamo exporter writes a model of the traced length:
    the right answer at that length, an error (not a truncation) at another."""
    require("onnxscript")
    rows = onnx_torch.conform(exporters=("dynamo",), opt_levels=("all",), channels=2,
                              filters=(3,), size=(5, 5), t_export=4, reduced=False)
    assert [(r.t_run, r.status) for r in rows] == [(4, OK), (7, REFUSED)], rows
    assert 0 < max(rows[0].errors.values()) <= FLOAT32


# --- TFLite: Keras 3 and tf_keras ConvLSTM2D converted, run by LiteRT --------------------

@pytest.fixture(scope="module")
def tflite_rows():
    """One conversion process: Keras 3 looped (float32) and unrolled (float32, float16
    weights, int8), tf_keras looped (float32); C = 8, F = 16, 16 (so that int8 quantizes
    the weights: TFLite leaves tensors under 1024 elements in float32)."""
    for name in ("tensorflow", "ai_edge_litert", "tf_keras"):
        require(name)
    from refconv.conformance import tflite_keras
    skipped = []
    rows = tflite_keras.conform(
        conversions=[("keras3 looped", "float32"), ("keras3 unrolled", "float32"),
                     ("keras3 unrolled", "float16 weights"),
                     ("keras3 unrolled", "int8 dynamic range"), ("tf_keras looped", "float32"),
                     ("tf_keras unrolled", "float32")],
        resolvers=("xnnpack", "builtin"), size=(6, 6), t_export=5, skipped=skipped)
    return {(r.exporter, r.options, r.dtype, r.t_run): r for r in rows}, skipped


@pytest.mark.parametrize("model", ["keras3 looped", "tf_keras looped"])
@pytest.mark.parametrize("resolver", ["xnnpack", "builtin"])
def test_looped_tflite_agrees_with_refconv_at_the_export_length_and_another(tflite_rows, model,
                                                                            resolver):
    """The WHILE loop runs any length: 5 steps and 8 both agree."""
    rows, _ = tflite_rows
    for steps in (5, 8):
        row = rows[(model, resolver, "float32", steps)]
        assert row.status == OK and row.t_export is None, row
        assert {"outputs", "h", "c"} <= set(row.errors)
        assert 0 < max(row.errors.values()) <= FLOAT32, row.errors


@pytest.mark.parametrize("resolver", ["xnnpack", "builtin"])
def test_unrolled_tflite_agrees_gate_by_gate_and_refuses_another_length(tflite_rows, resolver):
    rows, _ = tflite_rows
    row = rows[("keras3 unrolled", resolver, "float32", 5)]
    assert row.status == OK, row
    assert set(row.errors) == {"outputs", "h", "c", "z", "z_i", "z_f", "z_o"}
    assert 0 < max(row.errors.values()) <= FLOAT32, row.errors
    refused = rows[("keras3 unrolled", resolver, "float32", 8)]
    assert refused.status == REFUSED and "(5 != 8)" in refused.note


@pytest.mark.parametrize("dtype", ["float16 weights", "int8 dynamic range"])
def test_reduced_precision_tflite_fails_from_step_0_at_the_first_gate(tflite_rows, dtype):
    rows, _ = tflite_rows
    row = rows[("keras3 unrolled", "xnnpack", dtype, 5)]
    assert (row.status, row.first_failure) == (FAILED, "layer0 z t=0"), row
    assert "nothing was reduced" not in row.note


def test_tf_keras_refusing_to_unroll_is_named_in_the_header(tflite_rows):
    _, skipped = tflite_rows
    assert any("tf_keras unrolled" in s and "Unrolling is not possible" in s for s in skipped)


def test_run_reports_this_environment_and_a_truncation_as_not_failing_the_float32_check(
        onnx_torch):
    report = conformance.run(["onnxruntime"], exporters=("torchscript",), opt_levels=("all",),
                             reduced=False, channels=2, filters=(3,), size=(5, 5), t_export=4)
    assert [(r.t_run, r.status) for r in report.rows] == [(4, OK), (7, TRUNCATED)]
    assert report.passed  # the float32 row at the export's length passed
    assert report.runs[0]["versions"]["onnxruntime"] in report.table()
    with pytest.raises(ValueError, match="runtime: expected one of"):
        conformance.run(["tensorrt"])
