"""Where a conformance run happened: versions, platform, CPU features.

float32 rounding depends on the kernels a runtime picks, and those depend on
the CPU (AVX2 or AVX-512, FMA, NCHWc blocking): a table without this header
cannot be compared with another machine's. Versions come from the installed
packages' metadata, so nothing here imports a framework.
"""

import importlib.metadata
import os
import platform

import numpy as np

from .. import __version__

__all__ = ["describe", "PACKAGES"]

# The packages whose versions a table records, when installed.
PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "tensorflow", "tensorflow-cpu",
            "keras", "tf-keras", "ai-edge-litert")

# The CPU flags that change which float32 kernels a runtime runs.
CPU_FEATURES = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "asimd", "sve")


def describe():
    """``{"platform", "python", "versions": {package: version}, "cpu": {model, cores, features}}``.
    """
    versions = {"refconv": __version__, "numpy": np.__version__}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"platform": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "versions": versions, "cpu": _cpu()}


def _cpu():
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags = set(value.split())
                if model and flags and key == "":
                    break  # the first processor's block is enough
    except OSError:  # not Linux: the model from platform, no feature list
        pass
    return {"model": model, "cores": os.cpu_count(),
            "features": [f for f in CPU_FEATURES if f in flags]}
