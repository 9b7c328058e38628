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
"""

import hashlib
import json
import os
import stat
import tempfile
import zipfile

import numpy as np

from . import __version__
from .bptt import bidirectional_dynamic_rnn_grad, dynamic_rnn_grad
from .gru import ConvGRUCell
from .lstm import ConvLSTMCell, LSTMStateTuple
from .rnn import bidirectional_dynamic_rnn, dynamic_rnn
from .vocabulary import GRU_BLOCKS, LSTM_BLOCKS

__all__ = ["golden_cases", "make_case", "write_golden", "load_case", "load_manifest", "CaseFile",
           "GoldenFileNotFoundError"]

MANIFEST = "manifest.json"


def golden_cases():
    """The matrix of configurations: LSTM and GRU, 1-3 D, options on and off, both layouts."""
    kernels = {1: [2], 2: [3, 2], 3: [1, 3, 2]}  # even sizes on purpose
    shapes = {1: [9], 2: [7, 6], 3: [5, 4, 6]}
    cases = []
    for n in (1, 2, 3):
        for data_format in ("channels_last", "channels_first"):
            fmt = "cl" if data_format == "channels_last" else "cf"
            for normalize in (True, False):
                for peephole in (True, False):
                    cases.append(dict(
                        name=f"lstm_{n}d_{fmt}_{'ln' if normalize else 'noln'}_"
                             f"{'peep' if peephole else 'nopeep'}",
                        cell="lstm", shape=shapes[n], filters=3, kernel=kernels[n],
                        normalize=normalize, peephole=peephole, forget_bias=1.0,
                        data_format=data_format, bidirectional=False))
                cases.append(dict(
                    name=f"gru_{n}d_{fmt}_{'ln' if normalize else 'noln'}",
                    cell="gru", shape=shapes[n], filters=3, kernel=kernels[n],
                    normalize=normalize, data_format=data_format, bidirectional=False))
    for n in (1, 3):
        for cell in ("lstm", "gru"):
            case = dict(name=f"{cell}_{n}d_cl_bidirectional", cell=cell, shape=shapes[n],
                        filters=2, kernel=[3] * n, normalize=True,
                        data_format="channels_last", bidirectional=True)
            if cell == "lstm":
                case.update(peephole=True, forget_bias=1.0)
            cases.append(case)
    for i, case in enumerate(cases):
        case.update(seed=i, batch=3, timesteps=4, in_channels=2, dtype="float64",
                    sequence_length=[4, 0, 2] if i % 2 else [4, 4, 1])
    return cases


def _cell(case, which=""):
    options = dict(shape=case["shape"], filters=case["filters"], kernel=case["kernel"],
                   normalize=case["normalize"], data_format=case["data_format"])
    if case["cell"] == "lstm":
        cell = ConvLSTMCell(forget_bias=case["forget_bias"], peephole=case["peephole"], **options)
    else:
        cell = ConvGRUCell(**options)
    seed = case["seed"] * 2 + (which == "bw")
    cell.build(case["in_channels"], seed=seed)
    # Off their initial values (ones, zeros): a framework that ignores a bias must fail.
    rng = np.random.default_rng(10_000 + seed)
    for name, value in cell.params.items():
        cell.params[name] = value + 0.2 * rng.standard_normal(value.shape)
    return cell


def _state(cell, batch, rng):
    size = (batch, *cell.output_size)
    if isinstance(cell, ConvLSTMCell):
        return LSTMStateTuple(rng.standard_normal(size), rng.standard_normal(size))
    return rng.standard_normal(size)


def _flat_state(prefix, state):
    if isinstance(state, LSTMStateTuple):
        return {f"{prefix}/c": state.c, f"{prefix}/h": state.h}
    return {f"{prefix}/h": state}


def make_case(case):
    """Compute one case's arrays (a dict key -> array, the keys of the module docstring)."""
    rng = np.random.default_rng(case["seed"])
    cell = _cell(case)
    channels = case["in_channels"]
    frame = ((*case["shape"], channels) if case["data_format"] == "channels_last"
             else (channels, *case["shape"]))
    batch, steps = case["batch"], case["timesteps"]
    inputs = rng.standard_normal((batch, steps, *frame))
    # ``sequence_length: None`` runs without lengths (every row full length), the path a
    # full-length ConvLSTM's gradients take by default (refconv.fast.lstm_grad); the file still
    # holds the lengths, all T, for a framework that wants them.
    lengths = (None if case["sequence_length"] is None
               else np.asarray(case["sequence_length"], dtype=np.int64))
    out = {"inputs": inputs,
           "sequence_length": np.full(batch, steps, np.int64) if lengths is None else lengths}
    out_shape = (batch, steps, *cell.output_size)
    if not case["bidirectional"]:
        state0 = _state(cell, batch, rng)
        d_outputs = rng.standard_normal(out_shape)
        d_state = _state(cell, batch, rng)
        outputs, final, gates = dynamic_rnn(cell, inputs, lengths, state0, return_gates=True)
        grads = dynamic_rnn_grad(cell, inputs, d_outputs, d_state, sequence_length=lengths,
                                 initial_state=state0)
        out.update(_direction("", cell, state0, outputs, final, gates, d_outputs, d_state,
                              grads.initial_state, grads.params))
        out["grad/inputs"] = grads.inputs
        return out
    cell_bw = _cell(case, "bw")
    states0 = (_state(cell, batch, rng), _state(cell_bw, batch, rng))
    d_outputs = (rng.standard_normal(out_shape), rng.standard_normal(out_shape))
    d_states = (_state(cell, batch, rng), _state(cell_bw, batch, rng))
    outputs, finals, gates = bidirectional_dynamic_rnn(
        cell, cell_bw, inputs, lengths, *states0, return_gates=True)
    grads = bidirectional_dynamic_rnn_grad(cell, cell_bw, inputs, d_outputs, d_states,
                                           sequence_length=lengths,
                                           initial_state_fw=states0[0],
                                           initial_state_bw=states0[1])
    for i, (prefix, c) in enumerate((("fw/", cell), ("bw/", cell_bw))):
        out.update(_direction(prefix, c, states0[i], outputs[i], finals[i], gates[i],
                              d_outputs[i], d_states[i],
                              (grads.initial_state_fw, grads.initial_state_bw)[i],
                              (grads.params_fw, grads.params_bw)[i]))
    out["grad/inputs"] = grads.inputs
    return out


