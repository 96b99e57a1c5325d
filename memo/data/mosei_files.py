"""CMU-MOSEI's emotion-task HDF5 files, text_/audio_/video_/ey_{split}.h5 (`d1`): reader and
writer."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memo.data.split import SPLITS, Corpus, Split
from memo.data.validate import (
    check_file,
    check_shape,
    clean_features,
    expect_same,
    listing,
    one_line,
)
from memo.errors import MemoError

if TYPE_CHECKING:
    import h5py

    from memo.data.datasets.mosei import Mosei

log = logging.getLogger(__name__)

FILES = {"text": "text_{}_emb.h5", "audio": "audio_{}.h5", "vision": "video_{}.h5"}
LABELS = "ey_{}.h5"
DATASET_KEY = "d1"
SMALL_DATASET = 64 * 2**20  # bytes a dataset may always declare, however little it stores
MAX_EXPANSION = 50  # otherwise at most this many bytes declared per byte stored
# h5py is imported where a file is read or written: a run on the built-in corpus needs none.


def builtin_filters() -> set[int]:
    """The HDF5 filters built into HDF5 and h5py (reading with them loads no plug-in)."""
    import h5py

    return {
        h5py.h5z.FILTER_DEFLATE,
        h5py.h5z.FILTER_SHUFFLE,
        h5py.h5z.FILTER_FLETCHER32,
        h5py.h5z.FILTER_SZIP,
        h5py.h5z.FILTER_NBIT,
        h5py.h5z.FILTER_SCALEOFFSET,
        h5py.h5z.FILTER_LZF,
    }


def expected_files(dataset: Mosei) -> list[Path]:
    """The 12 files the emotion task reads, split by split."""
    folder = Path(dataset.dir)
    return [folder / name.format(s) for s in SPLITS for name in (*FILES.values(), LABELS)]


def read_corpus(dataset: Mosei) -> Corpus:
    """All three splits, validated; labels are `ey > 0` in the order of `dataset.emotions`.
    Every `d1` is checked, and counts and sizes compared, from metadata before any read."""
    folder = Path(dataset.dir)
    emotions = tuple(dataset.emotions)
    shapes = {}
    for split in SPLITS:
        for modality, name in FILES.items():
            path = folder / name.format(split)
            shapes[modality, split] = dataset_shape(path, ("N", "T", "D"), str(path))
        ey_path = folder / LABELS.format(split)
        where = f"{ey_path} (columns {emotions})"
        shapes["labels", split] = dataset_shape(ey_path, ("N", len(emotions)), where)
        expect_same(
            f"sample counts (first dimension) of the {split} files in {folder}",
            {name.format(split): shapes[m, split][0] for m, name in FILES.items()}
            | {LABELS.format(split): shapes["labels", split][0]},
        )
    for modality, name in FILES.items():
        expect_same(
            f"{modality} feature sizes (last dimension) across splits in {folder}",
            {name.format(s): shapes[modality, s][2] for s in SPLITS},
        )
    splits = {s: _read_split(folder, s, dataset) for s in SPLITS}
    return Corpus(dataset.name, "files", f"CMU-MOSEI files in {folder}", splits)


def write_corpus(corpus: Corpus, out: Path, dataset: Mosei) -> list[Path]:
    """text_/audio_/video_/ey_/y_{split}.h5 with float64 dataset `d1`; ey holds 1.0 per label."""
    import h5py

    written = []
    for s in SPLITS:
        split = corpus.splits[s].columns(dataset.emotions)
        arrays = {name.format(s): getattr(split, m) for m, name in FILES.items()}
        arrays[LABELS.format(s)] = split.labels
        arrays[f"y_{s}.h5"] = np.zeros((len(split), 1))  # sentiment, unused by the task
        for name, array in arrays.items():
            with h5py.File(out / name, "w") as file:
                file.create_dataset(DATASET_KEY, data=np.asarray(array, dtype=np.float64))
            written.append(out / name)
    return written


def _read_split(folder: Path, split: str, dataset: Mosei) -> Split:
    features = {}
    for modality, name in FILES.items():
        path = folder / name.format(split)
        where = f"{path} ({split} {modality})"
        with _open(path) as file:
            node = _dataset(file, path, ("N", "T", "D"), str(path))
            features[modality] = clean_features(node, where, bool(dataset.zero_nonfinite))
    ey_path = folder / LABELS.format(split)
    emotions = tuple(dataset.emotions)
    with _open(ey_path) as file:
        ey = _dataset(file, ey_path, ("N", len(emotions)), f"{ey_path} (columns {emotions})")[()]
    return Split(**features, labels=intensities_to_labels(ey, ey_path), emotions=emotions)


def intensities_to_labels(ey: np.ndarray, path: Path) -> np.ndarray:
    """0/1 float32 labels `ey > 0`; intensities must be finite and non-negative.

    They are multiples of 1/3 in the release (a few exceed 3); other values only warn.
    """
    bad = ~np.isfinite(ey) | (ey < 0)
    if bad.any():
        raise MemoError(
            f"{path}: expected finite non-negative emotion intensities, found {int(bad.sum())} "
            f"values that are not (e.g. {ey[bad][:3].tolist()})"
        )
    thirds = np.abs(ey * 3 - np.round(ey * 3)) > 1e-3
    if thirds.any():
        log.warning(
            "%s: %d intensities are not multiples of 1/3 (e.g. %s)",
            path,
            int(thirds.sum()),
            ey[thirds][:3].tolist(),
        )
    return (ey > 0).astype(np.float32)


def dataset_shape(path: Path, expected: tuple[int | str, ...], where: str) -> tuple[int, ...]:
    """The shape of `path`'s `d1`, checked from metadata alone (see `_dataset`)."""
    with _open(path) as file:
        return _dataset(file, path, expected, where).shape


