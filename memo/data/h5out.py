"""HDF5 outputs: files renamed into place only when complete, and datasets grown row by row."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memo.data.validate import output_folder
from memo.errors import MemoError

if TYPE_CHECKING:  # h5py is imported on use: importing this module costs nothing
    import h5py


@contextmanager
def atomic_h5(path: Path | str) -> Iterator[h5py.File]:
    """An HDF5 file built at `.<name>.partial` beside `path`, fsynced, renamed onto it on success.

    On any error (or Ctrl-C) the partial file is removed, and an OSError becomes a MemoError
    naming `path`; a killed run's leftover is overwritten by the next one.
    """
    import h5py

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        output_folder(path.parent, f"cannot write {path} into")
        with h5py.File(tmp, "w") as file:
            yield file
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise MemoError(f"cannot write {path}: {err.strerror or err}") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    """Delete `path` if it can be: none may exist, or its folder may be a file."""
    with suppress(OSError):
        path.unlink()


class RowWriter:
    """Dataset `name` of `file` with rows of `row_shape`, appended in blocks of buffered rows."""

    BLOCK_BYTES = 8 << 20  # flush the buffer once it holds this much

    def __init__(self, file: h5py.File, name: str, row_shape: tuple[int, ...], dtype: type) -> None:
        row_bytes = max(1, int(np.prod(row_shape)) * np.dtype(dtype).itemsize)
        chunk_rows = max(1, min(1024, (1 << 20) // row_bytes))
        self.dataset = file.create_dataset(
            name,
            shape=(0, *row_shape),
            maxshape=(None, *row_shape),
            dtype=dtype,
            chunks=(chunk_rows, *row_shape),
        )
        self.block_rows = max(1, self.BLOCK_BYTES // row_bytes)
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0

    def append(self, rows: np.ndarray) -> None:
        """Queue `rows` (k, *row_shape); written once enough rows are queued, or on `flush`."""
        self.pending.append(rows)
        self.pending_rows += len(rows)
        if self.pending_rows >= self.block_rows:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows at the end of the dataset."""
        if not self.pending:
            return
        start = len(self.dataset)
        self.dataset.resize(start + self.pending_rows, axis=0)
        self.dataset[start:] = np.concatenate(self.pending)
        self.pending, self.pending_rows = [], 0

    def __len__(self) -> int:
        return len(self.dataset) + self.pending_rows
