"""A disk cache of a corpus's validated float32 arrays, so real files are parsed only once.

An entry is a folder `<root>/<key>/` of `.npy` files plus `manifest.json` (shapes, dtypes,
emotions). The key hashes the reader's settings and each source file's identity: path,
device, inode, size, mtime and ctime. The kernel sets ctime on every write, rename and
metadata change and no tool can set it back, so a same-size replacement that keeps the mtime
(`cp -p`, `rsync -a`, `tar`, `touch -r`) misses the cache (docs/security.md: why not a hash).
One process builds a missing entry while others wait on its lock file, then read it.
Entries are built in a temporary folder and renamed into place; the manifest is written
last, and an entry whose arrays do not match it is rebuilt. Temporaries left by a killed
writer are removed by the next run. Arrays are memory-mapped copy-on-write: pages are read on
use and shared, yet the arrays are writable (torch warns on read-only arrays) and writes
never reach the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import stat
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memo.data.split import MODALITIES, Corpus, Split
from memo.errors import MemoError

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1  # bump when the entry layout changes
FIELDS = (*MODALITIES, "labels")
MANIFEST = "manifest.json"
STALE_AFTER_S = 24 * 3600  # a temporary this old is abandoned, whoever wrote it


def file_identity(path: Path) -> list[object]:
    """What tells one version of a file from another: a rewrite or a copy changes the ctime."""
    stat = path.stat()
    return [
        str(path.resolve()),
        stat.st_dev,
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ctime_ns,
    ]


def cache_key(sources: list[Path], settings: dict) -> str:
    """A hash of the sources' identities (`file_identity`) and of `settings`."""
    stamps = [file_identity(path) for path in sources]
    blob = json.dumps({"layout": LAYOUT_VERSION, "sources": stamps, "settings": settings})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def temp_sibling(target: Path) -> Path:
    """A unique temporary path next to `target`, named after this host and process so that
    `remove_stale_temps` can tell when its writer is gone."""
    tag = f"{socket.gethostname()}@{os.getpid()}@{uuid.uuid4().hex[:8]}"
    return target.with_name(f".tmp-{target.name}@{tag}")


def remove_stale_temps(folder: Path) -> None:
    """Delete the temporaries in `folder` whose writer died: its process on this host is gone,
    or the temporary is older than `STALE_AFTER_S` (another host's, or a reused pid)."""
    host = socket.gethostname()
    for path in folder.glob(".tmp-*"):
        try:
            _, owner, pid, _ = path.name.rsplit("@", 3)
            old = time.time() - path.lstat().st_mtime > STALE_AFTER_S
            if old or (owner == host and not _alive(int(pid))):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        except (ValueError, OSError):  # not one of ours, or removed meanwhile
            continue


def _alive(pid: int) -> bool:
    """Whether process `pid` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def cached_corpus(
    root: Path, sources: list[Path], settings: dict, build: Callable[[], Corpus]
) -> Corpus:
    """The corpus cached under `root` for these sources and settings, built once by `build`."""
    root = Path(root)
    key = cache_key(sources, settings)
    entry = root / key
    remove_stale_temps(root)
    corpus = read_entry(entry)
    if corpus is not None:
        log.info("loaded %s arrays from cache %s", corpus.dataset, entry)
        return corpus
    try:
        root.mkdir(parents=True, exist_ok=True)
        # no link followed; a FIFO put in its place fails (ENXIO) instead of blocking the run
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        lock = os.fdopen(os.open(root / f"{key}.lock", flags, 0o666), "a")
    except OSError as err:
        log.warning("could not write cache %s (%s); continuing without it", entry, err)
        return build()
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held by a process building this entry: wait for it
        corpus = read_entry(entry, warn=False)
        if corpus is not None:
            return corpus
        corpus = build()
        if not _unchanged(sources, settings, key):
            log.warning("source files changed while being read; not caching them in %s", entry)
            return corpus
        try:
            write_entry(entry, corpus)
        except OSError as err:
            log.warning("could not write cache %s (%s); continuing without it", entry, err)
            return corpus
    return read_entry(entry) or corpus


def _unchanged(sources: list[Path], settings: dict, key: str) -> bool:
    """Whether the sources still have the identities that `key` was made from."""
    try:
        return cache_key(sources, settings) == key
    except OSError:
        return False


def read_entry(entry: Path, warn: bool = True) -> Corpus | None:
    """The corpus stored in `entry`, memory-mapped; None when absent, incomplete or corrupt
    (with a warning unless `warn` is false)."""
    manifest_path = entry / MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(regular(manifest_path).read_text())
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
    except (OSError, EOFError, ValueError, KeyError, TypeError, RecursionError, MemoError) as err:
        if warn:
            log.warning("cache entry %s is damaged (%s); rebuilding it", entry, err)
        return None


def _read_split(folder: Path, meta: dict) -> Split:
    arrays = {}
    for field in FIELDS:
        array = np.load(regular(folder / f"{field}.npy"), mmap_mode="c", allow_pickle=False)
        shape, _ = meta["arrays"][field]
        if list(array.shape) != shape or array.dtype != np.float32:  # as `_write_split` wrote
            raise ValueError(f"{folder / field}.npy holds {array.dtype}{array.shape}")
        arrays[field] = array
    return Split(**arrays, emotions=tuple(meta["emotions"]))


def regular(path: Path) -> Path:
    """`path` if it is itself a regular file, else ValueError: caches hold only files memo
    wrote, never links (to data memo did not check), pipes (opening one blocks) or devices."""
    if not stat.S_ISREG(path.lstat().st_mode):
        raise ValueError(f"{path} is not a regular file")
    return path


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a cache file written by `np.savez`. ValueError unless it is a `regular`
    file whose members are stored uncompressed within its size (`np.savez` never compresses;
    a compressed member could expand to any size); OSError when it cannot be read."""
    size = regular(path).stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path}: {err}") from None
    packed = any(member.compress_type != zipfile.ZIP_STORED for member in members)
    if packed or sum(member.file_size for member in members) > size:
        raise ValueError(f"{path} has compressed members or declares more than it holds")
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_entry(entry: Path, corpus: Corpus) -> None:
    """Write `corpus` as `entry` atomically: into a temporary folder, then rename it. The
    caller holds the entry's lock; a damaged entry in the way is moved aside first."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(entry)
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
        if entry.exists():
            damaged = temp_sibling(entry)
            os.replace(entry, damaged)
            shutil.rmtree(damaged, ignore_errors=True)
        os.replace(tmp, entry)
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
