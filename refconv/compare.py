"""Compare a candidate's arrays with a reference's: which tensor, which gate, which time step.

A tensor passes where every element satisfies ``|candidate - reference| <=
atol + rtol * |reference|`` (NumPy's ``allclose`` rule). For every tensor the
report gives the largest absolute error and the largest error relative to the
reference's scale (``max |d| / max |reference|``); for tensors with a time axis
(``outputs``, ``gates/...``, batch-major ``[B, T, ...]``) it gives the same per
time step, and names the first step, and the gate, where the tolerance is
exceeded: the place to start looking.
"""

import os
from typing import NamedTuple

import numpy as np

from .golden import load_case, load_manifest

__all__ = ["compare", "Comparison", "TensorError"]

# Keys whose second axis is time, so errors are also reported per step.
_TIME_KEYS = ("outputs", "gates/", "d_outputs")
# At the first bad step, the gate computed first is where to look first.
_ORDER = ["z", "z_i", "z_f", "z_o", "c", "r", "u", "candidate", "h"]


class TensorError(NamedTuple):
    """Errors of one tensor of one case."""
    case: str
    key: str
    max_abs: float                 # max |candidate - reference|
    max_rel: float                 # max_abs / max |reference|
    passed: bool
    per_step: tuple = ()           # (max_abs, max_rel, passed) per time step, for time tensors
    first_bad_step: int = None     # first time step (or None) where the tolerance is exceeded


class Comparison(NamedTuple):
    """The result of :func:`compare`: every tensor's errors, and what is missing."""
    tensors: list
    missing: list                  # (case, key) in the reference but not in the candidate
    rtol: float
    atol: float

    @property
    def passed(self):
        """True when no tensor is missing and every tensor is within the tolerance."""
        return not self.missing and all(t.passed for t in self.tensors)

    @property
    def first_failure(self):
        """The failing tensor whose first bad time step is earliest (gates before outputs)."""
        failed = [t for t in self.tensors if not t.passed]
        if not failed:
            return None
        cases = list(dict.fromkeys(t.case for t in self.tensors))

        def order(t):
            step = t.first_bad_step if t.first_bad_step is not None else float("inf")
            leaf = t.key.split("/")[-1]
            # A gate refconv does not name (a framework's own, say) ranks after refconv's.
            gate = t.key.split("/")[-2:-1] == ["gates"] and leaf in _ORDER
            rank = _ORDER.index(leaf) if gate else len(_ORDER)
            return cases.index(t.case), step, rank
        return min(failed, key=order)

    def __str__(self):
        return self.report(verbose=False)

    def report(self, verbose=False):
        """A table for a terminal: one line per case, and every failing tensor in detail
        (with ``verbose``, every tensor)."""
        lines = []
        cases = list(dict.fromkeys(t.case for t in self.tensors))
        for case in cases:
            mine = [t for t in self.tensors if t.case == case]
            bad = [t for t in mine if not t.passed]
            worst = max(t.max_rel for t in mine)
            lines.append(f"{case:<34} {len(mine):4d} tensors  worst rel {worst:9.2e}  "
                         f"{'ok' if not bad else f'{len(bad)} FAILED'}")
            for t in (mine if verbose else bad):
                lines.append(f"    {t.key:<30} max abs {t.max_abs:9.2e}  max rel {t.max_rel:9.2e}"
                             f"  {'ok' if t.passed else 'FAILED'}"
                             + ("" if t.first_bad_step is None
                                else f"  first bad step t={t.first_bad_step}"))
                if not t.passed and t.per_step:
                    steps = ", ".join(f"t={i}: {a:.1e}" for i, (a, _, _) in enumerate(t.per_step))
                    lines.append(f"        per step max abs: {steps}")
        for case, key in self.missing:
            lines.append(f"{case:<34} {key}: missing from the candidate")
        worst = max((t.max_rel for t in self.tensors), default=0.0)
        lines.append(f"{len(self.tensors)} tensors in {len(cases)} cases, rtol {self.rtol:g}, "
                     f"atol {self.atol:g}: {'PASSED' if self.passed else 'FAILED'}; "
                     f"worst relative error {worst:.2e}")
        first = self.first_failure
        if first is not None:
            where = "" if first.first_bad_step is None else f" at time step {first.first_bad_step}"
            lines.append(f"first failure: {first.case}: {first.key}{where}")
        return "\n".join(lines)


