"""refconv.conformance with the user's own model, and verdicts a pipeline can trust.

First without a framework: the verdict of every status combination, the
per-gate worst error of a row with an error planted in one gate, the table's
width, the JSON's fields, the command's argument checks (one line, exit 2,
before any work). Then ONNX Runtime: the gate probe follows each block
through elementwise ops (Add, Mul, Cast, Clip) to its activation, a model
adding a forget bias before its sigmoid passes, and a user's exported file
with its state_dict (or a refconv .npz) passes, fails against another model's
weights at a gate, layer and step, and shows TRUNCATED for an unrolled
"dynamic" length (a failure with --strict). Last, a Keras model's TFLite file
with its .keras file.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _frameworks import require

import refconv
from refconv import conformance
from refconv.conformance import (ATOL, FAILED, OK, REFUSED, RTOL, TRUNCATED, Candidate, Report,
                                 Row, check, reference)
from refconv.conformance.report import STATUSES, merge
from refconv.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = dict(runtime="test", exporter="refconv", options="-", dtype="float32", t_export=6)


def _cell_and_inputs(seed=0, steps=6):
    rng = np.random.default_rng(seed)
    cells = [refconv.ConvLSTMCell([5, 4], f, [3, 3], normalize=False, peephole=False,
                                  forget_bias=0.0, data_format="channels_first") for f in (3, 4)]
    for layer, c_in in zip(cells, (2, 3)):
        layer.params = {"kernel": rng.uniform(-0.5, 0.5, (3, 3, c_in + layer.filters,
                                                          4 * layer.filters)),
                        "bias": rng.uniform(-0.5, 0.5, 4 * layer.filters)}
    return refconv.MultiRNNCell(cells), rng.standard_normal((2, steps, 2, 5, 4))


def _candidate(cell, x):
    return Candidate({k: v.copy() for k, v in reference(cell, x).items()})


# --- verdicts, without a framework ---------------------------------------------------------

def test_more_steps_than_fed_fail_fewer_are_truncated_equal_pass():
    cell, x = _cell_and_inputs(steps=6)
    longer = _candidate(cell, np.concatenate([x, x[:, :2]], axis=1))
    shorter = _candidate(cell, x[:, :4])
    rows = [check(cell, x, c, rtol=RTOL, atol=ATOL, **FIELDS)
            for c in (longer, shorter, _candidate(cell, x))]
    assert [r.status for r in rows] == [FAILED, TRUNCATED, OK]
    assert "fed T=6, returned 8 steps" in rows[0].note
    assert "fed T=6, returned 4 steps without an error" in rows[1].note


@pytest.mark.parametrize("layer, name, step", [(0, "z_f", 3), (1, "z_i", 0), (1, "z_o", 5)])
def test_the_worst_error_of_each_quantity_is_the_planted_one_in_its_gate_only(layer, name, step):
    cell, x = _cell_and_inputs(seed=step)
    candidate = _candidate(cell, x)
    scale = np.abs(candidate[f"layer{layer}/{name}"]).max()
    candidate[f"layer{layer}/{name}"][:, step] += 1e-3
    row = check(cell, x, candidate, rtol=RTOL, atol=ATOL, **FIELDS)
    assert row.first_failure == f"layer{layer} {name} t={step}"
    expected = {key: 0.0 for key in ("outputs", "h", "c", "z", "z_i", "z_f", "z_o")}
    expected[name] = 1e-3 / scale
    assert row.errors == pytest.approx(expected, rel=1e-9, abs=0)


def _row(status, dtype="float32", t_export=6, t_run=6):
    return Row("rt 1", "ex", "opt", dtype, t_export, t_run, status, {"outputs": 1e-7})


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("other", STATUSES)
def test_the_verdict_of_every_pair_of_statuses(status, other):
    """Row 1: float32 at the export's length (it decides); row 2: another length (a finding,
    except TRUNCATED under --strict)."""
    report = Report([], [_row(status), _row(other, t_run=9)], RTOL, ATOL)
    decides = status in (OK, REFUSED)
    assert report.verdict() == ("PASSED" if decides else "FAILED")
    truncated = TRUNCATED in (status, other)
    assert report.verdict(strict=True) == ("PASSED" if decides and not truncated else "FAILED")
    # reduced precision and dynamic exports
    reduced = Report([], [_row(OK), _row(status, dtype="int8 dynamic")], RTOL, ATOL)
    assert reduced.verdict() == "PASSED"
    dynamic = Report([], [_row(status, t_export=None, t_run=9)], RTOL, ATOL)
    assert dynamic.verdict() == ("PASSED" if decides else "FAILED")


def test_a_report_of_nothing_fails():
    assert Report([], [], RTOL, ATOL).verdict() == "FAILED"


def _wide_report():
    """Two runs, rows differing in every label (none is hoisted above the table)."""
    errors = {k: 1.234e-7 for k in ("outputs", "h", "c", "z", "z_i", "z_f", "z_o")}
    rows = [Row("onnxruntime 1.32.0", "a_rather_long_file_name_of_a_deployed_model.onnx",
                "opt=extended", "int8 dynamic range", None, 11, TRUNCATED, errors,
                "layer1 z_o t=10", "fed T=11, returned 8 steps without an error; " * 6),
            Row("litert 2.3.0", "keras3 unrolled", "xnnpack", "float32", 8, 8, OK, errors,
                run=1)]
    env = conformance.describe()
    env["skipped"] = ["tf_keras models: tf_keras is not installed " * 4]
    return Report([env, env], rows, RTOL, ATOL)


def test_the_table_fits_120_columns_and_verbose_adds_the_details():
    report = _wide_report()
    table = report.table()
    assert max(map(len, table.splitlines())) <= 120, table
    assert "TRUNCATED" in table and "layer1 z_o t=10" in table and "1e-07" in table
    verbose = report.table(verbose=True)
    assert max(map(len, verbose.splitlines())) <= 120, verbose
    assert "1.234e-07" in verbose and "a_rather_long_file_name_of_a_deployed_model.onnx" in verbose
    assert "1.234e-07" not in table
    # a label every row shares is said once above the table, in full; the others shortened
    shared = Report([conformance.describe()], [_row(OK)._replace(exporter="torchscript opset 17",
                                                                  dtype="float16 weights"),
                                               _row(OK)._replace(options="opt=all")],
                    RTOL, ATOL).table()
    assert "every row: runtime rt 1; dtype" not in shared
    assert "every row: runtime rt 1" in shared and "f16 w" in shared and " opset" not in shared


def test_the_json_says_the_verdict_when_how_long_and_the_versions(tmp_path):
    report = Report([conformance.describe()], [_row(OK), _row(TRUNCATED, t_run=9)], RTOL, ATOL)
    path = tmp_path / "r.json"
    report.save(path, strict=True, started="2026-01-01T00:00:00+00:00", seconds=1.5)
    data = json.loads(path.read_text())
    assert (data["verdict"], data["strict"], data["seconds"]) == ("FAILED", True, 1.5)
    assert data["refconv_version"] == refconv.__version__
    assert data["versions"]["numpy"] == np.__version__
    report.save(path)
    assert json.loads(path.read_text())["verdict"] == "PASSED"
    assert conformance.load(path) == report  # the extra fields do not disturb reading


def test_merge_refuses_the_same_file_twice(tmp_path):
    path = tmp_path / "a.json"
    Report([conformance.describe()], [_row(OK)], RTOL, ATOL).save(path)
    with pytest.raises(ValueError, match="twice"):
        merge([path, tmp_path / "." / "a.json"])
    assert main(["conformance", "--merge", str(path), str(path)]) == 2


def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("refconv conformance: "), err
    for needle in needles:
        assert needle in err, err


def test_every_path_and_number_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    """Nothing runs: the runners are replaced by ones that fail the test if called."""
    def never(*args, **kwargs):
        raise AssertionError("ran before its arguments were checked")
    monkeypatch.setattr(conformance, "run", never)
    monkeypatch.setattr(conformance, "check_model", never)
    model, weights = tmp_path / "m.onnx", tmp_path / "m.pt"
    model.write_bytes(b"x")
    weights.write_bytes(b"x")
    own = ["--onnx", str(model), "--torch-state", str(weights)]
    cases = [
        (["--json", "/nonexistent/x.json"], "--json", "does not exist"),
        (["--json", str(tmp_path)], "--json", "is a folder"),
        (["--onnx", str(model)], "--onnx and --torch-state", "only --onnx"),
        (["--keras", str(weights)], "--tflite and --keras", "only --keras"),
        (["--onnx", str(tmp_path / "no.onnx"), "--torch-state", str(weights)], "no such file"),
        (["--onnx", str(weights), "--torch-state", str(weights)], "expected a .onnx file"),
        (["--forget-bias", "1"], "--gate-order/--forget-bias", "--onnx"),
        ([*own, "--runtime", "tflite"], "--runtime"),
        (["--merge", str(model), "--runtime", "tflite"], "--merge"),
    ]
    for argv, *needles in cases:
        assert main(["conformance", *argv]) == 2, argv
        _one_line(capsys, *needles)
    for argv in (["--forget-bias", "nan", *own], ["--gate-order", "ifoo", *own],
                 ["--timesteps", "0"], ["--seed", "-1"], ["--atol", "-1e-9"]):
        with pytest.raises(SystemExit) as exit_:
            main(["conformance", *argv])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "expected" in err, err


def test_the_exit_statuses_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["conformance", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "0 PASSED; 1 FAILED" in out and "2 usage error" in out and "--strict" in out


def test_check_model_refuses_files_it_cannot_use(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(ValueError, match="weights: .*no such file"):
        conformance.check_model(model, tmp_path / "w.pt")
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match="model: expected an .onnx or .tflite file"):
        conformance.check_model(tmp_path / "m.h5", model)
    with pytest.raises(ValueError, match=r"weights: expected a .keras file for an .tflite"):
        (tmp_path / "m.tflite").write_bytes(b"x")
        conformance.check_model(tmp_path / "m.tflite", model)


def test_a_refconv_npz_of_parameters_is_read_per_layer(tmp_path):
    from refconv.conformance.own import Weights
    cell, x = _cell_and_inputs()
    path = tmp_path / "w.npz"
    np.savez(path, **{f"layer{i}/{k}": v for i, c in enumerate(cell.cells)
                      for k, v in c.params.items()})
    weights = Weights.read(str(path))
    assert weights.c_in == 2
    rebuilt = weights.cell([5, 4], "channels_first", gate_order=None, forget_bias=0.0)
    assert np.array_equal(reference(rebuilt, x)["outputs"], reference(cell, x)["outputs"])
    np.savez(path, kernel=np.zeros((3, 3, 5, 12)), bias=np.zeros(12), extra=np.zeros(1))
    with pytest.raises(ValueError, match="expected refconv parameters 'kernel' and 'bias'"):
        Weights.read(str(path))


# --- ONNX Runtime: the gate probe, and the user's own file ---------------------------------

@pytest.fixture(scope="module")
def ot():
    for name in ("torch", "onnx", "onnxruntime"):
        require(name)
    from refconv.conformance import onnx_torch
    return onnx_torch


def _export(ot, seed=1, filters=(3, 4), steps=4, forget_bias=0.0):
    model = ot.make_model(channels=2, filters=filters, kernel=3, seed=seed,
                          forget_bias=forget_bias)
    x = np.random.default_rng(seed).standard_normal((2, steps, 2, 6, 5)).astype(np.float32)
    return model, x, ot.export(model, x, "torchscript")


def _check(ot, graph, cell, x, blocks=("z_i", "z_f", "z_o", "z")):
    located = ot.locate(graph, blocks)
    candidate = ot.run(graph, x, "all", ot.instrument(graph, located), located)
    return check(cell, x, candidate, rtol=RTOL, atol=ATOL, **{**FIELDS, "t_export": x.shape[1]}
                 ), candidate, located


def _insert(graph, layer, gate_index, op):
    """A copy whose blocks ``gate_index`` of ``layer`` pass through ``op`` (an identity here)
    before their activation."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from refconv.conformance.onnx_graph import _Graph

    copy = onnx.ModelProto()
    copy.CopyFrom(graph)
    steps = [split for l, _, split in _Graph(copy).steps() if l == layer]
    constants = {"Add": [0.0], "Mul": [1.0], "Clip": [-1e30, 1e30]}
    for k, split in enumerate(steps):
        block = split.output[gate_index]
        reader = next(n for n in copy.graph.node if block in n.input)
        moved = f"{block}_through_{op}"
        inputs = [block]
        for j, value in enumerate(constants.get(op, [])):
            name = f"{moved}_c{j}"
            copy.graph.initializer.append(numpy_helper.from_array(np.float32(value), name))
            inputs.append(name)
        attributes = {"to": TensorProto.FLOAT} if op == "Cast" else {}
        copy.graph.node.append(helper.make_node(op, inputs, [moved], **attributes))
        reader.input[list(reader.input).index(block)] = moved
    return _topological(copy)  # the new nodes were appended: put every node after its inputs


