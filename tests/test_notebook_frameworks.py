"""Notebook 6 without its frameworks: a clear message, from run.py and from the notebook itself.

Oracle: the messages' own words (what is missing, what to install); the notebook's first
code cells, run with the frameworks hidden.
"""

import importlib.util
import os
import pathlib

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("notebooks_run_frameworks", NOTEBOOKS / "run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def test_run_py_skips_a_notebook_whose_frameworks_are_missing(monkeypatch, capsys):
    executed = []
    monkeypatch.setattr(run, "missing_frameworks", lambda path: ["torch"] if "06" in path.name else [])
    monkeypatch.setattr(run, "execute", lambda path, timeout: executed.append(path) or (None, 0.0))
    assert run.main(["06", "--check"]) == 0
    err = capsys.readouterr().err
    assert "06_oracle.ipynb: skipped, needs torch" in err and 'pip install -e ".[crosscheck]"' in err
    assert executed == []


def test_the_install_hint_names_the_extras_that_hold_the_missing_frameworks():
    """Notebook 8's ONNX frameworks come with the deploy extra, not crosscheck: the hint names
    each missing framework's extra (the table ``run.EXTRA``), tf-keras only with crosscheck."""
    assert run.install_hint(["onnx", "onnxruntime"]) == 'pip install -e ".[deploy]"'
    both = run.install_hint(["torch", "onnx"])
    assert both.startswith('pip install -e ".[crosscheck,deploy]"') and "tf-keras" in both
    for notebook, needs in run.NEEDS.items():  # every framework a notebook needs has an extra
        assert set(needs) <= set(run.EXTRA), f"{notebook}: {set(needs) - set(run.EXTRA)}"


def test_notebook_6_says_what_to_install_and_skips_to_the_bug_hunt(monkeypatch, capsys):
    """Without torch and keras, 06's first cell says what to install, and every later cell up
    to the bug hunt (the graded exercise, refconv alone) is replaced by a line saying so."""
    cells = run.read_source(run.source_path(NOTEBOOKS / "06_oracle.ipynb"))
    setup = next(source for kind, source, *_ in cells if kind == "code")
    monkeypatch.setattr(os, "environ", dict(os.environ))   # the cell sets a few variables first
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("torch", "keras") else real(name, *a))

    class Shell:                      # the part of IPython's shell the cell uses
        input_transformers_post = []

    exec(compile(setup, "06_oracle setup", "exec"), {"get_ipython": lambda: Shell})
    said = capsys.readouterr().out
    assert "torch and keras are not installed" in said
    assert 'pip install -e ".[crosscheck]"' in said and "tf-keras" in said
    [skip] = Shell.input_transformers_post
    assert "skipped: this cell needs torch and keras" in "".join(skip(["x = torch.zeros(1)\n"]))
    hunt = ["from refconv.exercises import check_bug_hunt\n"]
    assert skip(hunt) == hunt and Shell.input_transformers_post == []   # the bug hunt runs
