"""Golden vectors and the comparison report: files round-trip, damage is caught, errors are located."""

import json
import os

import numpy as np
import pytest

import refconv
from refconv import cli, compare, load_case, write_golden
from refconv.golden import golden_cases, make_case


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    write_golden(str(out))
    return out


def test_manifest_lists_every_case_with_a_checksum(golden):
    manifest = json.loads((golden / "manifest.json").read_text())
    assert manifest["refconv_version"] == refconv.__version__
    assert manifest["dtype"] == "float64"
    names = {case["name"] for case in golden_cases()}
    assert set(manifest["cases"]) == names
    configs = [entry["config"] for entry in manifest["cases"].values()]
    # The matrix covers what the issue asks for.
    assert {c["cell"] for c in configs} == {"lstm", "gru"}
    assert {len(c["shape"]) for c in configs} == {1, 2, 3}
    assert {c["data_format"] for c in configs} == {"channels_last", "channels_first"}
    assert {(c.get("peephole"), c["normalize"]) for c in configs if c["cell"] == "lstm"} >= {
        (True, True), (True, False), (False, True), (False, False)}
    assert any(k % 2 == 0 for c in configs for k in c["kernel"])
    assert any(c["bidirectional"] for c in configs)
    assert any(0 in c["sequence_length"] for c in configs)
    for name, entry in manifest["cases"].items():
        assert (golden / entry["file"]).is_file()
        assert len(entry["sha256"]) == 64
    assert not [f for f in os.listdir(golden) if f.startswith(".tmp")]


def test_files_hold_what_refconv_computes(golden):
    """Re-running one case with the public API gives the stored numbers."""
    case = next(c for c in golden_cases() if c["name"] == "lstm_2d_cf_ln_peep")
    stored = load_case(str(golden / "lstm_2d_cf_ln_peep.npz"))
    cell = refconv.ConvLSTMCell(case["shape"], case["filters"], case["kernel"],
                                data_format="channels_first")
    cell.params = {k[len("params/"):]: v for k, v in stored.items() if k.startswith("params/")}
    state0 = refconv.LSTMStateTuple(stored["initial_state/c"], stored["initial_state/h"])
    outputs, state, gates = refconv.dynamic_rnn(cell, stored["inputs"], stored["sequence_length"],
                                                state0, return_gates=True)
    np.testing.assert_array_equal(outputs, stored["outputs"])
    np.testing.assert_array_equal(state.c, stored["final_state/c"])
    np.testing.assert_array_equal(gates["z_f"], stored["gates/z_f"])
    grads = refconv.dynamic_rnn_grad(
        cell, stored["inputs"], stored["d_outputs"],
        refconv.LSTMStateTuple(stored["d_state/c"], stored["d_state/h"]),
        sequence_length=stored["sequence_length"], initial_state=state0)
    np.testing.assert_array_equal(grads.params["W_cf"], stored["grad/params/W_cf"])
    np.testing.assert_array_equal(grads.inputs, stored["grad/inputs"])


def test_same_bits_every_time(tmp_path):
    """Two writes of the same case give byte-identical arrays (everything is seeded)."""
    case = golden_cases()[5]
    a, b = make_case(case), make_case(case)
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_compare_passes_on_itself_and_locates_a_bad_gate(golden):
    assert compare(str(golden), str(golden)).passed
    arrays = load_case(str(golden / "gru_2d_cl_ln.npz"))
    arrays["gates/r"][:, 2] += 1e-7  # r wrong from step 2 on
    arrays["outputs"][:, 3] += 1e-7
    result = compare(str(golden / "gru_2d_cl_ln.npz"), arrays)
    assert not result.passed
    first = result.first_failure
    assert (first.key, first.first_bad_step) == ("gates/r", 2)
    bad = {t.key for t in result.tensors if not t.passed}
    assert bad == {"gates/r", "outputs"}
    r = next(t for t in result.tensors if t.key == "gates/r")
    assert [ok for _, _, ok in r.per_step] == [True, True, False, True]
    assert r.max_abs == pytest.approx(1e-7, rel=1e-6)
    assert "first failure: case: gates/r at time step 2" in str(result)
    # A looser tolerance lets it pass.
    assert compare(str(golden / "gru_2d_cl_ln.npz"), arrays, rtol=1e-3, atol=1e-6).passed