def _topological(model):
    import onnx
    known = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    nodes, ordered = list(model.graph.node), []
    while nodes:
        ready = [n for n in nodes if all(not i or i in known for i in n.input)]
        assert ready, "a cycle"
        for n in ready:
            ordered.append(n)
            known.update(n.output)
            nodes.remove(n)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("op", ["Add", "Mul", "Cast", "Clip"])
def test_the_probe_follows_a_gate_through_an_elementwise_op_to_its_activation(ot, op):
    """An identity op between the forget block and its sigmoid: the gate is still the sigmoid
    (before the fix, the op was taken as the gate); every gate, c and h still read."""
    model, x, graph = _export(ot)
    cell = ot.reference_cell(model, (6, 5))
    changed = _insert(graph, 0, 1, op)  # block 1 of ndrplz's i, f, o, g: f
    assert any(n.op_type == op and "_through_" in n.output[0] for n in changed.graph.node)
    row, candidate, located = _check(ot, changed, cell, x)
    assert row.status == OK, row
    assert {"layer0/z_f", "layer0/c", "layer0/h"} <= set(candidate)
    assert all(located[(0, t)]["z_f"] == located_sigmoid
               for t, located_sigmoid in [(t, _activation_of(changed, located[(0, t)]["z_f"]))
                                          for t in range(x.shape[1])])


