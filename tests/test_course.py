"""refconv.course: the two builds, and grading submissions end to end.

The oracle for "no solution leaks" is the instructor build itself: every line of
its solution regions and answers is looked for in the student build, in what
``refconv notebooks`` writes and in the wheel. The oracle for the student version
is nbgrader's own ``generate_assignment`` preprocessors. Grading is checked on
notebook 2 (three exercises): the instructor's version must get full marks, the
untouched student version 0, and a submission with planted mistakes must lose
exactly the points of the exercises it gets wrong, with feedback naming the
quantity; a monkeypatched verdict and a call to refconv's own step earn 0.
"""

import importlib.util
import json
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

from concurrent.futures import ThreadPoolExecutor

from refconv.course import build, grade, notebook_paths, student_notebook
from refconv.course.build import student_version
from refconv.course.grade import format_grades, grade_notebook

REPO = pathlib.Path(__file__).resolve().parents[1]


_spec = importlib.util.spec_from_file_location("course_notebooks_run", REPO / "notebooks" / "run.py")
notebooks_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebooks_run)


def needs_nbgrader():
    """The course's builds and grades run nbgrader's preprocessors (the ``course`` extra):
    skipped, naming it, where it is missing (README's tests without the frameworks)."""
    pytest.importorskip("nbgrader", reason="refconv course needs nbgrader: "
                                           "pip install -e \".[course]\"")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    needs_nbgrader()
    out = tmp_path_factory.mktemp("course")
    written = build(out, secret="the teacher's secret")
    return out, written


def test_build_writes_both_versions_of_every_notebook_and_the_secret(builds):
    out, written = builds
    names = [p.name for p in notebook_paths()]
    assert names == sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for kind in ("student", "instructor"):
        assert [p.name for p in written[kind]] == names
        assert all((out / kind / name).exists() for name in names)
    secret = out / "instructor" / "secret.txt"
    assert secret.read_text().strip() == "the teacher's secret"
    assert secret.stat().st_mode & 0o777 == 0o600


def test_without_a_secret_the_build_makes_a_random_one(tmp_path):
    needs_nbgrader()
    one, two = build(tmp_path / "a")["secret"], build(tmp_path / "b")["secret"]
    assert len(one.read_text().strip()) >= 24 and one.read_text() != two.read_text()


def _load_run_py():
    import importlib.util
    spec = importlib.util.spec_from_file_location("notebooks_run", REPO / "notebooks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_student_notebook_is_what_nbgrader_makes_and_the_shipped_ones_are_fresh():
    """Cell for cell nbgrader's generate_assignment; notebooks/student/ made from the sources."""
    needs_nbgrader()
    run = _load_run_py()
    for path in notebook_paths(REPO / "notebooks"):
        source = run.load(path)                    # from notebooks/src/, as run.py builds it
        mine = student_notebook(source)
        reference = nbformat.from_dict(json.loads(json.dumps(source)))
        reference.cells = reference.cells[1:]      # nbgrader keeps the maintainer's line
        reference.cells = [cell for cell in reference.cells     # and the teachers' cells
                           if "instructor-only" not in cell.metadata.get("tags", [])]
        assert mine == student_version(reference), path.name
        shipped = nbformat.read(str(REPO / "notebooks" / "student" / path.name), as_version=4)
        assert shipped == mine, f"notebooks/student/{path.name} is stale: python notebooks/run.py --students"
        assert "edit the source" not in json.dumps(mine)
        executed = nbformat.read(str(path), as_version=4)     # the committed one: with outputs
        assert any(cell.get("outputs") for cell in executed.cells)
        reference = nbformat.read(str(path), as_version=4)
        reference.cells = [cell for cell in reference.cells[1:]
                           if "instructor-only" not in cell.metadata.get("tags", [])]
        assert student_notebook(executed) == student_version(reference), path.name


def test_instructor_only_cells_are_left_out():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("For teachers: the answers are ...",
                                      metadata={"tags": ["instructor-only"]}),
        nbformat.v4.new_markdown_cell("*This notebook is generated from [`src/x.py`](src/x.py) "
                                      "by `python notebooks/run.py 09`: edit the source, not "
                                      "the notebook.*"),
        nbformat.v4.new_code_cell("x = 1")])
    assert [c.source for c in student_notebook(nb).cells] == ["x = 1"]


