"""`python -m memo.report <sweep dir> [<more dirs>]`: re-create a sweep's summary and plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from memo.cli_args import path_argument
from memo.errors import MemoError
from memo.report import FORMATS, render, summarize, write_report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m memo.report",
        description="Summarise sweeps from their run directories (also incomplete or damaged "
        "ones): summary.md, summary.csv, summary.tex, manifest.csv and plot_<metric>.png.",
    )
    parser.add_argument("dirs", nargs="+", type=path_argument, help="sweep or run directories")
    parser.add_argument(
        "--out",
        type=path_argument,
        help="where to write (default: the directory, when only one is given)",
    )
    parser.add_argument(
        "--format",
        choices=list(FORMATS),
        default="md",
        help="the summary printed on stdout (all are written): Markdown, CSV or LaTeX",
    )
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    if args.out is None:
        if len(args.dirs) > 1:
            parser.error("--out is required with several directories")
        args.out = args.dirs[0]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Write the report, print the summary, say on stderr which jobs have no results and why."""
    args = parse_args(argv)
    try:
        summary = summarize(args.dirs)
        written = write_report(summary, args.out, plots=not args.no_plots)
    except MemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(summary, args.format, args.out), end="")
    not_counted = ("duplicate", "mismatched")  # results, left out of the rows
    for job in summary.problems:
        if job.status in ("damaged", *not_counted):
            print(f"{job.status}: {job.name(summary.several_sweeps)}: {job.error}", file=sys.stderr)
    missing = sum(job.status not in not_counted for job in summary.problems)
    if missing:
        print(f"incomplete: {missing} of {len(summary.jobs)} jobs have no results", file=sys.stderr)
    names = ", ".join(path.name for path in written)
    print(f"report written to {args.out}: {names}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