def _activation_of(graph, tensor):
    node = next(n for n in graph.graph.node if tensor in n.output)
    assert node.op_type == "Sigmoid", node.op_type
    return tensor


def test_a_gate_reached_through_a_product_with_a_non_constant_is_not_exposed(ot):
    """Mul by another tensor is not part of a gate: the gate is reported not exposed, and the
    other gates are still compared."""
    from onnx import helper
    model, x, graph = _export(ot, filters=(3,))
    changed = _insert(graph, 0, 1, "Cast")
    producer = {out: node for node in changed.graph.node for out in node.output}
    for node in changed.graph.node:  # Cast -> Mul(f, the convolution): not a constant
        if node.op_type == "Cast" and "_through_" in node.output[0]:
            convolution = producer[node.input[0]].input[0]
            node.CopyFrom(helper.make_node("Mul", [node.input[0], convolution],
                                           list(node.output)))
    located = ot.locate(changed)
    assert ot.not_exposed(located) == ["layer0 z_f"]
    assert all("z_i" in names and "z_f" not in names for names in located.values())


def test_a_forget_bias_added_before_the_sigmoid_passes_and_a_planted_activation_is_found(ot):
    """The reproduction of issue 26: sigmoid(f + 1.0) exported, held against from_torch(...,
    forget_bias=1.0): it passes (it was FAILED at layer0 z_f t=0 with an 'error' of 7.7)."""
    model, x, graph = _export(ot, forget_bias=1.0)
    cell = ot.reference_cell(model, (6, 5), forget_bias=1.0)
    row, candidate, _ = _check(ot, graph, cell, x)
    assert row.status == OK and row.errors["z_f"] <= 1e-5, row
    assert {f"layer{l}/{n}" for l in (0, 1) for n in ("z_f", "c", "h")} <= set(candidate)
    from refconv.conformance.own_onnx import read_layout
    assert read_layout(graph) == ("ifog", 1.0)
    planted = ot.plant_activation(graph, 1, 2, "z_f", "HardSigmoid")
    row, _, _ = _check(ot, planted, cell, x)
    assert (row.status, row.first_failure) == (FAILED, "layer1 z_f t=2")


