"""``refconv golden`` and ``refconv compare`` at the edges: a PASS must mean something.

What is trusted here: files built by hand in each test (a foreign manifest, a
complex array, a symlink to ``/proc``, a zip whose member declares 100 MB) and
the committed anchor folder ``tests/data/golden`` as a small, valid golden
folder. Each test names the issue-11 item it holds. Errors are ``ValueError``
or ``TypeError`` from the API and, from the command line, one line on stderr
with exit status 2 (1 is compare's FAILED).
"""

import contextlib
import io
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import refconv
import refconv.data  # noqa: F401  (no_computing patches it)
from refconv import cli, compare, load_case, write_golden
from refconv.golden import write as golden_module  # where write_golden looks its helpers up

ANCHOR = pathlib.Path(__file__).parent / "data" / "golden"
ROOT = pathlib.Path(__file__).parent.parent


def small_case():
    """One small golden case, to write quickly."""
    return dict(name="gru_1d_cl", cell="gru", shape=[5], filters=2, kernel=[3], normalize=False,
                data_format="channels_last", bidirectional=False, seed=0, batch=2, timesteps=3,
                in_channels=1, dtype="float64", sequence_length=[3, 2])


def run_cli(argv):
    """``(exit status, stdout, stderr)`` of ``cli.main(argv)`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, err, *words):
    assert code == 2, (code, err)
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)


def copy_anchor(tmp_path, name="golden"):
    folder = tmp_path / name
    shutil.copytree(ANCHOR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def edit_manifest(folder, edit):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    return manifest


@pytest.fixture
def no_computing(monkeypatch):
    """Fail loudly if golden or demo start computing: destinations must be checked first."""
    def computing(*args, **kwargs):
        raise AssertionError("computed before checking the destination")
    monkeypatch.setattr(golden_module, "make_case", computing)
    monkeypatch.setattr(refconv.data, "moving_shapes", computing)


# --- item 9: golden into an existing folder -----------------------------------------------

def test_golden_refuses_a_foreign_manifest(tmp_path):
    foreign = {"name": "my framework's manifest", "cases": [1, 2]}
    (tmp_path / "manifest.json").write_text(json.dumps(foreign))
    with pytest.raises(ValueError, match=r"out_dir: .* holds a manifest.json that is not "
                                         r"refconv's .* force=True"):
        write_golden(str(tmp_path), cases=[small_case()])
    assert json.loads((tmp_path / "manifest.json").read_text()) == foreign
    assert sorted(os.listdir(tmp_path)) == ["manifest.json"]
    write_golden(str(tmp_path), cases=[small_case()], force=True)
    assert "gru_1d_cl" in json.loads((tmp_path / "manifest.json").read_text())["cases"]


def test_golden_refuses_to_overwrite_files_it_did_not_write(tmp_path):
    (tmp_path / "gru_1d_cl.npz").write_bytes(b"someone's results")
    with pytest.raises(ValueError, match=r"already holds gru_1d_cl.npz, not written by refconv"):
        write_golden(str(tmp_path), cases=[small_case()])
    assert (tmp_path / "gru_1d_cl.npz").read_bytes() == b"someone's results"
    assert not (tmp_path / "manifest.json").exists()
    write_golden(str(tmp_path), cases=[small_case()], force=True)
    assert load_case(str(tmp_path / "gru_1d_cl.npz"))["outputs"].shape == (2, 3, 5, 2)


def test_golden_rewrites_its_own_folder_and_writes_0644(tmp_path):
    first = write_golden(str(tmp_path), cases=[small_case()])
    second = write_golden(str(tmp_path), cases=[small_case()])  # its own files: no --force
    assert first["cases"] == second["cases"]
    for name in os.listdir(tmp_path):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_cli_golden_refuses_a_foreign_folder_unless_forced(tmp_path, monkeypatch):
    monkeypatch.setattr(golden_module, "golden_cases", lambda: [small_case()])
    (tmp_path / "manifest.json").write_text("{}")
    code, _, err = run_cli(["golden", "--out", str(tmp_path)])
    assert_one_line_error(code, err, "refconv golden: --out:", "not refconv's", "--force")
    assert (tmp_path / "manifest.json").read_text() == "{}"
    code, out, _ = run_cli(["golden", "--out", str(tmp_path), "--force"])
    assert code == 0 and "1 cases" in out


# --- item 10: destinations checked first, one line, exit 2 --------------------------------

@pytest.mark.parametrize("command", ["golden", "demo"])
@pytest.mark.parametrize("where", ["a file", "under a file", "empty"])
def test_cli_checks_the_destination_before_computing(command, where, tmp_path, no_computing):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    out = {"a file": str(a_file), "under a file": str(a_file / "sub"), "empty": ""}[where]
    code, _, err = run_cli([command, "--out", out])
    assert_one_line_error(code, err, f"refconv {command}: --out:")
    assert a_file.read_text() == "x"


def test_cli_destination_errors_exit_2_in_a_real_process(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    run = subprocess.run([sys.executable, "-m", "refconv", "golden", "--out", str(a_file)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2
    assert run.stderr == (f"refconv golden: --out: {a_file} is a file; expected a folder to "
                          f"write into\n")


def test_api_checks_the_destination_before_computing(tmp_path, no_computing):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=r"out_dir: .* is a file; expected a folder"):
        write_golden(str(a_file))
    with pytest.raises(ValueError, match=r"out_dir: cannot write into"):
        write_golden(str(a_file / "sub"))
    with pytest.raises(ValueError, match=r"out_dir: expected a folder path, got ''"):
        write_golden("")
    with pytest.raises(TypeError, match=r"out_dir: expected a folder path, got int"):
        write_golden(3)
    with pytest.raises(ValueError, match=r"cases\[0\]: expected a dict whose 'name' is a plain"):
        write_golden(str(tmp_path / "g"), cases=[dict(small_case(), name="../escape")])


# --- item 11: only real numbers are compared -----------------------------------------------

@pytest.mark.parametrize("make, dtype", [
    (lambda a: a + 1000j, "complex128"),
    (lambda a: a.astype(str), "<U"),
    (lambda a: a.astype(object), "object"),
    (lambda a: a > 0, "bool"),
])
def test_compare_fails_on_tensors_that_are_not_real(make, dtype, tmp_path):
    reference = {"outputs": np.linspace(-1, 1, 24).reshape(2, 3, 4),
                 "final_state/h": np.ones((2, 4))}
    candidate = dict(reference, outputs=make(reference["outputs"]))
    result = compare(reference, candidate)
    assert not result.passed
    bad = {t.key: t for t in result.tensors if not t.passed}
    assert list(bad) == ["outputs"]
    assert f"the candidate is {dtype}" in bad["outputs"].problem
    assert "outputs" in result.report() and "not real numbers" in result.report()
    # The same from files, through the command line (object arrays are never unpickled).
    np.savez(tmp_path / "ref.npz", **reference)
    if dtype != "object":
        np.savez(tmp_path / "cand.npz", **candidate)
        code, out, _ = run_cli(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "cand.npz")])
        assert code == 1 and "outputs" in out and f"the candidate is {dtype}" in out


# --- item 12: nothing compared, checksums, paths -------------------------------------------

def test_comparing_nothing_fails(tmp_path):
    folder = copy_anchor(tmp_path)
    edit_manifest(folder, lambda m: m.update(cases={}))
    (tmp_path / "not.npz").write_text("not a zip at all")
    result = compare(str(folder), str(tmp_path / "not.npz"))
    assert not result.passed and result.tensors == []
    code, out, _ = run_cli(["compare", str(folder), str(tmp_path / "not.npz")])
    assert code == 1 and "nothing was compared" in out
    assert not compare({}, {}).passed
    assert not compare({"a": np.ones(2)}, {"a": np.ones(2)}, keys=[]).passed
    assert compare({"a": np.ones(2)}, {"a": np.ones(2)}).passed


def test_a_missing_checksum_is_an_error(tmp_path):
    folder = copy_anchor(tmp_path)
    edit_manifest(folder, lambda m: m["cases"]["gru_2d_cl_full"].pop("sha256"))
    with pytest.raises(ValueError, match=r"cases\['gru_2d_cl_full'\]: no 'sha256'"):
        compare(str(folder), str(folder))
    code, _, err = run_cli(["compare", str(folder), str(ANCHOR)])
    assert_one_line_error(code, err, "no 'sha256'")


@pytest.mark.parametrize("path", ["absolute", "dotdot", "symlink out"])
def test_files_stay_inside_the_folder(path, tmp_path):
    """A manifest pointing one case at another folder's file of another case would PASS on main."""
    folder = copy_anchor(tmp_path)
    other = copy_anchor(tmp_path, "other")
    target = other / "gru_1d_cf_ln_lengths.npz"
    sha = json.loads((ANCHOR / "manifest.json").read_text())["cases"]["gru_1d_cf_ln_lengths"]
    if path == "symlink out":
        os.remove(folder / "gru_2d_cl_full.npz")
        os.symlink(target, folder / "gru_2d_cl_full.npz")
        edit_manifest(folder, lambda m: m["cases"]["gru_2d_cl_full"].update(sha256=sha["sha256"]))
    else:
        file = str(target) if path == "absolute" else "../other/gru_1d_cf_ln_lengths.npz"
        edit_manifest(folder, lambda m: m["cases"]["gru_2d_cl_full"].update(
            file=file, sha256=sha["sha256"]))
    with pytest.raises(ValueError, match=r"cases\['gru_2d_cl_full'\]\.file: .*(relative to the "
                                         r"folder, without '\.\.'|leads outside)"):
        compare(str(folder), str(folder))
    code, _, err = run_cli(["compare", str(folder), str(folder)])
    assert_one_line_error(code, err, "gru_2d_cl_full")


