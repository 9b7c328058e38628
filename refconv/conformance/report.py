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
from typing import NamedTuple

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

    def __str__(self):
        return self.table()

    def table(self):
        """Each run's header, then one table of every row."""
        lines = []
        for i, env in enumerate(self.runs):
            lines.append(f"run {i}: " + _header(env))
            lines.extend(f"  not run: {reason}" for reason in env.get("skipped", []))
        lines.append(f"tolerance: |runtime - refconv| <= {self.atol:g} + {self.rtol:g} |refconv| "
                     f"element-wise; errors below are max |d| / max |refconv| "
                     f"(worst layer and step)")
        head = (["run"] if len(self.runs) > 1 else []) + [
            "runtime", "exporter", "options", "dtype", "T exp/run", *COLUMNS,
            "first outside tol", "status"]
        body = []
        for row in self.rows:
            t_export = "dyn" if row.t_export is None else str(row.t_export)
            cells = ([str(row.run)] if len(self.runs) > 1 else []) + [
                row.runtime, row.exporter, row.options, row.dtype, f"{t_export}/{row.t_run}",
                *(f"{row.errors[k]:.1e}" if k in row.errors else "-" for k in COLUMNS),
                row.first_failure or "-", row.status]
            body.append(cells)
        widths = [max(len(str(c)) for c in column) for column in zip(head, *body)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
        for cells in body:
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
        notes = [(i, row) for i, row in enumerate(self.rows) if row.note]
        if notes:
            lines.append("notes:")
            width = len(str(len(self.rows)))
            for i, row in notes:
                lines.append(f"  row {i + 1:>{width}} ({row.exporter}, {row.options}, "
                             f"{row.dtype}, T={row.t_run}): {row.status}: {row.note}")
        bad = sum(row.status in (TRUNCATED, FAILED, ERROR) for row in self.rows)
        lines.append(f"{len(self.rows)} rows, {bad} outside the tolerance, truncated or failing; "
                     f"float32 at the export's length: {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def to_json(self):
        """A JSON-ready dict (what ``--json`` writes and :func:`load` reads)."""
        return {"format": FORMAT, "version": FORMAT_VERSION, "rtol": self.rtol,
                "atol": self.atol, "runs": list(self.runs),
                "rows": [row._asdict() for row in self.rows]}

    def save(self, path):
        """Write the report as JSON to ``path`` (:func:`load` reads it back)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=1, sort_keys=True)
            f.write("\n")


def first_line(error):
    """An exception as one line of a table's notes: its type and message, cut at 200 characters."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _header(env):
    versions = ", ".join(f"{name} {version}" for name, version in env.get("versions", {}).items())
    cpu = env.get("cpu", {})
    return (f"{env.get('platform', '?')}; CPU {cpu.get('model', '?')} "
            f"({cpu.get('cores', '?')} cores; {' '.join(cpu.get('features', [])) or 'features ?'})"
            f"; {versions}")


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
