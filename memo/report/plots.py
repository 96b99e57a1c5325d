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
        figsize=(max(7.0, 0.2 * len(emotions) * len(rows) + 2), 5.0), layout="constrained"
    )
    colors = _colors(len(rows))
    for i, row in enumerate(rows):
        _bars(ax, row, i, width, colors, metric, emotions)
    ax.set_xticks(range(len(emotions)), emotions)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel(f"test {metric.upper()}")
    ax.set_title(f"Test {metric.upper()} per emotion: mean ± std over seeds")
    ax.grid(axis="y", alpha=0.3)
    handles = [  # own patches: a bar's legend entry would copy its first bar's hatch
        Patch(
            facecolor=colors[i],
            edgecolor="black",
            label=f"{summary.label(row)} (n={len(row.done)})",
        )
        for i, row in enumerate(rows)
    ]
    if any(row.target for row in rows):
        handles.append(
            Patch(facecolor="white", edgecolor="black", hatch=TARGET_HATCH, label="target emotion")
        )
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    return fig


def _colors(n: int) -> list:
    """`n` distinct colours: matplotlib's categorical palettes, a continuous one beyond 20."""
    from matplotlib import colormaps

    if n <= 20:
        palette = colormaps["tab10" if n <= 10 else "tab20"]
        return [palette(i) for i in range(n)]
    return [colormaps["turbo"](i / (n - 1)) for i in range(n)]


def _bars(ax, row: Row, i: int, width: float, colors: list, metric: str, emotions: list[str]):
    """Row `i`: its mean per emotion with a std error bar, its target emotion hatched."""
    stats = [row.stat(f"{metric}/{emotion}") for emotion in emotions]
    means = [s.mean if s else math.nan for s in stats]
    errors = [s.std if s and s.std is not None else 0.0 for s in stats]
    offset = (i - (len(colors) - 1) / 2) * width
    bars = ax.bar(
        [k + offset for k in range(len(emotions))],
        means,
        width,
        yerr=errors,
        capsize=2,
        color=colors[i],
        edgecolor="black",
        linewidth=0.5,
    )
    if row.target in emotions:
        bars[emotions.index(row.target)].set_hatch(TARGET_HATCH)