def test_the_gate_order_is_read_from_what_each_block_does(ot):
    """A one-layer graph reading blocks o and g the other way round computes with the weights
    in the order i, f, g, o: read so, and refconv with that order agrees."""
    from refconv.conformance.own_onnx import read_layout
    from refconv.interop import from_torch
    model, x, graph = _export(ot, filters=(3,))
    swapped = ot.swap_blocks(graph, 0, "z_o", "z")
    assert read_layout(graph) == ("ifog", 0.0)
    assert read_layout(swapped) == ("ifgo", 0.0)
    state = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    cell = from_torch(state, [6, 5], gate_order="ifgo")
    assert _check(ot, swapped, cell, x, ("z_i", "z_f", "z", "z_o"))[0].status == OK


def _files(ot, folder, dynamic=False):
    """A model exported to an .onnx file with its state_dict, and another model's state_dict."""
    import torch
    model, x, _ = _export(ot, seed=3, steps=5)
    other, _, _ = _export(ot, seed=4, steps=5)
    torch.save(model.state_dict(), folder / "m.pt")
    torch.save(other.state_dict(), folder / "other.pt")
    axes = {"x": {0: "B", 1: "T"}, "outputs": {0: "B", 1: "T"}} if dynamic else None
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), folder / "m.onnx", dynamo=False,
                          opset_version=17, input_names=["x"],
                          output_names=["outputs", "h", "c"], dynamic_axes=axes)
    return model