def _direction(prefix, cell, state0, outputs, final, gates, d_outputs, d_state, d_state0,
               d_params):
    out = {}
    out.update(_flat_state(prefix + "initial_state", state0))
    out.update({f"{prefix}params/{k}": v for k, v in cell.params.items()})
    out[prefix + "outputs"] = outputs
    out.update(_flat_state(prefix + "final_state", final))
    out.update({f"{prefix}gates/{k}": gates[k] for k in _gate_file_order(gates)})
    out[prefix + "d_outputs"] = d_outputs
    out.update(_flat_state(prefix + "d_state", d_state))
    out.update(_flat_state(prefix + "grad/initial_state", d_state0))
    out.update({f"{prefix}grad/params/{k}": v for k, v in d_params.items()})
    return out


def _gate_file_order(gates):
    """The gates in the order a case's file holds them: the kernel's blocks, then the rest.

    The members' order is part of a file's bytes, and so of the manifest's SHA-256s:
    it stays what it has always been (LSTM z, z_i, z_f, z_o, c, h), whatever order
    ``return_gates`` uses (the computed one, c before z_o).
    """
    blocks = LSTM_BLOCKS if "z" in gates else GRU_BLOCKS
    return [*blocks, *(name for name in gates if name not in blocks)]


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


class GoldenFileNotFoundError(FileNotFoundError, ValueError):
    """A golden file or folder that is not there: a ``FileNotFoundError``, and a
    ``ValueError`` like every other bad argument to :func:`load_case` and ``compare``."""


# A refconv manifest of 40 cases is about 100 KB; anything this large is not one.
_MAX_MANIFEST_BYTES = 64 << 20


