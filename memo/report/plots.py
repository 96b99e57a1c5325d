"""Per-emotion bar charts of a summary: one PNG per metric, a bar per configuration, error bars
over seeds, so configurations are compared at a glance."""

from __future__ import annotations

import math
from pathlib import Path

from memo.io import atomic_write
from memo.report.summary import Row, Summary

TARGET_HATCH = "//"


def per_emotion(summary: Summary) -> tuple[list[str], list[str]]:
    """(metrics, emotions) with a per-emotion value (`<metric>/<emotion>`) in some job."""
    emotions: dict[str, None] = {}
    metrics: dict[str, None] = {}
    for job in summary.jobs:
        if job.metrics is None:
            continue
        emotions.update(dict.fromkeys(job.metrics["test_emotions"]))
        for name in job.metrics["test"]:
            metric, _, emotion = name.partition("/")
            if emotion in job.metrics["test_emotions"]:
                metrics[metric] = None
    return list(metrics), list(emotions)


def plot_summary(summary: Summary, out: Path) -> list[Path]:
    """Write `plot_<metric>.png` into `out` for every per-emotion metric; return the files."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    metrics, emotions = per_emotion(summary)
    written = []
    for metric in metrics:
        fig = _figure(plt, summary, metric, emotions)
        path = out / f"plot_{metric}.png"
        atomic_write(path, lambda handle, fig=fig: fig.savefig(handle, format="png", dpi=110))
        plt.close(fig)
        written.append(path)
    return written


def _figure(plt, summary: Summary, metric: str, emotions: list[str]):
    """Bars of `metric` per emotion, one colour per configuration with results."""
    from matplotlib.patches import Patch

    rows = [row for row in summary.rows if row.done]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(
        figsize=(max(6.0, 0.25 * len(emotions) * len(rows) + 3), 4.5), layout="constrained"
    )
    for i, row in enumerate(rows):
        _bars(ax, row, i, len(rows), width, metric, emotions, summary.label(row))
    ax.set_xticks(range(len(emotions)), emotions)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"test {metric} per emotion: mean ± std over seeds")
    ax.grid(axis="y", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if any(row.target for row in rows):
        target = Patch(facecolor="white", edgecolor="black", hatch=TARGET_HATCH)
        target.set_label("held-out / few-shot emotion")
        handles.append(target)
    ax.legend(handles=handles, loc="outside right upper", fontsize="small")
    return fig


def _bars(ax, row: Row, i: int, n: int, width: float, metric: str, emotions: list[str], label: str):
    """Row `i` of `n`: its mean per emotion with a std error bar, its target emotion hatched."""
    stats = [row.stat(f"{metric}/{emotion}") for emotion in emotions]
    means = [s.mean if s else math.nan for s in stats]
    errors = [s.std if s and s.std is not None else 0.0 for s in stats]
    offset = (i - (n - 1) / 2) * width
    bars = ax.bar(
        [k + offset for k in range(len(emotions))],
        means,
        width,
        yerr=errors,
        capsize=2,
        color=f"C{i % 10}",
        edgecolor="black",
        linewidth=0.5,
        label=f"{label} (n={len(row.done)})",
    )
    if row.target in emotions:
        bars[emotions.index(row.target)].set_hatch(TARGET_HATCH)
