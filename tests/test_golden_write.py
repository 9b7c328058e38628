"""refconv.write_golden: what the manifest says of each file is what the file is.

The oracle is the files themselves: each ``.npz`` read back with NumPy (its
keys) and hashed with hashlib (its SHA-256), for small cases written quickly.
"""

import hashlib
import json
import os

import numpy as np
import pytest

from refconv import compare, write_golden


def _case(name, seed=0):
    return dict(name=name, cell="gru", shape=[5], filters=2, kernel=[3], normalize=False,
                data_format="channels_last", bidirectional=False, seed=seed, batch=2,
                timesteps=3, in_channels=1, dtype="float64", sequence_length=[3, 2])


def test_the_manifest_names_each_files_checksum_keys_and_config(tmp_path):
    cases = [_case("a_gru"), _case("b_gru", seed=1)]
    returned = write_golden(str(tmp_path), cases=cases)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == returned
    assert sorted(manifest["cases"]) == ["a_gru", "b_gru"]
    for case in cases:
        entry = manifest["cases"][case["name"]]
        path = tmp_path / entry["file"]
        assert entry["file"] == case["name"] + ".npz"
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        with np.load(path, allow_pickle=False) as npz:
            assert entry["keys"] == sorted(npz.files)
        assert entry["config"] == case
    assert sorted(os.listdir(tmp_path)) == ["a_gru.npz", "b_gru.npz", "manifest.json"]
    assert compare(str(tmp_path), str(tmp_path)).passed


def test_two_cases_of_one_name_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"cases\[1\]: name 'x' appears twice"):
        write_golden(str(tmp_path / "g"), cases=[_case("x"), _case("x", seed=1)])
    assert not (tmp_path / "g").exists() or os.listdir(tmp_path / "g") == []
