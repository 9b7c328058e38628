"""What a checker found, and how it is told: compact first, more on request.

A :class:`Report` holds one :class:`CaseResult` per case (one set of options and
one random run). ``print(report)`` shows the first failure in a few lines: which
quantity, at which step, by how much, and a nudge. More only when asked, in
order: ``report.hint(2)`` names the mistake when the checker recognises it (else
gives the formula), ``report.hint(3)`` the formula; ``report.details()`` one line
per failing case and the table of errors per quantity and step. When the
learner's function raised, the report shows the shapes it was given and must
return and the line that raised, and the hints go from that line to the axis to
NumPy's broadcasting rule (:mod:`.crash`).

How much a report shows unasked is its hint level: 1 (the default) the nudge,
2 also the recognised mistake, 3 also the formula, 0 nothing. A teacher sets it
for a whole class with the environment variable ``REFCONV_HINT_LEVEL`` (or
:data:`HINT_LEVEL`); a checker's ``hints=`` argument sets it for one report.
"""

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .crash import crash_hint, crash_lines
from .hints import hint_text

__all__ = ["Mismatch", "CaseResult", "Report", "Hint", "Points", "HINT_LEVEL"]

# What a report shows unasked: 0 nothing, 1 the nudge, 2 + the recognised mistake, 3 + the formula.
HINT_LEVEL = int(os.environ.get("REFCONV_HINT_LEVEL", "1"))


class Points(float):
    """A graded cell's points: a float (nbgrader reads its plain text, ``0.8``) that Jupyter
    shows as ``0.8 / 2``, the way ``refconv course grade`` prints a grade."""

    def __new__(cls, value, out_of):
        points = super().__new__(cls, value)
        points.out_of = out_of
        return points

    def __str__(self):
        return f"{float(self):g} / {self.out_of:g}"

    def _repr_markdown_(self):
        return f"points: **{float(self):g} / {self.out_of:g}**"


class Hint(str):
    """A hint: a string that Jupyter shows as text (not as a quoted repr)."""

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))


@dataclass(frozen=True)
class Mismatch:
    """Where a case first went wrong.

    Attributes:
        step: the time step (0-based).
        name: the quantity, or None when the function raised.
        error: ``max |yours - reference|`` (``inf`` for a missing quantity, a wrong
            shape or an exception; ``nan`` values count as infinitely wrong).
        index: where that largest difference is (a tuple of ints), or None.
        yours, reference: the two values there, or None.
        count, size: how many values differ beyond the tolerance, out of how many.
        problem: a sentence when the quantity could not be compared at all
            (missing, wrong shape, not an array, an exception), else None.
        mistake: the name of a recognised mistake that explains it, or None.
        crash: when the function raised, what :func:`.crash.crash_details` found
            (the shapes given and expected, the line), else None.
    """
    step: int
    name: object
    error: float
    index: object = None
    yours: object = None
    reference: object = None
    count: int = 0
    size: int = 0
    problem: object = None
    mistake: object = None
    crash: object = None


@dataclass
class CaseResult:
    """One case (one set of options, one random run) of a check.

    Attributes:
        options: the keyword arguments the student's function got.
        names: the compared quantities, in the order they are computed.
        errors: ``[len(names), steps]`` array of ``max |yours - reference|``
            (``nan`` where nothing was compared: after an exception).
        first: the first :class:`Mismatch` (earliest step, then earliest name),
            or None when everything agreed.
        setup: how the run was made, beyond the options (dtype, kernel, seed...).
        index_labels: what the index of each quantity's largest error counts.
        step_labels: what each step is, where a step is not a time step (an example).
    """
    options: dict
    names: tuple
    errors: np.ndarray
    first: object = None
    wrong_at_first_step: list = field(default_factory=list)
    setup: dict = field(default_factory=dict)
    index_labels: dict = field(default_factory=dict)
    step_labels: dict = field(default_factory=dict)

    @property
    def passed(self):
        """True when no quantity differed in this case."""
        return self.first is None

    def describe(self):
        """The options and the setup, on one line."""
        return _options({**self.options, **self.setup})


