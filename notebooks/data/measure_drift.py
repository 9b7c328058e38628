"""How far a float32 PyTorch ConvLSTM drifts from refconv's float64, step by step.

Notebook 6 (``notebooks/06_oracle.ipynb``) plots what this script measures; it
runs the CPU part itself, and reads the GPU part from the file this script
writes when the notebook runs where there is no GPU. Run it on a machine with
a CUDA GPU to record the GPU curves (from the repository root)::

    python notebooks/data/measure_drift.py              # writes notebooks/data/drift.json
    python notebooks/data/measure_drift.py --out drift.json

It needs only torch, numpy and refconv, and takes a few seconds.

What it measures. The model is the widely copied ndrplz/ConvLSTM_pytorch cell
(one ``Conv2d`` over ``cat([x, h])``, gate blocks ``i, f, o, g``), run for 200
steps of 16 x 16 moving-shapes frames in float32, from a zero state. refconv
runs the same float32 weights and inputs, widened exactly to float64, so the
only difference is float32 arithmetic. A forward hook on the cell's
convolution records its output ``y`` at every step; the gates are its four
blocks squashed as the cell squashes them (the same float32 operations on the
same tensor, so the same bits). For each quantity (``z`` = the candidate ``g``
after tanh, ``z_i``, ``z_f``, ``z_o``, ``c``, ``h``) and each step ``t`` the error is
what ``refconv compare`` reports per step: ``max |float32 - float64|`` over the
batch and the frame at step ``t``, divided by ``max |float64|`` there.

Runs:

* ``cpu/float32``: always.
* ``gpu/float32``: CUDA, TF32 off for convolutions and matrix products
  (``torch.backends.cudnn.allow_tf32 = False``, ``torch.backends.cuda.matmul.allow_tf32
  = False``). Note that PyTorch's *default* is ``cudnn.allow_tf32 = True``: a
  float32 convolution on an Ampere or newer GPU runs in TF32 unless told not to.
* ``gpu/tf32``: CUDA, both flags True (10-bit mantissa in the products).

Each run has two weight regimes: ``default`` (PyTorch's initialisation, a
cell that forgets quickly) and ``long_memory`` (the same weights times 3 and
3 added to the forget gate's bias, so that the forget gate stays near 1, as in
trained cells that carry information far).
"""

import argparse
import contextlib
import datetime
import json
import pathlib
import platform
import re
import sys

import numpy as np
import torch

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:               # this checkout's refconv, whether installed or not
    sys.path.insert(0, str(REPO))

import refconv  # noqa: E402
from refconv.data import moving_shapes  # noqa: E402
from refconv.interop import from_torch  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "drift.json"

CONFIG = {"batch": 2, "steps": 200, "shape": [16, 16], "channels": 1, "filters": 8,
          "kernel": [3, 3], "seed": 0}
REGIMES = {
    "default": "PyTorch's default initialisation",
    "long_memory": "weights x 3, forget-gate bias + 3 (forget gate near 1: a long memory)",
}
QUANTITIES = ["z", "z_i", "z_f", "z_o", "c", "h"]   # refconv's names, in computation order


