"""The student version of a notebook, with nbformat alone: what ``nbgrader generate_assignment`` makes.

:func:`student_notebook` gives, cell for cell, what nbgrader's preprocessors
(LockCells, ClearSolutions, ClearOutput, ComputeChecksums, ClearHiddenTests,
ClearMarkScheme) make of an instructor notebook (``tests/test_course.py`` checks
it against nbgrader itself), after dropping what only a teacher or a
maintainer should read: cells tagged ``instructor-only`` and the line that says
the notebook is generated from ``notebooks/src/`` ("edit the source"). It needs
no nbgrader, so ``refconv notebooks`` and the documentation site can use it with
the ``notebooks`` extra alone.
"""

import copy
import hashlib
import re

__all__ = ["student_notebook", "INSTRUCTOR_ONLY", "CODE_STUB", "TEXT_STUB"]

INSTRUCTOR_ONLY = "instructor-only"     # a cell tag: the cell is left out of the student version
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
# notebooks/run.py's first line: for maintainers ("edit the source"), not for students
GENERATED_LINE = re.compile(r"^\*?This notebook is generated from .*$")


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_grade(cell):
    return bool(_meta(cell).get("grade", False))


def _is_solution(cell):
    return bool(_meta(cell).get("solution", False))


def _is_locked(cell):
    if "nbgrader" not in cell.get("metadata", {}) or _is_solution(cell):
        return False
    return _is_grade(cell) or bool(_meta(cell).get("locked", False))


def _checksum(cell):
    """nbgrader's ``compute_checksum``: md5 of the source, the type, the flags, the id, the points."""
    m = hashlib.md5()
    m.update(cell["source"].encode("utf-8"))
    m.update(cell["cell_type"].encode("utf-8"))
    m.update(str(_meta(cell).get("grade", False)).encode("utf-8"))
    m.update(str(_meta(cell).get("solution", False)).encode("utf-8"))
    m.update(str(_is_locked(cell)).encode("utf-8"))
    m.update(_meta(cell)["grade_id"].encode("utf-8"))
    if _is_grade(cell):
        m.update(str(float(_meta(cell)["points"])).encode("utf-8"))
    return m.hexdigest()


def _cut(source, begin, end, stub_lines=None):
    """Drop (or replace by the indented stub) each region between ``begin`` and ``end`` lines."""
    lines, kept, inside, found = source.split("\n"), [], False, False
    for line in lines:
        if begin in line:
            if inside:
                raise ValueError(f"nested {begin!r} regions")
            inside = found = True
            if stub_lines is not None:
                indent = re.match(r"\s*", line).group(0)
                kept.extend(indent + stub for stub in stub_lines)
        elif end in line:
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"a {begin!r} region without its {end!r}")
    return "\n".join(kept), found


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _set_checksums(cell):
    if _is_grade(cell) or _is_solution(cell) or _is_locked(cell):
        cell["metadata"]["nbgrader"]["checksum"] = _checksum(cell)
        cell["metadata"]["nbgrader"]["cell_type"] = cell["cell_type"]


def student_notebook(nb):
    """The student version of ``nb`` (an nbformat notebook or dict), a new notebook.

    Solution regions become ``raise NotImplementedError()`` stubs (a whole
    solution cell too) and written answers "YOUR ANSWER HERE"; hidden tests and
    mark schemes go; every output and execution count is cleared; graded and
    read-only cells are locked; each graded, solution and locked cell's
    checksum is recorded. Cells tagged ``instructor-only`` and the maintainer's
    "generated from notebooks/src/..., edit the source" lines are left out.
    """
    import nbformat
    nb = nbformat.from_dict(copy.deepcopy(dict(nb)))
    cells = []
    for cell in nb.cells:
        if INSTRUCTOR_ONLY in cell.get("metadata", {}).get("tags", []):
            continue
        cell["source"] = _source(cell)
        if cell["cell_type"] == "markdown" and GENERATED_LINE.search(cell["source"]):
            kept = [line for line in cell["source"].split("\n") if not GENERATED_LINE.match(line)]
            cell["source"] = "\n".join(kept).strip("\n")
            if not cell["source"].strip():
                continue
        cells.append(cell)
    nb.cells = cells
    for cell in nb.cells:                       # LockCells
        if _is_solution(cell):
            cell["metadata"]["deletable"] = False
        elif _is_grade(cell) or _is_locked(cell):
            cell["metadata"]["deletable"] = False
            cell["metadata"]["editable"] = False
    for cell in nb.cells:                       # ClearSolutions
        code = cell["cell_type"] == "code"
        stub = (CODE_STUB if code else TEXT_STUB).split("\n")
        source, replaced = _cut(cell["source"], "BEGIN SOLUTION", "END SOLUTION", stub)
        if replaced and not _is_solution(cell):
            raise ValueError(f"a solution region in a cell not marked as a solution: "
                             f"{cell['source'][:80]!r}")
        cell["source"] = source if replaced or not _is_solution(cell) else "\n".join(stub)
    nb.metadata.pop("celltoolbar", None)
    for cell in nb.cells:                       # ClearOutput
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            for field in ("collapsed", "scrolled"):
                cell["metadata"].pop(field, None)
    for cell in nb.cells:                       # ComputeChecksums
        _set_checksums(cell)
    for cell in nb.cells:                       # ClearHiddenTests, ClearMarkScheme
        cell["source"], removed = _cut(cell["source"], "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        if removed and not _is_grade(cell):
            raise ValueError("a hidden test region in a cell not marked as graded")
        cell["source"], _ = _cut(cell["source"], "BEGIN MARK SCHEME", "END MARK SCHEME")
    for cell in nb.cells:                       # ComputeChecksums again, as nbgrader does
        _set_checksums(cell)
    return nb
