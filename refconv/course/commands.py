"""``refconv course build``, ``refconv course grade`` and ``refconv notebooks``: a few lines each."""

import pathlib
import sys
import time

__all__ = ["register"]


def register(commands):
    """Add the course's subcommands to ``refconv``'s argparse subparsers ``commands``."""
    course = commands.add_parser(
        "course", help="build the student and instructor notebooks; grade submissions",
        description="Hand the notebooks out as a course, and grade them.")
    verbs = course.add_subparsers(dest="verb", metavar="VERB", required=True)
    build = verbs.add_parser("build", help="write DIR/student and DIR/instructor",
                             description="Write DIR/student (stubs, no outputs) for every "
                                         "numbered notebook, and DIR/instructor: the secret "
                                         "the hidden cases are drawn from (secret.txt), and the "
                                         "instructor notebooks when --source (or a checkout) "
                                         "has them.")
    build.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    build.add_argument("--source", metavar="DIR",
                       help="the instructor notebooks (default: a checkout's notebooks/)")
    secret = build.add_mutually_exclusive_group()
    secret.add_argument("--secret", metavar="TEXT", help="the text hidden cases are drawn from "
                                                         "(default: a random one)")
    secret.add_argument("--secret-file", metavar="F", help="read the secret from F")
    build.set_defaults(run=_build)
    grade = verbs.add_parser(
        "grade", help="grade a submission, or a class",
        description="NOTEBOOK.ipynb: run it with the graded cells put back, print feedback per "
                    "exercise and, last, 'score: X / Y' (exit 0 whenever it could grade, 2 when "
                    "not). SUBMISSIONS folder (one folder per student, or nbgrader's "
                    "submitted/STUDENT/ASSIGNMENT/): write --out GRADES/grades.csv, feedback/ and "
                    "answers/ (exit 0 when every notebook of every student was graded, 1 when "
                    "something was missing or could not be graded, 2 on bad arguments).")
    grade.add_argument("submission", metavar="NOTEBOOK.ipynb|SUBMISSIONS")
    grade.add_argument("--out", metavar="GRADES", help="where a class's grades go (a folder)")
    grade.add_argument("--source", metavar="DIR",
                       help="the reference notebooks: a build's instructor/ folder (its "
                            "secret.txt is used) or a teacher's edited notebooks")
    grade.add_argument("--secret-file", metavar="F", help="the build's secret")
    grade.add_argument("--timeout", type=int, default=120, metavar="S",
                       help="seconds one cell may run (default: %(default)s)")
    grade.set_defaults(run=_grade)
    notebooks = commands.add_parser(
        "notebooks", help="write the course notebooks into DIR (the student versions)",
        description="Write the notebooks into DIR: the student versions (exercises as stubs, no "
                    "answers, no outputs: run them). --instructor: the complete notebooks, "
                    "with solutions, answer keys and figures (from a checkout of the "
                    "repository; the wheel does not carry them).")
    notebooks.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    notebooks.add_argument("--instructor", action="store_true",
                           help="the complete notebooks: solutions, answer keys, figures")
    notebooks.set_defaults(run=_notebooks)


def _build(args, parser):
    from .build import build, read_secret
    try:
        secret = args.secret
        if args.secret_file:
            secret = read_secret(secret_file=args.secret_file)
        written = build(args.out, source=args.source, secret=secret)
    except (ImportError, FileNotFoundError, ValueError) as error:
        print(f"refconv course build: {error}", file=sys.stderr)
        return 1
    print(f"student: {len(written['student'])} notebooks in {written['student'][0].parent}")
    print(f"instructor: {len(written['instructor'])} notebooks and the secret "
          f"({written['secret']}: keep it; grading draws the hidden cases from it)")
    return 0


def _grade(args, parser):
    path = pathlib.Path(args.submission)
    if path.is_dir():
        return _grade_class(args)
    from .build import read_secret
    from .grade import format_grades, grade
    try:
        secret = read_secret(secret_file=args.secret_file, source=args.source, warn=True)
        grades = grade(path, source=args.source, timeout=args.timeout, secret=secret)
    except (ImportError, FileNotFoundError, ValueError) as error:
        print(f"refconv course grade: {error}", file=sys.stderr)
        return 2
    print(format_grades(grades))
    return 0


def _grade_class(args):
    from .gradebook import grade_class
    if not args.out:
        print("refconv course grade: a folder of submissions needs --out GRADES",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        work = grade_class(args.submission, args.out, source=args.source,
                           secret_file=args.secret_file, timeout=args.timeout)
    except (ImportError, FileNotFoundError, ValueError) as error:
        print(f"refconv course grade: {error}", file=sys.stderr)
        return 2
    rows = [g for item in work for g in item.grades]
    bad = [g for g in rows if g.status not in ("graded", "by hand")]
    students = sorted({item.student for item in work})
    print(f"{len(students)} students, {len(work)} notebooks, {len(rows)} rows in "
          f"{pathlib.Path(args.out) / 'grades.csv'} ({time.perf_counter() - start:.0f} s); "
          f"feedback/ and answers/ beside it")
    for status in ("missing", "error", "timeout"):
        which = sorted({f"{item.student}/{item.notebook}" for item in work
                        for g in item.grades if g.status == status})
        if which:
            print(f"{status}: {', '.join(which)}")
    return 1 if bad else 0


def _notebooks(args, parser):
    from .shipped import copy_notebooks, instructor_dir
    if args.instructor:
        folder = instructor_dir()
        if folder is None:
            print("refconv notebooks: the instructor versions are not in the installed package "
                  "(it carries no answers); they are the repository's notebooks/ folder: "
                  "clone it, or run this from a checkout", file=sys.stderr)
            return 1
    else:
        folder = None
    try:
        paths = copy_notebooks(args.out, folder)
    except FileNotFoundError as error:
        print(f"refconv notebooks: {error}", file=sys.stderr)
        return 1
    kind = ("the complete notebooks: solutions, answer keys and outputs (for teachers)"
            if args.instructor else "the student versions: exercises to write, no outputs")
    print(f"{len(paths)} notebooks in {args.out}, {kind}: {', '.join(p.name for p in paths)}")
    return 0
