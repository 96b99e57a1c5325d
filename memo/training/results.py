"""The per-emotion results table printed at the end of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from memo.training.metrics import METRICS, WHOLE_SAMPLE

# Metric labels for the sweep reports (memo.report.summary); the table reads METRICS itself, so
# that a metric registered after this import is labelled too.
LABELS = {name: metric.label for name, metric in METRICS.items()}


def _cell(value: float | None) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{value:6.3f}"


def format_table(
    metrics: Mapping[str, float],
    emotions: Sequence[str],
    names: Sequence[str],
    title: str,
    target: str | None = None,
    target_label: str = "unseen",
) -> str:
    """Rows per emotion plus averages, columns per metric; whole-sample accuracies below.

    A zero-/few-shot `target` emotion is marked, and the average over the others is shown.
    """
    rows = {e: f"{e} ({target_label})" if e == target else e for e in emotions}
    rows["avg"] = "average"
    if target is not None:
        rows["avg_seen"] = f"average without {target}"
    width = max(len(label) for label in rows.values())
    header = f"{'emotion':<{width}}  " + "  ".join(f"{METRICS[n].label:>6}" for n in names)
    lines = [title, header, "-" * len(header)]
    for row, label in rows.items():
        cells = "  ".join(_cell(metrics.get(f"{n}/{row}")) for n in names)
        lines.append(f"{label:<{width}}  {cells}")
    extra = [f"{k} {metrics[k]:.3f}" for k in WHOLE_SAMPLE if k in metrics]
    if extra:
        lines.append("whole-sample accuracy: " + ", ".join(extra))
    return "\n".join(lines)