def test_the_users_onnx_file_passes_with_its_weights_and_fails_with_anothers(ot, tmp_path,
                                                                             capsys):
    model = _files(ot, tmp_path)
    onnx_file, own, other = (str(tmp_path / n) for n in ("m.onnx", "m.pt", "other.pt"))
    report = conformance.check_model(onnx_file, own)
    assert [(r.t_run, r.status) for r in report.rows] == [(5, OK), (8, REFUSED)]
    assert report.verdict() == "PASSED"
    assert {"z", "z_i", "z_f", "z_o"} <= set(report.rows[0].errors)
    assert any("gate order read from the graph: ifog" in n for n in report.runs[0]["read"])
    assert main(["conformance", "--onnx", onnx_file, "--torch-state", other]) == 1
    out = capsys.readouterr().out
    assert "layer0 z t=0" in out and "FAILED" in out
    # the same weights as a refconv .npz
    cell = ot.reference_cell(model, (6, 5))
    np.savez(tmp_path / "m.npz", **{f"layer{i}/{k}": v for i, c in enumerate(cell.cells)
                                    for k, v in c.params.items()})
    assert main(["conformance", "--onnx", onnx_file, "--torch-state",
                 str(tmp_path / "m.npz"), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "PASSED"


def test_an_unrolled_dynamic_length_is_truncated_and_fails_with_strict(ot, tmp_path, capsys):
    _files(ot, tmp_path, dynamic=True)
    argv = ["conformance", "--onnx", str(tmp_path / "m.onnx"),
            "--torch-state", str(tmp_path / "m.pt")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "TRUNCATED" in out and "unrolled to 5 steps" in out
    assert main([*argv, "--strict"]) == 1


RAN = []


def _ran(what):
    RAN.append(what)
    return np.zeros(1)


class _Sneaky:
    """An object whose unpickling runs code (here: records that it ran)."""

    def __reduce__(self):
        return (_ran, ("unpickled",))


def test_a_state_dict_file_is_never_unpickled(ot, tmp_path, capsys):
    """torch.load(weights_only=True): a file whose pickle would run code is refused, and the
    code never runs."""
    import torch
    _files(ot, tmp_path)
    torch.save({"cell_list.0.conv.weight": _Sneaky()}, tmp_path / "sneaky.pt")
    assert main(["conformance", "--onnx", str(tmp_path / "m.onnx"), "--torch-state",
                 str(tmp_path / "sneaky.pt")]) == 2
    _one_line(capsys, "weights_only=True")
    assert RAN == []


def test_a_state_dict_that_is_not_the_files_is_one_line(ot, tmp_path, capsys):
    import torch
    _files(ot, tmp_path)
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    assert main(["conformance", "--onnx", str(tmp_path / "m.onnx"), "--torch-state",
                 str(tmp_path / "bad.pt")]) == 2
    _one_line(capsys, "weights")


# --- TFLite: the user's Keras model and its converted file ---------------------------------

KERAS_SCRIPT = textwrap.dedent('''
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import numpy as np, tensorflow as tf, keras
    out = sys.argv[1]
    for name, seed, steps in (("k", 0, 4), ("loop", 1, None)):
        keras.utils.set_random_seed(seed)
        x = inputs = keras.Input((steps, 6, 6, 2), batch_size=2)
        x = keras.layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True,
                                    unroll=steps is not None)(x)
        x = keras.layers.ConvLSTM2D(4, 3, padding="same", return_sequences=True,
                                    return_state=True, unroll=steps is not None,
                                    bias_initializer="random_uniform")(x)
        model = keras.Model(inputs, list(x))
        model.save(f"{out}/{name}.keras")
        with open(f"{out}/{name}.tflite", "wb") as f:
            f.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
''')


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    for name in ("tensorflow", "ai_edge_litert"):
        require(name)
    folder = tmp_path_factory.mktemp("keras")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(folder)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def test_the_users_tflite_file_passes_with_its_keras_model_and_fails_with_another(keras_files,
                                                                                 capsys):
    k = keras_files
    report = conformance.check_model(k / "k.tflite", k / "k.keras")
    assert [(r.t_run, r.status) for r in report.rows] == [(4, OK), (7, REFUSED)], report.table()
    assert set(report.rows[0].errors) == {"outputs", "h", "c", "z", "z_i", "z_f", "z_o"}
    assert main(["conformance", "--tflite", str(k / "k.tflite"), "--keras",  # another's
                 str(k / "loop.keras")]) == 1
    out = capsys.readouterr().out
    assert "layer0 z" in out and " t=0" in out and "FAILED" in out
    looped = conformance.check_model(k / "loop.tflite", k / "loop.keras", timesteps=5)
    assert [(r.t_export, r.t_run, r.status) for r in looped.rows] == [(None, 5, OK),
                                                                       (None, 8, OK)]
