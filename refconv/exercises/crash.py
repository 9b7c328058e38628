"""When the learner's function raises: the shapes it was given, the shapes it must return, the line.

A crash is most often a shape mistake (``np.pad`` given pads for the wrong
number of axes, a ``[B]`` mask multiplied into ``[B, H, W, F]``, a channel axis
taken from the other data format). The traceback's last line names NumPy's
complaint, not the learner's mistake, so a report adds three things:

* the shapes the function was given, and the shapes of what it must return;
* the line of the learner's code that raised, with the shape of every array it reads;
* hints in three tiers (:func:`crash_hint`): which line, which axis (the shapes
  of NumPy's message lined up from the right, each named when it is one of the
  arrays above), and NumPy's broadcasting rule.
"""

import os
import re
import sysconfig

import numpy as np

__all__ = ["crash_details", "crash_hint", "shape_text"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_LIBRARIES = (os.path.dirname(os.path.abspath(np.__file__)), os.path.dirname(_HERE)) + tuple(
    os.path.abspath(sysconfig.get_paths()[key]) for key in ("stdlib", "purelib", "platlib"))


def shape_text(value, depth=0):
    """A value as a report shows it: an array by its shape, a dict by its entries' shapes."""
    if isinstance(value, np.ndarray):
        return f"[{', '.join(map(str, value.shape))}]"
    if isinstance(value, dict) and depth == 0:
        items = [f"{key} {shape_text(item, 1)}" for key, item in value.items()]
        if len(items) > 8:
            items = items[:7] + [f"and {len(items) - 7} more"]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)) and depth == 0 and value and \
            all(isinstance(item, np.ndarray) for item in value):
        return f"{type(value).__name__} of {len(value)}: " + ", ".join(
            shape_text(item, 1) for item in value)
    if isinstance(value, (bool, int, float, np.generic)):
        return repr(value.item() if isinstance(value, np.generic) else value)
    if isinstance(value, str):
        return value
    return type(value).__name__


def _learners(filename):
    """True for the learner's code: a notebook cell, a script, a test; not NumPy or refconv."""
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    return not path.startswith(_LIBRARIES)


def _learners_frame(error):
    """The innermost frame of the learner's own code in the traceback, or None."""
    frame, tb = None, error.__traceback__
    while tb is not None:
        if _learners(tb.tb_frame.f_code.co_filename):
            frame = tb
        tb = tb.tb_next
    return frame


def _line_values(tb):
    """The failing line, and ``[(expression, value)]`` for every array (or dict entry) it reads."""
    import linecache
    code = tb.tb_frame.f_code
    line = linecache.getline(code.co_filename, tb.tb_lineno).strip()
    local = tb.tb_frame.f_locals
    found, seen = [], set()
    for match in re.finditer(r"([A-Za-z_]\w*)(?:\[\s*(['\"])([^'\"]+)\2\s*\])?", line):
        name, key = match.group(1), match.group(3)
        value = local.get(name)
        expression = name
        if key is not None and isinstance(value, dict) and key in value:
            value, expression = value[key], f"{name}[{key!r}]"
        if expression in seen or not isinstance(value, np.ndarray):
            continue
        seen.add(expression)
        found.append((expression, value))
    return line, found


def crash_details(error, context, reference):
    """What a report shows of a crash: a dict (plain values only), never raising itself.

    ``context`` may hold ``"given"``: the arguments the function got, by name,
    and ``"returns"``: what it must return, by name, where that is not
    ``reference`` (the quantities compared at this step).
    """
    recorded = (getattr(error, "recorded_traceback", None) or "").strip()  # replayed (grading)
    details = {"error": recorded.splitlines()[-1] if recorded else f"{type(error).__name__}: {error}",
               "given": [], "expected": [], "line": None, "arrays": [],
               "unwritten": isinstance(error, NotImplementedError)
               or recorded.splitlines()[-1:] == ["NotImplementedError: "]
               or recorded.endswith("NotImplementedError:")}
    try:
        context = context or {}
        given = context.get("given") or {}
        details["given"] = [(name, shape_text(value)) for name, value in given.items()]
        returns = context.get("returns") or reference or {}
        details["expected"] = [(name, _expected_text(value)) for name, value in returns.items()]
        tb = _learners_frame(error)
        if tb is not None:
            line, arrays = _line_values(tb)
            details["line"] = f"line {tb.tb_lineno}, in {tb.tb_frame.f_code.co_name}" + (
                f": {line}" if line else "")
            details["arrays"] = [(name, shape_text(value)) for name, value in arrays]
    except Exception:  # a report about a crash must not crash
        pass
    return details


def _expected_text(value):
    value = np.asarray(value)
    return "a number" if value.ndim == 0 else shape_text(value)


def _listed(pairs, most=10):
    shown = [f"{name} {text}" for name, text in pairs]
    if len(shown) > most:
        shown = shown[:most - 1] + [f"and {len(shown) - most + 1} more (the exercise's text "
                                    f"lists them)"]
    return ", ".join(shown)


def crash_lines(details):
    """The lines a report shows under "your function raised"."""
    lines = []
    if details.get("unwritten"):
        lines.append("not written yet: replace `raise NotImplementedError()` with your code")
    if details["given"]:
        lines.append("it was given: " + _listed(details["given"]))
    if details["expected"]:
        lines.append("it must return: " + _listed(details["expected"]))
    if details.get("unwritten"):
        return lines
    if details["line"]:
        lines.append("it raised at " + details["line"])
        if details["arrays"]:
            lines.append("  the arrays on that line: " + ", ".join(
                f"{name} {text}" for name, text in details["arrays"]))
    return lines


