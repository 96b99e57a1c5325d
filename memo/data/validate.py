"""Checks applied to every input file and feature array, whatever its source."""

from __future__ import annotations

import math
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memo.errors import MemoError

if TYPE_CHECKING:
    import h5py

BLOCK_BYTES = 64 * 2**20  # HDF5 datasets are converted in blocks of about this size
NO_SUCH_FILE = "no such file"
NOT_REGULAR = {  # what a path holds when it is not a regular file, by stat's test
    stat.S_ISDIR: "a directory, not a file",
    stat.S_ISFIFO: "a named pipe (FIFO), not a regular file",
    stat.S_ISCHR: "a character device, not a regular file",
    stat.S_ISBLK: "a block device, not a regular file",
    stat.S_ISSOCK: "a socket, not a regular file",
}


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a data file (links followed), or None for a regular file.

    A directory, pipe or device is refused before it is opened: opening a FIFO blocks until
    a writer comes, and /dev/zero or /dev/urandom never end.
    """
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        if Path(path).is_symlink():
            return f"a broken symbolic link (to {Path(path).readlink()})"
        return NO_SUCH_FILE
    except OSError as err:  # a symlink loop, a file in place of a folder, no permission
        return f"cannot be read ({err.strerror})"
    return next((what for test, what in NOT_REGULAR.items() if test(mode)), None)


def listing(names: Iterable[object], limit: int = 10) -> str:
    """`names` sorted, as a list of at most `limit` reprs and how many there are in all: a
    file's keys go into one-line messages, and a hostile file can hold millions."""
    names = sorted(map(str, names))
    if len(names) <= limit:
        return str(names)
    return f"{str(names[:limit])[:-1]}, ...] ({len(names)} in all)"


def one_line(error: BaseException) -> str:
    """`error`'s message on one line (HDF5's can span several)."""
    return " ".join(str(error).split())


def output_folder(path: Path, what: str) -> Path:
    """`path` as a folder, made if missing; a MemoError naming option `what` when a file is
    in the way or the folder cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MemoError(f"{what} {path}: it is a file, not a folder") from None
    except OSError as err:
        raise MemoError(f"{what} {path}: cannot make this folder ({err.strerror})") from None
    return path


def check_file(path: Path, where: str = "") -> Path:
    """`path` if it is a regular file, else a MemoError `<where>: <path>: <problem>`."""
    problem = file_problem(path)
    if problem:
        raise MemoError(f"{where}{': ' if where else ''}{path}: {problem}")
    return Path(path)


def clean_features(
    source: np.ndarray | h5py.Dataset, where: str, zero_nonfinite: bool = False
) -> np.ndarray:
    """`source` (an array, or an HDF5 dataset read in blocks) as float32 with -inf set to 0.

    NaN, +inf and finite values beyond float32's range (the cast makes them infinite) are an
    error naming `where` (file and split) with the counts, unless `zero_nonfinite` zeroes them.
    So are features (N, T, D) without steps or columns (T or D zero), which no model can use.
    """
    if 0 in source.shape[1:]:
        raise MemoError(
            f"{where}: features of shape {source.shape} have no time steps or no feature "
            "columns; expected (N, T, D) with T and D at least 1"
        )
    if isinstance(source, np.ndarray):
        out, counts = _to_float32(source)
    else:
        out = np.empty(source.shape, np.float32)
        counts = np.zeros(3, dtype=np.int64)
        row_bytes = math.prod(source.shape[1:]) * source.dtype.itemsize
        chunk_rows = source.chunks[0] if source.chunks else 1  # whole chunks: each read once
        step = max(1, BLOCK_BYTES // max(1, row_bytes) // chunk_rows) * chunk_rows
        for start in range(0, source.shape[0], step):
            out[start : start + step], block_counts = _to_float32(source[start : start + step])
            counts += block_counts
    nan, posinf, overflow = (int(c) for c in counts)
    if (nan or posinf or overflow) and not zero_nonfinite:
        too_large = f" and {overflow} finite values beyond float32's range" if overflow else ""
        raise MemoError(
            f"{where}: {nan} NaN and {posinf} +inf values{too_large}; expected finite features "
            "(-inf is zeroed). Set dataset.zero_nonfinite=true to zero them instead."
        )
    return out


def _to_float32(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`array` as float32 with non-finite values zeroed; the counts of NaN, +inf and finite
    values that overflowed in the cast (-inf is zeroed as the real data needs, not counted)."""
    with np.errstate(over="ignore"):
        out = np.asarray(array, dtype=np.float32)
    finite = np.isfinite(out)
    if finite.all():
        return out, np.zeros(3, dtype=np.int64)
    was = np.asarray(array)[~finite]
    counts = np.array([np.isnan(was).sum(), np.isposinf(was).sum(), np.isfinite(was).sum()])
    out = out.copy() if np.may_share_memory(out, array) else out
    out[~finite] = 0.0
    return out, counts


def expect_shape(array: object, expected: tuple[int | str, ...], where: str) -> np.ndarray:
    """`array` as a numeric ndarray whose shape matches `expected` (see `check_shape`)."""
    if not isinstance(array, np.ndarray):
        raise MemoError(
            f"{where}: expected a numpy array of shape {_layout(expected)}, found {type(array)}"
        )
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise MemoError(f"{where}: expected a numeric array, found dtype {array.dtype}")
    check_shape(array.shape, expected, where)
    return array


def check_shape(shape: tuple[int, ...], expected: tuple[int | str, ...], where: str) -> None:
    """Raise unless `shape` matches `expected`: ints are fixed sizes, names such as "N" match
    any size; the error shows e.g. "expected shape (N, 4, 2)"."""
    fits = len(shape) == len(expected) and all(
        isinstance(want, str) or want == got for want, got in zip(expected, shape, strict=True)
    )
    if not fits:
        raise MemoError(f"{where}: expected shape {_layout(expected)}, found {shape}")


def _layout(expected: tuple[int | str, ...]) -> str:
    return "(" + ", ".join(str(d) for d in expected) + ")"


def expect_same(what: str, found: dict[str, object]) -> None:
    """Raise when the values in `found` (source name -> value) are not all equal."""
    if len({repr(v) for v in found.values()}) > 1:
        listing = ", ".join(f"{source}: {value}" for source, value in found.items())
        raise MemoError(f"{what} differ: {listing}")
