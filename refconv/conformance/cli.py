"""``refconv conformance``: the command line of :mod:`refconv.conformance`.

``refconv/cli.py`` adds it with :func:`register`; everything it does is here.
Every path and number is checked before any work (a pipeline must not wait two
minutes to hear that its ``--json`` folder does not exist): a bad one is one
line on stderr and exit status 2.

Exit status: 0 PASSED, 1 FAILED (with ``--strict``, also a TRUNCATED row), 2 a
usage error (a bad argument, a missing or unreadable file, a runtime not
installed, a model the importer cannot map).
"""

import datetime
import math
import os
import sys
import time

__all__ = ["register"]

EPILOG = ("exit status: 0 PASSED; 1 FAILED (a float32 row at the export's length outside the "
          "tolerance, or with --strict any TRUNCATED row); 2 usage error (one line on stderr: "
          "a bad argument, a missing file, a runtime not installed, a model refconv cannot map)")


def register(commands):
    """Add the ``conformance`` command to ``commands`` (an argparse subparsers object)."""
    from . import ATOL, RTOL, RUNTIMES

    parser = commands.add_parser(
        "conformance", help="hold ONNX Runtime and TFLite deployments against refconv, per "
                            "step and gate",
        description="Hold a deployed ConvLSTM against refconv's run of the same weights: worst "
                    "error per output, state and gate, the first layer, gate and step outside "
                    "the tolerance. Your own model: --onnx FILE --torch-state STATE (a PyTorch "
                    "state_dict, or a refconv .npz), or --tflite FILE --keras FILE. Without "
                    "them: export a seeded PyTorch ConvLSTM to ONNX (run by ONNX Runtime at "
                    "each graph optimisation level) and convert Keras ConvLSTM2D layers to "
                    "TFLite (looped and unrolled), for each runtime installed here. Every "
                    "deployment is also fed another length (REFUSED: it raised; TRUNCATED: it "
                    "returned fewer steps without an error). With --merge, print the table of "
                    "reports written by --json (runs in different environments).",
        epilog=EPILOG)
    own = parser.add_argument_group("your own model")
    own.add_argument("--onnx", metavar="FILE", help="an ONNX file of a ConvLSTM (one Conv per "
                                                    "layer over [x, h], as ndrplz's)")
    own.add_argument("--torch-state", metavar="FILE",
                     help="its PyTorch state_dict (torch.save(model.state_dict(), FILE); read "
                          "with weights_only=True) or a refconv .npz of parameters")
    own.add_argument("--gate-order", metavar="ORDER", type=_gate_order,
                     help="the blocks' order in the weights, e.g. ifog (default: read from "
                          "the graph)")
    own.add_argument("--forget-bias", metavar="X", type=_finite,
                     help="a constant the model adds to f before its sigmoid (default: read "
                          "from the graph)")
    own.add_argument("--tflite", metavar="FILE", help="a TFLite file of Keras ConvLSTM layers")
    own.add_argument("--keras", metavar="FILE", help="the .keras model it was converted from")
    parser.add_argument("--runtime", nargs="+", choices=list(RUNTIMES), metavar="NAME",
                        help=f"runtimes to check, of {list(RUNTIMES)} (default: every one "
                             f"installed)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--merge", nargs="+", metavar="FILE",
                        help="merge these JSON reports into one table (runs nothing)")
    parser.add_argument("--rtol", type=_finite_nonnegative, default=RTOL,
                        help="default: %(default)g")
    parser.add_argument("--atol", type=_finite_nonnegative, default=ATOL,
                        help="default: %(default)g")
    parser.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=0, metavar="N",
                        help="seed of the weights and inputs (default: %(default)s)")
    parser.add_argument("--timesteps", type=_int_in(1, 100), default=None, metavar="T",
                        help="sequence length of the export (default: 8, or your file's); "
                             "every deployment is also fed T + 3 steps")
    parser.add_argument("--no-reduced", dest="reduced", action="store_false",
                        help="skip the float16-weight and int8 conversions")
    parser.add_argument("--strict", action="store_true",
                        help="a TRUNCATED row (a runtime silently returning fewer steps) fails")
    parser.add_argument("--verbose", action="store_true",
                        help="CPU features, every error to 3 digits, full labels")
    parser.set_defaults(run=_conformance)


