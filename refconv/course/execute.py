"""Run a notebook top to bottom in a fresh kernel of this very Python."""

import os
import sys
import time

__all__ = ["execute", "kernel_manager_class"]

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def kernel_manager_class(resource_dir):
    """A kernel manager whose kernel is always an IPython kernel of ``sys.executable``.

    Whatever "python3" kernel Jupyter has registered elsewhere, the notebook runs
    with the refconv (and the packages) of the Python running this.
    """
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class ThisPythonKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher",
                                    "-f", "{connection_file}"],
                              display_name=KERNELSPEC["display_name"], language="python",
                              resource_dir=str(resource_dir))

    return ThisPythonKernelManager


def execute(nb, cwd, timeout=60, allow_errors=False, env=None, interrupt_on_timeout=False):
    """Execute ``nb`` in place with ``cwd`` as the working directory: the seconds it took.

    Raises ``nbclient.exceptions.CellExecutionError`` when a cell raises (unless
    ``allow_errors``) and ``CellTimeoutError`` when one runs past ``timeout`` s
    (unless ``interrupt_on_timeout``: then the cell is interrupted, records the
    error, and the run goes on).
    """
    from nbclient import NotebookClient

    env = dict(os.environ if env is None else env)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")   # no debugger warning on stderr
    # refconv's fast path runs a thread per core; OpenBLAS's own threads on top of them
    # spin against each other (4x slower on a busy machine): one BLAS thread each.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            kernel_manager_class=kernel_manager_class(cwd),
                            resources={"metadata": {"path": str(cwd)}},
                            record_timing=False, allow_errors=allow_errors,
                            interrupt_on_timeout=interrupt_on_timeout,
                            # the kernel's own log (e.g. ipykernel's note about TCP) is noise
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    start = time.perf_counter()
    client.execute(env=env)
    return time.perf_counter() - start
