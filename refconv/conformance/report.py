"""The conformance report: rows, the environment they ran in, one table, JSON, merging runs.

A user who keeps PyTorch and TensorFlow in separate environments runs
``refconv conformance --json`` in each and merges the files: each run keeps
its own header (versions, CPU features), the rows join one table, numbered
by run. Errors are relative to the reference's scale (``max |d| / max |ref|``,
as :func:`refconv.compare`); they are rounding, so they may differ from one
machine to another: the report records where they were measured and nothing
compares them across machines bit for bit.
"""

import json
import os
import re
import textwrap
from typing import NamedTuple

from .. import __version__
from ..vocabulary import LSTM_QUANTITIES

__all__ = ["Row", "Report", "load", "merge", "first_line", "RTOL", "ATOL",
           "OK", "FAILED", "TRUNCATED", "REFUSED", "ERROR"]

FORMAT = "refconv-conformance"
FORMAT_VERSION = 1

# The tolerance of the table: float32 runtimes agree with refconv's float64 to about 2e-7
# of the tensors' scale (measured, see the README); 1e-5 leaves a margin of 50 for other
# CPUs' kernels and still catches a float16 weight (about 3e-4) from the first step.
RTOL = 1e-5
ATOL = 2e-5

# A row's status, worst news first.
TRUNCATED = "TRUNCATED"  # ran without an error but returned a different number of steps
FAILED = "FAILED"        # ran, and some quantity is outside the tolerance
ERROR = "ERROR"          # the conversion or the run at the export's own length raised
REFUSED = "REFUSED"      # refused a length other than the export's, with an error: fixed T
OK = "ok"
STATUSES = (TRUNCATED, FAILED, ERROR, REFUSED, OK)

# The table's error columns: the model's outputs and final state, then each gate.
COLUMNS = ("outputs", "h", "c", "z", "z_i", "z_f", "z_o")
assert set(COLUMNS[3:]) <= set(LSTM_QUANTITIES)

# The table's width: a terminal's, and a CI log's without wrapping.
WIDTH = 120
SHORT = {"outputs": "out"}
LABELS = ("runtime", "exporter", "options", "dtype")
# Words the table drops or shortens in its labels (the versions are in each run's header).
SHORT_LABELS = (("float16 weights", "f16 w"), ("int8 dynamic range", "int8 dyn"),
                ("int8 dynamic", "int8 dyn"), ("opt=", ""))


class Row(NamedTuple):
    """One deployed configuration run once."""
    runtime: str            # "onnxruntime 1.32.0", "litert 2.3.0", ...
    exporter: str           # how the model got there: "torchscript", "dynamo", "keras3 looped", ...
    options: str            # runtime options: "opt=all", ...
    dtype: str              # "float32", "float16 weights", "int8 dynamic range"
    t_export: object        # the sequence length the model was exported with (None: dynamic)
    t_run: int              # the sequence length it was fed
    status: str             # one of STATUSES
    errors: dict            # quantity -> worst relative error (over layers and steps)
    first_failure: str = None  # "layer0 z_f t=4": where to start looking
    note: str = ""          # what the status means here (an error's first line, ...)
    run: int = 0            # which run (environment) of a merged report


