"""The committed regression anchor: today's code reproduces golden vectors written once, at 1e-12.

``tests/data/golden/`` holds a few cases (LSTM and GRU, 1-3 D, both layouts,
sequence lengths 0/partial/full/none, both directions, every gradient) written
by ``tests/data/golden/write_anchor.py`` and committed with their SHA-256s in
``manifest.json``. What this file trusts: those files, checked byte for byte
with ``hashlib`` (not refconv's reader). Each case is recomputed from the
configuration stored beside it, so changing ``golden_cases()`` does not move
the anchor; changing the numbers refconv computes for a fixed seed does.

The tolerance is 1e-12 relative to each tensor's scale, not bit equality:
another machine's BLAS, another thread count or a reordered sum may move the
last bits, nothing more.
"""

import hashlib
import json
import pathlib
import shutil

import numpy as np
import pytest

from refconv import compare, load_case
from refconv.golden import make_case

ANCHOR = pathlib.Path(__file__).parent / "data" / "golden"
MANIFEST = json.loads((ANCHOR / "manifest.json").read_text())
CASES = sorted(MANIFEST["cases"])
TOLERANCE = 1e-12


def test_anchor_files_are_the_committed_bytes():
    for name, entry in MANIFEST["cases"].items():
        data = (ANCHOR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name


def test_anchor_covers_what_it_must_and_is_small():
    configs = [entry["config"] for entry in MANIFEST["cases"].values()]
    assert {c["cell"] for c in configs} == {"lstm", "gru"}
    assert {c["data_format"] for c in configs} == {"channels_last", "channels_first"}
    assert {c["bidirectional"] for c in configs} == {True, False}
    assert {c["normalize"] for c in configs} == {True, False}
    assert {len(c["shape"]) for c in configs} == {1, 2, 3}
    lengths = [c["sequence_length"] for c in configs]
    assert None in lengths                                   # the default (fused) LSTM backward
    assert any(v is not None and 0 in v for v in lengths)    # an empty row
    assert any(v is not None and 0 < min(v) < c["timesteps"]
               for v, c in zip(lengths, configs))            # partial rows
    assert all(c["dtype"] == "float64" for c in configs)
    for entry in MANIFEST["cases"].values():
        keys = set(entry["keys"])
        assert "grad/inputs" in keys
        assert any("grad/params/" in k for k in keys)
    total = sum((ANCHOR / e["file"]).stat().st_size for e in MANIFEST["cases"].values())
    assert total < 1_000_000


@pytest.mark.parametrize("name", CASES)
def test_todays_code_reproduces_the_anchor(name):
    entry = MANIFEST["cases"][name]
    stored = load_case(str(ANCHOR / entry["file"]), entry["sha256"])
    computed = make_case(entry["config"])
    assert sorted(computed) == sorted(stored) == entry["keys"]
    for key, expected in stored.items():
        actual = computed[key]
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, key
        scale = float(np.abs(expected).max(initial=0.0))
        error = np.abs(actual.astype(np.float64) - expected)
        bound = TOLERANCE * (np.abs(expected) + scale)
        assert np.all(error <= bound), (
            f"{name}: {key} moved by {error.max():.3e} (scale {scale:.3e}); refconv's numbers "
            f"for a fixed seed changed")


def test_compare_checks_the_anchor_checksums_itself(tmp_path):
    """A golden folder with one altered file is refused by ``compare(folder, folder)`` itself."""
    assert compare(str(ANCHOR), str(ANCHOR)).passed
    folder = tmp_path / "anchor"
    shutil.copytree(ANCHOR, folder)
    name = CASES[0]
    path = folder / MANIFEST["cases"][name]["file"]
    # A well-formed file, one number changed by a part in 1e15: every reader accepts it and the
    # folder compared with itself would pass; only the manifest's SHA-256 tells.
    arrays = load_case(str(path))
    arrays["grad/inputs"].flat[0] *= 1 + 1e-15
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match=r"SHA-256 .* differs from the manifest's"):
        compare(str(folder), str(folder))
    # A byte flipped in the raw file.
    shutil.copy(ANCHOR / MANIFEST["cases"][name]["file"], path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"SHA-256 .* differs from the manifest's"):
        compare(str(folder), str(folder))
    # The candidate side is checked too, when its manifest gives checksums.
    with pytest.raises(ValueError, match=r"SHA-256 .* differs from the manifest's"):
        compare(str(ANCHOR), str(folder))
