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
