"""refconv.conformance.run, available and describe, without a framework.

:func:`refconv.conformance.run` is held with a fake runtime: an adapter
module put in ``sys.modules`` whose ``conform`` records what it was asked and
returns rows, and packages made present (a module with a spec) or missing
(``None`` in ``sys.modules``, Python's own way of blocking an import). The
environment's CPU header is held against ``/proc/cpuinfo`` read here by a
regular expression (the first processor's block), on Linux. Last, the checker
naming the first failure of a deployment whose error spreads (one gate's bias
off): the candidate is refconv's own run of the wrong weights.
"""

import importlib.machinery
import platform
import re
import sys
import types

import numpy as np
import pytest

import refconv
from refconv import conformance
from refconv.conformance import ATOL, FAILED, OK, RTOL, Candidate, Row, check, reference
from refconv.conformance.environment import CPU_FEATURES
from refconv.vocabulary import LSTM_BLOCKS

ADAPTER = "refconv_test_fake_adapter"


def _present(monkeypatch, name):
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    monkeypatch.setitem(sys.modules, name, module)


def _missing(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def fake(monkeypatch):
    """Two fake runtimes: "fake" (its package present) and "absent" (its package missing);
    the real ones made unavailable. Returns the list of calls to the adapter's conform."""
    calls = []

    def conform(**kwargs):
        calls.append(kwargs)
        kwargs["skipped"].append("fake: a note from the adapter")
        return [Row("fake 1.0", "ex", "-", "float32", kwargs["t_export"], kwargs["t_export"],
                    OK, {"outputs": 0.0}),
                Row("fake 1.0", "ex", "-", "float32", kwargs["t_export"], 99, FAILED,
                    {"outputs": 1.0})]

    adapter = types.ModuleType(ADAPTER)
    adapter.conform = conform
    monkeypatch.setitem(sys.modules, ADAPTER, adapter)
    runtimes = {"fake": (ADAPTER, ("fake_pkg",)),
                "absent": (ADAPTER, ("fake_pkg", "absent_pkg", "absent_pkg2"))}
    monkeypatch.setattr(conformance, "RUNTIMES", runtimes)
    _present(monkeypatch, "fake_pkg")
    _missing(monkeypatch, "absent_pkg")
    _missing(monkeypatch, "absent_pkg2")
    return calls


def test_available_names_exactly_the_missing_packages(fake):
    assert conformance.available("fake") == []
    assert conformance.available("absent") == ["absent_pkg", "absent_pkg2"]
    with pytest.raises(ValueError, match=r"runtime: expected one of \['fake', 'absent'\], "
                                         r"got 'tensorrt'"):
        conformance.available("tensorrt")


def test_run_by_default_runs_the_runtimes_installed_and_names_the_others(fake):
    report = conformance.run(seed=3, t_export=5, t_other=7, reduced=False, exporters=("x",))
    assert len(fake) == 1  # "fake" only: "absent" is not run
    asked = dict(fake[0])
    skipped = asked.pop("skipped")
    assert asked == dict(rtol=RTOL, atol=ATOL, seed=3, t_export=5, t_other=7, reduced=False,
                         exporters=("x",))
    assert skipped == ["absent: needs ['absent_pkg', 'absent_pkg2']",
                       "fake: a note from the adapter"]
    assert report.runs[0]["skipped"] == skipped
    assert report.runs[0]["versions"]["numpy"]
    assert [row.status for row in report.rows] == [OK, FAILED]
    # the float32 row at the export's length passed; the other length is a finding
    assert report.passed and report.verdict() == "PASSED"


def test_run_passes_and_records_the_tolerance_asked_for(fake):
    report = conformance.run(["fake"], rtol=1e-3, atol=2e-4)
    assert (fake[0]["rtol"], fake[0]["atol"]) == (1e-3, 2e-4)
    assert (report.rtol, report.atol) == (1e-3, 2e-4)
    assert "<= 0.0002 + 0.001 |refconv|" in report.table()


def test_run_refuses_a_runtime_not_installed_and_bad_tolerances_before_any_work(fake):
    with pytest.raises(ImportError, match=r"runtimes: 'absent' needs \['absent_pkg', "
                                          r"'absent_pkg2'\], not installed here: pip install"):
        conformance.run(["absent"])
    for rtol, atol in ((-1e-6, 1e-6), (1e-6, -1e-6)):
        with pytest.raises(ValueError, match=r"rtol, atol: expected values >= 0"):
            conformance.run(["fake"], rtol=rtol, atol=atol)
    assert fake == []  # nothing was run


def _first_block():
    """The first processor's block of /proc/cpuinfo, as ``{key: value}``."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system (not Linux): the header is platform's")
    block = text.split("\n\n")[0]
    return {m.group(1).strip(): m.group(2).strip()
            for m in re.finditer(r"^([^:\n]+):[ \t]*(.*)$", block, re.M)}


def test_the_cpu_header_is_the_first_processors_model_and_features():
    block = _first_block()
    cpu = conformance.describe()["cpu"]
    if "model name" in block:
        assert cpu["model"] == block["model name"]
    flags = set((block.get("flags") or block.get("Features") or "").split())
    assert cpu["features"] == [f for f in CPU_FEATURES if f in flags]
    if platform.machine() in ("x86_64", "AMD64"):
        assert "sse4_2" in cpu["features"]  # every x86-64 CPU this decade has it


def test_the_header_names_python_and_the_platform():
    env = conformance.describe()
    assert env["python"] == platform.python_version()
    assert env["platform"] == f"{platform.system()} {platform.machine()}"


# --- the first failure of an error that spreads through the layers and steps --------------

def _stack(seed, shift=0.0, layer_shifted=0, block="z_f"):
    """Two ConvLSTM layers (F = 3, 4) with random non-zero parameters; ``shift`` added to the
    bias of ``block`` (LSTM_BLOCKS: z, z_i, z_f, z_o) in layer ``layer_shifted``."""
    rng = np.random.default_rng(seed)
    cells = [refconv.ConvLSTMCell([5, 4], f, [3, 3], normalize=False, peephole=False,
                                  forget_bias=0.0, data_format="channels_first") for f in (3, 4)]
    for n, (layer, c_in) in enumerate(zip(cells, (2, 3))):
        f = layer.filters
        bias = rng.uniform(-0.5, 0.5, 4 * f)
        if n == layer_shifted:
            b = LSTM_BLOCKS.index(block)
            bias[b * f:(b + 1) * f] += shift
        layer.params = {"kernel": rng.uniform(-0.5, 0.5, (3, 3, c_in + f, 4 * f)), "bias": bias}
    return refconv.MultiRNNCell(cells), rng.standard_normal((2, 6, 2, 5, 4))


@pytest.mark.parametrize("block", LSTM_BLOCKS)
@pytest.mark.parametrize("layer", [0, 1])
def test_a_wrong_bias_is_named_at_its_layer_gate_and_step_0_though_all_after_it_fails(
        layer, block):
    """A deployment whose bias of one gate is off (a forget bias added twice, say): from step
    0 (from step 1 for z_f, which multiplies c = 0 at step 0) the error reaches c, h, the
    next layer's every gate and the outputs. The quantity computed first (the earliest
    step, then the lowest layer, then the gate) is the one named."""
    cell, x = _stack(seed=layer)
    deployed, _ = _stack(seed=layer, shift=0.05, layer_shifted=layer, block=block)
    row = check(cell, x, Candidate(reference(deployed, x)), rtol=RTOL, atol=ATOL,
                runtime="test", exporter="refconv", options="-", dtype="float32", t_export=6)
    assert (row.status, row.first_failure) == (FAILED, f"layer{layer} {block} t=0")
    assert row.errors[block] > 1e-3 and row.errors["h"] > 1e-4 and row.errors["outputs"] > 1e-4
