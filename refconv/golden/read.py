"""Reading a golden folder, trusting nothing in it.

:func:`load_manifest` validates the manifest's schema (every case with its
file and SHA-256; files inside the folder, regular, no symlink out);
:class:`CaseFile` checks a file's SHA-256 and reads one key at a time, its
header first; nothing is ever unpickled.
"""

import hashlib
import json
import os
import stat
import zipfile

import numpy as np

__all__ = ["load_manifest", "load_case", "CaseFile", "GoldenFileNotFoundError", "entry_path",
           "regular_file", "MANIFEST"]

MANIFEST = "manifest.json"


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
