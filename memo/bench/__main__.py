"""Entry point of `python -m memo.bench` (options: `--help`)."""

from memo.bench.cli import main

main()
