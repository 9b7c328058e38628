"""Compare a candidate's arrays with a reference's: which tensor, which gate, which time step.

A tensor passes where every element satisfies ``|candidate - reference| <=
atol + rtol * |reference|`` (NumPy's ``allclose`` rule). For every tensor the
report gives the largest absolute error and the largest error relative to the
reference's scale (``max |d| / max |reference|``); for tensors with a time axis
(``outputs``, ``gates/...``, batch-major ``[B, T, ...]``) it gives the same per
time step, and names the first step, and the gate, where the tolerance is
exceeded: the place to start looking.

A PASS means something: comparing nothing fails; a tensor that is not real
numbers (complex, strings, objects, booleans), or of the wrong shape, fails
by name without stopping the other tensors; a golden folder's manifest is
validated (schema, every file's SHA-256, paths inside the folder) and a
damaged one is an error, not a comparison. Only the keys compared are read,
each one's declared size checked against the reference before it is
decompressed.
"""

import fnmatch
import os
from typing import NamedTuple

import numpy as np

from .golden import (CaseFile, GoldenFileNotFoundError, entry_path, load_manifest,
                     regular_file)
from .memory import available_memory as _available_memory  # one reading of MemAvailable
from .vocabulary import GRU_QUANTITIES, LSTM_QUANTITIES

__all__ = ["compare", "Comparison", "TensorError", "KEY_GROUPS"]

# Keys whose second axis is time, so errors are also reported per step.
_TIME_KEYS = ("outputs", "gates/", "d_outputs")


def _computed_rank(name):
    """Where a step computes ``name`` (a case is one cell: LSTM or GRU); None for other names.
    At the first bad step, the quantity computed first is where to look first."""
    for order in (LSTM_QUANTITIES, GRU_QUANTITIES):
        if name in order:
            return order.index(name)
    return None


class TensorError(NamedTuple):
    """Errors of one tensor of one case."""
    case: str
    key: str
    max_abs: float                 # max |candidate - reference|
    max_rel: float                 # max_abs / max |reference|
    passed: bool
    per_step: tuple = ()           # (max_abs, max_rel, passed) per time step, for time tensors
    first_bad_step: int = None     # first time step (or None) where the tolerance is exceeded
    problem: str = None            # why it was not compared (dtype, shape, size): a failure


