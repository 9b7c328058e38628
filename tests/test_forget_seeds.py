"""notebooks/data/forget_seeds.py and its record, notebooks/data/forget_seeds.json.

Oracles: ``ablation.forget_test`` recomputed on the shipped weights (the record's rows
for the shipped seeds must be those numbers), a record of another design (refused), and
the script run end to end on two training steps (its file reread).
"""

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from refconv import ablation, tasks

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "notebooks" / "data" / "forget_seeds.py"
RECORD = REPO / "notebooks" / "data" / "forget_seeds.json"
spec = importlib.util.spec_from_file_location("forget_seeds", SCRIPT)
forget_seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(forget_seeds)


def test_the_record_is_of_this_design_and_its_shipped_seeds_are_the_shipped_weights():
    record = ablation.load_forget_record(RECORD)
    assert set(tasks.SEEDS) <= set(record["seeds"]) and len(record["seeds"]) >= 10
    inputs, targets = tasks.held_out("forget_lstm", record["videos"])
    for seed in tasks.SEEDS:
        cell, readout, _, _ = tasks.load("forget_lstm", tasks.TRAINED / f"seed{seed}")
        result = ablation.forget_test(cell, readout, inputs, targets)
        recorded = record["seeds"][seed]
        assert recorded["channel"] == result["channel"]
        for key in ("drop", "error", "recall_error"):
            assert recorded[key] == pytest.approx(result[key], rel=1e-9), key
        for which in ("main", "all"):
            assert recorded["ratio"][which] == pytest.approx(result["ratio"][which], rel=1e-9)
        for kind in ("reset", "no reset"):
            np.testing.assert_allclose(recorded["z_f"][kind], result["z_f"][kind], rtol=1e-9)
        assert ablation.forget_row(seed, recorded) == ablation.forget_row(seed, result)


def test_a_record_of_another_design_is_refused(tmp_path):
    record = json.loads(RECORD.read_text())
    record["design"]["reset_frames"] = [5]
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="not the current"):
        ablation.load_forget_record(stale)


def test_seed_lists():
    assert forget_seeds.seed_list("0-3") == [0, 1, 2, 3]
    assert forget_seeds.seed_list("18,10-12,4") == [18, 10, 11, 12, 4]


def test_the_script_trains_measures_and_records(tmp_path, monkeypatch):
    """Two training steps (the script's own run, in-process: its design is the task's)."""
    monkeypatch.setitem(tasks.MODELS, "forget_lstm", dict(tasks.MODELS["forget_lstm"], steps=2))
    out, path = tmp_path / "w", tmp_path / "record.json"
    assert forget_seeds.main(["--seeds", "3", "--out", str(out), "--videos", "8",
                              "--record", str(path)]) == 0
    assert (out / "seed3" / "forget_lstm.npz").exists()
    record = ablation.load_forget_record(path)
    cell, readout, _, config = tasks.load("forget_lstm", out / "seed3")
    assert config["steps"] == 2 and list(record["seeds"]) == [3]
    inputs, targets = tasks.held_out("forget_lstm", 8)
    assert record["seeds"][3]["drop"] == ablation.forget_test(cell, readout, inputs, targets)["drop"]
    bytes_before = (out / "seed3" / "forget_lstm.npz").read_bytes()
    forget_seeds.main(["--seeds", "3", "--out", str(out), "--videos", "8"])    # reused, not retrained
    assert (out / "seed3" / "forget_lstm.npz").read_bytes() == bytes_before


def test_the_script_is_a_command():
    run = subprocess.run([sys.executable, str(SCRIPT), "--seeds", "x", "--out", "/nonexistent"],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2 and "--seeds" in run.stderr