def run_compare_process(reference, candidate, timeout=30):
    """``refconv compare`` in a child process: a hang is a failure, not a stuck test run."""
    try:
        run = subprocess.run([sys.executable, "-m", "refconv", "compare", str(reference),
                              str(candidate)], capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"refconv compare {reference} {candidate} still running after {timeout} s")
    return run.returncode, run.stderr


@pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"), reason="needs Linux /proc")
def test_proc_files_and_fifos_are_refused_without_reading(tmp_path):
    # A reference case symlinked to /proc/self/pagemap (main hashed it forever).
    folder = copy_anchor(tmp_path)
    os.remove(folder / "gru_2d_cl_full.npz")
    os.symlink("/proc/self/pagemap", folder / "gru_2d_cl_full.npz")
    code, err = run_compare_process(folder, ANCHOR)
    assert code == 2 and "leads outside" in err and err.count("\n") == 1
    # A candidate folder (no manifest) whose file is that symlink, or a FIFO (opening blocks).
    for make in (lambda p: os.symlink("/proc/self/pagemap", p), os.mkfifo):
        candidate = tmp_path / "candidate"
        shutil.rmtree(candidate, ignore_errors=True)
        candidate.mkdir()
        make(candidate / "gru_2d_cl_full.npz")
        code, err = run_compare_process(ANCHOR, candidate)
        assert code == 2 and "gru_2d_cl_full" in err and err.count("\n") == 1, err
    # A file argument that is a /proc file: size 0, refused before it is opened.
    code, err = run_compare_process("/proc/self/pagemap", ANCHOR / "gru_2d_cl_full.npz")
    assert code == 2 and "empty" in err


