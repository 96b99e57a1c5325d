"""Emotion word vectors from a file: the authors' pickled dict, or a GloVe text file.

A GloVe text file is gigabytes; it is streamed once for the needed words, which are then
cached under `embeddings.cache_dir` keyed by the file's identity (path, inode, size, mtime,
ctime: see memo.data.cache), so a replaced file is read again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from memo.data.cache import file_identity, load_npz, remove_stale_temps, temp_sibling
from memo.data.embeddings import WordVectors
from memo.data.safe_pickle import safe_load
from memo.data.validate import check_file
from memo.errors import MemoError
from memo.schema import Text

log = logging.getLogger(__name__)

WORD_BYTES = 1 << 16  # a text file's line may hold a word of up to this many bytes ...
VALUE_BYTES = 64  # ... and this many per value ("-1.2345678901234567e-123" is 24)


@dataclass(frozen=True, kw_only=True)
class VectorFile(WordVectors):
    """Vectors read from a file: the authors' pickled dict or a GloVe text file."""

    path: Text  # the vectors file
    format: Literal["auto", "pickle", "text"]  # auto: .txt files as text, anything else pickle
    capitalize: bool  # look up "Anger" instead of "anger" (the authors' --cap)
    cache_dir: Text  # words found in a text file are cached here

    def __post_init__(self) -> None:
        check_file(Path(self.path).absolute(), "config key 'embeddings.path'")  # before data

    def lookup(self, words: list[str]) -> np.ndarray:
        table = read_word_vectors(self, words)
        return np.stack([table[w] for w in words]).astype(np.float32)


def read_word_vectors(embeddings: VectorFile, words: list[str]) -> dict[str, np.ndarray]:
    """word -> float32 vector of size `embeddings.dim`, for every word in `words`.

    With `embeddings.capitalize`, word.capitalize() is looked up instead (the authors' --cap).
    """
    path = Path(embeddings.path)
    check_file(path.absolute(), "config key 'embeddings.path'")  # relative to the run's folder
    dim = int(embeddings.dim)
    lookup = {w: w.capitalize() if embeddings.capitalize else w for w in words}
    if _format(embeddings, path) == "pickle":
        try:
            table = _read_pickle(path)
        except MemoError as err:
            if embeddings.format == "pickle":
                raise
            raise MemoError(
                f"{err} (embeddings.format=auto reads a file not ending in .txt as the authors' "
                "pickle; set embeddings.format=text for a GloVe text file)"
            ) from None
    else:
        wanted = sorted(set(lookup.values()))
        table = _cached_text(path, wanted, dim, Path(embeddings.cache_dir))
    missing = sorted({key for key in lookup.values() if key not in table})
    if missing:
        raise MemoError(f"{path}: {len(missing)} words not found: {missing}")
    return {word: _vector(table[key], key, dim, path) for word, key in lookup.items()}


def _format(embeddings: VectorFile, path: Path) -> str:
    if embeddings.format == "auto":
        return "text" if path.suffix == ".txt" else "pickle"
    return embeddings.format


def _vector(value: object, word: str, dim: int, path: Path) -> np.ndarray:
    """`value` as a finite float32 vector of size `dim`, its size checked before it is
    converted (a pickled value can be a nested list that would expand to gigabytes)."""
    if isinstance(value, np.ndarray):
        size, numeric = value.shape, value.dtype.kind in "biuf"
    elif isinstance(value, (list, tuple)):
        size = (len(value),)
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in value)
    else:
        size, numeric = None, False
    if size is not None and size != (dim,):
        raise MemoError(
            f"{path}: the vector of '{word}' has shape {size}; expected ({dim},) "
            "(config key 'embeddings.dim')"
        )
    if not numeric:
        raise MemoError(f"{path}: the vector of '{word}' is not numeric: {type(value)}")
    try:
        with np.errstate(over="ignore"):
            vector = np.asarray(value, dtype=np.float32)
    except OverflowError:  # a Python int beyond float64
        raise MemoError(
            f"{path}: the vector of '{word}' holds an integer beyond float32's range; "
            "expected finite numbers"
        ) from None
    bad = int(np.sum(~np.isfinite(vector)))
    if bad:
        raise MemoError(
            f"{path}: the vector of '{word}' holds {bad} values that are NaN, infinite or "
            "beyond float32's range; expected finite numbers"
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
    key = json.dumps([file_identity(path), dim, words])
    folder = cache_dir / "word_vectors"
    cache = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    try:
        arrays = load_npz(cache)
        if arrays["vectors"].shape[1:] != (dim,):
            raise ValueError(f"{cache} holds vectors of shape {arrays['vectors'].shape}")
        return dict(zip(arrays["words"].tolist(), arrays["vectors"], strict=True))
    except (OSError, EOFError, ValueError, KeyError):
        pass  # absent or damaged: scan the file again
    found = scan_text(path, set(words), dim)
    tmp = temp_sibling(cache)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)
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
    """Stream a GloVe text file (`word v1 ... vdim` per line) and keep `words` only; the first
    occurrence of a word counts (glove.840B repeats a few).

    A word may contain spaces (840B has a few), so a line is split from the right. Lines are
    read at most `WORD_BYTES + VALUE_BYTES * dim` bytes at a time: a file without line breaks
    is refused, not read whole.
    """
    heads = {w.split(" ")[0].encode() for w in words}
    found: dict[str, np.ndarray] = {}
    longer: dict[str, tuple[int, int]] = {}  # word -> (line, values) of a line with too many
    limit = WORD_BYTES + VALUE_BYTES * dim
    number = 0
    with path.open("rb") as file:
        for number, line in enumerate(iter(lambda: file.readline(limit + 1), b""), start=1):
            if len(line) > limit:
                raise MemoError(
                    f"{path} line {number}: longer than {limit} bytes (a word and {dim} values "
                    "need far fewer); not a GloVe text file"
                )
            if number == 1 and len(line.split()) - 1 != dim:
                raise MemoError(
                    f"{path}: the first line holds {len(line.split()) - 1} values; expected "
                    f"{dim} (config key 'embeddings.dim')"
                )
            head = line[: line.find(b" ")]
            if head not in heads:
                continue
            parts = line.rstrip(b"\r\n").rsplit(b" ", dim)
            word = parts[0].decode("utf-8", errors="replace")
            values = len(line.split()) - 1
            if word not in words and values > dim and head.decode(errors="replace") in words:
                longer.setdefault(head.decode(errors="replace"), (number, values))
            if word in words and word not in found:
                if len(parts) != dim + 1:
                    raise MemoError(f"{path} line {number}: expected '{word}' and {dim} values")
                try:
                    with np.errstate(over="ignore"):  # _vector reports values beyond float32
                        found[word] = np.array([float(v) for v in parts[1:]], dtype=np.float32)
                except ValueError:
                    raise MemoError(
                        f"{path} line {number}: the values of '{word}' are not all numbers"
                    ) from None
                if len(found) == len(words):
                    break
    if number == 0:
        raise MemoError(f"{path}: empty file; expected lines of a word and {dim} values")
    for word, (number, values) in longer.items():
        if word not in found:  # not a longer word that starts with it: a line of more values
            raise MemoError(
                f"{path} line {number}: '{word}' is followed by {values} values; expected {dim} "
                "(config key 'embeddings.dim')"
            )
    return found
