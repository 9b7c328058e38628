"""tools/soft_asserts.py: every failing assert of a source is listed, a passing one is not,
and the run goes on past a failure (oracle: the source's own asserts, written to fail or
pass on purpose)."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("soft_asserts", ROOT / "tools" / "soft_asserts.py")
soft_asserts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soft_asserts)

SOURCE = """\
import pathlib
x = 3
assert x == 3                       # passes
assert x > 10, "too small"          # fails
y = x * 2                           # still runs after the failure
assert y == 7                       # fails, and sees y
assert {}["missing"]                # raises: counts as failed
assert pathlib.Path("here.txt").read_text() == "data"   # read from the cwd given
"""


def test_each_failing_assert_is_listed_and_the_run_goes_on(tmp_path, capsys):
    source = tmp_path / "nb.py"
    source.write_text(SOURCE)
    (tmp_path / "here.txt").write_text("data")
    failed = soft_asserts.run(source, cwd=tmp_path)
    assert [line for line, _ in failed] == [4, 6, 7]
    assert failed[0][1] == "x > 10" and failed[1][1] == "y == 7"
    assert "raised KeyError" in failed[2][1]
    assert "SOFT-ASSERT FAILED line 6: y == 7" in capsys.readouterr().out


def test_the_command_exits_1_on_a_failure_and_0_without(tmp_path):
    bad, good = tmp_path / "bad.py", tmp_path / "good.py"
    bad.write_text("assert 1 == 2\n")
    good.write_text("assert 1 == 1\n")
    assert soft_asserts.main([str(bad)]) == 1
    assert soft_asserts.main([str(good)]) == 0