def compare(reference, candidate, rtol=1e-10, atol=1e-12, keys=None):
    """Compare ``candidate`` with ``reference``.

    Args:
        reference, candidate: a folder written by ``refconv golden`` (with
            ``manifest.json``; cases matched by name), one ``.npz`` file, or a
            dict key -> array. A candidate folder needs no manifest: its files
            are matched by the reference's file names.
        rtol, atol: the tolerance, as ``np.allclose``.
        keys: compare only these keys (default: every key of the reference
            that the candidate has, and report the others as missing).

    Returns:
        :class:`Comparison` (``.passed``, ``.first_failure``, ``str()`` for a table).
    """
    ref_cases = _cases(reference, "reference")
    cand_cases = _cases(candidate, "candidate", names=ref_cases)
    tensors, missing = [], []
    for case, load_reference in ref_cases.items():
        ref = load_reference()
        cand = cand_cases[case]() if case in cand_cases else None
        wanted = sorted(ref) if keys is None else list(keys)
        for key in wanted:
            if key not in ref:
                raise KeyError(f"keys: {key!r} is not in the reference's case {case!r}")
            if cand is None or key not in cand:
                missing.append((case, key))
                continue
            tensors.append(_compare_tensor(case, key, np.asarray(ref[key]),
                                           np.asarray(cand[key]), rtol, atol))
    return Comparison(tensors, missing, rtol, atol)


def _compare_tensor(case, key, ref, cand, rtol, atol):
    if ref.shape != cand.shape:
        raise ValueError(f"{case}: {key}: expected shape {list(ref.shape)} (the reference's), "
                         f"got {list(cand.shape)}")
    ref = ref.astype(np.float64)
    diff = np.abs(cand.astype(np.float64) - ref)
    bad = ~(diff <= atol + rtol * np.abs(ref))  # NaN in the candidate fails too
    scale = float(np.abs(ref).max(initial=0.0))
    max_abs = float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))
    max_rel = max_abs / scale if scale else max_abs
    per_step, first = (), None
    leaf = key.split("/", 1)[-1] if key.startswith(("fw/", "bw/")) else key
    if leaf.startswith(_TIME_KEYS) and ref.ndim >= 2:
        per_step = []
        for t in range(ref.shape[1]):
            step_abs = float(np.nan_to_num(diff[:, t], nan=np.inf).max(initial=0.0))
            step_scale = float(np.abs(ref[:, t]).max(initial=0.0))
            step_ok = not bad[:, t].any()
            per_step.append((step_abs, step_abs / step_scale if step_scale else step_abs, step_ok))
            if first is None and not step_ok:
                first = t
        per_step = tuple(per_step)
    return TensorError(case, key, max_abs, max_rel, not bad.any(), per_step, first)


def _cases(source, argument, names=None):
    """``{case name: loader}`` for a folder, an .npz file or a dict; a loader returns the arrays."""
    if isinstance(source, dict):
        return {"case": lambda: source}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a folder, an .npz file or a dict of arrays, "
                        f"got {type(source).__name__}")
    source = os.fspath(source)
    if os.path.isdir(source):
        if os.path.isfile(os.path.join(source, "manifest.json")):
            manifest = load_manifest(source)
            return {name: _loader(os.path.join(source, entry["file"]), entry.get("sha256"))
                    for name, entry in manifest["cases"].items()}
        if names is None:
            raise FileNotFoundError(f"{argument}: {source} has no manifest.json")
        return {name: _loader(os.path.join(source, name + ".npz"), None) for name in names
                if os.path.isfile(os.path.join(source, name + ".npz"))}
    if os.path.isfile(source):
        name = next(iter(names)) if names and len(names) == 1 else "case"
        return {name: _loader(source, None)}
    raise FileNotFoundError(f"{argument}: {source}: no such file or folder")


def _loader(path, sha256):
    return lambda: load_case(path, sha256)
