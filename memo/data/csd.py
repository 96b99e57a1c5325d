"""CMU Multimodal SDK computational sequences (`.csd`, HDF5): a guarded reader and a writer.

A file holds one root group named after the sequence, with `data/<video id>/features` (n, d)
and `data/<video id>/intervals` (n, 2, seconds), and `metadata/<key>` (JSON strings).
The files come from the internet: the reader checks each node's link type, storage, shape,
dtype and size from the HDF5 headers before it reads any data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memo.data.h5out import atomic_h5
from memo.data.mosei_files import check_storage
from memo.data.validate import check_file, listing, one_line
from memo.errors import MemoError

if TYPE_CHECKING:  # h5py is imported on use: importing this module costs nothing
    import h5py

MAX_ARRAY_BYTES = 1 << 30  # per video and array, as float64; real videos need at most ~0.1 GB


class CsdReader:
    """An open `.csd` file: its root `name`, video `ids` (sorted), feature size `dim`, `read`."""

    def __init__(self, path: Path | str) -> None:
        import h5py

        self.path = check_file(Path(path))  # a FIFO would block, a device never end
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise MemoError(f"{self.path}: not a readable HDF5 file ({one_line(err)})") from None
        try:
            roots = list(self._file.keys())
            if len(roots) != 1:
                raise MemoError(
                    f"{self.path}: expected one top-level group (the sequence), "
                    f"found {listing(roots)}"
                )
            self.name = roots[0]
            root = self._node(self._file, self.name, h5py.Group)
            self._data = self._node(root, "data", h5py.Group)
            self.ids = sorted(self._data.keys())
            if not self.ids:
                raise MemoError(f"{self.path}: '/{self.name}/data' holds no videos")
            features = self._datasets(self.ids[0])[1]
            self.dim = features.shape[1]
            if not self.dim:
                raise MemoError(
                    f"{self.path}: {features.name!r} has shape {features.shape}: no feature columns"
                )
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> CsdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def read(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        """Intervals (n, 2) and features (n, dim) of `video`, as float64."""
        intervals, features = self._datasets(video)
        if features.shape[1] != self.dim:
            raise MemoError(
                f"{self.path}: {features.name!r} has {features.shape[1]} features per row; "
                f"the sequence's first video has {self.dim}"
            )
        try:
            return intervals.astype(np.float64)[()], features.astype(np.float64)[()]
        except OSError as err:
            raise MemoError(f"{self.path}: cannot read video {video!r} ({one_line(err)})") from None

    def _datasets(self, video: str) -> tuple[h5py.Dataset, h5py.Dataset]:
        """The checked intervals and features datasets of `video`."""
        import h5py

        group = self._node(self._data, video, h5py.Group)
        intervals = self._node(group, "intervals", h5py.Dataset)
        features = self._node(group, "features", h5py.Dataset)
        n = intervals.shape[0] if intervals.ndim else -1
        if intervals.shape != (n, 2) or features.ndim != 2 or features.shape[0] != n:
            raise MemoError(
                f"{self.path}: video {video!r} must hold intervals (n, 2) and features (n, d); "
                f"found {intervals.shape} and {features.shape}"
            )
        if n * max(2, features.shape[1]) * 8 > MAX_ARRAY_BYTES:
            raise MemoError(
                f"{self.path}: {features.name!r} declares shape {features.shape}, over the "
                f"{MAX_ARRAY_BYTES >> 20} MiB limit per video"
            )
        return intervals, features

    def _node(self, parent: h5py.Group, key: str, kind: type) -> h5py.Group | h5py.Dataset:
        """`parent[key]` if it is a plain (hard-linked, local) group or numeric dataset."""
        import h5py

        where = f"{parent.name.rstrip('/')}/{key}"
        link = parent.get(key, getlink=True)
        if link is None:
            raise MemoError(f"{self.path}: missing {where!r}")
        if not isinstance(link, h5py.HardLink):
            raise MemoError(f"{self.path}: {where!r} is a {type(link).__name__}; refused")
        node = parent[key]
        if not isinstance(node, kind):
            raise MemoError(f"{self.path}: {where!r} must be an HDF5 {kind.__name__.lower()}")
        if isinstance(node, h5py.Dataset):
            if node.dtype.kind not in "fiu" or node.shape is None:  # None: h5py.Empty
                raise MemoError(f"{self.path}: {where!r} must be numeric, found {node!r}")
            check_storage(node, self.path, where)
        return node


@contextmanager
def csd_writer(
    path: Path | str, name: str, metadata: dict[str, object], compression: str | None = None
) -> Iterator[Callable[[str, np.ndarray, np.ndarray], None]]:
    """Yield `add(video, intervals, features)`; the file appears at `path` only when complete."""
    with atomic_h5(path) as file:
        data = file.create_group(name).create_group("data")

        def add(video: str, intervals: np.ndarray, features: np.ndarray) -> None:
            group = data.create_group(video)
            group.create_dataset("features", data=features, compression=compression)
            group.create_dataset("intervals", data=intervals, compression=compression)

        yield add
        import h5py

        meta = file[name].create_group("metadata")
        for key, value in {"root name": name, **metadata}.items():
            meta.create_dataset(key, data=[json.dumps(value)], dtype=h5py.string_dtype())
