"""Sweep reports: the summary tables (Markdown, CSV, LaTeX), the job manifest and per-emotion plots.

Written by the sweep callback (memo.sweep.SweepReport) when a sweep ends, and re-created at any
time by `python -m memo.report <sweep dir> ...`; both call `write_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from memo.errors import MemoError
from memo.io import atomic_write
from memo.report.csvtable import manifest_csv, summary_csv
from memo.report.jobs import Job, collect
from memo.report.latex import latex
from memo.report.markdown import markdown
from memo.report.summary import Summary

SUMMARY_MD = "summary.md"
MANIFEST = "manifest.csv"
# --format -> (file, renderer); paths in a renderer's text are relative to the report folder.
FORMATS: dict[str, tuple[str, Callable[[Summary, Path], str]]] = {
    "md": (SUMMARY_MD, markdown),
    "csv": ("summary.csv", lambda summary, _: summary_csv(summary)),
    "latex": ("summary.tex", lambda summary, _: latex(summary)),
}


def write_file(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """`atomic_write`, with a failure reported as one line naming the file."""
    try:
        atomic_write(path, write)
    except OSError as error:
        raise MemoError(f"cannot write {path}: {error.strerror or error}") from None


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    write_file(path, lambda handle: handle.write(text.encode()))


def write_manifest(jobs: Sequence[Job], out: Path) -> None:
    """`out/manifest.csv`: which job is which, and its status."""
    write_text(out / MANIFEST, manifest_csv(jobs, out))


def summarize(roots: Sequence[Path | str]) -> Summary:
    """The summary of every job under `roots` (sweep directories, run directories, folders)."""
    return Summary.of(collect(roots))


def render(summary: Summary, fmt: str, out: Path) -> str:
    """`summary` in format `fmt` (a key of FORMATS), as written into folder `out`."""
    return FORMATS[fmt][1](summary, out)


def write_report(summary: Summary, out: Path, plots: bool = True) -> list[Path]:
    """Write `summary` into folder `out`: summary.md, .csv, .tex, manifest.csv and, with `plots`,
    plot_<metric>.png. Returns the files written."""
    if out.exists() and not out.is_dir():
        raise MemoError(f"cannot write the report into {out}: it is a file, not a folder")
    written = [out / name for name, _ in FORMATS.values()]
    for path, fmt in zip(written, FORMATS, strict=True):
        write_text(path, render(summary, fmt, out))
    write_manifest(summary.jobs, out)
    written.append(out / MANIFEST)
    if plots:
        from memo.report.plots import plot_summary  # matplotlib only when plotting

        written += plot_summary(summary, out)
    return written
