"""The notebooks that ship inside the package (``refconv/_notebooks``, the repository's ``notebooks/``)."""

import pathlib
import shutil

__all__ = ["notebook_dir", "notebook_paths", "copy_notebooks"]

# In a checkout this is a link to notebooks/; in a wheel, a copy of its notebooks.
SHIPPED = pathlib.Path(__file__).resolve().parent.parent / "_notebooks"
PATTERN = "[0-9][0-9]_*.ipynb"   # 01_convolution.ipynb ...: a notebook added later joins by its number


def notebook_dir():
    """The folder of the shipped notebooks; a clear error when it is missing."""
    if not SHIPPED.is_dir() or not any(SHIPPED.glob(PATTERN)):
        raise FileNotFoundError(f"refconv's notebooks are not at {SHIPPED}: reinstall refconv "
                                f"(the wheel ships them) or run from a full checkout")
    return SHIPPED


def notebook_paths(folder=None):
    """The numbered notebooks of ``folder`` (default: the shipped ones), in order."""
    return sorted(pathlib.Path(folder or notebook_dir()).glob(PATTERN))


def copy_notebooks(out):
    """Copy the shipped notebooks (with their figures) and their data into ``out``; the paths."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_paths():
        written.append(pathlib.Path(shutil.copyfile(path, out / path.name)))
    data = notebook_dir() / "data"
    if data.is_dir():
        (out / "data").mkdir(exist_ok=True)
        for path in sorted(data.iterdir()):
            if path.is_file():
                shutil.copyfile(path, out / "data" / path.name)
    return written
