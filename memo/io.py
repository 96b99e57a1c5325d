"""Atomic file writes: a crash mid-write never leaves a truncated file behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a temp file in the same folder, fsync it, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
