"""memo's command line from a clone: `python run.py [group=option ...] [key=value ...]`
(installed: the `memo` command). Everything lives in memo/cli.py."""

from memo.cli import run

if __name__ == "__main__":
    run()
