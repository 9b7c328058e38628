"""The mutation check's list stays applicable, and the check fails on a survivor (issue 18).

The full check (``tools/mutation_check.py``, run in CI after the suite) takes
minutes; these tests take seconds and fail in the ordinary suite as soon as a
code change leaves a mutation's original text missing or ambiguous.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tool():
    spec = importlib.util.spec_from_file_location("mutation_check",
                                                  ROOT / "tools" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()
MUTATIONS = tool.load()


def test_the_list_is_long_and_covers_issue_18():
    assert len(MUTATIONS) >= 30
    items = {int(n) for m in MUTATIONS for n in re.findall(r"issue 18, item (\d)", m["breaks"])}
    assert items == set(range(1, 10)), f"issue 18's items without a mutation: {set(range(1, 10)) - items}"
    assert len({m["file"] for m in MUTATIONS}) >= 12


@pytest.mark.parametrize("m", MUTATIONS, ids=[m["id"] for m in MUTATIONS])
def test_every_mutation_applies_once_and_names_real_tests(m):
    assert tool.occurrences(m) == 1, (f"{m['id']}: its original text occurs "
                                      f"{tool.occurrences(m)} times in {m['file']}: update it")
    # a mutation is planted in the scratch copy, so its file must be in what is copied
    assert m["file"].split("/")[0] in tool.COPIED, f"{m['id']}: {m['file']} is not copied"
    for test in m["tests"]:
        path, _, name = test.partition("::")
        assert (ROOT / path).is_file(), test
        function = name.split("[")[0]
        if function:
            assert re.search(rf"^def {re.escape(function)}\(", (ROOT / path).read_text(), re.M), test


def test_a_malformed_list_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[mutation]]\nid = "x"\nfile = "refconv/conv.py"\noriginal = "a"\n'
                   'mutated = "a"\nbreaks = "nothing"\ntests = ["tests/test_conv.py"]\n')
    with pytest.raises(SystemExit, match="'mutated' equals 'original'"):
        tool.load(bad)
    bad.write_text('[[mutation]]\nid = "x"\nfile = "refconv/conv.py"\n')
    with pytest.raises(SystemExit, match="expected the fields"):
        tool.load(bad)


def test_a_survivor_and_a_stale_entry_fail_the_check(tmp_path, capsys):
    """A real bug given a test that cannot see it survives; a missing text is stale: exit 1."""
    listing = tmp_path / "demo.toml"
    listing.write_text(
        '[[mutation]]\nid = "survivor"\nfile = "refconv/_cell.py"\n'
        'original = "shape[-2] * receptive, shape[-1] * receptive"\n'
        'mutated = "shape[-2] * receptive, shape[-1]"\nbreaks = "Glorot fan_out"\n'
        'tests = ["tests/test_activation_derivatives.py::test_the_grid_reaches_every_linear_range_edge"]\n'
        '[[mutation]]\nid = "stale"\nfile = "refconv/lstm.py"\noriginal = "no such text"\n'
        'mutated = "x"\nbreaks = "gone"\ntests = ["tests/test_init.py"]\n')
    assert tool.main(["--file", str(listing), "--jobs", "1"]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"\| survivor \|.*\| SURVIVED \|", out), out
    assert "STALE stale: its original text occurs 0 times in refconv/lstm.py" in err


def test_the_coverage_rule_reads_the_tree_and_names_each_gap(tmp_path, capsys):
    """A module with a function and no entry is a gap, named; re-exports and links are not."""
    package = tmp_path / "refconv"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Re-exports."""\nfrom .held import f\n__all__ = ["f"]\n')
    (package / "held.py").write_text("def f():\n    return 1\n")
    (package / "new.py").write_text("class Landed:\n    pass\n")
    (package / "sub" / "__init__.py").write_text("def helper():\n    return 2\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "run.py").write_text("def main():\n    pass\n")
    (package / "_linked").symlink_to(tmp_path / "elsewhere")
    assert tool.modules(tmp_path) == ["refconv/held.py", "refconv/new.py",
                                      "refconv/sub/__init__.py"]
    counts = tool.coverage([{"file": "refconv/held.py"}, {"file": "refconv/held.py"}], tmp_path)
    assert counts == {"refconv/held.py": 2, "refconv/new.py": 0, "refconv/sub/__init__.py": 0}
    assert tool.report_gaps(counts) == 2
    err = capsys.readouterr().err
    assert "MISSING refconv/new.py" in err and "MISSING refconv/sub/__init__.py" in err
    assert "held.py" not in err


def test_the_real_tree_is_read_and_every_entry_counts_for_its_module():
    counts = tool.coverage(MUTATIONS)
    assert "refconv/lstm.py" in counts and "refconv/__init__.py" not in counts
    assert not any(module.startswith("refconv/_notebooks/") for module in counts)
    # the rule is about refconv's modules; an entry may also guard a tool the tests run
    # (docs/check_site.py), which the rule neither counts nor requires
    held = {m["file"] for m in MUTATIONS if m["file"].startswith("refconv/")}
    assert all(counts[module] > 0 for module in held), "an entry's file is not a module of the rule"
