"""Emotion word vectors from a file: the authors' pickled dict, or a GloVe text file.

A GloVe text file is gigabytes; it is streamed once for the needed words, which are then
cached under `embeddings.cache_dir` keyed by the file's path, size and mtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from memo.data.safe_pickle import safe_load
from memo.errors import MemoError, config_error

log = logging.getLogger(__name__)

FORMATS = ("auto", "pickle", "text")


def read_word_vectors(embeddings: DictConfig, words: list[str]) -> dict[str, np.ndarray]:
    """word -> float32 vector of size `embeddings.dim`, for every word in `words`.

    With `embeddings.capitalize`, word.capitalize() is looked up instead (the authors' --cap).
    """
    path = Path(embeddings.path)
    if not path.is_file():
        raise MemoError(f"config key 'embeddings.path': no such file {path.resolve()}")
    dim = int(embeddings.dim)
    lookup = {w: w.capitalize() if embeddings.capitalize else w for w in words}
    if _format(embeddings, path) == "pickle":
        table = _read_pickle(path)
    else:
        wanted = sorted(set(lookup.values()))
        table = _cached_text(path, wanted, dim, Path(embeddings.cache_dir))
    missing = sorted({key for key in lookup.values() if key not in table})
    if missing:
        raise MemoError(f"{path}: {len(missing)} words not found: {missing}")
    return {word: _vector(table[key], key, dim, path) for word, key in lookup.items()}


def _format(embeddings: DictConfig, path: Path) -> str:
    fmt = str(embeddings.format)
    if fmt not in FORMATS:
        raise config_error("embeddings.format", fmt, " | ".join(FORMATS))
    if fmt == "auto":
        return "text" if path.suffix == ".txt" else "pickle"
    return fmt


def _vector(value: object, word: str, dim: int, path: Path) -> np.ndarray:
    try:
        vector = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise MemoError(f"{path}: the vector of '{word}' is not numeric: {type(value)}") from None
    if vector.shape != (dim,):
        raise MemoError(
            f"{path}: the vector of '{word}' has shape {vector.shape}; expected ({dim},) "
            "(config key 'embeddings.dim')"
        )
    return vector


def _read_pickle(path: Path) -> dict:
    """The authors' file: a pickled dict word -> list of floats (not a torch file)."""
    table = safe_load(path, encoding="latin1")
    if not isinstance(table, dict):
        raise MemoError(f"{path}: expected a pickled dict word -> vector, found {type(table)}")
    return table


def _cached_text(path: Path, words: list[str], dim: int, cache_dir: Path) -> dict[str, np.ndarray]:
    """The vectors of those `words` that the GloVe text file `path` holds, via the cache."""
    stat = path.stat()
    key = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, dim, words])
    cache = cache_dir / "word_vectors" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    try:
        with np.load(cache, allow_pickle=False) as data:
            return dict(zip(data["words"].tolist(), data["vectors"], strict=True))
    except (OSError, EOFError, ValueError, KeyError):
        pass  # absent or damaged: scan the file again
    found = scan_text(path, set(words), dim)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.tmp")
        with tmp.open("wb") as file:
            np.savez(
                file,
                words=np.array(list(found), dtype=str),
                vectors=np.array(list(found.values()), dtype=np.float32).reshape(-1, dim),
            )
        os.replace(tmp, cache)
    except OSError as err:
        log.warning("could not cache word vectors in %s (%s)", cache, err)
    return found


def scan_text(path: Path, words: set[str], dim: int) -> dict[str, np.ndarray]:
    """Stream a GloVe text file (`word v1 ... vdim` per line) and keep `words` only.

    A word may contain spaces (840B has a few), so a line is split from the right.
    """
    heads = {w.split(" ")[0].encode() for w in words}
    found: dict[str, np.ndarray] = {}
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if number == 1 and len(line.split()) - 1 != dim:
                raise MemoError(
                    f"{path}: the first line holds {len(line.split()) - 1} values; expected "
                    f"{dim} (config key 'embeddings.dim')"
                )
            if line[: line.find(b" ")] not in heads:
                continue
            parts = line.rstrip(b"\r\n").rsplit(b" ", dim)
            word = parts[0].decode("utf-8", errors="replace")
            if word in words and word not in found:
                if len(parts) != dim + 1:
                    raise MemoError(f"{path} line {number}: expected '{word}' and {dim} values")
                found[word] = np.array([float(v) for v in parts[1:]], dtype=np.float32)
                if len(found) == len(words):
                    break
    return found