@contextmanager
def _open(path: Path) -> Iterator[h5py.File]:
    """`path` opened read-only; HDF5's errors become one line naming the file."""
    import h5py

    check_file(path)  # a FIFO would block, a device never end
    try:
        with h5py.File(path, "r") as file:
            yield file
    except OSError as err:
        raise MemoError(f"{path}: not a readable HDF5 file ({one_line(err)})") from None


def _dataset(
    file: h5py.File, path: Path, expected: tuple[int | str, ...], where: str
) -> h5py.Dataset:
    """`file`'s `d1` once its metadata shows it is a hard link to plain numbers of `expected`
    shape that pass `check_storage`."""
    import h5py

    link = file.get(DATASET_KEY, getlink=True)
    if link is None:
        raise MemoError(
            f"{path}: expected an HDF5 dataset named '{DATASET_KEY}', "
            f"found keys {listing(file.keys())}"
        )
    if isinstance(link, h5py.ExternalLink):
        raise MemoError(
            f"{path}: '{DATASET_KEY}' is an external link to {link.filename}:{link.path}; "
            "expected a dataset stored in this file"
        )
    if isinstance(link, h5py.SoftLink):
        raise MemoError(
            f"{path}: '{DATASET_KEY}' is a soft link to {link.path}; "
            "expected a dataset stored in this file"
        )
    node = file.get(DATASET_KEY)
    dtype = getattr(node, "dtype", None)
    numeric = isinstance(node, h5py.Dataset) and dtype.kind in "biuf" and not dtype.fields
    if not numeric or node.shape is None:  # None: an empty dataspace (h5py.Empty)
        raise MemoError(f"{path}: '{DATASET_KEY}' must be a numeric dataset, found {node!r}")
    check_shape(node.shape, expected, where)
    check_storage(node, path, DATASET_KEY)
    return node


def check_storage(node: h5py.Dataset, path: Path, name: str) -> None:
    """Refuse dataset `name` of `path` unless it reads this file only (no external or virtual
    data, no plug-in filter) and stores data, and not far less than it declares."""
    if node.is_virtual or node.external:
        raise MemoError(
            f"{path}: {name!r} keeps its data in other files (virtual dataset or "
            "external storage); expected a dataset stored in this file"
        )
    plist = node.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = sorted(set(filters) - builtin_filters())
    if unknown:
        raise MemoError(
            f"{path}: {name!r} uses HDF5 filters {unknown}, which are not built in "
            "(a plug-in would be loaded to read it)"
        )
    declared = math.prod(node.shape) * node.dtype.itemsize
    stored = min(node.id.get_storage_size(), path.stat().st_size)
    if declared > max(SMALL_DATASET, MAX_EXPANSION * stored):
        raise MemoError(
            f"{path}: {name!r} declares shape {node.shape} of {node.dtype} ({declared} bytes) "
            f"but stores {stored} bytes; refused (limit: {MAX_EXPANSION} x the stored size, "
            f"or {SMALL_DATASET >> 20} MiB)"
        )
    if declared and not stored:
        raise MemoError(
            f"{path}: {name!r} declares shape {node.shape} but holds no data (never written; "
            "every value would read as the fill value)"
        )
    chunk = math.prod(node.chunks or ()) * node.dtype.itemsize
    if chunk > max(SMALL_DATASET, declared):  # each chunk is decompressed whole
        raise MemoError(
            f"{path}: {name!r} has chunks of shape {node.chunks} ({chunk} bytes), larger "
            f"than the dataset and than {SMALL_DATASET >> 20} MiB; refused"
        )
