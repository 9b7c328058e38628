"""The student version of a notebook as the site shows it and lets it be downloaded.

The site never publishes what a student must not see: a solution, a hidden
graded case, a written answer's key, a maintainer's note. What a student gets is
:func:`refconv.course.student.student_notebook` (nbgrader's release, with
nbformat alone): solution regions become ``raise NotImplementedError()`` stubs,
written answers "YOUR ANSWER HERE", hidden tests and mark schemes go, and the
visible checker cells stay so that a self-learner can check their work.

Outputs: nbgrader clears every output, because a student re-runs the notebook.
A reader of the site does not, and most outputs (the figures, the printed
measurements of the tutorial) are the lesson, so the site puts back the outputs
of every cell that no answer made, and leaves cleared those of solution cells,
of graded cells (their report ran the solution, and a hidden case printed
there), and of every code cell that uses a name a solution cell defines.
"""

import ast

from refconv.course.student import student_notebook

# What must never appear in a page or a download of the site (docs/check_site.py looks).
FORBIDDEN = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
             "BEGIN MARK SCHEME", "END MARK SCHEME")


def nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tree(source):
    try:
        return ast.parse(source)
    except SyntaxError:   # a cell magic, say: it defines and uses nothing we can see
        return ast.parse("")


def _defined_names(source):
    """The names a cell's code defines at its top level (functions, classes, assignments)."""
    names = set()
    for node in _tree(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def answer_made(notebook):
    """The ids of the code cells whose outputs an answer made (see the module's text)."""
    answers, made = set(), set()
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        meta, source = nbgrader(cell), _source(cell)
        if meta.get("solution"):
            answers |= _defined_names(source)
        uses = {n.id for n in ast.walk(_tree(source)) if isinstance(n, ast.Name)}
        if meta.get("solution") or meta.get("grade") or "BEGIN HIDDEN TESTS" in source \
                or uses & answers:
            made.add(cell.get("id"))
    return made


def site_notebook(notebook):
    """The student version of ``notebook`` (a dict, the instructor's, with outputs) with
    the outputs no answer made put back: a plain dict."""
    if any(cell.get("id") is None for cell in notebook["cells"]):
        raise ValueError("a cell without an id (nbformat 4.5): its outputs cannot be matched "
                         "to the student version's cells")
    originals = {cell["id"]: cell for cell in notebook["cells"]}
    made = answer_made(notebook)
    result = _plain(student_notebook(notebook))
    for cell in result["cells"]:
        original = originals.get(cell.get("id"))
        if cell["cell_type"] == "code" and original is not None and cell["id"] not in made:
            cell["outputs"] = original.get("outputs", [])
            cell["execution_count"] = original.get("execution_count")
    return result


def _plain(value):
    """An nbformat NotebookNode as plain dicts and lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def leaks(text):
    """The answer markers found in ``text`` (a page or a download): [] when it is clean."""
    return [marker for marker in FORBIDDEN if marker in text]
