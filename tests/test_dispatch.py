"""One rule picks the readable or the fast code (refconv.dispatch), for every entry point.

The oracle for "the readable code ran" is the fast path made to fail: with
``refconv.fast``'s entry points replaced by functions that raise, every entry
point must still work with ``reference=True`` (and give the readable steps' exact
bits), and must raise without it where the fast path covers the cell.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path as FilePath

import numpy as np
import pytest

import refconv
from conftest import jitter, leaves, random_state
from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, bidirectional_dynamic_rnn_grad, dynamic_rnn,
                     dynamic_rnn_grad, fast, gradcheck, stream_bidirectional_rnn, stream_rnn)
from refconv.dispatch import Path, choose

ROOT = FilePath(refconv.__file__).resolve().parent


class FastPathRan(Exception):
    pass


@pytest.fixture
def no_fast_path(monkeypatch):
    """Make every way into the fast path raise FastPathRan."""
    def refuse(*args, **kwargs):
        raise FastPathRan
    for name in ("runner", "run_sequence", "record_forward", "grad", "lstm_grad", "gru_grad"):
        monkeypatch.setattr(fast, name, refuse)


def make(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "lstm":
        cell = ConvLSTMCell([5, 4], 2, [3, 3])
    elif kind == "gru":
        cell = ConvGRUCell([5, 4], 2, [3, 3])
    else:
        cell = MultiRNNCell([ConvLSTMCell([5, 4], 2, [3, 3]), ConvGRUCell([5, 4], 3, [3, 1])])
    cell.build(2, seed=seed)
    jitter(cell, rng)
    inputs = rng.standard_normal((2, 3, 5, 4, 2))
    state = random_state(cell, 2, rng)
    return cell, inputs, state, rng


def entry_points(cell, inputs, state, rng, **reference):
    """Call every entry point once; return what they returned."""
    d_out = rng.standard_normal((*inputs.shape[:2], *cell.output_size))
    frames = list(inputs.swapaxes(0, 1))
    return [
        cell(inputs[:, 0], state, **reference),
        dynamic_rnn(cell, inputs, initial_state=state, **reference),
        bidirectional_dynamic_rnn(cell, cell, inputs, **reference),
        stream_rnn(cell, frames, initial_state=state, **reference),
        stream_bidirectional_rnn(cell, cell, lambda t: frames[t], len(frames), **reference),
        dynamic_rnn_grad(cell, inputs, d_out, initial_state=state, **reference),
        bidirectional_dynamic_rnn_grad(cell, cell, inputs, (d_out, d_out), **reference),
    ]


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
def test_reference_true_never_runs_the_fast_path(kind, no_fast_path):
    cell, inputs, state, rng = make(kind)
    entry_points(cell, inputs, state, rng, reference=True)
    one = make(kind)[0]
    report = gradcheck(one, inputs[:1, :2], max_entries=2)   # reference=True by default
    assert report.max_error < 1e-5 and report.fast_errors is None


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
@pytest.mark.parametrize("entry", range(7))
def test_the_default_runs_the_fast_path_where_it_covers_the_cell(kind, entry, no_fast_path):
    cell, inputs, state, rng = make(kind)
    with pytest.raises(FastPathRan):
        entry_points(cell, inputs, state, rng)[entry]  # noqa: B018 (the calls run first)


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
def test_a_call_with_reference_is_the_readable_step_to_the_bit(kind):
    cell, inputs, state, _ = make(kind)
    x = inputs[:, 0]
    params = cell._prepare(x.shape, ["B"], x.dtype)
    h, new_state, _ = cell._step(x, state, params)
    for a, b in zip(leaves(cell(x, state, reference=True)), leaves((h, new_state)), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(leaves(cell(x, state)), leaves((h, new_state)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)   # the fast path: rounding


def test_the_rule():
    lstm, gru = ConvLSTMCell([4, 4], 2, [3, 3]), ConvGRUCell([4, 4], 2, [3, 3])
    strided = ConvLSTMCell([4, 4], 2, [3, 3], strides=2)
    stack = MultiRNNCell([ConvLSTMCell([4, 4], 2, [3, 3]), ConvGRUCell([4, 4], 2, [3, 3])])
    assert choose(lstm) == Path(True, False)
    assert choose(lstm, reference=True) == Path(False, False)
    assert choose(lstm, return_gates=True) == Path(False, False)
    assert choose(strided) == Path(False, False)
    assert choose(stack) == Path(True, False)
    assert choose(lstm, gradients=True) == Path(True, True)
    assert choose(lstm, gradients=True, lengths=np.array([1, 2])) == Path(True, False)
    assert choose(lstm, gradients=True, reference=True) == Path(False, False)
    assert choose(gru, gradients=True) == Path(True, True)
    assert choose(gru, gradients=True, lengths=np.array([1, 2])) == Path(True, False)
    assert choose(stack, gradients=True) == Path(False, False)


def small_lstm():
    rng = np.random.default_rng(11)
    cell = ConvLSTMCell([3, 3], 2, [3, 3])
    cell.build(1, seed=1)
    jitter(cell, rng)
    return cell, rng.standard_normal((1, 2, 3, 3, 1))


def test_gradcheck_checks_the_readable_backward_and_the_fast_one_when_asked():
    cell, inputs = small_lstm()
    report = gradcheck(cell, inputs, max_entries=6, fast=True)
    assert report.passed(), str(report)
    assert set(report.fast_errors) == set(report.errors)
    assert "fast path" in str(report)


def test_a_broken_lstm_step_backward_fails_gradcheck_by_default(monkeypatch):
    cell, inputs = small_lstm()
    readable = refconv.lstm.lstm_step_backward

    def broken(d_h, d_state, cache, params, cell, **options):
        d_x, d_prev, d_params, *rest = readable(d_h, d_state, cache, params, cell, **options)
        return (d_x, LSTMStateTuple(d_prev.c * 1.01, d_prev.h), d_params, *rest)

    monkeypatch.setattr(refconv.lstm, "lstm_step_backward", broken)
    report = gradcheck(cell, inputs, max_entries=6)
    assert not report.passed()
    assert report.errors["initial_state.c"] > 1e-3
    # The fast backward does not call lstm_step_backward: it alone still passes.
    assert gradcheck(cell, inputs, max_entries=6, reference=False).passed()


def test_a_broken_fast_backward_fails_gradcheck_with_fast(monkeypatch):
    cell, inputs = small_lstm()
    assert gradcheck(cell, inputs, max_entries=6, fast=True).passed()
    monkeypatch.setattr(refconv.fast.lstm, "_batch_sum",
                        lambda a, out: np.multiply(1.01, a.sum(axis=1), out=out))
    report = gradcheck(cell, inputs, max_entries=6, fast=True)
    assert not report.passed()
    assert max(report.errors.values()) < 1e-7            # the readable backward is right
    assert report.fast_errors["W_co"] > 1e-3               # the fast one is not


def modules():
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("module", modules())
def test_every_module_imports_alone_in_a_fresh_interpreter(module):
    """No import circle: each module of refconv imported first, alone. A module that loads a
    runtime (refconv.conformance.LOADS_A_RUNTIME) imports its frameworks: skipped, naming
    them, where they are missing, except under REFCONV_REQUIRE_CROSSCHECK=1 (CI)."""
    from refconv.conformance import LOADS_A_RUNTIME
    needs = LOADS_A_RUNTIME.get(module, ())
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        message = f"{module} imports {missing}, not installed: pip install -e \".[crosscheck,deploy]\""
        if os.environ.get("REFCONV_REQUIRE_CROSSCHECK") == "1":
            pytest.fail(f"REFCONV_REQUIRE_CROSSCHECK=1 but {message}", pytrace=False)
        pytest.skip(message)
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                            text=True, cwd=ROOT.parent, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


# The README's layers: a module imports only from its own layer or the ones above it.
LAYERS = {"vocabulary": 1, "checks": 1, "memory": 1, "_tree": 1, "conv": 2, "activations": 2,
          "layer_norm": 2, "_cell": 3, "lstm": 3, "gru": 3, "fast": 4, "dispatch": 5,
          "rnn": 6, "stream": 6, "bptt": 6, "gradcheck": 6, "__init__": 8, "__main__": 8}
TOOLS = 7   # golden, compare, interop, exercises, data, viz, cli


def layer_of(parts):
    """The layer of a module given as its path inside refconv, e.g. ("fast", "lstm")."""
    return LAYERS.get(parts[0], TOOLS)


def refconv_imports(path):
    """The refconv modules a file imports, as path parts inside refconv."""
    import ast

    here = path.relative_to(ROOT).with_suffix("").parts
    package = here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
            target = (*base, *(node.module.split(".") if node.module else ()))
            if node.module is None:  # from . import x: x is a module, or a name of __init__
                found += [(*target, a.name) for a in node.names
                          if (ROOT.joinpath(*target, a.name + ".py").exists()
                              or ROOT.joinpath(*target, a.name).is_dir())]
            elif target:
                found.append(target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [tuple(n.split(".")[1:]) for n in names
                      if n and n.startswith("refconv.") and len(n.split(".")) > 1]
    return here, found


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_up_the_layers(path):
    here, imported = refconv_imports(path)
    for target in imported:
        if target[:1] == here[:1] and len(here) > 1:
            continue  # inside one package (refconv/fast/...)
        assert layer_of(target) <= layer_of(here), (here, target)
