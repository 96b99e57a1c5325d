"""Sweep reports: the summary table (Markdown, CSV), the job manifest and per-emotion plots.

Written by the sweep callback (memo.sweep.SweepReport) when a sweep ends, and re-created at any
time by `python -m memo.report <sweep dir> ...`; both call `write_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memo.io import atomic_write
from memo.report.jobs import Job, collect
from memo.report.summary import Summary, manifest_csv

SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"
MANIFEST = "manifest.csv"


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def write_manifest(jobs: Sequence[Job], out: Path) -> None:
    """`out/manifest.csv`: which job is which, and its status."""
    write_text(out / MANIFEST, manifest_csv(jobs, out))


def summarize(roots: Sequence[Path | str]) -> Summary:
    """The summary of every job under `roots` (sweep directories, run directories, folders)."""
    return Summary.of(collect(roots))


def write_report(summary: Summary, out: Path, plots: bool = True) -> list[Path]:
    """Write `summary` into `out`: summary.md, summary.csv, manifest.csv and, with `plots`,
    plot_<metric>.png. Returns the files written."""
    write_text(out / SUMMARY_MD, summary.markdown(out))
    write_text(out / SUMMARY_CSV, summary.csv())
    write_manifest(summary.jobs, out)
    written = [out / SUMMARY_MD, out / SUMMARY_CSV, out / MANIFEST]
    if plots:
        from memo.report.plots import plot_summary  # matplotlib only when plotting

        written += plot_summary(summary, out)
    return written
