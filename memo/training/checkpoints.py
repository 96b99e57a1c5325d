"""Checkpoints are data, not code: plain tensors and containers, saved atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from memo.errors import MemoError
from memo.io import atomic_write


def save_checkpoint(path: Path | str, state: dict[str, Any]) -> None:
    """Serialise `state` with torch.save to a temp file and rename it into place."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`; a missing or corrupt file is a MemoError."""
    path = Path(path)
    if not path.is_file():
        raise MemoError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated/garbled files
        raise MemoError(
            f"checkpoint {path} is corrupt or not a memo checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'})"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise MemoError(f"checkpoint {path} is not a memo checkpoint (no 'model' entry)")
    return state
