"""A disk cache of a corpus's validated float32 arrays, so real files are parsed only once.

An entry is a folder `<root>/<key>/` of `.npy` files plus `manifest.json` (shapes, dtypes,
emotions). The key hashes the source files' paths, sizes and mtimes with the reader's
settings, so a changed source or setting misses the cache.
Entries are built in a temporary folder and renamed into place; the manifest is written
last, and an entry whose arrays do not match it is rebuilt. Arrays are memory-mapped
copy-on-write: pages are read on use and shared, yet the arrays are writable (torch warns
on read-only arrays) and writes never reach the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memo.data.split import MODALITIES, Corpus, Split
from memo.errors import MemoError

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1  # bump when the entry layout changes
FIELDS = (*MODALITIES, "labels")
MANIFEST = "manifest.json"


def cache_key(sources: list[Path], settings: dict) -> str:
    """A hash of the sources' resolved paths, sizes and mtimes (ns) and of `settings`."""
    stamps = []
    for path in sources:
        stat = path.stat()
        stamps.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    blob = json.dumps({"layout": LAYOUT_VERSION, "sources": stamps, "settings": settings})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cached_corpus(
    root: Path, sources: list[Path], settings: dict, build: Callable[[], Corpus]
) -> Corpus:
    """The corpus cached under `root` for these sources and settings, built once by `build`."""
    entry = Path(root) / cache_key(sources, settings)
    corpus = read_entry(entry)
    if corpus is not None:
        log.info("loaded %s arrays from cache %s", corpus.dataset, entry)
        return corpus
    corpus = build()
    try:
        write_entry(entry, corpus)
    except OSError as err:
        log.warning("could not write cache %s (%s); continuing without it", entry, err)
        return corpus
    return read_entry(entry) or corpus


def read_entry(entry: Path) -> Corpus | None:
    """The corpus stored in `entry`, memory-mapped; None when absent, incomplete or corrupt."""
    manifest_path = entry / MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        groups = {
            group: {name: _read_split(entry / group / name, meta) for name, meta in splits.items()}
            for group, splits in manifest["groups"].items()
        }
        return Corpus(
            manifest["dataset"],
            manifest["source"],
            manifest["description"],
            groups["splits"],
            groups["extras"],
        )
    except (OSError, EOFError, ValueError, KeyError, TypeError, MemoError) as err:
        log.warning("cache entry %s is damaged (%s); rebuilding it", entry, err)
        return None


def _read_split(folder: Path, meta: dict) -> Split:
    arrays = {}
    for field in FIELDS:
        array = np.load(folder / f"{field}.npy", mmap_mode="c", allow_pickle=False)
        shape, dtype = meta["arrays"][field]
        if list(array.shape) != shape or str(array.dtype) != dtype:
            raise ValueError(f"{folder / field}.npy holds {array.dtype}{array.shape}")
        arrays[field] = array
    return Split(**arrays, emotions=tuple(meta["emotions"]))


def write_entry(entry: Path, corpus: Corpus) -> None:
    """Write `corpus` as `entry` atomically: into a temporary folder, then rename it."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.parent / f".tmp-{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        groups = {}
        for group, splits in (("splits", corpus.splits), ("extras", corpus.extras)):
            groups[group] = {
                name: _write_split(tmp / group / name, s) for name, s in splits.items()
            }
        manifest = {
            "dataset": corpus.dataset,
            "source": corpus.source,
            "description": corpus.description,
            "groups": groups,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(entry, ignore_errors=True)  # a damaged entry being replaced
        try:
            os.replace(tmp, entry)
        except OSError:
            if read_entry(entry) is None:  # not a concurrent writer that got there first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_split(folder: Path, split: Split) -> dict:
    folder.mkdir(parents=True)
    arrays = {}
    for field in FIELDS:
        array = np.ascontiguousarray(getattr(split, field), dtype=np.float32)
        np.save(folder / f"{field}.npy", array, allow_pickle=False)
        arrays[field] = [list(array.shape), str(array.dtype)]
    return {"emotions": list(split.emotions), "arrays": arrays}
