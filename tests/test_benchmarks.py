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
