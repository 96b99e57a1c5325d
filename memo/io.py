"""Atomic file writes: a crash mid-write never leaves a truncated file behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from memo.errors import MemoError


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a temp file in the same folder, fsync it, then rename it to `path`.

    The file gets the permissions a plain `open` would give (0666 less the umask). A failed
    write (disk full, permissions) is a MemoError naming `path`; the old file is untouched.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        _discard(tmp)
        raise MemoError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        Path(tmp).unlink(missing_ok=True)


def remove_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files a killed `atomic_write` left in `folder`; call only while no other
    process writes there (e.g. under the run lock). Returns what was removed."""
    stale = [p for p in Path(folder).glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf floats by None so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path | str, data: Any) -> None:
    """Write `data` as indented strict JSON (NaN becomes null), atomically."""
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))
