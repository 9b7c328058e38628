"""The benchmark scripts still run (at toy sizes) and print what their docstrings promise.

The numbers themselves are not asserted (no timed tests): the scripts are measurements,
run by hand on a quiet machine; this only keeps them from rotting when the code they
measure changes (a renamed function, a new argument).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bench_gradients_runs_at_toy_sizes(cell):
    out = subprocess.run(
        [sys.executable, "benchmarks/bench_gradients.py", "--cell", cell, "--height", "12",
         "--width", "10", "--timesteps", "3", "--batch", "2", "--repeats", "2"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for pattern in [rf"^{cell} float64, batch 2, T 3, 12x10",
                    r"forward \+ backward .* \(\d+\.\d\dx the forward; target <= 3\): fresh memory",
                    r"forward \+ backward .* one Workspace in every call \(\d+\.\d\d GiB kept",
                    r"with a Workspace / fresh memory, turn by turn: \d+\.\d\d \(median",
                    r"peak memory, T=3 ", r"per extra time step"]:
        assert re.search(pattern, text, re.M), (pattern, text)


def _seed_workload(tmp_path, *extra, env_path=None):
    # the script's progress bar is tqdm's: without the benchmarks extra the test skips, naming it
    pytest.importorskip("tqdm", reason="seed_workload.py needs tqdm (the benchmarks extra)")
    path = str(ROOT) if env_path is None else f"{env_path}{os.pathsep}{ROOT}"
    return subprocess.run(
        [sys.executable, "benchmarks/seed_workload.py", "--batch", "1", "--steps", "2",
         "--only", "lstm-1d-bi", "gru-3d-bi", "--repeats", "1", *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True,
        timeout=600)


def test_seed_workload_prints_both_ratios_and_peak_memory(tmp_path):
    pytest.importorskip("torch", reason="the ratio to PyTorch needs torch (crosscheck extra)")
    out = _seed_workload(tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # Each run: its own ratio to PyTorch and the largest difference of the two outputs,
    # which must be float32 rounding, not a different computation.
    for run in ("lstm-1d-bi", "gru-3d-bi"):
        row = re.search(rf"^{run} .* (\d+\.\d\d) +(\d\.\de[-+]\d\d)  ", text, re.M)
        assert row, (run, text)
        assert float(row.group(2)) < 1e-4, (run, text)
    for pattern in [r"^against PyTorch, steps 2-2 of each run \(lstm-1d-bi, gru-3d-bi\)"
                    r", same process, best of 1: .* refconv / torch \d+\.\d\d \(goal <= 1\.0\)$",
                    r"^the same steps against the matrix-product floor measured in those turns: "
                    r".* refconv / floor \d+\.\d\d \(goal <= 1\.6\), torch / floor \d+\.\d\d$",
                    r"^workload / matrix-product floor \d+\.\d\d \(whole runs, their first "
                    r"steps' allocations included\); "
                    r"peak memory \d+\.\d\d GB \(goal < 4\)$"]:
        assert re.search(pattern, text, re.M), (pattern, text)


def test_seed_workload_without_torch_says_so(tmp_path):
    # A torch that cannot be imported, first on the path: the script runs and names the extra.
    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch')\n")
    out = _seed_workload(tmp_path, env_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^against PyTorch: not measured \(No module named torch; pip install torch "
                     r"\(the crosscheck extra\)\)$", out.stdout, re.M), out.stdout
    assert re.search(r"^workload / matrix-product floor \d+\.\d\d", out.stdout, re.M), out.stdout


def test_seed_workload_refuses_a_single_torch_step(tmp_path):
    out = _seed_workload(tmp_path, "--torch-steps", "1")
    assert out.returncode == 2 and "--torch-steps: expected 0 or at least 2" in out.stderr, \
        out.stderr
