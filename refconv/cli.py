"""The ``refconv`` command line.

``refconv demo`` draws the gates of a ConvLSTM and a ConvGRU trained to hold a
shape in memory (``refconv.tasks``), then of untrained ones over a small
synthetic video, so a learner can see the equations at work before reading them. Everything is seeded: the same
arguments always draw the same pictures.
"""

import argparse
import os
import sys
import time

__all__ = ["main"]

LSTM_NAMES = ["z", "z_i", "z_f", "z_o", "c", "h"]
GRU_NAMES = ["r", "u", "candidate", "h"]

# Small enough to run in a few seconds on two cores, big enough to see shapes.
FILTERS = 8
KERNEL = 5
DPI = 100


def main(argv=None):
    """Run the command line; returns the exit status (0 success, 2 usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args, parser)


def _parser():
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
    demo.add_argument("--seed", type=int, default=0, metavar="N",
                      help="seed of the video and of the weights (default: %(default)s)")
    demo.add_argument("--timesteps", type=int, default=10, metavar="T",
                      help="frames in the video (default: %(default)s)")
    demo.add_argument("--size", type=int, default=48, metavar="S",
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
    golden.set_defaults(run=_golden)

    compare = commands.add_parser(
        "compare", help="compare a candidate's arrays with a reference's, per gate and step",
        description="Compare CANDIDATE with REFERENCE (golden folders or .npz files); exit 1 "
                    "when any tensor is outside the tolerance.")
    compare.add_argument("reference", metavar="REFERENCE")
    compare.add_argument("candidate", metavar="CANDIDATE")
    compare.add_argument("--rtol", type=float, default=1e-10, help="default: %(default)g")
    compare.add_argument("--atol", type=float, default=1e-12, help="default: %(default)g")
    compare.add_argument("--verbose", action="store_true", help="list every tensor")
    compare.set_defaults(run=_compare)
    return parser


def _golden(args, parser):
    from refconv.golden import write_golden

    start = time.perf_counter()
    manifest = write_golden(args.out)
    print(os.path.abspath(args.out))
    print(f"{len(manifest['cases'])} cases and manifest.json "
          f"(refconv {manifest['refconv_version']}, {manifest['dtype']}) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def _compare(args, parser):
    from refconv.compare import compare

    if args.rtol < 0 or args.atol < 0:
        parser.error(f"--rtol/--atol: expected values >= 0, got {args.rtol} and {args.atol}")
    try:
        result = compare(args.reference, args.candidate, rtol=args.rtol, atol=args.atol)
    except (OSError, ValueError, KeyError) as error:
        print(f"refconv compare: {error}", file=sys.stderr)
        return 2
    print(result.report(verbose=args.verbose))
    return 0 if result.passed else 1


def _demo(args, parser):
    # Agg draws to files only: the demo must work on a machine without a display.
    import matplotlib
    matplotlib.use("Agg")

    import refconv
    from refconv import data, tasks, viz

    if args.seed < 0:
        parser.error(f"--seed: expected an int >= 0, got {args.seed}")
    if not 1 <= args.timesteps <= 50:
        parser.error(f"--timesteps: expected 1 to 50 (one column per step), got {args.timesteps}")
    if not data.MIN_SIZE <= args.size <= 256:
        parser.error(f"--size: expected {data.MIN_SIZE} to 256, got {args.size}")

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
        "lstm_gates.png": viz.gate_grid(lstm_gates, LSTM_NAMES, frames=video,
                                        title=f"ConvLSTM gates ({untrained})"),
        "lstm_traces.png": viz.gate_traces(lstm_gates, LSTM_NAMES),
        "lstm_saturation.png": viz.saturation(lstm_gates, ["z_i", "z_f", "z_o"]),
        "gru_gates.png": viz.gate_grid(gru_gates, GRU_NAMES, frames=video,
                                       title=f"ConvGRU gates ({untrained})"),
    }

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for name, figure in figures.items():
        _save_png(figure, os.path.join(out, name))

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
        print("refconv demo --notebooks: the notebooks live in the source checkout "
              "(pip install -e \".[notebooks]\" from a clone); not found beside this "
              f"installation ({runner})", file=sys.stderr)
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
                  f"(pip install -e \".[crosscheck]\")")
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


def _save_png(figure, path):
    """Write ``figure`` as a PNG with a 256-colour palette.

    The gate pictures of an untrained cell are noisy, and noise compresses
    badly: a full-colour PNG of the LSTM grid is ~400 KB. These figures hold
    far fewer than 256 distinct colours that matter, so a palette image looks
    the same at about a third of the size.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image   # Pillow: a dependency of matplotlib

    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(DPI)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    Image.fromarray(rgb).quantize(256).save(path, format="png", optimize=True)
