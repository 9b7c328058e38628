"""The ``refconv`` command line.

``refconv demo`` draws the gates of a ConvLSTM and a ConvGRU trained to hold a
shape in memory (``refconv.tasks``), then of untrained ones over a small
synthetic video, so a learner can see the equations at work before reading them. Everything is seeded: the same
arguments always draw the same pictures.

Exit status: 0 success (compare: PASSED), 1 compare FAILED, 2 a usage or I/O
error, always as one line on stderr (``golden``, ``compare`` and ``demo``
check their arguments and destinations before computing anything).
"""

import argparse
import math
import os
import sys
import time

from .conformance.cli import register as register_conformance
from .course.commands import register as register_course
from .vocabulary import GATES, GRU_QUANTITIES, LSTM_QUANTITIES

__all__ = ["main"]

# Small enough to run in a few seconds on two cores, big enough to see shapes.
FILTERS = 8
KERNEL = 5
DPI = 100


class CommandError(Exception):
    """A usage or I/O error found by a command: :func:`main` prints it as one line on
    stderr and returns 2 (not 1, which is compare's FAILED)."""


def main(argv=None):
    """Run the command line; returns the exit status (0 success, 2 usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args, parser)
    except CommandError as error:
        print(f"refconv {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


def _parser():
    from refconv.data import MIN_SIZE

    parser = argparse.ArgumentParser(
        prog="refconv",
        description="refconv: a NumPy reference for convolutional LSTM/GRU cells.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="draw the gates of trained and untrained ConvLSTM and ConvGRU cells",
        description="Draw the gates of a ConvLSTM and a ConvGRU trained on the memory task "
                    "(refconv.tasks; --seed picks the video), then run an untrained ConvLSTM "
                    "and ConvGRU (random, seeded weights) over a seeded moving-shapes video; "
                    "write PNG figures of their gates.")
    demo.add_argument("--out", default="refconv-demo", metavar="DIR",
                      help="folder for the PNG files (default: %(default)s)")
    demo.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=0, metavar="N",
                      help="seed of the video and of the weights (default: %(default)s)")
    demo.add_argument("--timesteps", type=_int_in(1, 50, "one column per step"), default=10,
                      metavar="T", help="frames in the video (default: %(default)s)")
    demo.add_argument("--size", type=_int_in(MIN_SIZE, 256), default=48, metavar="S",
                      help="frames are S x S pixels (default: %(default)s)")
    demo.add_argument("--notebooks", nargs="*", metavar="NN",
                      help="also run the notebooks (all, or those starting with NN; needs a "
                           "source checkout and the 'notebooks' extra) and write them with "
                           "their figures into DIR/notebooks")
    demo.set_defaults(run=_demo)

    golden = commands.add_parser(
        "golden", help="write golden vectors (.npz per case + manifest.json)",
        description="Write refconv's inputs, parameters, outputs, states, gates and gradients "
                    "for a matrix of configurations, one .npz per case, and manifest.json.")
    golden.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    golden.add_argument("--force", action="store_true",
                        help="overwrite files in DIR that refconv golden did not write there "
                             "(a foreign manifest.json, same-named .npz files)")
    golden.set_defaults(run=_golden)

    compare = commands.add_parser(
        "compare", help="compare a candidate's arrays with a reference's, per gate and step",
        description="Compare CANDIDATE with REFERENCE (golden folders or .npz files). Exit 0: "
                    "PASSED; 1: FAILED (a tensor outside the tolerance, missing, not real "
                    "numbers or of the wrong shape, or nothing compared); 2: an error (a "
                    "damaged or foreign manifest, a checksum mismatch, a bad argument, a "
                    "--keys entry matching no key).")
    compare.add_argument("reference", metavar="REFERENCE")
    compare.add_argument("candidate", metavar="CANDIDATE")
    compare.add_argument("--rtol", type=_tolerance, default=1e-10, help="default: %(default)g")
    compare.add_argument("--atol", type=_tolerance, default=1e-12, help="default: %(default)g")
    compare.add_argument("--keys", type=_key_list, metavar="K,K,...",
                         help="compare only these: groups (outputs, states, gates, params, "
                              "grads, inputs), keys or patterns ('gates/*'), comma-separated; "
                              "e.g. outputs,states,gates for a forward-only candidate (default: "
                              "every key of the reference)")
    compare.add_argument("--verbose", action="store_true", help="list every tensor")
    compare.set_defaults(run=_compare)
    register_course(commands)      # course build, course grade, notebooks
    register_conformance(commands)  # imports no framework: the adapters load when run
    for command in (parser, *commands.choices.values()):  # parser: "unrecognized arguments"
        command.error = _one_line_error(command)
    return parser


def _one_line_error(command):
    """argparse's error, as one line on stderr (no usage block), exit status 2."""
    def error(message):
        command.exit(2, f"{command.prog}: {message} (see '{command.prog} --help')\n")
    return error


def _tolerance(text):
    """--rtol, --atol: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _key_list(text):
    """--keys: comma-separated names, none empty."""
    keys = [k.strip() for k in text.split(",")]
    if not all(keys):
        raise argparse.ArgumentTypeError(f"expected comma-separated groups, keys or patterns "
                                         f"(outputs,states,gates), got {text!r}")
    return keys


def _int_in(low, high, why=""):
    """An argparse type: an int in [low, high] (``high`` None: no upper bound)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            expected = f"an int >= {low}" if high is None else f"{low} to {high}"
            raise argparse.ArgumentTypeError(
                f"expected {expected}{f' ({why})' if why else ''}, got {text!r}")
        return value
    return parse


