"""The per-emotion results table printed at the end of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

LABELS = {"wa": "WA", "acc": "Acc", "f1": "F1", "auc": "AUC"}
WHOLE_SAMPLE = ("exact", "subset", "intersect")


def _cell(value: float | None) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{value:6.3f}"


def format_table(
    metrics: Mapping[str, float], emotions: Sequence[str], names: Sequence[str], title: str
) -> str:
    """Rows per emotion plus the average, columns per metric; whole-sample accuracies below."""
    width = max(len(e) for e in [*emotions, "average"])
    header = f"{'emotion':<{width}}  " + "  ".join(f"{LABELS[n]:>6}" for n in names)
    lines = [title, header, "-" * len(header)]
    for row in [*emotions, "avg"]:
        label = "average" if row == "avg" else row
        cells = "  ".join(_cell(metrics.get(f"{n}/{row}")) for n in names)
        lines.append(f"{label:<{width}}  {cells}")
    extra = [f"{k} {metrics[k]:.3f}" for k in WHOLE_SAMPLE if k in metrics]
    if extra:
        lines.append("whole-sample accuracy: " + ", ".join(extra))
    return "\n".join(lines)
