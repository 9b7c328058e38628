"""The examples in the main entry points' docstrings run, and print what they say.

Each example is a doctest (``>>>`` lines and the output they print); the API
reference shows them. A docstring example that no longer holds fails here, so the
site never shows an example that does not work. Each module listed must keep at least
one example (a deleted example fails too).
"""

import doctest
import importlib

import pytest

# The main entry points (cells, time loops, gradients, the oracle, figures) and the
# names whose docstrings must carry an example.
MODULES = {
    "refconv._cell": ["ConvCell.build", "ConvCell.__call__"],
    "refconv.lstm": ["ConvLSTMCell"],
    "refconv.gru": ["ConvGRUCell"],
    "refconv.rnn": ["dynamic_rnn"],
    "refconv.bptt": ["dynamic_rnn_grad"],
    "refconv.compare": ["compare"],
    "refconv.golden.write": ["write_golden"],
    "refconv.figures": ["style", "to_png"],
}


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_the_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder().find(module, module_name)
    with_examples = {test.name.removeprefix(module_name + "."): test for test in tests
                     if test.examples}
    for name in MODULES[module_name]:
        assert name in with_examples, f"{module_name}.{name}: no example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in with_examples.values():
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= len(MODULES[module_name]) and result.failed == 0, result