class Report:
    """What a checker found: one :class:`CaseResult` per case.

    ``report.passed`` is True when every case agreed with the reference.
    ``report.gate``, ``.step``, ``.error``, ``.options``, ``.mistake`` and
    ``.mismatch`` describe the first difference of the first failing case (all
    None when passed). ``str(report)`` (or Jupyter's display) is the compact
    report; :meth:`details` the long one; :meth:`hint` the hints, a level at a
    time; :meth:`points` the share of cases passed, as points.

    ``hints``: True for the class's hint level (:data:`HINT_LEVEL`), False for
    none, or a level 0-3: what the report shows unasked.
    """

    def __init__(self, title, function_name, cases, rtol, atol, hints=True, kind="LSTM",
                 step_word="time step"):
        self.title = title
        self.function_name = function_name
        self.cases = list(cases)
        self.rtol, self.atol = rtol, atol
        self.hints = hints
        self.kind = kind
        self.step_word = step_word
        self.notes = []            # lines shown after the report (refconv.exercises.record's)

    @property
    def hint_level(self):
        """How many tiers of hints the report shows unasked (0-3)."""
        if self.hints is True:
            return HINT_LEVEL
        return int(self.hints or 0)

    def _tiers(self):
        """The hints for the first difference, in the order they are given."""
        m = self.mismatch
        if m is None:
            return []
        if m.name is None:
            if m.crash is None:
                return ["your function did not return what it must: read the report's first "
                        "lines."]
            if m.crash.get("unwritten"):
                return [crash_hint(m.crash, 1)]
            return [crash_hint(m.crash, level) for level in (1, 2, 3)]
        nudge, formula = hint_text(m.name, 1, self.kind), hint_text(m.name, 2, self.kind)
        tiers = [nudge or f"look at the line that computes {m.name}."]
        if m.mistake:
            tiers.append(f"the checker recognises this mistake: {m.mistake}")
        tiers.append(formula or f"no formula for {m.name}.")
        return tiers

    @property
    def passed(self):
        """True when every case passed."""
        return all(case.passed for case in self.cases)

    @property
    def failed_case(self):
        """The first failing :class:`CaseResult`, or None."""
        return next((case for case in self.cases if not case.passed), None)

    @property
    def mismatch(self):
        case = self.failed_case
        return None if case is None else case.first

    @property
    def gate(self):
        return None if self.mismatch is None else self.mismatch.name

    @property
    def step(self):
        return None if self.mismatch is None else self.mismatch.step

    @property
    def error(self):
        return None if self.mismatch is None else self.mismatch.error

    @property
    def mistake(self):
        return None if self.mismatch is None else self.mismatch.mistake

    @property
    def options(self):
        case = self.failed_case
        return None if case is None else case.options

    def points(self, out_of):
        """``out_of`` times the share of cases that passed, rounded to 2 decimals: :class:`Points`."""
        passed = sum(case.passed for case in self.cases)
        return Points(round(out_of * passed / len(self.cases), 2) if self.cases else 0.0, out_of)

    def hint(self, level=1):
        """The hint of tier ``level`` for the first difference, a :class:`Hint` (a string).

        For a wrong quantity: 1 a nudge (where to look), 2 the recognised
        mistake by name when the checker knows it (else the formula), then the
        formula. For a crash: 1 which line, 2 which axis, 3 the broadcasting rule.
        """
        if self.passed:
            return Hint("nothing to hint at: every case passed.")
        tiers = self._tiers()
        level = min(max(int(level), 1), len(tiers))
        text = tiers[level - 1]
        if level < len(tiers):
            text += f" (report.hint({level + 1}): more)"
        return Hint(text)

    def __str__(self):
        return "\n".join([self._text(), *self.notes])

    def _text(self):
        steps = self.cases[0].errors.shape[1] if self.cases else 0
        if self.passed:
            return (f"{self.title}({self.function_name}): PASSED: all {len(self.cases)} cases "
                    f"agree with refconv at every one of {steps} {self.step_word}s "
                    f"(rtol {self.rtol:g}, atol {self.atol:g}).")
        case, m = self.failed_case, self.mismatch
        failing = [n for n, c in enumerate(self.cases, 1) if not c.passed]
        where = ("raised an exception" if m.name is None
                 else f"{m.name} differs first, max |yours - reference| = {_num(m.error)}")
        at = f"{self.step_word} {m.step}"
        if m.step in case.step_labels:
            at += f" ({case.step_labels[m.step]})"
        lines = [f"{self.title}({self.function_name}): FAILED {len(failing)} of "
                 f"{len(self.cases)} cases. Case {failing[0]} ({case.describe()}), at "
                 f"{at}: {where}."]
        lines.extend("  " + line for line in _explain(case, self.step_word))
        tiers, level = self._tiers(), self.hint_level
        first = 1 if m.name is None else 0          # a crash's line is shown above already
        lines.extend(f"  hint: {text}" for text in tiers[first:level])
        following = max(level, first) + 1
        if following <= len(tiers):
            names = (["which line", "which axis", "the broadcasting rule"] if m.name is None
                     else ["where to look"] + (["the mistake, by name"] if m.mistake else [])
                     + ["the formula"])
            lines.append(f"  more help: report.hint({following}) ({names[following - 1]})")
        passed = [n for n, c in enumerate(self.cases, 1) if c.passed]
        if passed:
            lines.append(f"  passed: case{'s' if len(passed) > 1 else ''} "
                         f"{', '.join(map(str, passed))}")
        if len(failing) > 1:
            lines.append(f"  also failing: cases {', '.join(map(str, failing[1:]))} "
                         f"(print(report.details()) for one line each)")
        return "\n".join(lines)

    def details(self):
        """Every case on one line, then the first failure's table of errors per quantity and step."""
        lines = [str(self).splitlines()[0]]
        raised = {}
        for number, case in enumerate(self.cases, start=1):
            m = case.first
            if m is None:
                lines.append(f"  case {number}: {case.describe()}: passed")
            elif m.name is None:
                same = raised.setdefault(m.problem, number)
                note = (f"raised as in case {same}" if same != number
                        else "raised " + m.problem.splitlines()[-1])
                lines.append(f"  case {number}: {case.describe()}: FAILED: {note}")
            else:
                named = f" ({m.mistake})" if m.mistake and self.hint_level >= 2 else ""
                lines.append(f"  case {number}: {case.describe()}: FAILED: {m.name} at "
                             f"{self.step_word} {m.step}, error {_num(m.error)}{named}")
        case = self.failed_case
        if case is not None and case.first.name is not None:
            m = case.first
            lines.append(f"first difference: {m.name} at {self.step_word} {m.step} "
                         f"(case {self.cases.index(case) + 1})")
            lines.extend("  " + line for line in _explain(case, self.step_word))
            lines.append(f"max |yours - reference| per quantity and {self.step_word} "
                         f"(case {self.cases.index(case) + 1}):")
            width = max(10, max(len(name) + 1 for name in case.names))
            column = "t={}" if self.step_word == "time step" else "#{}"
            lines.append("  " + " " * width + "".join(f"{column.format(t):>9}" for t in
                                                      range(case.errors.shape[1])))
            for name, row in zip(case.names, case.errors):
                lines.append(f"  {name:<{width}}" + "".join(f"{_cell_text(e):>9}" for e in row))
        return "\n".join(lines)

    def __repr__(self):
        if self.passed:
            return f"<Report {self.title}: PASSED>"
        return f"<Report {self.title}: FAILED, {self.gate} at {self.step_word} {self.step}>"

    def _repr_pretty_(self, printer, cycle):  # Jupyter shows the compact report
        printer.text(str(self))


