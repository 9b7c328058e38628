"""The README's example runs as written, so what a newcomer copies works."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_starts_with_the_two_commands():
    """The first two shell blocks: set up and run the demo; set up and run the tests."""
    shell = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert "refconv demo" in shell[0]
    assert "pytest" in shell[1] and ".[test," in shell[1] and "crosscheck" in shell[1]


def test_ci_also_runs_the_suite_without_the_frameworks():
    """README's second CI block: only the test and notebooks extras, in its own venv, with no
    REFCONV_REQUIRE_... variable (a missing framework must skip there); .ci/run runs both."""
    import tomllib
    text = README.read_text()
    blocks = {name: re.search(rf"<!-- ci: {name} -->\s*```bash\n(.*?)```", text, re.S)
              for name in ("tests", "tests-minimal")}
    assert all(blocks.values()), "README.md lacks a CI block"
    minimal = blocks["tests-minimal"].group(1)
    assert '.[test,notebooks]"' in minimal and ".venv-min/bin/python -m pytest" in minimal
    assert "REFCONV_REQUIRE" not in minimal and "crosscheck" not in minimal
    run = (README.parent / ".ci" / "run").read_text()
    assert "readme_block tests)" in run and "readme_block tests-minimal)" in run
    assert "env -u REFCONV_REQUIRE_CROSSCHECK -u REFCONV_REQUIRE_SITE" in run
    # the packaging tests build with this environment's setuptools (no isolation)
    with open(README.parent / "pyproject.toml", "rb") as f:
        test_extra = tomllib.load(f)["project"]["optional-dependencies"]["test"]
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in test_extra)
    assert any(r.startswith("build") for r in test_extra)