_TUPLE = re.compile(r"\((\d+(?:\s*,\s*\d+)*)?\s*,?\s*\)")


def _shapes_in(message):
    """The shapes NumPy's message names, in order: [(2,), (2, 9, 8, 3)]."""
    shapes = []
    for match in _TUPLE.finditer(message):
        inside = match.group(1)
        shapes.append(tuple(int(n) for n in inside.split(",")) if inside else ())
    return shapes


def _which_axis(details):
    message = details["error"]
    named = {}
    for name, text in details["arrays"] + details["given"]:
        if name not in named.get(text, []):
            named.setdefault(text, []).append(name)
    named = {text: " or ".join(names[:3]) for text, names in named.items()}
    shapes = _shapes_in(message)
    joined = re.search(r"along dimension (\d+), the array at index (\d+) has size (\d+) and "
                       r"the array at index (\d+) has size (\d+)", message)
    if joined:
        axis, i, a, j, b = joined.groups()
        arrays = ", ".join(f"{name} {text}" for name, text in details["arrays"])
        return (f"which axis: np.concatenate joins arrays along ONE axis, and every other axis "
                f"must have the same size; along axis {axis}, array {i} has {a} and array {j} "
                f"has {b}. So axis {axis} is the one that differs: is it the axis you meant to "
                f"join along (with channels_first the channels are axis 1, not -1)?"
                + (f" On that line: {arrays}." if arrays else ""))
    if "mismatch in its core dimension" in message:
        return ("which axis: a matrix product a @ b pairs the LAST axis of a with the "
                "second-to-last of b (the first, for a 1-D b): print both shapes and check that "
                "those two sizes are equal.")
    if "requested shape" in message and len(shapes) >= 2 and shapes[-1][-1:] == (2,):
        pairs, axes = shapes[0], shapes[-1][0]
        return (f"which axis: np.pad got (before, after) pairs shaped {list(pairs)} for an "
                f"array with {axes} axes: it wants exactly one pair per axis, in the array's "
                f"axis order ((0, 0) for an axis that gets no zeros).")
    if "broadcast" in message and len(shapes) >= 2:
        width = max(len(shape) for shape in shapes)
        rows = []
        for shape in shapes:
            text = f"[{', '.join(map(str, shape))}]"
            cells = ["" for _ in range(width - len(shape))] + [str(n) for n in shape]
            label = f" ({named[text]})" if text in named else ""
            rows.append("  " + " ".join(f"{cell:>4}" for cell in cells) + f"   {text}{label}")
        a, b = shapes[0], shapes[1]
        clash = next((k for k in range(1, min(len(a), len(b)) + 1)
                      if a[-k] != b[-k] and 1 not in (a[-k], b[-k])), None)
        where = (f"counting from the right, axis -{clash} holds {a[-clash]} against "
                 f"{b[-clash]}: neither is 1, so NumPy cannot pair them"
                 if clash else "the sizes do not pair up axis by axis")
        return ("which axis: NumPy lines the shapes up from the right:\n" + "\n".join(rows)
                + f"\n  {where}. Which axis of each array should that be?")
    if shapes and details["arrays"]:
        known = ", ".join(f"{name} {text}" for name, text in details["arrays"])
        return (f"which axis: the message names the shapes {', '.join(map(str, shapes))}; "
                f"on that line {known}. Write each array's axes under its shape (batch, "
                f"rows, columns, channels...) and find the one that does not match.")
    if "index" in message and "axis" in message:
        return ("which axis: an index ran past an axis's end: print the shape of the array you "
                "index, and the index, just before that line.")
    if message.startswith("KeyError"):
        return "which key: print the keys of the dict you index (list(d)) before that line."
    return ("which value: print the shape (or value) of everything that line reads, just "
            "before it, and compare with the shapes the function was given.")


_RULE = ("the broadcasting rule: NumPy compares two shapes from the LAST axis backwards; "
         "sizes pair up when they are equal or one of them is 1, and missing axes on the left "
         "count as 1. So a [B] array meets [B, H, W, F] as [1, 1, 1, B]: its B lines up with "
         "F, not with the batch. Give it the axes it lacks: v[:, None, None, None] or "
         "v.reshape(-1, 1, 1, 1). np.pad and np.concatenate follow the same counting: one "
         "(before, after) pair per axis, and every axis but the joined one the same size.")


def crash_hint(details, level):
    """Hint ``level`` for a crash: 1 which line, 2 which axis, 3 the broadcasting rule."""
    if details.get("unwritten"):
        return ("the function is not written yet: the exercise's text above says what it gets "
                "and what it must return; the report lists their shapes.")
    level = min(max(int(level), 1), 3)
    if level == 1:
        if details.get("line"):
            arrays = ", ".join(f"{name} {text}" for name, text in details["arrays"])
            return (f"which line: your code raised at {details['line']}"
                    + (f"; its arrays: {arrays}" if arrays else "")
                    + f". NumPy said: {details['error']}.")
        return (f"which line: the last line of the traceback above is your code's; NumPy said: "
                f"{details['error']}.")
    if level == 2:
        return _which_axis(details)
    return _RULE
