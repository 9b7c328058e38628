"""The site builds from its own install: a virtual environment with only the ``docs`` extra.

README's `pip install -e ".[docs]"` and `python docs/make_site.py` must work without
the frameworks and tools of the other extras (onnx, torch, TensorFlow, nbgrader...): the
optional deployment adapters are documented with their dependencies mocked, never
imported. The test copies the working tree (so the build does not touch this checkout's
``build/``), makes the environment (or uses ``$REFCONV_DOCS_VENV``, one made before with
``python3 -m venv V && V/bin/pip install -e ".[docs]"``), checks that it really lacks
the other extras, and builds the site there.

It needs the network for pip (and npm when ``docs/node_modules`` is not there), so it
runs where ``REFCONV_REQUIRE_SITE=1`` (CI) or ``REFCONV_DOCS_VENV`` is set, and is
skipped elsewhere. About 3 minutes on 2 cores with a fresh environment (pip from a warm
cache), 1.5 with ``REFCONV_DOCS_VENV``.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OTHER_EXTRAS = ("onnx", "onnxruntime", "torch", "tensorflow", "keras", "ai_edge_litert",
                "flax", "jax", "nbgrader", "jupytext", "tqdm", "twine")  # myst-nb brings nbclient

pytestmark = pytest.mark.skipif(
    os.environ.get("REFCONV_REQUIRE_SITE") != "1" and not os.environ.get("REFCONV_DOCS_VENV"),
    reason="builds a docs-only environment: set REFCONV_REQUIRE_SITE=1 (CI) or "
           "REFCONV_DOCS_VENV")


def _copy_tree(target):
    """The working tree's files that git knows (tracked or not ignored), and MathJax's
    npm folder when it is installed (saves npm a download)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)
        elif source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(source), target / name)
    if (REPO / "docs" / "node_modules").is_dir():
        shutil.copytree(REPO / "docs" / "node_modules", target / "docs" / "node_modules",
                        symlinks=True)


def test_the_site_builds_with_only_the_docs_extra(tmp_path):
    tree = tmp_path / "refconv"
    _copy_tree(tree)
    venv = os.environ.get("REFCONV_DOCS_VENV")
    if venv is None:
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", f"{tree}[docs]"],
                       check=True)
    python = str(Path(venv) / "bin" / "python")
    present = subprocess.run(
        [python, "-c", "import importlib.util as u, sys; "
                       "print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))",
         *OTHER_EXTRAS], capture_output=True, text=True, check=True).stdout.split()
    assert present == [], f"not a docs-only environment: it has {present}"
    built = subprocess.run([python, "docs/make_site.py"], cwd=tree, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": ""})
    assert built.returncode == 0, built.stdout + built.stderr
    assert "make_site: built build/site/html" in built.stdout
    site = tree / "build" / "site" / "html"
    # The adapters that need onnx/torch and LiteRT are documented all the same.
    onnx_page = (site / "api" / "refconv_conformance_onnx_torch.html").read_text("utf-8")
    assert 'id="refconv.conformance.onnx_torch.run"' in onnx_page
    assert "onnx" in onnx_page and "an optional extra" in onnx_page
    assert (site / "api" / "refconv_conformance_tflite_keras.html").is_file()
    print(f"\n{built.stdout.strip()}")