def _golden(args, parser):
    from refconv.golden import write_golden

    start = time.perf_counter()
    try:
        manifest = write_golden(args.out, force=args.force)
    except (OSError, ValueError, TypeError, MemoryError) as error:
        message = str(error)
        if message.startswith("out_dir: "):  # the API's out_dir is the command's --out
            message = "--out: " + message[len("out_dir: "):]
        raise CommandError(message) from None
    print(os.path.abspath(args.out))
    print(f"{len(manifest['cases'])} cases and manifest.json "
          f"(refconv {manifest['refconv_version']}, {manifest['dtype']}) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def _compare(args, parser):
    from refconv.compare import compare

    try:
        result = compare(args.reference, args.candidate, rtol=args.rtol, atol=args.atol,
                         keys=args.keys)
    except (OSError, ValueError, TypeError, MemoryError) as error:
        raise CommandError(error) from None
    print(result.report(verbose=args.verbose))
    return 0 if result.passed else 1


def _demo(args, parser):
    # Agg draws to files only: the demo must work on a machine without a display.
    import matplotlib
    matplotlib.use("Agg")

    import refconv
    from refconv import data, tasks, viz
    from refconv.golden import writable_folder
    try:  # before computing anything
        writable_folder(args.out, "--out")
    except (ValueError, TypeError) as error:
        raise CommandError(error) from None

    start = time.perf_counter()
    shape = [args.size, args.size]
    video = data.moving_shapes(batch_size=1, timesteps=args.timesteps, shape=shape,
                               channels=1, seed=args.seed)

    lstm = refconv.ConvLSTMCell(shape=shape, filters=FILTERS, kernel=[KERNEL, KERNEL])
    lstm.build(in_channels=1, seed=args.seed)
    _, _, lstm_gates = refconv.dynamic_rnn(lstm, video, return_gates=True)

    gru = refconv.ConvGRUCell(shape=shape, filters=FILTERS, kernel=[KERNEL, KERNEL])
    gru.build(in_channels=1, seed=args.seed)
    _, _, gru_gates = refconv.dynamic_rnn(gru, video, return_gates=True)

    untrained = f"untrained, seed {args.seed}, state channel 0 of {FILTERS}"
    figures = {
        **tasks.demo_figures(args.seed),   # trained cells first: what the gates learn to do
        "input_frames.png": viz.frame_strip(video),
        "lstm_gates.png": viz.gate_grid(lstm_gates, LSTM_QUANTITIES, frames=video,
                                        title=f"ConvLSTM gates ({untrained})"),
        "lstm_traces.png": viz.gate_traces(lstm_gates, LSTM_QUANTITIES),
        "lstm_saturation.png": viz.saturation(lstm_gates, [g for g in GATES if g in lstm_gates]),
        "gru_gates.png": viz.gate_grid(gru_gates, GRU_QUANTITIES, frames=video,
                                       title=f"ConvGRU gates ({untrained})"),
    }

    out = os.path.abspath(args.out)
    try:
        for name, figure in figures.items():
            with open(os.path.join(out, name), "wb") as file:
                # A 256-colour palette: the noisy gate pictures of an untrained cell hold far
                # fewer colours that matter, and look the same at about a third of the size.
                file.write(viz.to_png(figure, dpi=DPI))
    except OSError as error:
        raise CommandError(f"--out: cannot write {name} into {out} "
                           f"({error.strerror or error})") from None

    print(out)
    for name in figures:
        print(f"  {name}")
    print(f"({len(figures)} figures in {time.perf_counter() - start:.1f} s)", file=sys.stderr)
    if args.notebooks is not None:
        return _render_notebooks(os.path.join(out, "notebooks"), args.notebooks)
    return 0


def _render_notebooks(out, selection=()):
    """Run every notebook of the checkout, as notebooks/run.py does; write each with its figures.

    Writes ``out/NN_name.ipynb`` (outputs included, for Jupyter or a browser
    extension) and ``out/NN_name/figure_K.png`` (every figure, for any image
    viewer). A notebook whose frameworks are not installed is skipped with a
    note saying what to install.
    """
    import base64
    import importlib.util

    runner = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "notebooks", "run.py")
    if not os.path.exists(runner):
        print("refconv demo --notebooks re-runs the notebooks from their sources, which "
              "live in a source checkout (pip install -e \".[notebooks]\" from a clone). "
              "This installation ships them already run, figures included: "
              "refconv notebooks --out DIR copies them out", file=sys.stderr)
        return 2
    try:
        import nbformat  # noqa: F401  (run.py needs it, and nbclient)
        import nbclient  # noqa: F401
    except ImportError as error:
        print(f"refconv demo --notebooks: {error}; install the 'notebooks' extra: "
              f"pip install -e \".[notebooks]\"", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("refconv_notebooks_run", runner)
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)

    try:
        paths = run.notebook_paths(selection)
    except SystemExit as error:  # an unknown NN
        print(f"refconv demo --notebooks: {error}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    print(out)
    for path in paths:
        missing = run.missing_frameworks(path)
        if missing:
            print(f"  {path.name}: skipped, needs {', '.join(missing)} "
                  f"({run.install_hint(missing)})")
            continue
        nb, seconds = run.execute(path)
        run.write(nb, os.path.join(out, path.name))
        figures = os.path.join(out, path.stem)
        os.makedirs(figures, exist_ok=True)
        pngs = [output["data"]["image/png"] for cell in nb.cells if cell.cell_type == "code"
                for output in cell.outputs if "image/png" in output.get("data", {})]
        for k, png in enumerate(pngs, start=1):
            with open(os.path.join(figures, f"figure_{k}.png"), "wb") as file:
                file.write(base64.b64decode(png))
        print(f"  {path.name}: {len(pngs)} figures in {path.stem}/, {seconds:.1f} s")
    return 0