def _explain(case, step_word):
    m = case.first
    if m.name is None:
        return [f"at {step_word} {m.step} your function raised:", *m.problem.splitlines(),
                *(crash_lines(m.crash) if m.crash else [])]
    lines = []
    if m.problem:
        lines.append(m.problem)
    elif not m.index:                               # a single number: no position to name
        lines.append(f"yours {_num(m.yours)}, reference {_num(m.reference)}")
    else:
        index = ", ".join(map(str, m.index))
        label = case.index_labels.get(m.name, "[batch, *position, channel]")
        lines.append(f"max |yours - reference| = {_num(m.error)} at {label} = [{index}] "
                     f"(yours {_num(m.yours)}, reference {_num(m.reference)}); "
                     f"{m.count} of {m.size} values differ")
    before = list(case.names[:case.names.index(m.name)])
    if before:
        shown = before if len(before) <= 8 else before[:6] + [f"and {len(before) - 6} more"]
        lines.append(f"computed before it at that {step_word}, and right: {', '.join(shown)}")
    after = [n for n in case.wrong_at_first_step if n != m.name]
    if after:
        shown = after if len(after) <= 6 else after[:5] + [f"and {len(after) - 5} more"]
        lines.append(f"also wrong at that {step_word} (maybe only because of {m.name}): "
                     f"{', '.join(shown)}")
    return lines


def _options(options):
    def text(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)
    return ", ".join(f"{key}={text(value)}" for key, value in options.items())


def _num(value):
    if value is None:
        return "?"
    return "inf" if value == math.inf else f"{value:.3g}"


def _cell_text(error):
    if np.isnan(error):
        return "-"
    if error == 0.0:
        return "ok"
    return f"{error:.1e}"
