"""``refconv conformance``: the command line of :mod:`refconv.conformance`.

``refconv/cli.py`` adds it with :func:`register`; everything it does is here.
"""

import sys

__all__ = ["register"]


def register(commands):
    """Add the ``conformance`` command to ``commands`` (an argparse subparsers object)."""
    from . import ATOL, RTOL, RUNTIMES

    parser = commands.add_parser(
        "conformance", help="hold ONNX Runtime and TFLite deployments against refconv, per "
                            "step and gate",
        description="Export a seeded PyTorch ConvLSTM to ONNX (run by ONNX Runtime at each "
                    "graph optimisation level) and convert Keras ConvLSTM2D layers to TFLite "
                    "(looped and unrolled), for each runtime installed here; import the same "
                    "weights into refconv and print one table: worst error per output, state "
                    "and gate, the first layer, gate and step outside the tolerance. Exit 1 "
                    "when a float32 deployment run at its export's length fails; truncation "
                    "and reduced precision are reported, not fatal. With --merge, print the "
                    "table of reports written by --json (runs in different environments).")
    parser.add_argument("--runtime", nargs="+", choices=list(RUNTIMES), metavar="NAME",
                        help=f"runtimes to check, of {list(RUNTIMES)} (default: every one "
                             f"installed)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--merge", nargs="+", metavar="FILE",
                        help="merge these JSON reports into one table (runs nothing)")
    parser.add_argument("--rtol", type=float, default=RTOL, help="default: %(default)g")
    parser.add_argument("--atol", type=float, default=ATOL, help="default: %(default)g")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the weights and inputs (default: %(default)s)")
    parser.add_argument("--timesteps", type=int, default=8, metavar="T",
                        help="sequence length of the export (default: %(default)s); every "
                             "deployment is also fed T + 3 steps")
    parser.add_argument("--no-reduced", dest="reduced", action="store_false",
                        help="skip the float16-weight and int8 conversions")
    parser.set_defaults(run=_conformance)


def _conformance(args, parser):
    from . import merge, run

    if args.rtol < 0 or args.atol < 0:
        parser.error(f"--rtol/--atol: expected values >= 0, got {args.rtol} and {args.atol}")
    if not 1 <= args.timesteps <= 100:
        parser.error(f"--timesteps: expected 1 to 100, got {args.timesteps}")
    if args.seed < 0:
        parser.error(f"--seed: expected an int >= 0, got {args.seed}")
    if args.merge:
        if args.runtime:
            parser.error("--merge: merges reports already written; it runs no runtime "
                         "(drop --runtime)")
        try:
            report = merge(args.merge)
        except (OSError, ValueError) as error:
            print(f"refconv conformance: {error}", file=sys.stderr)
            return 2
    else:
        try:
            report = run(args.runtime, rtol=args.rtol, atol=args.atol, seed=args.seed,
                         t_export=args.timesteps, reduced=args.reduced)
        except ImportError as error:
            print(f"refconv conformance: {error}", file=sys.stderr)
            return 2
        if not report.rows:
            print("refconv conformance: no runtime to check here (ONNX Runtime needs torch, "
                  "onnx, onnxruntime; TFLite needs tensorflow, ai-edge-litert): "
                  "pip install \"refconv[deploy]\"", file=sys.stderr)
            return 2
    print(report.table())
    if args.json:
        report.save(args.json)
        print(f"report written to {args.json}")
    return 0 if report.passed else 1
