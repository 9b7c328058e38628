"""Graded runs: the student's outputs recorded in the kernel, the verdict computed elsewhere.

A checker does three things: it draws cases, calls the student's function on
them, and compares what comes back with refconv's answers. Only the middle part
needs the student's code. :func:`recordable` wraps a checker so that, when a
notebook runs under ``refconv course grade``, the graded cell's call

1. draws the **hidden** cases (``hidden_options(checker, seed)``: the seed is the
   grading task's, derived from the teacher's secret; whatever the cell passed
   is ignored),
2. calls the student's function with the refconv functions the exercise asks
   the student to write made unavailable (:data:`POLICY`),
3. writes every value the function returned (or the exception it raised) to
   ``TASK_DIR/result/records/GRADE_ID.npz`` (no pickle: a JSON skeleton and arrays).

The grading process then calls the unwrapped checker with a :class:`Replay` of
those values as the "student's function" and the same hidden options: the
cases are drawn again from the same seed, the same calls are made in the same
order, and the comparison and the points are computed there, where no student
code runs. Patching the checker, the report, numpy, refconv or ``print`` in the
kernel changes nothing but the values recorded.

Outside grading (a student practising), a wrapped checker runs as before, and
its report notes any call to a refconv function the exercise asks the student
to write.
"""

import functools
import hashlib
import json
import os
import pathlib
import sys

import numpy as np

__all__ = ["recordable", "POLICY", "hidden_options", "Replay", "RecordedError", "PolicyError",
           "save_record", "load_record", "GRADING_ENV", "cell_key", "derive_seed", "CHECKERS"]

GRADING_ENV = "REFCONV_GRADING"      # the task folder, set by refconv.course.run for the kernel
MAX_ARRAY_BYTES = 64 * 2**20         # a larger returned array is recorded as unsupported

# The refconv functions each exercise asks the student to write: unavailable while a graded
# case runs. Every other public refconv function may be used (COURSE.md says which matter).
LSTM_FORWARD = ("lstm_step", "lstm_gates", "dynamic_rnn", "bidirectional_dynamic_rnn",
                "stream_rnn", "stream_bidirectional_rnn")
LSTM_BACKWARD = ("lstm_step_backward", "dynamic_rnn_grad", "bidirectional_dynamic_rnn_grad")
POLICY = {
    "check_same_padding": ("conv_padding", "conv_output_size"),
    "check_conv1d": ("conv_nd", "conv_nd_naive"),
    "check_plain_step": LSTM_FORWARD,
    "check_peephole_step": LSTM_FORWARD,
    "check_layer_norm_step": LSTM_FORWARD,
    "check_lstm_step": LSTM_FORWARD,
    "check_gru_step": ("gru_step", "gru_gates", "dynamic_rnn", "bidirectional_dynamic_rnn",
                       "stream_rnn", "stream_bidirectional_rnn"),
    "check_mask_step": ("dynamic_rnn", "bidirectional_dynamic_rnn", "stream_rnn",
                        "stream_bidirectional_rnn"),
    "check_reverse_within_length": ("reverse_sequence",),
    "check_plain_step_backward": LSTM_BACKWARD,
    "check_peephole_step_backward": LSTM_BACKWARD,
    "check_layer_norm_step_backward": LSTM_BACKWARD,
    "check_lstm_step_backward": LSTM_BACKWARD,
    "check_bptt": ("dynamic_rnn_grad", "bidirectional_dynamic_rnn_grad"),
    "check_bug_hunt": (),
    "check_reach": (),
    "check_ablation_guess": (),
    "check_scaled_errors": ("compare",),
    "check_first_failure": ("compare",),
}
CHECKERS = {}                        # name -> the wrapped checker (filled by recordable)


def hidden_options(checker, seed):
    """The keyword arguments of a graded run of ``checker``: its cases come from ``seed`` alone."""
    if checker == "check_bug_hunt":  # five suspects in a row: every kind of planted bug
        return {"seeds": [seed + i for i in range(5)]}
    if checker == "check_ablation_guess":  # a prediction, judged against the measured table
        return {}
    return {"seed": seed}