def load_manifest(directory, check_files=True):
    """Read and validate ``manifest.json`` of a golden folder.

    The schema: a JSON object with ``refconv_version`` (a string) and
    ``cases``, an object mapping each case's name to an object with ``file``
    (a path relative to the folder, without ``..``) and ``sha256`` (64 hex
    digits). With ``check_files``, every file must also be a regular file
    inside the folder (a symlink may not lead out of it).

    Raises:
        GoldenFileNotFoundError: no ``manifest.json``.
        ValueError: anything else, one line naming the field, what was expected and what came.
    """
    path = os.path.join(os.fspath(directory), MANIFEST)
    regular_file(path, "manifest", limit=_MAX_MANIFEST_BYTES,
                  missing=f"{directory}: no {MANIFEST}; expected a folder written by "
                          f"'refconv golden'")
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read(_MAX_MANIFEST_BYTES + 1))
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nested too deep
        raise ValueError(f"{path}: not JSON ({' '.join(str(error).split())})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror or error})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object, got {_json_type(manifest)}")
    for field in ("refconv_version", "cases"):
        if field not in manifest:
            raise ValueError(f"{path}: no {field!r}; not a refconv manifest")
    if not isinstance(manifest["refconv_version"], str):
        raise ValueError(f"{path}: refconv_version: expected a string, got "
                         f"{_json_type(manifest['refconv_version'])}")
    cases = manifest["cases"]
    if not isinstance(cases, dict):
        raise ValueError(f"{path}: cases: expected an object (case name -> entry), got "
                         f"{_json_type(cases)}")
    files = {}
    for name, entry in cases.items():
        where = f"{path}: cases[{name!r}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object with 'file' and 'sha256', got "
                             f"{_json_type(entry)}")
        for field in ("file", "sha256"):
            if field not in entry:
                raise ValueError(f"{where}: no {field!r}; every case needs its file and its "
                                 f"SHA-256 (refconv golden writes both)")
        sha256 = entry["sha256"]
        if (not isinstance(sha256, str) or len(sha256) != 64
                or any(c not in "0123456789abcdefABCDEF" for c in sha256)):
            raise ValueError(f"{where}.sha256: expected 64 hex digits, got {_short(sha256)}")
        relative = entry["file"]
        _relative_path(relative, f"{where}.file")
        if relative in files:
            raise ValueError(f"{where}.file: {relative!r} is also case {files[relative]!r}'s file")
        files[relative] = name
        if check_files:
            entry_path(directory, relative, f"{where}.file")
    return manifest


def entry_path(directory, relative, what):
    """``directory/relative``, checked: relative, inside the folder (symlinks resolved), and
    a regular file."""
    _relative_path(relative, what)
    base = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, target]) != base:
        raise ValueError(f"{what}: {relative!r} leads outside {directory} (to {target}); "
                         f"a golden folder's files stay inside it")
    path = os.path.join(os.fspath(directory), relative)
    regular_file(path, "golden file", missing=f"{what}: {path}: no such golden file")
    return path


def _relative_path(relative, what):
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"{what}: expected a file name relative to the folder, got "
                         f"{_short(relative)}")
    parts = relative.replace("\\", "/").split("/")
    if (os.path.isabs(relative) or relative.startswith(("/", "\\")) or ".." in parts
            or "\0" in relative or ":" in parts[0]):
        raise ValueError(f"{what}: expected a path relative to the folder, without '..', "
                         f"got {relative!r}")


def _json_type(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value),
                                                                        type(value).__name__)


def _short(value):
    text = repr(value) if isinstance(value, str) else _json_type(value)
    return text if len(text) <= 80 else text[:77] + "..."


