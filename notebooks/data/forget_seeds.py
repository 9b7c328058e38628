"""Train the forgetting task's cell for many seeds and print, per seed, what its forget gate does.

Usage, from the repository root::

    python notebooks/data/forget_seeds.py --seeds 0-9 --out /tmp/forget   # train, then measure
    python notebooks/data/forget_seeds.py --seeds 0-9 --out /tmp/forget   # again: reuses the files
    python notebooks/data/forget_seeds.py --seeds 0-19 --out /tmp/forget \\
        --record notebooks/data/forget_seeds.json                         # what notebook 07 reads

Notebook 07 asserts facts about the forgetting task for the seeds it is given; this script
measures them over more seeds than ship, so that what 07 asserts is known to hold beyond
luck. Per seed (:func:`refconv.ablation.forget_test`, on ``--videos`` held-out videos, each
video with a reset against itself with nothing happening from the reset on): the
forgetting channel's ``z_f`` inside the first shape on the frames around the reset, with
and without it; ``drop``, the smaller ratio of the two on the reset frame and the next;
the error on the reset videos when ``z_f`` is held on those two frames at its value
without the reset (the forgetting channel alone, and every channel), over the trained
cell's; and that held error as a share of the error of answering the first shape.
Training one seed takes seconds to a minute of CPU (600 steps; more while the machine is shared).
"""

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"      # as train_gates.py: the same bits every run
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from refconv import ablation, tasks  # noqa: E402

NAME = "forget_lstm"


def seed_list(text):
    """'0-9', '0,3,5' or '18,10-12' -> a list of ints."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += list(range(int(first), int(last or first) + 1))
    return seeds


def trained(seed, out):
    """The cell of ``seed`` from ``out/seedS/forget_lstm.npz``, trained first if missing or stale."""
    folder = pathlib.Path(out) / f"seed{seed}"
    if (folder / f"{NAME}.npz").exists():
        cell, readout, _, config = tasks.load(NAME, folder)
        if config == dict(tasks.MODELS[NAME], name=NAME, steps=tasks.MODELS[NAME]["steps"], seed=seed):
            return cell, readout
    folder.mkdir(parents=True, exist_ok=True)
    cell, readout, losses = tasks.train(NAME, seed=seed)
    tasks.save(folder / f"{NAME}.npz", NAME, cell, readout, losses, tasks.MODELS[NAME]["steps"], seed)
    return cell, readout


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python notebooks/data/forget_seeds.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default=list(range(10)),
                        help="seeds, as 0-9 or 0,3,5-7 (default: 0-9)")
    parser.add_argument("--out", required=True, help="a folder for the weights (seedS/forget_lstm.npz)")
    parser.add_argument("--videos", type=int, default=48, help="held-out videos (default: 48)")
    parser.add_argument("--record", default=None,
                        help="also write the results to this JSON file (notebook 07 reads "
                             "notebooks/data/forget_seeds.json)")
    args = parser.parse_args(argv)
    inputs, targets = tasks.held_out(NAME, args.videos)
    print(f"{NAME}: {int((ablation.reset_frames(inputs) >= 0).sum())} of {args.videos} held-out "
          f"videos have a reset; z_f of the forgetting channel inside the first shape, mean over "
          f"them; share: the held error over the error of answering the first shape")
    print(ablation.forget_header())
    results = {}
    for seed in args.seeds:
        cell, readout = trained(seed, args.out)
        result = ablation.forget_test(cell, readout, inputs, targets)
        print(ablation.forget_row(seed, result), flush=True)
        results[seed] = {key: (value.tolist() if isinstance(value, np.ndarray) else value)
                         for key, value in result.items()}
        results[seed]["z_f"] = {kind: list(map(float, values)) for kind, values in result["z_f"].items()}
    if args.record:
        record = dict(command=" ".join(["python notebooks/data/forget_seeds.py"] + (argv or sys.argv[1:])),
                      videos=args.videos, design=ablation.forget_design(), seeds=results)
        pathlib.Path(args.record).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