class Report(NamedTuple):
    """Rows and the environments (runs) they came from; ``str()`` is the table."""
    runs: list              # one environment dict per run (see environment.describe)
    rows: list              # Rows; row.run indexes runs
    rtol: float
    atol: float

    @property
    def passed(self):
        """Whether every float32 row run at its export's length (any length, for a model
        exported with a dynamic one) is within the tolerance.

        The other rows are findings to read, not failures of the command:
        reduced precision is expected to miss a float32 tolerance, and a fixed
        length (REFUSED, or TRUNCATED: the worst) is a property of the export.
        """
        return all(row.status in (OK, REFUSED) for row in self.rows
                   if row.dtype == "float32" and row.t_export in (None, row.t_run)
                   ) and bool(self.rows)

    def verdict(self, strict=False):
        """``"PASSED"`` or ``"FAILED"``: :attr:`passed`, and with ``strict`` no row TRUNCATED
        (a runtime that silently returns fewer steps than it was fed fails a pipeline)."""
        truncated = strict and any(row.status == TRUNCATED for row in self.rows)
        return "PASSED" if self.passed and not truncated else "FAILED"

    def __str__(self):
        return self.table()

    def table(self, verbose=False, strict=False, width=WIDTH):
        """Each run's header, then one table of every row, in ``width`` columns.

        ``verbose``: each run's CPU features and every row's errors to three
        digits and its full labels (the table rounds errors to one digit and
        shortens labels to fit).
        """
        lines = []
        for i, env in enumerate(self.runs):
            for text in [f"run {i}: " + _header(env, verbose),
                         *(f"  read: {note}" for note in env.get("read", [])),
                         *(f"  not run: {reason}" for reason in env.get("skipped", []))]:
                lines.extend(_wrap(text, width))
        lines.extend(_wrap(f"tolerance: |runtime - refconv| <= {self.atol:g} + {self.rtol:g} "
                           f"|refconv| element-wise; errors below are max |d| / max |refconv| "
                           f"(worst layer and step)", width))
        many = len(self.runs) > 1
        labels = [dict(runtime=row.runtime, exporter=row.exporter, options=row.options,
                       dtype=row.dtype) for row in self.rows]
        # a label every row shares is said once, above the table, in full
        same = [k for k in LABELS if len({label[k] for label in labels}) == 1 and labels]
        if same:
            lines.extend(_wrap("every row: " + "; ".join(f"{k} {labels[0][k]}" for k in same),
                               width))
        shown = [k for k in LABELS if k not in same]
        head = ["#", *(["run"] if many else []), *shown, "T",
                *(SHORT.get(k, k) for k in COLUMNS), "first bad", "status"]
        body = []
        for n, (row, label) in enumerate(zip(self.rows, labels), start=1):
            t_export = "dyn" if row.t_export is None else str(row.t_export)
            body.append([str(n), *([str(row.run)] if many else []),
                         *(_short_label(k, label[k]) for k in shown), f"{t_export}/{row.t_run}",
                         *(f"{row.errors[k]:.0e}" if k in row.errors else "-" for k in COLUMNS),
                         row.first_failure or "-", row.status])
        lines.extend(_columns(head, body, width, shrink=shown))
        notes = [(i, row) for i, row in enumerate(self.rows) if row.note]
        if notes:
            lines.append("notes:")
            for i, row in notes:
                lines.extend(_wrap(f"  row {i + 1}: {row.status}: {row.note}", width))
        if verbose:
            lines.append("details:")
            for i, row in enumerate(self.rows, start=1):
                errors = ", ".join(f"{k} {row.errors[k]:.3e}" for k in COLUMNS
                                   if k in row.errors)
                lines.extend(_wrap(f"  row {i}: {row.runtime}; {row.exporter}; {row.options}; "
                                   f"{row.dtype}; T {row.t_export}/{row.t_run}; "
                                   f"{errors or 'nothing compared'}", width))
        bad = sum(row.status in (TRUNCATED, FAILED, ERROR) for row in self.rows)
        lines.extend(_wrap(
            f"{len(self.rows)} rows, {bad} outside the tolerance, truncated or failing; "
            f"float32 at the export's length{' and no truncation (--strict)' if strict else ''}: "
            f"{self.verdict(strict)}", width))
        return "\n".join(lines)

    def to_json(self, strict=False, started=None, seconds=None):
        """A JSON-ready dict (what ``--json`` writes and :func:`load` reads): the rows, each
        run's environment, and the overall verdict, when and how long, refconv's and the
        runtimes' versions."""
        versions = {}
        for env in self.runs:
            versions.update(env.get("versions", {}))
        return {"format": FORMAT, "version": FORMAT_VERSION, "rtol": self.rtol,
                "atol": self.atol, "verdict": self.verdict(strict), "strict": bool(strict),
                "started": started, "seconds": seconds, "refconv_version": __version__,
                "versions": versions, "runs": list(self.runs),
                "rows": [row._asdict() for row in self.rows]}

    def save(self, path, **meta):
        """Write :meth:`to_json` (``meta``: its ``strict``, ``started``, ``seconds``) to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(**meta), f, indent=1, sort_keys=True)
            f.write("\n")


def _short_label(key, text):
    """A row's label as the table shows it (``--verbose`` and the header give it in full): a
    runtime without its version, an exporter without its opset, shorter dtypes."""
    if key == "runtime":
        return text.split()[0] if text.split() else text
    text = re.sub(r" opset \d+$", "", text)
    for long, short in SHORT_LABELS:
        text = text.replace(long, short)
    return text.strip()


def _wrap(text, width):
    """``text`` as lines of at most ``width`` characters, continued lines indented."""
    return textwrap.wrap(text, width, subsequent_indent="      ", break_long_words=True,
                         break_on_hyphens=False) or [""]


def _columns(head, body, width, shrink):
    """Aligned columns; the ``shrink`` columns (by header) cut, widest first, until the lines
    fit ``width`` (a cut cell ends in ``~``)."""
    widths = [max(len(c) for c in column) for column in zip(head, *body)]
    floor = {head.index(name): max(len(name), 6) for name in shrink}
    least = sum(min(w, floor.get(i, w)) for i, w in enumerate(widths))
    gap = 2 if least + 2 * (len(widths) - 1) <= width else 1
    while sum(widths) + gap * (len(widths) - 1) > width:
        cuttable = [i for i in floor if widths[i] > floor[i]]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda i: widths[i])
        widths[widest] -= 1

    def cell(text, w):
        return text if len(text) <= w else text[:w - 1] + "~"
    return [(" " * gap).join(cell(c, w).ljust(w) for c, w in zip(cells, widths)).rstrip()
            for cells in (head, *body)]


def first_line(error):
    """An exception as one line of a table's notes: its type and message, cut at 200 characters."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _header(env, verbose=True):
    versions = ", ".join(f"{name} {version}" for name, version in env.get("versions", {}).items())
    cpu = env.get("cpu", {})
    features = f"; {' '.join(cpu.get('features', [])) or 'features ?'}" if verbose else ""
    return (f"{env.get('platform', '?')}; CPU {cpu.get('model', '?')} "
            f"({cpu.get('cores', '?')} cores{features}); {versions}")