def regular_file(path, what, limit=None, missing=None):
    """``os.stat(path)``, refusing what is not a regular, non-empty file (or is over ``limit``).

    A FIFO would block the reader, a device or ``/proc`` file never end: each
    is refused before it is opened. (``/proc`` files report size 0.)
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise GoldenFileNotFoundError(missing or f"{path}: no such {what}") from None
    except (OSError, ValueError) as error:  # a loop of symlinks, no permission, a NUL byte
        raise ValueError(f"{path}: cannot read the {what} "
                         f"({getattr(error, 'strerror', None) or error})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ValueError(f"{path}: expected the {what} to be a regular file, got {kind}")
    if info.st_size == 0:
        raise ValueError(f"{path}: the {what} is empty (0 bytes)")
    if limit is not None and info.st_size > limit:
        raise ValueError(f"{path}: the {what} is {info.st_size} bytes, more than the "
                         f"{limit} a {what} can be")
    return info


class CaseFile:
    """One case's ``.npz``, opened once and read one key at a time, never unpickling.

    Opening checks the SHA-256 (when given) over the bytes the file had when it
    was opened, and reads nothing else: :meth:`header` reads a key's ``.npy``
    header (shape, dtype) and its declared size from the zip directory, so a
    caller can refuse a tensor before decompressing it; :meth:`read` loads it.
    Use as a context manager.
    """

    def __init__(self, path, sha256=None):
        path = os.fspath(path)
        size = regular_file(path, "golden file",
                             missing=f"{path}: no such golden file").st_size
        self.path = path
        self._file = open(path, "rb")
        try:
            if sha256 is not None:
                actual = _sha256(self._file, size)
                if actual != sha256.lower():
                    raise ValueError(f"{path}: SHA-256 {actual} differs from the manifest's "
                                     f"{sha256}; the file was altered or truncated")
                self._file.seek(0)
            try:
                self._zip = zipfile.ZipFile(self._file)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError,
                    EOFError) as error:
                raise ValueError(f"{path}: not a readable .npz file ({error})") from None
            self._members = {(name[:-4] if name.endswith(".npy") else name): info
                             for name, info in ((i.filename, i) for i in self._zip.infolist())}
        except BaseException:
            self._file.close()
            raise

    @property
    def keys(self):
        """The keys, in the file's order."""
        return list(self._members)

    def declared_bytes(self, key):
        """The uncompressed size the zip directory declares for ``key`` (before reading it)."""
        return self._members[key].file_size

    def header(self, key):
        """``(shape, dtype)`` from ``key``'s ``.npy`` header, reading nothing else."""
        with self._open(key) as member:
            shape, _, dtype = self._read_header(member)
        return shape, dtype

    def read(self, key):
        """The array of ``key`` (``ValueError`` if it is pickled, truncated or not an array)."""
        with self._open(key) as member:
            try:
                return np.lib.format.read_array(member, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                raise ValueError(f"{self.path}: not a readable .npz file ({key}: "
                                 f"{' '.join(str(error).split())})") from None

    def _open(self, key):
        if key not in self._members:
            raise ValueError(f"{self.path}: no key {key!r}")
        try:
            return self._zip.open(self._members[key])
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError,
                RuntimeError) as error:  # RuntimeError: an encrypted member
            raise ValueError(f"{self.path}: {key}: not a readable member ({error})") from None

    def _read_header(self, member):
        try:
            version = np.lib.format.read_magic(member)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            return read(member)
        except (ValueError, OSError, EOFError, SyntaxError, zipfile.BadZipFile) as error:
            raise ValueError(f"{self.path}: not a readable .npy header "
                             f"({' '.join(str(error).split())})") from None

    def close(self):
        self._zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_case(path, sha256=None):
    """Load one case's arrays (dict key -> array), never unpickling.

    Args:
        path: the ``.npz`` file (a regular file: a FIFO, device or ``/proc`` file is refused).
        sha256: the expected hex digest (from the manifest); a mismatch is an error.

    Raises:
        GoldenFileNotFoundError: no such file.
        ValueError: not a regular file, a checksum mismatch, not a readable ``.npz``.
    """
    with CaseFile(path, sha256) as case:
        return {key: case.read(key) for key in case.keys}


def _sha256(f, size):
    """The hex SHA-256 of the open file ``f``'s first ``size`` bytes (the size stat reported).

    Reading stops at ``size``: a file that turns out longer is refused rather than read forever.
    """
    digest = hashlib.sha256()
    left = size
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    if left or f.read(1):
        raise ValueError(f"{f.name}: changed size while its SHA-256 was computed "
                         f"(stat said {size} bytes)")
    return digest.hexdigest()


def _sha256_of(path):
    with open(path, "rb") as f:
        return _sha256(f, os.fstat(f.fileno()).st_size)


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
