"""Per-emotion bar charts of a summary: one PNG per metric, a bar per row, error bars over seeds,
so configurations are compared at a glance."""

from __future__ import annotations

import math
from pathlib import Path

from memo.report import write_file
from memo.report.summary import Row, Summary, column_label, describe_data, metric_label

TARGET_HATCH = "//"
CHANCE = {"wa": 0.5, "auc": 0.5}  # a random or constant scorer's WA and AUC
LEGEND_WIDTH = 110  # characters of small text in one legend line of a 7-inch figure


def plot_summary(summary: Summary, out: Path) -> list[Path]:
    """Write `plot_<metric>.png` into `out` for every per-emotion metric; return the files."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    written = []
    for metric, columns in summary.per_emotion.items():
        fig = figure(summary, metric, columns)
        path = out / f"plot_{metric}.png"
        write_file(path, lambda handle, fig=fig: fig.savefig(handle, format="png", dpi=110))
        plt.close(fig)
        written.append(path)
    return written


def figure(summary: Summary, metric: str, columns: list[str]):
    """Bars of `metric` per emotion (and average), one colour per row with results; a dashed
    line at chance level for WA and AUC; the dataset and data source in the title."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = [row for row in summary.rows if any(row.stat(f"{metric}/{c}") for c in columns)]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(
        figsize=(max(7.0, 0.2 * len(columns) * len(rows) + 2), 5.0), layout="constrained"
    )
    colors = _colors(len(rows))
    for i, row in enumerate(rows):
        _bars(ax, row, i, width, colors, metric, columns)
    ax.set_xticks(range(len(columns)), [column_label(c) for c in columns], rotation=30, ha="right")
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel(f"test {metric_label(metric)}")
    context = describe_data(result for row in rows for result in row.results)
    ax.set_title(f"Test {metric_label(metric)} per emotion ({context}): mean ± std over seeds")
    ax.grid(axis="y", alpha=0.3)
    handles: list = [  # own patches: a bar's legend entry would copy its first bar's hatch
        Patch(facecolor=colors[i], edgecolor="black", label=_legend(summary, row))
        for i, row in enumerate(rows)
    ]
    if any(row.target for row in rows):
        handles.append(
            Patch(facecolor="white", edgecolor="black", hatch=TARGET_HATCH, label="target emotion")
        )
    if metric in CHANCE:
        ax.axhline(CHANCE[metric], color="gray", linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color="gray", linestyle="--", label="chance"))
    wide = max(len(handle.get_label()) for handle in handles) > LEGEND_WIDTH // 3
    ncols = 1 if wide else 3
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize="small")
    return fig


def _legend(summary: Summary, row: Row) -> str:
    """The row's label and seed count; its data source too when sources are mixed."""
    source = f", {row.source} data" if summary.mixed else ""
    return f"{summary.label(row)} (n={len(row.results)}{source})"


def _colors(n: int) -> list:
    """`n` distinct colours: matplotlib's categorical palettes, a continuous one beyond 20."""
    from matplotlib import colormaps

    if n <= 20:
        palette = colormaps["tab10" if n <= 10 else "tab20"]
        return [palette(i) for i in range(n)]
    return [colormaps["turbo"](i / (n - 1)) for i in range(n)]


def _bars(ax, row: Row, i: int, width: float, colors: list, metric: str, columns: list[str]):
    """Row `i`: its mean per column with a std error bar, its target emotion hatched."""
    stats = [row.stat(f"{metric}/{column}") for column in columns]
    means = [s.mean if s else math.nan for s in stats]
    errors = [s.std if s and s.std is not None else 0.0 for s in stats]
    offset = (i - (len(colors) - 1) / 2) * width
    bars = ax.bar(
        [k + offset for k in range(len(columns))],
        means,
        width,
        yerr=errors,
        capsize=2,
        color=colors[i],
        edgecolor="black",
        linewidth=0.5,
    )
    if row.target in columns:
        bars[columns.index(row.target)].set_hatch(TARGET_HATCH)
