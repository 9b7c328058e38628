"""``refconv compare --keys``: a forward-only candidate (outputs, states, gates) checked alone.

The reference is the committed anchor (seven cases, bidirectional ones among
them); the candidate holds only what a framework without gradients produces.
The missing-key rule holds for what was asked: every reference key a group or
pattern selects must be in the candidate.
"""

import numpy as np
import pytest

from refconv import load_case
from refconv.cli import main
from refconv.compare import compare

from test_golden_anchor import ANCHOR  # the committed anchor folder

FORWARD = ("outputs", "final_state/", "gates/")


def _forward_only(folder, change=None):
    """Each anchor case's outputs, final states and gates (fw/ and bw/ too) as a folder of
    .npz files of the same names; ``change``: (case file, key) to add 1e-6 to one number of."""
    folder.mkdir()
    for path in sorted(ANCHOR.glob("*.npz")):
        arrays = load_case(str(path))
        kept = {k: v for k, v in arrays.items()
                if k.removeprefix("fw/").removeprefix("bw/").startswith(FORWARD)}
        if change is not None and change[0] == path.name:
            kept[change[1]] = kept[change[1]].copy()
            kept[change[1]].flat[7] += 1e-6
        np.savez(folder / path.name, **kept)
    return folder


@pytest.mark.parametrize("keys", ["outputs,states,gates", "outputs,final_state/*,gates/*"])
def test_a_forward_only_candidate_passes_on_what_it_has(tmp_path, capsys, keys):
    candidate = _forward_only(tmp_path / "c")
    assert main(["compare", str(ANCHOR), str(candidate), "--keys", keys]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "missing" not in out
    # without --keys, the gradients and inputs are missing: FAILED
    assert main(["compare", str(ANCHOR), str(candidate)]) == 1
    assert "grad/inputs: missing from the candidate" in capsys.readouterr().out


def test_one_number_off_fails_and_is_named(tmp_path, capsys):
    candidate = _forward_only(tmp_path / "c", ("lstm_2d_cf_peep_full.npz", "final_state/c"))
    assert main(["compare", str(ANCHOR), str(candidate), "--keys", "outputs,states"]) == 1
    out = capsys.readouterr().out
    assert "lstm_2d_cf_peep_full" in out and "final_state/c" in out and "FAILED" in out


def test_the_keys_asked_for_and_missing_are_missing(tmp_path):
    candidate = _forward_only(tmp_path / "c")
    result = compare(str(ANCHOR), str(candidate), keys=["states", "params"])
    assert not result.passed
    assert {key.removeprefix("fw/").removeprefix("bw/").split("/")[0]
            for _, key in result.missing} == {"params"}
    both = compare(str(ANCHOR), str(candidate), keys=["gates"])
    bidirectional = {t.key for t in both.tensors if t.case == "lstm_1d_cl_ln_bidirectional"}
    assert {"fw/gates/z_f", "bw/gates/z_f"} <= bidirectional and both.passed


def test_a_group_or_pattern_matching_nothing_is_an_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="'gate/\\*' matches no key"):
        compare(str(ANCHOR), str(ANCHOR), keys=["gate/*"])
    assert main(["compare", str(ANCHOR), str(ANCHOR), "--keys", "outputs,nothing*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nothing*' matches no key" in err
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(ANCHOR), str(ANCHOR), "--keys", "outputs,,gates"])
    assert exit_.value.code == 2