def _solution_lines(nb):
    lines = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        text = cell.source
        match = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", text, re.S)
        body = "\n".join(match) if match else text
        lines += [line.strip() for line in body.splitlines()
                  if len(line.strip()) > 12 and not line.strip().startswith("#")]
    return lines


def assert_no_answers(folder):
    """No solution line, answer key, hidden test or output of the instructor notebooks in ``folder``."""
    checked = 0
    names = sorted(p.name for p in pathlib.Path(folder).glob("[0-9][0-9]_*.ipynb"))
    assert names == [p.name for p in notebook_paths(REPO / "notebooks")]
    for name in names:
        student = (pathlib.Path(folder) / name).read_text()
        instructor = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
        # a line the lesson shows outside any solution (the walk-through's own lines) is no leak
        shown = "\n".join(cell.source for cell in instructor.cells
                          if not cell.metadata.get("nbgrader", {}).get("solution"))
        for line in _solution_lines(instructor):
            if line in shown:
                continue
            assert json.dumps(line)[1:-1] not in student, f"{name} leaks {line!r}"
            checked += 1
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "graded cases:", "seed=2029"):
            assert marker not in student, f"{name}: {marker}"
        nb = nbformat.read(str(pathlib.Path(folder) / name), as_version=4)
        assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    assert checked > 30          # the comparison compared something


def test_no_solution_text_in_any_student_notebook(builds):
    out, _ = builds
    assert_no_answers(out / "student")


def _submission(student, tmp_path, solutions):
    nb = nbformat.read(str(student), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in solutions:
            cell.source = solutions[grade_id]
    path = tmp_path / student.name
    nbformat.write(nb, str(path))
    return path


PLANTED_02 = {
    # no forget_bias at all: loses check_plain_step
    "plain_step": '''def plain_step(x, c, h, params, forget_bias):
    y = conv_nd(np.concatenate([x, h], axis=-1), params["kernel"]) + params["bias"]
    z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
    z_f, z_i, z = sigmoid(z_f), sigmoid(z_i), np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = sigmoid(z_o)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": z_o * np.tanh(c_new)}''',
    # right
    "peephole_step": '''def peephole_step(x, c, h, params, forget_bias):
    y = conv_nd(np.concatenate([x, h], axis=-1), params["kernel"]) + params["bias"]
    z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
    z_f = sigmoid(z_f + params["W_cf"] * c + forget_bias)
    z_i, z = sigmoid(z_i + params["W_ci"] * c), np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = sigmoid(z_o + params["W_co"] * c_new)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": z_o * np.tanh(c_new)}''',
    # per-channel layer norm: loses check_layer_norm_step
    "layer_norm_step": '''def layer_norm_step(x, c, h, params, forget_bias, norm_epsilon, data_format):
    axis = 1 if data_format == "channels_first" else -1
    def ln(v, name):
        spatial = tuple(a for a in range(1, v.ndim) if a != axis % v.ndim)
        shape = [1] * v.ndim
        shape[axis] = -1
        v = (v - v.mean(axis=spatial, keepdims=True)) / np.sqrt(v.var(axis=spatial, keepdims=True) + norm_epsilon)
        return params[name + "/gamma"].reshape(shape) * v + params[name + "/beta"].reshape(shape)
    y = conv_nd(np.concatenate([x, h], axis=axis), params["kernel"], data_format=data_format)
    z, z_i, z_f, z_o = np.split(y, 4, axis=axis)
    z_i, z_f = z_i + params["W_ci"] * c, z_f + params["W_cf"] * c
    z, z_i, z_f = np.tanh(ln(z, "z")), sigmoid(ln(z_i, "z_i")), sigmoid(ln(z_f, "z_f") + forget_bias)
    c_new = c * z_f + z_i * z
    z_o = sigmoid(ln(z_o + params["W_co"] * c_new, "z_o"))
    c_new = ln(c_new, "c")
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": z_o * np.tanh(c_new)}''',
}


# The verdict computed in the kernel, patched: every exercise returns {} and asks for full marks.
MONKEYPATCH_02 = {
    "plain_step": "import refconv.exercises.report as r\nr.Report.points = lambda self, n: n\n"
                  "def plain_step(x, c, h, params, forget_bias):\n    return {}",
    "peephole_step": "def peephole_step(x, c, h, params, forget_bias):\n    return {}",
    "layer_norm_step": "def layer_norm_step(x, c, h, params, forget_bias, norm_epsilon, "
                       "data_format):\n    return {}",
}
# refconv's own step handed in as the student's (the exercise asks to write it)
REFCONV_STEP_02 = {"plain_step": '''def plain_step(x, c, h, params, forget_bias):
    cell = refconv.ConvLSTMCell(list(x.shape[1:-1]), h.shape[-1], list(params["kernel"].shape[:2]),
                                forget_bias=forget_bias, peephole=False, normalize=False)
    cache = refconv.lstm_step(x, refconv.LSTMStateTuple(c, h), params, cell)[2]
    return {name: getattr(cache, name) for name in LSTM_QUANTITIES}'''}


def test_grading_notebook_02_end_to_end(builds, tmp_path, graded_students):
    """The instructor's version through the command line: full marks, exit 0; then the others."""
    out, _ = builds
    name = "02_convlstm_gates.ipynb"
    result = subprocess.run([sys.executable, "-m", "refconv", "course", "grade",
                             str(out / "instructor" / name), "--source", str(out / "instructor")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "no secret" not in result.stderr          # the build's own secret was used
    lines = result.stdout.splitlines()
    assert lines[-1] == "score: 7 / 7", result.stdout
    for grade_id, points in (("check_plain_step", 2), ("check_peephole_step", 2),
                             ("check_layer_norm_step", 3)):
        assert f"{grade_id}: {points} / {points}" in lines
    assert sum(line.endswith(": graded by hand") for line in lines) == 3   # the written answers

    untouched = graded_students[name][0]
    assert all(g.points == 0 for g in untouched if not g.by_hand)
    assert format_grades(untouched).splitlines()[-1] == "score: 0 / 7"
    assert "NotImplementedError" in format_grades(untouched)

    source = out / "instructor"
    planted = {g.grade_id: g for g in grade(_submission(out / "student" / name, tmp_path,
                                                        PLANTED_02), source=source)}
    assert planted["check_plain_step"].points == 0
    assert "z_f differs first" in "\n".join(planted["check_plain_step"].feedback)
    assert "no forget_bias" in "\n".join(planted["check_plain_step"].feedback)
    assert planted["check_peephole_step"].points == 2
    assert planted["check_layer_norm_step"].points == 0
    assert "per-channel layer norm" in "\n".join(planted["check_layer_norm_step"].feedback)

    (tmp_path / "m").mkdir()
    patched = grade(_submission(out / "student" / name, tmp_path / "m", MONKEYPATCH_02),
                    source=source)
    assert [g.points for g in patched if not g.by_hand] == [0, 0, 0], format_grades(patched)
    (tmp_path / "r").mkdir()
    own = {g.grade_id: g for g in grade(_submission(out / "instructor" / name, tmp_path / "r",
                                                    REFCONV_STEP_02), source=source)}
    assert own["check_plain_step"].points == 0
    assert "refconv.lstm_step is not available while check_plain_step grades" in own[
        "check_plain_step"].report
    assert own["check_peephole_step"].points == 2 and own["check_layer_norm_step"].points == 3


@pytest.fixture(scope="module")
def graded_students(builds):
    """Every untouched student notebook, graded (two at a time: each is its own kernel)."""
    out, written = builds
    paths = [path for path in written["student"] if not _missing_frameworks(path)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda path: grade_notebook(path, timeout=300), paths))
    return {path.name: result for path, result in zip(paths, results)}


def _missing_frameworks(path):
    """The frameworks a notebook imports (notebooks/run.py's NEEDS: 06's crosscheck, 08's
    deploy) that are missing: that notebook is left out, unless CI requires them."""
    import os
    missing = notebooks_run.missing_frameworks(path)
    if missing and os.environ.get("REFCONV_REQUIRE_CROSSCHECK") == "1":
        pytest.fail(f"REFCONV_REQUIRE_CROSSCHECK=1 but {path.name} needs {missing}")
    return missing


def test_every_student_notebook_runs_top_to_bottom_and_grades_0(graded_students):
    for name, (grades, nb) in graded_students.items():
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(cell.execution_count is not None for cell in code), name
        errors = [(cell.source[:60], o.get("ename")) for cell in code for o in cell.outputs
                  if o.output_type == "error"]
        assert not errors, f"{name}: cells failed with the stubs unsolved: {errors}"
        auto = [g for g in grades if not g.by_hand]
        assert auto, f"{name} has no graded exercise"
        assert all(g.points == 0 for g in auto), format_grades(grades)
        assert any(g.by_hand for g in grades), f"{name} has no question"


def test_the_command_line_says_when_it_cannot_grade(tmp_path):
    needs_nbgrader()
    bad = subprocess.run([sys.executable, "-m", "refconv", "course", "grade", str(REPO / "README.md")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a readable notebook" in bad.stderr
    stranger = tmp_path / "stranger.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(stranger))
    foreign = subprocess.run([sys.executable, "-m", "refconv", "course", "grade", str(stranger)],
                             capture_output=True, text=True, timeout=120)
    assert foreign.returncode == 2 and "not one of refconv's course notebooks" in foreign.stderr


def test_refconv_notebooks_writes_the_student_versions_unless_asked(tmp_path):
    result = subprocess.run([sys.executable, "-m", "refconv", "notebooks", "--out",
                             str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "student versions" in result.stdout
    assert_no_answers(tmp_path / "s")
    assert (tmp_path / "s" / "data").is_dir()
    full = subprocess.run([sys.executable, "-m", "refconv", "notebooks", "--instructor", "--out",
                           str(tmp_path / "i")], capture_output=True, text=True, timeout=120)
    assert full.returncode == 0 and "solutions, answer keys" in full.stdout, full.stderr
    assert "BEGIN SOLUTION" in (tmp_path / "i" / "02_convlstm_gates.ipynb").read_text()


def test_a_wheel_ships_the_notebooks_and_the_course_commands(tmp_path):
    """python -m build, the wheel into a fresh venv outside the repository, then the commands there.

    The fresh venv borrows this environment's installed packages (numpy, nbgrader...)
    through a .pth file, not refconv: this checkout is not on its path, so the refconv
    it runs is the wheel's.
    """
    import os
    import sysconfig
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist),
                            str(REPO)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel, = dist.glob("refconv-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True, env=clean).stdout.strip()
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300, env=clean, cwd=tmp_path)
    # after the install: pip must not see this environment's refconv as already installed
    pathlib.Path(site, "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = subprocess.run([str(venv / "bin" / "refconv"), "notebooks", "--out", "nb"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, env=env)
    assert where.returncode == 0, where.stderr
    names = sorted(p.name for p in (tmp_path / "nb").glob("*.ipynb"))
    assert names == [p.name for p in notebook_paths()]
    assert_no_answers(tmp_path / "nb")
    import zipfile
    with zipfile.ZipFile(wheel) as archive:          # nothing in the wheel holds an answer
        shipped = [n for n in archive.namelist() if n.endswith(".ipynb")]
        assert sorted(pathlib.Path(n).name for n in shipped) == names
        for n in shipped:
            assert "BEGIN SOLUTION" not in archive.read(n).decode(), n
    instructor = subprocess.run([str(venv / "bin" / "refconv"), "notebooks", "--instructor",
                                 "--out", "full"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=300, env=env)
    assert instructor.returncode == 1 and "not in the installed package" in instructor.stderr
    needs_nbgrader()   # the rest builds the course
    course = subprocess.run([str(venv / "bin" / "refconv"), "course", "build", "--out", "course"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert course.returncode == 0, course.stderr
    assert sorted(p.name for p in (tmp_path / "course" / "student").glob("*.ipynb")) == names
    assert (tmp_path / "course" / "instructor" / "secret.txt").is_file()
    origin = subprocess.run([str(python), "-c", "import refconv; print(refconv.__file__)"],
                            capture_output=True, text=True, env=env, cwd=tmp_path).stdout
    assert origin.startswith(site), origin          # the wheel's refconv, not this checkout
