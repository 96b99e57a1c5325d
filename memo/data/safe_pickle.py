"""Unpickling of downloaded data files that admits numpy arrays and plain containers only.

Plain `pickle.load` calls whatever a file names; these files come from the internet, so
every global a file refers to must be on a short list of array-building functions.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

from memo.errors import MemoError


def _numpy_core(submodule: str) -> str:
    """The module path of `numpy.core.<submodule>` under the installed numpy (2.x: _core)."""
    try:
        importlib.import_module(f"numpy._core.{submodule}")
        return f"numpy._core.{submodule}"
    except ImportError:  # numpy < 1.26 has no numpy._core
        return f"numpy.core.{submodule}"


# (module, name) as written in files -> (module, name) to import here. Files from numpy 1
# name numpy.core, files from numpy 2 name numpy._core; either maps to the installed one.
_ALLOWED: dict[tuple[str, str], tuple[str, str]] = {
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),  # bytes in Python 3 protocol-2 pickles
    **{
        (f"numpy.{core}.{sub}", name): (_numpy_core(sub), name)
        for core in ("core", "_core")
        for sub, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),  # arrays in protocol-5 pickles
        )
    },
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler whose `find_class` refuses every global not in `_ALLOWED`."""

    def __init__(self, file, path: Path, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise MemoError(
                f"{self.path}: refused to load global '{module}.{name}'; only numpy arrays "
                "and plain containers are allowed in data pickles"
            )
        return getattr(importlib.import_module(target[0]), target[1])


def safe_load(path: Path | str, encoding: str = "ASCII") -> object:
    """Unpickle `path` admitting only numpy arrays and plain containers.

    Use encoding="latin1" for Python 2 pickles (their array bytes are Python 2 `str`).
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            return _ArrayUnpickler(file, path, encoding).load()
    except MemoError:
        raise
    except OSError as err:
        raise MemoError(f"{path}: cannot read file ({err.strerror or err})") from None
    except Exception as err:  # a damaged pickle can fail in many ways inside numpy too
        raise MemoError(
            f"{path}: not a readable pickle of numpy arrays ({type(err).__name__}: {err})"
        ) from None