class ConvLSTMCell(torch.nn.Module):
    """The cell of ndrplz/ConvLSTM_pytorch: one convolution over cat([x, h]), blocks i, f, o, g."""

    def __init__(self, input_dim, hidden_dim, kernel_size, bias=True):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.conv = torch.nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size,
                                    padding=(kernel_size[0] // 2, kernel_size[1] // 2), bias=bias)

    def forward(self, x, state):
        h_cur, c_cur = state
        combined_conv = self.conv(torch.cat([x, h_cur], dim=1))
        cc_i, cc_f, cc_o, cc_g = torch.split(combined_conv, self.hidden_dim, dim=1)
        i, f, o, g = torch.sigmoid(cc_i), torch.sigmoid(cc_f), torch.sigmoid(cc_o), torch.tanh(cc_g)
        c_next = f * c_cur + i * g
        h_next = o * torch.tanh(c_next)
        return h_next, c_next


def make_cell(regime="long_memory", config=CONFIG):
    """The float32 cell of ``regime``, on the CPU, its weights fixed by ``config["seed"]``."""
    if regime not in REGIMES:
        raise ValueError(f"regime: expected one of {sorted(REGIMES)}, got {regime!r}")
    with torch.random.fork_rng(devices=[]):          # seeded, without touching the caller's RNG
        torch.manual_seed(config["seed"])
        cell = ConvLSTMCell(config["channels"], config["filters"], config["kernel"])
    if regime == "long_memory":
        f = config["filters"]
        with torch.no_grad():
            cell.conv.weight.mul_(3.0)
            cell.conv.bias[f:2 * f] += 3.0           # block f of i, f, o, g
    return cell


def inputs(config=CONFIG):
    """The float32 video ``[B, T, C, H, W]``: seeded moving shapes, channels first."""
    return moving_shapes(batch_size=config["batch"], timesteps=config["steps"],
                         shape=tuple(config["shape"]), channels=config["channels"],
                         seed=config["seed"], dtype=np.float32, data_format="channels_first")


@contextlib.contextmanager
def tf32_mode(enabled):
    """TF32 on or off for cuDNN convolutions and CUDA matrix products; restored afterwards."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def run_float32(cell, video, device="cpu", tf32=False):
    """Run ``cell`` over ``video`` from a zero state; every quantity ``[B, T, F, H, W]`` (NumPy).

    The gates come from a forward hook on ``cell.conv``: its output at each step,
    split into the blocks i, f, o, g and squashed as the cell squashes them.
    """
    recorded = []
    hook = cell.conv.register_forward_hook(lambda module, args, output: recorded.append(output))
    hs, cs = [], []
    try:
        with tf32_mode(tf32), torch.no_grad():
            cell = cell.to(device)
            x = torch.from_numpy(video).to(device)
            batch, _, _, height, width = x.shape
            h = c = x.new_zeros(batch, cell.hidden_dim, height, width)
            for t in range(x.shape[1]):
                h, c = cell(x[:, t], (h, c))
                hs.append(h)
                cs.append(c)
            cc_i, cc_f, cc_o, cc_g = torch.split(torch.stack(recorded, dim=1), cell.hidden_dim,
                                                 dim=2)
            out = {"z": torch.tanh(cc_g), "z_i": torch.sigmoid(cc_i),
                   "z_f": torch.sigmoid(cc_f), "z_o": torch.sigmoid(cc_o),
                   "c": torch.stack(cs, dim=1), "h": torch.stack(hs, dim=1)}
            return {name: value.cpu().numpy() for name, value in out.items()}
    finally:
        hook.remove()
        cell.to("cpu")


def relative_error_per_step(float32_run, cell, video):
    """``{quantity: [relative error at step 0, 1, ...]}`` against refconv in float64."""
    reference = from_torch(cell.state_dict(), list(video.shape[-2:]), prefix="conv.")
    _, _, gates = refconv.dynamic_rnn(reference, video.astype(np.float64), return_gates=True)
    report = refconv.compare({f"gates/{q}": gates[q] for q in QUANTITIES},
                             {f"gates/{q}": float32_run[q] for q in QUANTITIES}, rtol=0, atol=0)
    per_step = {t.key[len("gates/"):]: [rel for _, rel, _ in t.per_step] for t in report.tensors}
    return {q: per_step[q] for q in QUANTITIES}


def measure(device="cpu", tf32=False, regime="long_memory", config=CONFIG):
    """The per-step relative errors of one run: ``{quantity: [float, ...]}``."""
    cell, video = make_cell(regime, config), inputs(config)
    return relative_error_per_step(run_float32(cell, video, device, tf32), cell, video)


def cpu_name():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def rounded(errors):
    """Three significant digits: the curves span decades, and the file stays small."""
    return {q: [float(f"{v:.3g}") for v in values] for q, values in errors.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT,
                        help="where to write the JSON (default: %(default)s)")
    args = parser.parse_args(argv)

    record = {
        "script": "notebooks/data/measure_drift.py",
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__, "numpy": np.__version__, "refconv": refconv.__version__,
        "config": CONFIG, "regimes": REGIMES, "quantities": QUANTITIES,
        "error": "per step: max |float32 - float64| / max |float64| over the batch and the frame",
        "float32_eps": float(np.finfo(np.float32).eps),
        "cpu": {"device": cpu_name(),
                "runs": {"float32": {r: rounded(measure("cpu", False, r)) for r in REGIMES}}},
        "gpu": None,
    }
    if torch.cuda.is_available():
        record["gpu"] = {
            "device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "runs": {name: {r: rounded(measure("cuda", tf32, r)) for r in REGIMES}
                     for name, tf32 in (("float32", False), ("tf32", True))},
        }
    text = json.dumps(record, indent=1)
    # one line per list of numbers (a curve), not one line per number
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: json.dumps(json.loads(m.group(0))), text)
    args.out.write_text(text + "\n")

    print(f"{args.out}: torch {torch.__version__}, CPU {record['cpu']['device']}, "
          f"GPU {record['gpu']['device'] if record['gpu'] else 'absent (no CUDA device)'}")
    for where in ("cpu", "gpu"):
        for name, runs in ((record[where] or {}).get("runs") or {}).items():
            for regime, errors in runs.items():
                print(f"  {where}/{name:7s} {regime:11s}  h: first step {errors['h'][0]:.2e}, "
                      f"last {errors['h'][-1]:.2e};  "
                      f"c: first step {errors['c'][0]:.2e}, last {errors['c'][-1]:.2e}")


if __name__ == "__main__":
    main()
