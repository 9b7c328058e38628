"""Golden vectors: refconv's answers, written to ``.npz`` files any language can read.

``write_golden(out_dir)`` writes one ``<case>.npz`` per configuration and a
``manifest.json`` (each case's configuration, refconv's version, the dtype and
the SHA-256 of every file). A case's arrays, by key (batch-major, float64)::

    inputs                  [B, T, *frame]
    sequence_length         [B] (int64)
    initial_state/c, /h     (LSTM) or initial_state/h (GRU)
    params/<name>           every entry of cell.params (SPEC's names)
    outputs                 [B, T, *S]
    final_state/c, /h       or final_state/h
    gates/<name>            [B, T, *S]: z, z_i, z_f, z_o, c, h or r, u, candidate, h
    d_outputs, d_state/...  the fixed upstream gradients
    grad/inputs, grad/initial_state/..., grad/params/<name>

A bidirectional case has the same keys under ``fw/`` and ``bw/`` for
everything that belongs to a direction (``inputs``, ``sequence_length`` and
``grad/inputs`` stay at the top level). Writes are atomic (a temporary file,
then a rename), so an interrupted run never leaves a half-written case, and
:func:`write_golden` checks its folder before computing anything and never
overwrites files that are not its own.

Reading trusts nothing in the folder: :func:`load_manifest` validates the
manifest's schema (every case with its file and SHA-256; files inside the
folder, regular, no symlink out), :class:`CaseFile` checks the SHA-256 and
reads one key at a time, its header first, and nothing is ever unpickled.


The package keeps one subject per module: :mod:`~refconv.golden.cases` (the
case matrix and each case's arrays), :mod:`~refconv.golden.write` (writing a
folder) and :mod:`~refconv.golden.read` (reading and validating one).
"""

from .cases import golden_cases, make_case
from .read import (MANIFEST, CaseFile, GoldenFileNotFoundError, entry_path, load_case,
                   load_manifest, regular_file)
from .write import writable_folder, write_golden

__all__ = ["golden_cases", "make_case", "write_golden", "load_case", "load_manifest", "CaseFile",
           "GoldenFileNotFoundError", "writable_folder", "entry_path", "regular_file", "MANIFEST"]