def test_compare_ranks_gates_it_does_not_name_after_its_own():
    """A framework's own gate names (notebook 6 compares ``gates/z_i*z``) must not crash the report."""
    rng = np.random.default_rng(0)
    reference = {"gates/z_i*z": rng.standard_normal((1, 3, 4)), "gates/z_f": rng.standard_normal((1, 3, 4))}
    candidate = {key: value.copy() for key, value in reference.items()}
    candidate["gates/z_i*z"][:, 1] += 1.0
    candidate["gates/z_f"][:, 1] += 1.0
    result = compare(reference, candidate)
    assert (result.first_failure.key, result.first_failure.first_bad_step) == ("gates/z_f", 1)
    assert "gates/z_i*z" in result.report()


def test_compare_reports_missing_keys_and_nan(golden):
    arrays = load_case(str(golden / "lstm_1d_cl_ln_peep.npz"))
    del arrays["gates/z_o"]
    arrays["outputs"][0, 0, 0, 0] = np.nan
    result = compare(str(golden / "lstm_1d_cl_ln_peep.npz"), arrays)
    assert ("case", "gates/z_o") in result.missing
    assert not next(t for t in result.tensors if t.key == "outputs").passed
    arrays["outputs"] = arrays["outputs"][:, :2]
    result = compare(str(golden / "lstm_1d_cl_ln_peep.npz"), arrays)
    outputs = next(t for t in result.tensors if t.key == "outputs")
    assert not outputs.passed and not result.passed
    assert outputs.problem == "expected shape [3, 4, 9, 3] (the reference's), got [3, 2, 9, 3]"


def test_damaged_files_are_refused(golden, tmp_path):
    manifest = json.loads((golden / "manifest.json").read_text())
    entry = manifest["cases"]["gru_1d_cl_ln"]
    data = (golden / entry["file"]).read_bytes()
    # altered: a flipped byte
    altered = tmp_path / "altered.npz"
    altered.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(ValueError, match=r"SHA-256 .* differs from the manifest's"):
        load_case(str(altered), entry["sha256"])
    # truncated, without a manifest to tell
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"not a readable .npz file"):
        load_case(str(truncated))
    with pytest.raises(FileNotFoundError, match=r"no such golden file"):
        load_case(str(tmp_path / "missing.npz"))
    # pickled object arrays are never loaded
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, outputs=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"not a readable .npz file"):
        load_case(str(pickled))
    with pytest.raises(FileNotFoundError, match=r"no manifest.json"):
        compare(str(tmp_path), str(golden))


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    """A write that fails half-way leaves neither a half file nor a temporary one."""
    case = golden_cases()[0]

    def broken_savez(f, **arrays):
        f.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        write_golden(str(tmp_path), cases=[case])
    assert os.listdir(tmp_path) == []


def test_cli_golden_and_compare(tmp_path, capsys):
    out = tmp_path / "g"
    assert cli.main(["golden", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert cli.main(["compare", str(out), str(out)]) == 0
    assert "PASSED" in capsys.readouterr().out
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    arrays = load_case(str(out / "lstm_3d_cf_noln_peep.npz"))
    arrays["gates/c"][:, 1:] *= 1.01
    np.savez(candidate / "lstm_3d_cf_noln_peep.npz", **arrays)
    assert cli.main(["compare", str(out), str(candidate)]) == 1
    text = capsys.readouterr().out
    assert "first failure: lstm_3d_cf_noln_peep: gates/c at time step 1" in text
    assert "missing from the candidate" in text  # the other cases are not in the candidate folder
    assert cli.main(["compare", str(out), str(tmp_path / "nothing")]) == 2


def test_golden_files_are_the_same_bytes_with_any_thread_count(tmp_path):
    """``refconv golden --out`` with REFCONV_THREADS=1 and =2: every file byte-identical (the
    golden package's split into cases, write and read modules changed no byte either: the
    anchor test holds the cases' values)."""
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    written = {}
    for threads in ("1", "2"):
        out = tmp_path / threads
        env = {**os.environ, "REFCONV_THREADS": threads, "PYTHONPATH": repo}
        done = subprocess.run([sys.executable, "-m", "refconv", "golden", "--out", str(out)],
                              env=env, capture_output=True, text=True, cwd=repo)
        assert done.returncode == 0, done.stderr
        written[threads] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert len(written["1"]) == len(golden_cases()) + 1  # and manifest.json
    assert written["1"] == written["2"]
