"""argparse types shared by memo's module command lines (report, export, prepare)."""

from __future__ import annotations

import argparse
from pathlib import Path


def path_argument(text: str) -> Path:
    """A path that is not blank: an unset shell variable (`--out "$OUT"`) must not become the
    working directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a path that is not blank")
    return Path(text)
