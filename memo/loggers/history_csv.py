"""history.csv: one row per epoch with every train/valid scalar (losses, lr, metrics)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path

from memo.io import atomic_write
from memo.loggers.base import RunLogger

PER_EPOCH = ("train/", "valid/")


class HistoryCSV(RunLogger):
    """Keeps the per-epoch scalars and rewrites `history.csv` atomically after each epoch (a
    few dozen columns, at most a few hundred rows); undefined values are empty cells."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[int, dict[str, float]] = {}

    def log(self, tagged: Mapping[str, float], step: int) -> None:
        epoch = {tag: value for tag, value in tagged.items() if tag.startswith(PER_EPOCH)}
        if not epoch:
            return
        self.rows.setdefault(step, {}).update(epoch)
        tags = list(dict.fromkeys(tag for row in self.rows.values() for tag in row))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["epoch", *tags])
        for number in sorted(self.rows):
            row = self.rows[number]
            writer.writerow([number, *(_cell(row.get(tag)) for tag in tags)])
        text = buffer.getvalue().encode()
        atomic_write(self.path, lambda handle: handle.write(text))


def _cell(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))
