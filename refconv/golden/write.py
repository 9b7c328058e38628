"""Writing a golden folder: each case's ``.npz`` and ``manifest.json``, atomically.

:func:`write_golden` checks its folder before computing anything
(:func:`writable_folder`) and never overwrites files that are not its own;
each file is written to a temporary name and renamed, so an interrupted run
never leaves a half-written case.
"""

import json
import os
import tempfile

import numpy as np

from .. import __version__
from .cases import golden_cases, make_case
from .read import MANIFEST, _sha256_of, load_manifest

__all__ = ["write_golden", "writable_folder"]


def write_golden(out_dir, cases=None, force=False):
    """Write every case's ``.npz`` and ``manifest.json`` into ``out_dir``; return the manifest.

    The destination is checked before anything is computed: ``out_dir`` must be
    a folder this process can write (made if missing). A folder that already
    holds a ``manifest.json`` that is not refconv's, or a file this call would
    overwrite that refconv's manifest there does not list, is refused unless
    ``force``. Files are written mode 0644, each atomically.

    Example:
        >>> import os, tempfile, refconv
        >>> folder = tempfile.mkdtemp()
        >>> manifest = refconv.write_golden(folder)           # every case of the matrix
        >>> "lstm_2d_cl_ln_peep" in manifest["cases"], os.path.isfile(f"{folder}/manifest.json")
        (True, True)
        >>> refconv.compare(folder, folder).passed
        True
        >>> import shutil; shutil.rmtree(folder)
    """
    cases = golden_cases() if cases is None else cases
    names = _case_names(cases)
    writable_folder(out_dir, "out_dir")
    _refuse_overwriting(os.fspath(out_dir), [name + ".npz" for name in names], force)
    manifest = {"refconv_version": __version__, "dtype": "float64",
                "layout": "batch-major: inputs [B, T, *frame], outputs and gates [B, T, *S]",
                "cases": {}}
    for case in cases:
        arrays = make_case(case)
        filename = case["name"] + ".npz"
        _atomic_write(os.path.join(out_dir, filename), lambda f: np.savez(f, **arrays))
        manifest["cases"][case["name"]] = {
            "file": filename, "sha256": _sha256_of(os.path.join(out_dir, filename)),
            "config": case, "keys": sorted(arrays)}
    text = json.dumps(manifest, indent=1, sort_keys=True)
    _atomic_write(os.path.join(out_dir, MANIFEST), lambda f: f.write(text.encode()))
    return manifest


def _case_names(cases):
    """The cases' names, each a plain file name (it becomes ``<name>.npz`` in the folder)."""
    if not isinstance(cases, (list, tuple)):
        raise TypeError(f"cases: expected a list of case dicts (see golden_cases()), "
                        f"got {type(cases).__name__}")
    names = []
    for i, case in enumerate(cases):
        name = case.get("name") if isinstance(case, dict) else None
        if (not isinstance(name, str) or not name or name in (".", "..")
                or any(c in name for c in "/\\\0")):
            raise ValueError(f"cases[{i}]: expected a dict whose 'name' is a plain file name, "
                             f"got {name if isinstance(case, dict) else case!r}")
        if name in names:
            raise ValueError(f"cases[{i}]: name {name!r} appears twice")
        names.append(name)
    return names


def writable_folder(path, argument):
    """Make ``path`` a folder (if missing) and check that a file can be written into it.

    Raises ``ValueError`` naming ``argument`` (``TypeError`` for a non-path),
    so that a command fails before it computes anything.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a folder path, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str) or not path or "\0" in path:
        raise ValueError(f"{argument}: expected a folder path, got {path!r}")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{argument}: {path} is a file; expected a folder to write into")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".tmp-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"{argument}: cannot write into {path} ({error.strerror or error})") \
            from None


def _refuse_overwriting(out_dir, filenames, force):
    """Refuse (unless ``force``) a foreign manifest, or files refconv's manifest does not list."""
    if force:
        return
    ours = set()
    if os.path.lexists(os.path.join(out_dir, MANIFEST)):
        try:
            manifest = load_manifest(out_dir, check_files=False)
        except ValueError as error:
            raise ValueError(f"out_dir: {out_dir} holds a manifest.json that is not refconv's "
                             f"({error}); refusing to overwrite it: choose another folder, or "
                             f"force=True (refconv golden --force)") from None
        ours = {MANIFEST} | {entry["file"] for entry in manifest["cases"].values()}
    clashes = sorted(name for name in filenames
                     if name not in ours and os.path.lexists(os.path.join(out_dir, name)))
    if clashes:
        shown = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5
                                          else "")
        raise ValueError(f"out_dir: {out_dir} already holds {shown}, not written by refconv "
                         f"golden there; refusing to overwrite: choose another folder, or "
                         f"force=True (refconv golden --force)")


def _atomic_write(path, write):
    """Write through ``write(file)`` into a temporary file beside ``path``, then rename it.

    The file is made mode 0644 (``mkstemp`` makes it 0600): golden vectors are
    meant to be read by others, a CI job or a colleague's framework.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
