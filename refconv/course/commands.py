"""``refconv course build``, ``refconv course grade`` and ``refconv notebooks``: a few lines each."""

import sys

__all__ = ["register"]


def register(commands):
    """Add the course's subcommands to ``refconv``'s argparse subparsers ``commands``."""
    course = commands.add_parser(
        "course", help="build the student and instructor notebooks; grade a submission",
        description="Hand the notebooks out as a course (nbgrader underneath).")
    verbs = course.add_subparsers(dest="verb", metavar="VERB", required=True)
    build = verbs.add_parser("build", help="write DIR/student and DIR/instructor",
                             description="Write DIR/instructor (solutions, answer keys, hidden "
                                         "tests) and DIR/student (stubs, no outputs) for every "
                                         "numbered notebook.")
    build.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    build.set_defaults(run=_build)
    grade = verbs.add_parser("grade", help="run a submission and print its score",
                             description="Run NOTEBOOK with the instructor's graded cells put "
                                         "back, print feedback per exercise and, last, "
                                         "'score: X / Y'. Exit 0 whenever it could grade.")
    grade.add_argument("notebook", metavar="NOTEBOOK.ipynb")
    grade.add_argument("--timeout", type=int, default=120, metavar="S",
                       help="seconds one cell may run (default: %(default)s)")
    grade.set_defaults(run=_grade)
    notebooks = commands.add_parser(
        "notebooks", help="copy the notebooks that ship with refconv into DIR",
        description="Copy the notebooks (with their figures) into DIR; --student writes the "
                    "exercise versions (needs the 'course' extra).")
    notebooks.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    notebooks.add_argument("--student", action="store_true",
                           help="the student versions: solutions replaced by stubs")
    notebooks.set_defaults(run=_notebooks)


def _build(args, parser):
    from . import build
    try:
        written = build(args.out)
    except (ImportError, FileNotFoundError) as error:
        print(f"refconv course build: {error}", file=sys.stderr)
        return 1
    for kind, paths in written.items():
        print(f"{kind}: {len(paths)} notebooks in {paths[0].parent}")
    return 0


def _grade(args, parser):
    from .grade import format_grades, grade
    try:
        grades = grade(args.notebook, timeout=args.timeout)
    except (ImportError, FileNotFoundError, ValueError) as error:
        print(f"refconv course grade: {error}", file=sys.stderr)
        return 2
    print(format_grades(grades))
    return 0


def _notebooks(args, parser):
    from .build import require_nbgrader, student_version
    from .shipped import copy_notebooks
    try:
        paths = copy_notebooks(args.out)
        if args.student:
            nbformat, _ = require_nbgrader()
            for path in paths:
                nbformat.write(student_version(nbformat.read(str(path), as_version=4)), str(path))
    except (ImportError, FileNotFoundError) as error:
        print(f"refconv notebooks: {error}", file=sys.stderr)
        return 1
    print(f"{len(paths)} notebooks in {args.out}: {', '.join(p.name for p in paths)}")
    return 0
