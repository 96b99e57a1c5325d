"""Fingerprints of the data files a run read: size and SHA-256, so a number can be traced to
the exact files. Hashes are cached by file identity (inode, size, mtime, ctime), so a file is
hashed once (about 0.6 s per GiB on this project's machine) until it changes."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from memo.data.cache import file_identity
from memo.errors import MemoError
from memo.io import write_json

log = logging.getLogger(__name__)

CHUNK = 8 * 2**20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(paths: list[Path], cache_dir: Path) -> dict[str, dict[str, object]]:
    """`{resolved path: {"size": bytes, "sha256": hex}}` for `paths`, hashes cached under
    `<cache_dir>/fingerprints/`."""
    folder = Path(cache_dir) / "fingerprints"
    result: dict[str, dict[str, object]] = {}
    for path in paths:
        identity = file_identity(path)
        key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
        entry = folder / f"{key}.json"
        try:
            cached = json.loads(entry.read_text())
            digest = cached["sha256"] if cached.get("identity") == identity else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            digest = None
        if digest is None:
            digest = _sha256(path)
            try:
                write_json(entry, {"identity": identity, "sha256": digest})
            except MemoError as error:  # an unwritable cache only costs the hash next time
                log.warning("could not cache a fingerprint: %s", error)
        result[str(path.resolve())] = {"size": path.stat().st_size, "sha256": digest}
    return result