def _conformance(args, parser):
    from . import check_model, install_hint, merge, run

    try:
        _check_arguments(args)
    except UsageError as error:
        print(f"refconv conformance: {error}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        if args.merge:
            report = merge(args.merge)
        elif args.onnx or args.tflite:
            reports = [check_model(model, weights, rtol=args.rtol, atol=args.atol,
                                   seed=args.seed, timesteps=args.timesteps,
                                   **({"gate_order": args.gate_order,
                                       "forget_bias": args.forget_bias} if model == args.onnx
                                      else {}))
                       for model, weights in ((args.onnx, args.torch_state),
                                              (args.tflite, args.keras)) if model]
            report = reports[0] if len(reports) == 1 else _joined(reports)
        else:
            report = run(args.runtime, rtol=args.rtol, atol=args.atol, seed=args.seed,
                         t_export=args.timesteps or 8, reduced=args.reduced)
            if not report.rows:
                raise ImportError("no runtime to check here (ONNX Runtime needs torch, onnx, "
                                  "onnxruntime; TFLite needs tensorflow, ai-edge-litert): "
                                  + install_hint())
    except (OSError, ValueError, TypeError, ImportError) as error:
        print(f"refconv conformance: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    seconds = round(time.perf_counter() - start, 1)
    print(report.table(verbose=args.verbose, strict=args.strict))
    if args.json:
        try:
            report.save(args.json, strict=args.strict, started=started, seconds=seconds)
        except OSError as error:  # checked before the work; the disk may still fill up
            print(f"refconv conformance: --json: cannot write {args.json} "
                  f"({error.strerror or error})", file=sys.stderr)
            return 2
        print(f"report written to {args.json}")
    return 0 if report.verdict(args.strict) == "PASSED" else 1


def _joined(reports):
    """One report of an ONNX and a TFLite check run here: one environment, both rows."""
    from .report import Report

    environment = dict(reports[0].runs[0])
    environment["read"] = [note for r in reports for note in r.runs[0].get("read", [])]
    return Report([environment], [row for r in reports for row in r.rows], reports[0].rtol,
                  reports[0].atol)


class UsageError(ValueError):
    """A bad argument found before any work: one line on stderr, exit status 2."""


def _usage(message):
    raise UsageError(message)


def _check_arguments(args):
    """Every argument that can be checked without running anything: a :class:`UsageError` for
    the first bad one."""
    own = [name for name in ("onnx", "torch_state", "tflite", "keras")
           if getattr(args, name) is not None]
    if bool(args.onnx) != bool(args.torch_state):
        _usage(f"--onnx and --torch-state: expected both (the file and its weights), got "
                     f"only {'--onnx' if args.onnx else '--torch-state'}")
    if bool(args.tflite) != bool(args.keras):
        _usage("--tflite and --keras: expected both (the file and the model it was "
                     f"converted from), got only {'--tflite' if args.tflite else '--keras'}")
    if (args.gate_order is not None or args.forget_bias is not None) and not args.onnx:
        _usage("--gate-order/--forget-bias: describe an --onnx file's PyTorch weights; "
                     "expected --onnx FILE --torch-state FILE")
    if args.merge and (own or args.runtime):
        _usage("--merge: merges reports already written; it runs nothing (drop "
                     "--runtime, --onnx, --tflite)")
    if own and args.runtime:
        _usage("--runtime: picks refconv's own seeded models' runtimes; your file says "
                     "its runtime (drop --runtime)")
    suffixes = {"onnx": (".onnx",), "torch_state": (".pt", ".pth", ".npz"),
                "tflite": (".tflite",), "keras": (".keras",)}
    for name in own:
        _readable_file(f"--{name.replace('_', '-')}", getattr(args, name),
                       suffixes[name])
    if args.merge:
        seen = {}
        for path in args.merge:
            _readable_file("--merge", path, (".json",))
            key = os.path.realpath(path)
            if key in seen:
                _usage(f"--merge: {path} is {seen[key]} again; expected different "
                             f"reports")
            seen[key] = path
    if args.json:
        _writable_file("--json", args.json)


def _readable_file(option, path, suffixes):
    if not os.path.isfile(path):
        _usage(f"{option}: {path}: no such file")
    if not os.access(path, os.R_OK):
        _usage(f"{option}: {path}: not readable")
    if not path.lower().endswith(suffixes):
        _usage(f"{option}: expected a {' or '.join(suffixes)} file, got {path}")


def _writable_file(option, path):
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        _usage(f"{option}: {path} is a folder; expected a file to write")
    if not os.path.isdir(folder):
        _usage(f"{option}: {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        _usage(f"{option}: {path}: not writable")


def _finite(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _finite_nonnegative(text):
    import argparse
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _int_in(low, high):
    def parse(text):
        import argparse
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an int from {low} to {high}, got {text!r}")
        return value
    return parse


def _gate_order(text):
    import argparse
    letters = text.lower().replace("c", "g").replace("z", "g")
    if len(letters) != 4 or sorted(letters) != sorted("ifog"):
        raise argparse.ArgumentTypeError(f"expected the four letters i, f, o, g in the weights' "
                                         f"order (ndrplz: ifog), got {text!r}")
    return text.lower()
