"""Run a notebook's source with every assert made soft, and list each one that fails.

    REFCONV_TRAINED=DIR python tools/soft_asserts.py notebooks/src/07_what_gates_learn.py

A notebook stops at its first failing assert, so a retrained seed that breaks three
claims shows one. This runs the jupytext source (``notebooks/src/NN_*.py``) as a script,
from ``notebooks/`` (where its ``data/`` paths point), with each ``assert TEST`` replaced
by a check that prints ``SOFT-ASSERT FAILED line N: TEST`` and goes on; a test that raises
counts as failed. It prints every failure at the end and exits 1 if there was one.

It is how 07's claims were held to seeds nobody shipped: train seeds into DIR/seedS with
``notebooks/data/train_gates.py --seed S --out DIR/seedS``, then run this with
``REFCONV_TRAINED=DIR`` (07 loads every ``seed*`` folder of DIR).
"""

import argparse
import ast
import os
import pathlib
import sys

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"


class _Soften(ast.NodeTransformer):
    """``assert TEST`` -> ``_soft(lambda: (TEST), LINE, "TEST")``."""

    def __init__(self, source):
        self.source = source

    def visit_Assert(self, node):
        text = ast.get_source_segment(self.source, node.test)
        call = ast.parse(f"_soft(lambda: ({text}), {node.lineno}, {text!r})").body[0]
        return ast.copy_location(call, node)


def run(path, cwd=NOTEBOOKS):
    """Run the Python source at ``path`` with soft asserts, in ``cwd``; the failures as
    ``[(line, text)]``, in the order met."""
    path = pathlib.Path(path).resolve()
    source = path.read_text(encoding="utf-8")
    tree = ast.fix_missing_locations(_Soften(source).visit(ast.parse(source, str(path))))
    failed = []

    def soft(test, line, text):
        try:
            passed = bool(test())
        except Exception as error:   # a claim that cannot even be evaluated is a failed one
            passed, text = False, f"{text}  [raised {type(error).__name__}: {error}]"
        if not passed:
            failed.append((line, text))
            print(f"SOFT-ASSERT FAILED line {line}: {text}", flush=True)

    import matplotlib
    matplotlib.use("Agg")   # figures are drawn, not shown
    here = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(tree, str(path), "exec"), {"__name__": "__main__", "_soft": soft})
    finally:
        os.chdir(here)
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a notebook's source, e.g. notebooks/src/07_what_gates_learn.py")
    args = parser.parse_args(argv)
    if not pathlib.Path(args.source).is_file():
        parser.error(f"source: expected a notebook's .py source, got {args.source!r} (no such file)")
    failed = run(args.source)
    print(f"\n{len(failed)} assert(s) failed" + "".join(f"\n  line {n}: {t}" for n, t in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