def derive_seed(secret, grade_id):
    """The seed of one graded exercise: a hash of the teacher's secret and the grade id."""
    digest = hashlib.sha256(f"{secret}\0{grade_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


def cell_key(source):
    """What identifies a graded cell's source in the kernel (its lines, trailing blanks dropped)."""
    text = "\n".join(line.rstrip() for line in str(source).strip().splitlines())
    return hashlib.sha256(text.encode()).hexdigest()


class PolicyError(RuntimeError):
    """A refconv function the exercise asks the student to write was called in a graded case."""


class RecordedError(Exception):
    """The exception the student's function raised in the kernel, replayed by its text."""

    def __init__(self, text):
        super().__init__(text.splitlines()[-1] if text else "an exception")
        self.recorded_traceback = text


# ---------------------------------------------------------------- the grading task in the kernel

class _Grading:
    """The task the kernel runs for (``$REFCONV_GRADING/task.json``), and the graded cell now running."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        task = json.loads((self.folder / "task.json").read_text())
        self.seeds = {key: int(value) for key, value in task["seeds"].items()}
        self.cells = dict(task["cells"])          # cell_key(source) -> grade id
        self.grade_id = None

    def pre_run_cell(self, info):
        self.grade_id = self.cells.get(cell_key(getattr(info, "raw_cell", "") or ""))


_GRADING = None


def _grading():
    """The grading task when this kernel runs under ``refconv course grade``, else None."""
    global _GRADING
    folder = os.environ.get(GRADING_ENV)
    if not folder:
        return None
    if _GRADING is None:
        _GRADING = _Grading(folder)
        try:
            shell = get_ipython()            # noqa: F821 (defined in an IPython kernel)
        except NameError:
            shell = None
        if shell is not None:
            shell.events.register("pre_run_cell", _GRADING.pre_run_cell)
            history = shell.history_manager.input_hist_raw   # the cell running now is last
            if history:
                _GRADING.grade_id = _GRADING.cells.get(cell_key(history[-1]))
    return _GRADING


def start_grading_hook():
    """Register the kernel's hook (called when refconv.exercises is imported)."""
    _grading()


# ---------------------------------------------------------------- the policy

def _public(name):
    import refconv
    return getattr(refconv, name, None)


class _Unavailable:
    """Stands for a refconv function while a case runs: fails (graded) or notes the call (practice)."""

    def __init__(self, name, original, checker, enforce, calls):
        self.name, self.original, self.checker = name, original, checker
        self.enforce, self.calls = enforce, calls
        functools.update_wrapper(self, original)

    def __call__(self, *args, **kwargs):
        self.calls.add(self.name)
        if self.enforce:
            raise PolicyError(f"refconv.{self.name} is not available while {self.checker} "
                              f"grades: this exercise asks you to write it yourself "
                              f"(COURSE.md, 'refconv's own functions')")
        return self.original(*args, **kwargs)


class _Guard:
    """Swap the forbidden functions out of refconv's modules and the student's globals, and back."""

    def __init__(self, checker, student, enforce):
        self.calls = set()
        originals = {name: _public(name) for name in POLICY.get(checker, ())}
        self.stand_ins = {id(fn): _Unavailable(name, fn, checker, enforce, self.calls)
                          for name, fn in originals.items() if fn is not None}
        self.namespaces = [vars(module) for name, module in list(sys.modules.items())
                           if name == "refconv" or name.startswith("refconv.")]
        module_globals = getattr(student, "__globals__", None)
        if isinstance(module_globals, dict):
            self.namespaces.append(module_globals)
        self.swapped = []

    def __enter__(self):
        if self.stand_ins:
            for namespace in self.namespaces:
                for key, value in list(namespace.items()):
                    stand_in = self.stand_ins.get(id(value))
                    if stand_in is not None and callable(value):
                        namespace[key] = stand_in
                        self.swapped.append((namespace, key, value))
        return self

    def __exit__(self, *exc):
        for namespace, key, value in reversed(self.swapped):
            namespace[key] = value
        self.swapped.clear()


# ---------------------------------------------------------------- recording and replaying

class _Recorder:
    """The student's function, called under the policy; every result kept, encoded."""

    def __init__(self, student, checker, enforce):
        self.student, self.checker, self.enforce = student, checker, enforce
        self.__name__ = getattr(student, "__name__", type(student).__name__)
        self.calls, self.used = [], set()

    def __call__(self, *args, **kwargs):
        guard = _Guard(self.checker, self.student, self.enforce)
        try:
            with guard:
                result = self.student(*args, **kwargs)
        except Exception as error:
            from .runs import short_traceback
            self.calls.append({"__raised__": short_traceback(error)})
            raise
        finally:
            self.used |= guard.calls
        self.calls.append(result)
        return result


class Replay:
    """Stands for the student's function in the grading process: the recorded values, in order."""

    def __init__(self, calls, name="your function"):
        self.calls, self.__name__ = list(calls), name
        self.next = 0

    def __call__(self, *args, **kwargs):
        if self.next >= len(self.calls):
            raise RecordedError("the record ends here: the run in the kernel stopped before "
                                "this call")
        value = self.calls[self.next]
        self.next += 1
        if isinstance(value, dict) and set(value) == {"__raised__"}:
            raise RecordedError(value["__raised__"])
        return value


class Unsupported:
    """A returned value that could not be recorded (an object of another kind): wrong in any case."""

    def __init__(self, what):
        self.what = what

    def __repr__(self):
        return f"<{self.what}>"


def _encode(value, arrays, depth=0):
    if depth > 20:
        return {"__unsupported__": "a structure nested too deep"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value if abs(value) < 2**53 or isinstance(value, float) else float(value)
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype == object or array.nbytes > MAX_ARRAY_BYTES:
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                return {"__unsupported__": f"an array of {array.dtype}"}
            if array.nbytes > MAX_ARRAY_BYTES:
                return {"__unsupported__": f"an array of {array.nbytes} bytes"}
        key = f"a{len(arrays)}"
        arrays[key] = array
        return {"__array__": key}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return {"__unsupported__": "a dict with keys that are not strings"}
        if set(value) == {"__raised__"}:
            return {"__raised__": str(value["__raised__"])}
        return {"__dict__": {k: _encode(v, arrays, depth + 1) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"__list__" if isinstance(value, list) else "__tuple__":
                [_encode(v, arrays, depth + 1) for v in value]}
    return {"__unsupported__": type(value).__name__}


def _decode(skeleton, arrays):
    if not isinstance(skeleton, dict):
        return skeleton
    if "__array__" in skeleton:
        return arrays[skeleton["__array__"]]
    if "__dict__" in skeleton:
        return {k: _decode(v, arrays) for k, v in skeleton["__dict__"].items()}
    if "__list__" in skeleton:
        return [_decode(v, arrays) for v in skeleton["__list__"]]
    if "__tuple__" in skeleton:
        return tuple(_decode(v, arrays) for v in skeleton["__tuple__"])
    if "__raised__" in skeleton:
        return {"__raised__": skeleton["__raised__"]}
    return Unsupported(skeleton.get("__unsupported__", "something else"))


def save_record(path, checker, grade_id, name, calls, answer=None):
    """Write one graded run: the checker, the grade id, the function's name and every value."""
    arrays = {}
    meta = {"checker": checker, "grade_id": grade_id, "name": str(name),
            "calls": [_encode(value, arrays) for value in calls],
            "answer": None if answer is None else _encode(answer, arrays),
            "has_answer": answer is not None}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, __meta__=np.array(json.dumps(meta)), **arrays)
    os.replace(partial, path)


def load_record(path):
    """``(meta, calls, answer)`` of a record (never unpickles); ValueError when unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            arrays = {key: data[key] for key in data.files if key != "__meta__"}
        calls = [_decode(value, arrays) for value in meta["calls"]]
        answer = _decode(meta["answer"], arrays) if meta.get("has_answer") else None
    except Exception as error:      # a forged or truncated file: not gradable, never trusted
        raise ValueError(f"{path}: not a readable record ({type(error).__name__}: {error})") \
            from None
    return meta, calls, answer


# ---------------------------------------------------------------- the wrapper

def recordable(checker):
    """Wrap a checker ``checker(student, **options) -> Report`` for graded runs (see the module)."""
    name = checker.__name__
    if name not in POLICY:   # a checker without its policy would grade with nothing forbidden
        raise ValueError(f"checker: {name} has no entry in refconv.exercises.record.POLICY "
                         f"(the refconv functions its exercise may not call; () for none)")

    @functools.wraps(checker)
    def run(student, *args, **kwargs):
        grading = _grading()
        grade_id = grading.grade_id if grading is not None else None
        if grade_id is not None and grade_id in grading.seeds:
            args, kwargs = (), hidden_options(name, grading.seeds[grade_id])
        else:
            grade_id = None
        if not callable(student):         # an answer, not a function (the bug hunt's dict)
            if grade_id is not None:
                save_record(grading.folder / "result" / "records" / f"{grade_id}.npz", name,
                            grade_id, "answer", [], answer=student)
            return checker(student, *args, **kwargs)
        recorder = _Recorder(student, name, enforce=grade_id is not None)
        try:
            report = checker(recorder, *args, **kwargs)
        finally:
            if grade_id is not None:
                save_record(grading.folder / "result" / "records" / f"{grade_id}.npz", name,
                            grade_id, recorder.__name__, recorder.calls)
        if recorder.used:
            used = ", ".join(f"refconv.{n}" for n in sorted(recorder.used))
            report.notes.append(f"note: your function called {used}, which this exercise asks "
                                f"you to write: in a graded run that call fails and the case "
                                f"scores 0.")
        return report

    run.unwrapped = checker
    CHECKERS[name] = run
    return run


def replay(checker, meta, calls, answer, seed):
    """The :class:`Report` of a recorded run, computed here: the checker against the record."""
    fn = CHECKERS[checker].unwrapped
    student = answer if meta.get("has_answer") else Replay(calls, meta.get("name") or "answer")
    return fn(student, **hidden_options(checker, seed))