def load(path):
    """A :class:`Report` from a file written by :meth:`Report.save` (``--json``)."""
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: expected a JSON report from refconv conformance --json, "
                             f"got invalid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: expected a report with format {FORMAT!r}, got {found!r}")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: expected report version {FORMAT_VERSION}, "
                         f"got {data.get('version')!r}")
    fields = set(Row._fields)
    rows = []
    for i, row in enumerate(data["rows"]):
        if set(row) - fields or {"runtime", "status", "errors"} - set(row):
            raise ValueError(f"{path}: rows[{i}]: expected the keys {sorted(fields)}, "
                             f"got {sorted(row)}")
        if row["status"] not in STATUSES:
            raise ValueError(f"{path}: rows[{i}]['status']: expected one of {list(STATUSES)}, "
                             f"got {row['status']!r}")
        rows.append(Row(**row))
    return Report(data["runs"], rows, float(data["rtol"]), float(data["atol"]))


def merge(reports):
    """One report from several (runs in different environments): the rows of each, renumbered.

    Every report must have the same tolerance: a table whose rows were judged
    by different tolerances would mislead.
    """
    paths = [os.path.realpath(r) for r in reports if isinstance(r, (str, os.PathLike))]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        raise ValueError(f"reports: expected different files, got {twice[0]} twice (a run "
                         f"merged with itself would count its rows twice)")
    reports = [load(r) if isinstance(r, (str, os.PathLike)) else r for r in reports]
    if not reports:
        raise ValueError("reports: expected at least one report, got none")
    first = reports[0]
    runs, rows = [], []
    for i, report in enumerate(reports):
        if (report.rtol, report.atol) != (first.rtol, first.atol):
            raise ValueError(f"reports[{i}]: expected the tolerance of reports[0] (rtol "
                             f"{first.rtol:g}, atol {first.atol:g}), got rtol {report.rtol:g}, "
                             f"atol {report.atol:g}: run them with the same --rtol/--atol")
        offset = len(runs)
        runs.extend(report.runs)
        rows.extend(row._replace(run=row.run + offset) for row in report.rows)
    return Report(runs, rows, first.rtol, first.atol)