class Comparison(NamedTuple):
    """The result of :func:`compare`: every tensor's errors, and what is missing."""
    tensors: list
    missing: list                  # (case, key) in the reference but not in the candidate
    rtol: float
    atol: float
    problems: tuple = ()           # (case, message): a candidate case that could not be read

    @property
    def passed(self):
        """Every reference tensor compared and within the tolerance; comparing nothing fails."""
        return (bool(self.tensors) and not self.missing and not self.problems
                and all(t.passed for t in self.tensors))

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
            rank = _computed_rank(leaf) if t.key.split("/")[-2:-1] == ["gates"] else None
            rank = len(LSTM_QUANTITIES) if rank is None else rank
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
                if t.problem is not None:
                    lines.append(f"    {t.key:<30} FAILED: {t.problem}")
                    continue
                lines.append(f"    {t.key:<30} max abs {t.max_abs:9.2e}  max rel {t.max_rel:9.2e}"
                             f"  {'ok' if t.passed else 'FAILED'}"
                             + ("" if t.first_bad_step is None
                                else f"  first bad step t={t.first_bad_step}"))
                if not t.passed and t.per_step:
                    steps = ", ".join(f"t={i}: {a:.1e}" for i, (a, _, _) in enumerate(t.per_step))
                    lines.append(f"        per step max abs: {steps}")
        for case, message in self.problems:
            lines.append(f"{case:<34} FAILED: {message}")
        for case, key in self.missing:
            lines.append(f"{case:<34} {key}: missing from the candidate")
        worst = max((t.max_rel for t in self.tensors), default=0.0)
        nothing = "" if self.tensors else " (nothing was compared)"
        lines.append(f"{len(self.tensors)} tensors in {len(cases)} cases, rtol {self.rtol:g}, "
                     f"atol {self.atol:g}: {'PASSED' if self.passed else 'FAILED'}{nothing}; "
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
        rtol, atol: the tolerance, as ``np.allclose``: finite numbers >= 0.
        keys: compare only these keys (default: every key of the reference,
            reporting those the candidate lacks as missing). Each is a key, a
            glob pattern (``"gates/*"``, ``"final_state/*"``) or a group of
            :data:`KEY_GROUPS` (``"outputs"``, ``"states"``, ``"gates"``: what a
            forward-only framework produces); patterns and groups also match
            under a bidirectional case's ``fw/`` and ``bw/``. A reference key
            asked for and absent from the candidate is missing (a failure); a
            pattern or group that matches no key of the reference is an error.

    Returns:
        :class:`Comparison` (``.passed``, ``.first_failure``, ``str()`` for a
        table). It fails when nothing was compared, when a reference key is
        missing from the candidate, and for a candidate tensor that is not
        real numbers, has the wrong shape or declares far more bytes than the
        reference tensor (each named in the report; the other tensors are
        still compared).

    Raises:
        ValueError, TypeError: bad arguments; a manifest that is not refconv's
            (schema, missing SHA-256, a file outside the folder, not a
            regular file); a file whose SHA-256 differs from its manifest's.
            ``GoldenFileNotFoundError`` (a ``ValueError``) for a path that is
            not there.
        MemoryError: one tensor's comparison needs more memory than is available.

    Example:
        >>> import numpy as np, refconv
        >>> reference = {"outputs": np.linspace(0, 1, 6), "z_f": np.ones(3)}
        >>> result = refconv.compare(reference, {"outputs": np.linspace(0, 1, 6),
        ...                                      "z_f": np.array([1, 1, 0.5])})
        >>> result.passed, result.first_failure.key
        (False, 'z_f')
    """
    rtol, atol = _tolerance("rtol", rtol), _tolerance("atol", atol)
    keys = _keys(keys)
    ref_cases = _cases(reference, "reference")
    cand_cases = _cases(candidate, "candidate",
                        files={name: source.file for name, source in ref_cases.items()})
    tensors, missing, problems = [], [], []
    matched = set()
    for case, ref_source in ref_cases.items():
        with ref_source.open() as ref:
            wanted = ref.keys if keys is None else _wanted(ref.keys, keys, case, matched)
            if case not in cand_cases:
                missing.extend((case, key) for key in wanted)
                continue
            try:
                cand = cand_cases[case].open()
            except GoldenFileNotFoundError:
                missing.extend((case, key) for key in wanted)
                continue
            except ValueError as error:
                if cand_cases[case].sha256 is not None:  # a checksummed file that fails it
                    raise
                problems.append((case, f"candidate: {error}"))
                continue
            with cand:
                for key in wanted:
                    if key not in cand.keys:
                        missing.append((case, key))
                    else:
                        tensors.append(_compare_key(case, key, ref, cand, rtol, atol))
    unmatched = [k for k in keys or () if _is_pattern(k) and k not in matched]
    if unmatched:
        raise ValueError(f"keys: {unmatched[0]!r} matches no key of the reference (groups: "
                         f"{', '.join(KEY_GROUPS)}; or a key or a pattern such as 'gates/*')")
    return Comparison(tensors, missing, rtol, atol, problems)


# What a forward-only framework produces, and the rest, by group (patterns of golden keys).
KEY_GROUPS = {"outputs": ("outputs",), "states": ("final_state/*",), "gates": ("gates/*",),
              "params": ("params/*",), "grads": ("grad/*",),
              "inputs": ("inputs", "sequence_length", "initial_state/*")}


def _is_pattern(key):
    return key in KEY_GROUPS or any(c in key for c in "*?[")


def _wanted(ref_keys, keys, case, matched):
    """The reference keys of one case that ``keys`` asks for, in the reference's order; a
    plain key must be in every case (as before patterns); ``matched`` collects the patterns
    and groups that matched something."""
    wanted = []
    for key in keys:
        if not _is_pattern(key):
            if key not in ref_keys:
                raise ValueError(f"keys: {key!r} is not in the reference's case {case!r}")
            wanted.append(key)
            continue
        patterns = KEY_GROUPS.get(key, (key,))
        for ref_key in ref_keys:
            plain = ref_key.split("/", 1)[1] if ref_key.startswith(("fw/", "bw/")) else ref_key
            if any(fnmatch.fnmatchcase(k, p) for k in (ref_key, plain) for p in patterns):
                matched.add(key)
                wanted.append(ref_key)
    return list(dict.fromkeys(wanted))


def _compare_key(case, key, ref, cand, rtol, atol):
    """One tensor: its headers checked first (dtype, shape, declared size), then its numbers."""
    def refused(problem):
        inf = float("inf")
        return TensorError(case, key, inf, inf, False, problem=problem)

    try:
        ref_shape, ref_dtype = ref.header(key)
    except ValueError as error:
        return refused(f"reference: {error}")
    if not _real(ref_dtype):
        return refused(f"the reference is {ref_dtype}, not real numbers")
    try:
        cand_shape, cand_dtype = cand.header(key)
    except ValueError as error:
        return refused(f"candidate: {error}")
    if not _real(cand_dtype):
        return refused(f"the candidate is {cand_dtype}, not real numbers; expected float or "
                       f"integer values")
    if tuple(cand_shape) != tuple(ref_shape):
        return refused(f"expected shape {list(ref_shape)} (the reference's), got "
                       f"{list(cand_shape)}")
    count = int(np.prod(ref_shape, dtype=np.int64))
    # A real element is at most 16 bytes (longdouble); the header at most a few KB.
    limit = 16 * count + _HEADER_BYTES
    declared = cand.declared_bytes(key)
    if declared is not None and declared > limit:
        return refused(f"the candidate declares {declared} bytes for {count} elements (at most "
                       f"{limit} expected); refused before decompressing it")
    _check_memory(case, key, count)
    try:
        ref_array = ref.read(key)
    except ValueError as error:
        return refused(f"reference: {error}")
    try:
        cand_array = cand.read(key)
    except ValueError as error:
        return refused(f"candidate: {error}")
    return _compare_tensor(case, key, ref_array, cand_array, rtol, atol)


# The room an .npy header may take beyond its data (NumPy pads it to 64 bytes; 10 KB at most).
_HEADER_BYTES = 1 << 16


def _real(dtype):
    """Integers and floats: what can be compared with a float64 reference without losing a part."""
    return dtype.kind in "iuf"


def _check_memory(case, key, count):
    """Refuse a tensor whose comparison would not fit in the memory available now.

    Comparing holds the two arrays, the float64 reference, the difference and
    the mask: about 4 float64 copies and a byte per element.
    """
    needed = count * (4 * 8 + 1)
    available = _available_memory()
    if available is not None and needed > available:
        raise MemoryError(f"{case}: {key}: comparing its {count} elements needs about "
                          f"{needed / 2**30:.1f} GiB, and {available / 2**30:.1f} GiB are "
                          f"available (MemAvailable); compare fewer keys (keys=...) or on a "
                          f"larger machine")


def _compare_tensor(case, key, ref, cand, rtol, atol):
    ref = ref.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN: a failure below, not a warning
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


def _tolerance(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number >= 0, got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return float(value)


def _keys(keys):
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)) or not hasattr(keys, "__iter__"):
        raise TypeError(f"keys: expected a list of key names, got {type(keys).__name__}")
    keys = list(keys)
    bad = [k for k in keys if not isinstance(k, str)]
    if bad:
        raise TypeError(f"keys: expected key names (strings), got {bad[0]!r}")
    return keys


class _Source(NamedTuple):
    """Where one case's arrays come from: an .npz file (``file``, checked against ``sha256``
    when a manifest gives one), or a dict."""
    file: str = None               # the path relative to its folder (or the file itself)
    path: str = None
    sha256: str = None
    arrays: dict = None

    def open(self):
        if self.arrays is not None:
            return _ArrayCase(self.arrays)
        return CaseFile(self.path, self.sha256)


def _cases(source, argument, files=None):
    """``{case name: _Source}`` for a folder, an .npz file or a dict.

    ``files`` (for the candidate) maps the reference's case names to their
    files, so a candidate folder without a manifest is read by the same names.
    """
    if isinstance(source, dict):
        bad = [k for k in source if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{argument}: expected a dict of key name -> array, got the key "
                            f"{bad[0]!r}")
        return {"case": _Source(arrays=source)}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a folder, an .npz file or a dict of arrays, "
                        f"got {type(source).__name__}")
    path = os.fspath(source)
    if not isinstance(path, str) or not path or "\0" in path:
        raise ValueError(f"{argument}: expected a folder or an .npz file, got {path!r}")
    if os.path.isdir(path):
        if os.path.lexists(os.path.join(path, "manifest.json")):
            manifest = load_manifest(path)
            return {name: _Source(entry["file"], os.path.join(path, entry["file"]),
                                  entry["sha256"])
                    for name, entry in manifest["cases"].items()}
        if files is None:
            raise GoldenFileNotFoundError(f"{argument}: {path} has no manifest.json")
        found = {}
        for name, file in files.items():
            relative = file if file is not None else name + ".npz"
            if os.path.lexists(os.path.join(path, relative)):
                found[name] = _Source(relative, entry_path(path, relative,
                                                           f"{argument}: {name}"))
        return found
    if os.path.lexists(path):
        regular_file(path, f"{argument} file")
        name = next(iter(files)) if files and len(files) == 1 else "case"
        return {name: _Source(os.path.basename(path), path)}
    raise GoldenFileNotFoundError(f"{argument}: {path}: no such file or folder")


class _ArrayCase:
    """A dict of arrays, with :class:`refconv.golden.CaseFile`'s interface."""

    def __init__(self, arrays):
        self._arrays = arrays
        self.keys = list(arrays)

    def _array(self, key):
        try:
            return np.asarray(self._arrays[key])
        except Exception as error:  # noqa: BLE001 - whatever the object is, it is not an array
            raise ValueError(f"{key}: not an array ({type(error).__name__}: {error})") from None

    def header(self, key):
        array = self._array(key)
        return array.shape, array.dtype

    def declared_bytes(self, key):
        return None  # already in memory

    def read(self, key):
        return self._array(key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass
