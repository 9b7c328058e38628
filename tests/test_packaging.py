"""The wheel and the sdist: built as PyPI's users get them, and run outside the repository.

What the tests trust: the source tree (every module under refconv/ must be in both
archives), twine's own check of the metadata (what PyPI would refuse), and the installed
wheel running from a folder that is not the repository (so the repository's refconv
cannot stand in for a missing file). CITATION.cff must say what pyproject.toml says.

Needs the ``release`` extra (build, twine); skipped without it unless
``REFCONV_REQUIRE_SITE=1`` (as in CI).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))

import make_site  # noqa: E402  (pyproject.toml, read as the site reads it)

MISSING = [name for name in ("build", "twine") if importlib.util.find_spec(name) is None]
if MISSING:
    if os.environ.get("REFCONV_REQUIRE_SITE") == "1":
        raise RuntimeError(f"REFCONV_REQUIRE_SITE=1 but missing: {', '.join(MISSING)} "
                           f"(pip install -e '.[release]')")
    pytest.skip(f"the packaging tools are missing: {', '.join(MISSING)}", allow_module_level=True)

PROJECT = make_site._pyproject()["project"]
MODULES = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "refconv").rglob("*.py"))


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``(wheel, sdist)``, built by ``python -m build`` (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True, text=True)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(out.iterdir())
    return wheels[0], sdists[0]


def test_twine_accepts_both(dist):
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_archives_hold_every_module_the_licence_and_the_metadata(dist):
    wheel, sdist = dist
    assert MODULES and "refconv/__init__.py" in MODULES
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        licence = archive.read(f"{info}/licenses/LICENSE")
    assert sorted(set(MODULES) - names) == []
    assert licence == (REPO / "LICENSE").read_bytes()
    assert "License-Expression: MIT" in metadata and f"Version: {PROJECT['version']}" in metadata
    for name in PROJECT["dependencies"]:
        assert f"Requires-Dist: {name}" in metadata
    for script, target in PROJECT["scripts"].items():
        assert f"{script} = {target}" in entry_points
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        names = {name[len(root) + 1:] for name in archive.getnames()}
    assert sorted(set(MODULES + ["LICENSE", "README.md", "pyproject.toml"]) - names) == []


def test_the_wheel_holds_every_data_file_a_shipped_notebook_opens(dist):
    """The student notebooks ship in the wheel (refconv/_notebooks) and open files beside
    them by a relative path, "data/NAME": each such file must ship too (06 loads the
    script data/measure_drift.py, 07 reads data/forget_seeds.json)."""
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    opened = set()
    for notebook in sorted((REPO / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                opened |= set(re.findall(r"""["'](data/[\w.-]+)["']""", "".join(cell["source"])))
    assert {"data/measure_drift.py", "data/forget_seeds.json"} <= opened, opened
    missing = sorted(name for name in opened if f"refconv/_notebooks/{name}" not in names)
    assert missing == [], f"opened by a shipped notebook but not in the wheel: {missing}"


def test_the_installed_wheel_runs_outside_the_repository(dist, tmp_path):
    wheel, _ = dist
    target, work = tmp_path / "site-packages", tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-compile", "--target", str(target), str(wheel)], check=True)
    # The wheel first on the path; numpy, scipy, matplotlib from this environment.
    env = {**os.environ, "PYTHONPATH": str(target), "MPLBACKEND": "Agg"}
    code = ("import numpy as np, refconv, refconv.interop, refconv.exercises\n"
            f"assert refconv.__file__.startswith({str(target)!r}), refconv.__file__\n"
            "cell = refconv.ConvLSTMCell([6, 5], 3, [3, 3]); cell.build(2, seed=0)\n"
            "x = np.random.default_rng(0).standard_normal((2, 4, 6, 5, 2))\n"
            "outputs, state = refconv.dynamic_rnn(cell, x)\n"
            "assert outputs.shape == (2, 4, 6, 5, 3) and np.array_equal(state.h, outputs[:, -1])\n"
            "print(refconv.__version__)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == PROJECT["version"]
    # The console script pip wrote, as a user would type it.
    for script in PROJECT["scripts"]:
        result = subprocess.run([str(target / "bin" / script), "demo", "--out", "figures",
                                 "--timesteps", "2", "--size", "16"],
                                cwd=work, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        pngs = sorted((work / "figures").glob("*.png"))
        assert pngs and all(png.read_bytes()[:4] == b"\x89PNG" for png in pngs)


def test_the_citation_says_what_pyproject_says():
    text = (REPO / "CITATION.cff").read_text(encoding="utf-8")

    def field(name):
        match = re.search(rf'^{name}:\s*"?([^"\n]+)"?\s*$', text, re.MULTILINE)
        assert match, f"CITATION.cff has no {name}"
        return match.group(1)

    assert field("cff-version") == "1.2.0"
    assert field("version") == PROJECT["version"]
    assert field("license") == PROJECT["license"]
    assert field("url") == PROJECT["urls"]["Documentation"]
    assert field("repository-code") == PROJECT["urls"]["Source"]
    assert re.search(r"^authors:\n\s+- (name|family-names): \S", text, re.MULTILINE)
    assert field("title").startswith(PROJECT["name"])