# --- item 13: the manifest's schema; one bad case does not stop the others -----------------

MALFORMED = {
    "cases is a list": lambda m: m.update(cases=[]),
    "an entry is a string": lambda m: m["cases"].update(gru_2d_cl_full="gru_2d_cl_full.npz"),
    "file is null": lambda m: m["cases"]["gru_2d_cl_full"].update(file=None),
    "no file": lambda m: m["cases"]["gru_2d_cl_full"].pop("file"),
    "file is a number": lambda m: m["cases"]["gru_2d_cl_full"].update(file=3),
    "sha256 not hex": lambda m: m["cases"]["gru_2d_cl_full"].update(sha256="z" * 64),
    "sha256 is a list": lambda m: m["cases"]["gru_2d_cl_full"].update(sha256=[]),
    "no cases": lambda m: m.pop("cases"),
    "no version": lambda m: m.pop("refconv_version"),
    "two cases, one file": lambda m: m["cases"]["gru_2d_cl_full"].update(
        m["cases"]["gru_1d_cf_ln_lengths"]),
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_a_malformed_manifest_is_one_error(what, tmp_path):
    folder = copy_anchor(tmp_path)
    edit_manifest(folder, MALFORMED[what])
    with pytest.raises(ValueError, match=r"manifest.json: "):
        compare(str(folder), str(ANCHOR))
    code, _, err = run_cli(["compare", str(folder), str(ANCHOR)])
    assert_one_line_error(code, err, "refconv compare: ", "manifest.json")


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", "\xff\xfe", "[" * 100_000])
def test_a_manifest_that_is_not_json_is_one_error(text, tmp_path):
    folder = copy_anchor(tmp_path)
    (folder / "manifest.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"manifest"):
        compare(str(folder), str(ANCHOR))
    code, _, err = run_cli(["compare", str(folder), str(ANCHOR)])
    assert_one_line_error(code, err, "manifest")


def test_one_mismatched_case_does_not_stop_the_others(tmp_path):
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    manifest = json.loads((ANCHOR / "manifest.json").read_text())
    for name, entry in manifest["cases"].items():
        arrays = load_case(str(ANCHOR / entry["file"]))
        if name == "gru_2d_cl_full":
            arrays["outputs"] = arrays["outputs"][:, :2]        # wrong shape
            arrays["gates/u"] = arrays["gates/u"] + 1e-6         # and a wrong gate
        np.savez(candidate / entry["file"], **arrays)
    result = compare(str(ANCHOR), str(candidate))
    assert not result.passed
    compared = {t.case for t in result.tensors}
    assert compared == set(manifest["cases"])
    assert len(result.tensors) == sum(len(e["keys"]) for e in manifest["cases"].values())
    bad = {(t.case, t.key): t for t in result.tensors if not t.passed}
    assert set(bad) == {("gru_2d_cl_full", "outputs"), ("gru_2d_cl_full", "gates/u")}
    assert bad["gru_2d_cl_full", "outputs"].problem.startswith("expected shape [3, 4, 4, 5, 2]")
    assert bad["gru_2d_cl_full", "gates/u"].max_abs == pytest.approx(1e-6)
    code, out, _ = run_cli(["compare", str(ANCHOR), str(candidate)])
    assert code == 1
    assert "expected shape [3, 4, 4, 5, 2] (the reference's), got [3, 2, 4, 5, 2]" in out


@pytest.mark.parametrize("option, value", [("--rtol", "nan"), ("--rtol", "-1"), ("--atol", "inf"),
                                           ("--atol", "-1e-12"), ("--rtol", "abc")])
def test_bad_tolerances_are_refused(option, value):
    code, _, err = run_cli(["compare", str(ANCHOR), str(ANCHOR), f"{option}={value}"])
    assert_one_line_error(code, err, option, "expected a finite number >= 0")


@pytest.mark.parametrize("kwargs, error", [
    (dict(rtol=float("nan")), ValueError), (dict(atol=-1.0), ValueError),
    (dict(rtol=float("inf")), ValueError), (dict(rtol="1e-3"), TypeError),
    (dict(atol=None), TypeError), (dict(keys="outputs"), TypeError),
    (dict(keys=[3]), TypeError), (dict(keys=["no such key"]), ValueError),
])
def test_bad_compare_arguments_are_refused(kwargs, error):
    with pytest.raises(error, match=r"^(rtol|atol|keys): "):
        compare({"outputs": np.ones(3)}, {"outputs": np.ones(3)}, **kwargs)


# --- item 14: read only what is compared, refuse a size bomb before decompressing ----------

def write_npz_with_bomb(path, arrays, key, bomb_bytes, header_shape=None):
    """An .npz holding ``arrays`` and, under ``key``, an .npy member declaring ``bomb_bytes``
    of zeros (deflated: a few hundred KB on disk), written in chunks."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            with zf.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(value))
        with zf.open(key + ".npy", "w", force_zip64=True) as f:
            shape = header_shape if header_shape is not None else (bomb_bytes // 8,)
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f8", "fortran_order": False, "shape": shape})
            chunk = bytes(1 << 20)
            for _ in range(bomb_bytes // len(chunk)):
                f.write(chunk)


def peak_memory(function):
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


BOMB = 64 << 20  # 64 MB declared


def test_compare_reads_only_the_keys_it_compares(tmp_path):
    reference = {"outputs": np.linspace(0, 1, 60).reshape(3, 4, 5)}
    np.savez(tmp_path / "ref.npz", **reference)
    write_npz_with_bomb(tmp_path / "cand.npz", reference, "never_compared", BOMB)
    assert os.path.getsize(tmp_path / "cand.npz") < 2e6
    result, peak = peak_memory(lambda: compare(str(tmp_path / "ref.npz"),
                                               str(tmp_path / "cand.npz")))
    assert result.passed
    assert peak < 20e6, f"compare held {peak / 1e6:.0f} MB for 60 compared numbers"


@pytest.mark.parametrize("header", ["huge shape", "right shape, huge member"])
def test_a_compared_key_that_declares_far_more_is_refused_before_decompressing(header, tmp_path):
    reference = {"outputs": np.linspace(0, 1, 60).reshape(3, 4, 5), "h": np.ones(4)}
    np.savez(tmp_path / "ref.npz", **reference)
    shape = None if header == "huge shape" else (3, 4, 5)
    write_npz_with_bomb(tmp_path / "cand.npz", {"h": reference["h"]}, "outputs", BOMB, shape)
    result, peak = peak_memory(lambda: compare(str(tmp_path / "ref.npz"),
                                               str(tmp_path / "cand.npz")))
    assert peak < 20e6, f"compare held {peak / 1e6:.0f} MB"
    outputs = next(t for t in result.tensors if t.key == "outputs")
    assert not result.passed and not outputs.passed
    if header == "huge shape":
        assert outputs.problem == (f"expected shape [3, 4, 5] (the reference's), got "
                                   f"[{BOMB // 8}]")
    else:
        assert "declares" in outputs.problem and "refused before decompressing" in outputs.problem
    assert next(t for t in result.tensors if t.key == "h").passed  # the others still compared


# --- property tests: random invalid arguments and manifests --------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(st.characters(blacklist_characters="/\\"), max_size=20),  # never an absolute path
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
FIELDS = ["refconv_version", "cases", "dtype", "file", "sha256", "keys", "config"]
API_ERRORS = (ValueError, TypeError, MemoryError)


def mutate(manifest, data):
    """One random edit of a valid manifest: a field replaced, removed, or a case replaced."""
    cases = sorted(manifest["cases"])
    where = data.draw(st.sampled_from(["top", "case", "entry"]))
    if where == "top":
        field = data.draw(st.sampled_from(FIELDS[:3]))
        if data.draw(st.booleans()):
            manifest.pop(field, None)
        else:
            manifest[field] = data.draw(JSON)
    elif where == "case":
        manifest["cases"][data.draw(st.sampled_from(cases))] = data.draw(JSON)
    else:
        entry = manifest["cases"][data.draw(st.sampled_from(cases))]
        field = data.draw(st.sampled_from(FIELDS[3:]))
        if data.draw(st.booleans()):
            entry.pop(field, None)
        else:
            entry[field] = data.draw(JSON | st.sampled_from(
                ["/etc/passwd", "../x.npz", "/proc/self/pagemap", "", ".", "a/../../b",
                 "gru_2d_cl_full.npz", "0" * 64]))
    return manifest


@pytest.fixture(scope="module")
def small_golden(tmp_path_factory):
    """A golden folder of two anchor cases (quick to compare many times)."""
    folder = tmp_path_factory.mktemp("small") / "golden"
    folder.mkdir()
    manifest = json.loads((ANCHOR / "manifest.json").read_text())
    keep = ["gru_1d_cf_ln_lengths", "gru_2d_cl_full"]
    manifest["cases"] = {name: manifest["cases"][name] for name in keep}
    for name in keep:
        shutil.copy(ANCHOR / manifest["cases"][name]["file"], folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_invalid_manifests_never_pass_and_never_escape(data, small_golden, tmp_path):
    original = json.loads((small_golden / "manifest.json").read_text())
    folder = tmp_path / "m"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(small_golden, folder)
    manifest = mutate(json.loads(json.dumps(original)), data)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    essential = {name: (e["file"], e["sha256"]) for name, e in original["cases"].items()}
    try:
        result = compare(str(folder), str(small_golden))
    except API_ERRORS:
        pass
    else:  # accepted: then the edit left every case's file and checksum as they were
        assert {name: (e.get("file"), e.get("sha256")) for name, e in
                manifest["cases"].items()} == essential or not result.passed
    code, out, err = run_cli(["compare", str(folder), str(small_golden)])
    assert code in (0, 1, 2)
    if code == 2:
        assert_one_line_error(code, err)
    else:
        assert err == ""
    if code == 0:
        assert {name: (e["file"], e["sha256"]) for name, e in
                manifest["cases"].items()} == essential


def cli_argv(paths):
    """Random command lines for golden and compare: options, values and paths mixed."""
    word = st.text(alphabet="abc01.-_+eEn", max_size=6).filter(lambda s: s not in ("..",))
    value = st.sampled_from(paths) | word | st.sampled_from(["nan", "-1", "inf", "1e-3", ""])
    option = st.sampled_from(["--rtol", "--atol", "--out", "--force", "--verbose", "--seed",
                              "--size", "--timesteps", "--notebooks"])
    return st.tuples(st.sampled_from(["golden", "compare", "demo"]),
                     st.lists(option | value, max_size=6)).map(lambda t: [t[0], *t[1]])


class Computing(Exception):
    """Raised where a valid command would start computing."""


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_command_lines_give_one_line_errors(data, small_golden, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative --out values land here
    def computing(*args, **kwargs):
        raise Computing
    monkeypatch.setattr(golden_module, "make_case", computing)
    monkeypatch.setattr(refconv.data, "moving_shapes", computing)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir(exist_ok=True)
    (foreign / "manifest.json").write_text("[]")
    paths = [str(small_golden), str(a_file), str(a_file / "sub"), str(foreign),
             str(tmp_path / "missing"), str(small_golden / "gru_2d_cl_full.npz"),
             "/proc/self/pagemap", "/dev/null"]
    argv = data.draw(cli_argv(paths))
    try:
        code, out, err = run_cli(argv)
    except Computing:
        return  # a valid command line, stopped where it would compute
    assert code in (0, 1, 2), (argv, code)
    if code == 2:
        assert_one_line_error(code, err)
    if code == 0:
        assert argv[0] == "compare" and "PASSED" in out


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_api_arguments_raise_only_value_and_type_errors(data, small_golden, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(golden_module, "make_case", lambda case: (_ for _ in ()).throw(
        Computing()))
    monkeypatch.chdir(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    source = st.sampled_from([str(small_golden), str(a_file), str(a_file / "sub"), "",
                              str(tmp_path / "missing"), "/proc/self/pagemap", "/dev/null",
                              str(small_golden / "gru_2d_cl_full.npz"), "bad\0path"]) | JSON
    arrays = st.dictionaries(st.sampled_from(["outputs", "h", "gates/z"]),
                             JSON | st.sampled_from([np.ones(3), np.ones(3) + 1j, np.ones((2, 2)),
                                                     np.array(["a"]), np.array([np.nan])]),
                             max_size=3)
    tolerance = st.floats(allow_nan=True) | JSON
    keys = st.none() | JSON | st.lists(st.sampled_from(["outputs", "h", "x"]), max_size=3)
    which = data.draw(st.sampled_from(["compare", "write_golden"]))
    try:
        if which == "compare":
            result = compare(data.draw(source | arrays), data.draw(source | arrays),
                             rtol=data.draw(tolerance), atol=data.draw(tolerance),
                             keys=data.draw(keys))
            if not result.tensors:
                assert not result.passed
        else:
            write_golden(data.draw(source), force=data.draw(st.booleans()))
    except API_ERRORS as error:
        assert str(error) and "Traceback" not in str(error)
    except Computing:
        pass


def test_an_unreadable_candidate_case_fails_and_the_others_go_on(tmp_path):
    candidate = tmp_path / "candidate"
    shutil.copytree(ANCHOR, candidate, ignore=shutil.ignore_patterns("*.py", "manifest.json"))
    data = (candidate / "gru_2d_cl_full.npz").read_bytes()
    (candidate / "gru_2d_cl_full.npz").write_bytes(data[: len(data) // 2])  # truncated
    result = compare(str(ANCHOR), str(candidate))
    assert not result.passed
    assert [case for case, _ in result.problems] == ["gru_2d_cl_full"]
    assert "not a readable .npz file" in result.problems[0][1]
    assert "gru_2d_cl_full" not in {t.case for t in result.tensors}
    assert all(t.passed for t in result.tensors) and len({t.case for t in result.tensors}) == 6
    code, out, _ = run_cli(["compare", str(ANCHOR), str(candidate)])
    assert code == 1 and "gru_2d_cl_full" in out and "FAILED: candidate:" in out


def test_a_tensor_too_large_for_memory_is_a_memory_error(monkeypatch):
    compare_module = sys.modules["refconv.compare"]  # refconv.compare is also the function
    monkeypatch.setattr(compare_module, "_available_memory", lambda: 1000)
    reference = {"outputs": np.ones((10, 10))}
    with pytest.raises(MemoryError, match=r"outputs: comparing its 100 elements needs about "
                                          r".* GiB, and .* GiB are available"):
        compare(reference, reference)
    code, _, err = run_cli(["compare", str(ANCHOR), str(ANCHOR)])
    assert_one_line_error(code, err, "MemAvailable")
