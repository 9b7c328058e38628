"""The student version of a notebook, as the site shows it and lets it be downloaded.

The site never publishes what a student must not see: a solution, a hidden
graded case, a written answer's key. This is nbgrader's "release" as its
preprocessors do it (``ClearSolutions``, ``ClearHiddenTests``,
``ClearMarkScheme``), with plain ``json`` so the site needs no nbgrader:

* a ``### BEGIN SOLUTION`` .. ``### END SOLUTION`` region becomes
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at its indentation; a
  solution cell without a region (a written answer) becomes ``YOUR ANSWER HERE``;
* a ``### BEGIN HIDDEN TESTS`` .. ``### END HIDDEN TESTS`` region is removed;
* a ``=== BEGIN MARK SCHEME ===`` .. ``=== END MARK SCHEME ===`` region is removed.

Outputs: nbgrader clears every output, because a student re-runs the
notebook. A reader of the site does not, and most outputs (the figures, the
printed measurements of the tutorial) are the lesson, so this keeps them and
clears only those an answer made: the outputs of solution cells, of graded
cells (their report ran the solution, and a hidden case printed there), and of
every later code cell that uses a name a solution cell defines.
"""

import ast
import copy
import re

CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = "YOUR ANSWER HERE"
# (begin, end) markers of the regions a student never sees, and what replaces them.
SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
MARK_SCHEME = ("BEGIN MARK SCHEME", "END MARK SCHEME")
# What must never appear in a page or a download of the site (docs/check_site.py looks).
FORBIDDEN = SOLUTION + HIDDEN + MARK_SCHEME


class StudentError(ValueError):
    """A notebook whose answer regions cannot be removed safely (an unclosed region)."""


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _replace_regions(lines, markers, stub, where):
    """``lines`` with each ``markers`` region replaced by ``stub`` (indented as its
    begin line), or removed when ``stub`` is None; ``(lines, found)``."""
    begin, end = markers
    kept, inside, found = [], False, False
    for line in lines:
        if begin in line:
            if inside:
                raise StudentError(f"{where}: nested '{begin}'")
            inside = found = True
            indent = re.match(r"\s*", line).group(0)
            kept += [indent + text for text in (stub or [])]
        elif end in line:
            if not inside:
                raise StudentError(f"{where}: '{end}' without '{begin}'")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise StudentError(f"{where}: '{begin}' is never closed by '{end}'")
    return kept, found


def _defined_names(source):
    """The names a cell's code defines at its top level (functions, classes, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def student_notebook(notebook, name="notebook"):
    """The student version of ``notebook`` (a notebook as a JSON dict), a new dict.

    ``name`` names the notebook in errors. Cell sources come back as strings.
    """
    notebook = copy.deepcopy(notebook)
    answers = set()   # names a solution cell defines
    for index, cell in enumerate(notebook.get("cells", [])):
        where = f"{name}, cell {index}"
        lines = _source(cell).split("\n")
        meta = _nbgrader(cell)
        lines, replaced = _replace_regions(
            lines, SOLUTION, CODE_STUB if cell["cell_type"] == "code" else [TEXT_STUB], where)
        lines, hidden = _replace_regions(lines, HIDDEN, None, where)
        lines, _ = _replace_regions(lines, MARK_SCHEME, None, where)
        solution = bool(meta.get("solution"))
        if replaced and not solution:
            raise StudentError(f"{where}: a solution region in a cell not marked as a "
                               f"solution (nbgrader would refuse it too)")
        if solution:
            answers |= _defined_names(_source(cell))
            if not replaced:  # the whole cell is the answer
                lines = (CODE_STUB if cell["cell_type"] == "code" else [TEXT_STUB])
        cell["source"] = "\n".join(lines)
        if cell["cell_type"] != "code":
            continue
        uses = {n.id for n in ast.walk(_parse(cell["source"])) if isinstance(n, ast.Name)}
        if solution or meta.get("grade") or hidden or uses & answers:
            cell["outputs"] = []
            cell["execution_count"] = None
    return notebook


def _parse(source):
    try:
        return ast.parse(source)
    except SyntaxError:  # a cell magic, say: it uses nothing we can see
        return ast.parse("")


def leaks(text):
    """The answer markers found in ``text`` (a page or a download): [] when it is clean."""
    return [marker for marker in FORBIDDEN if marker in text]
