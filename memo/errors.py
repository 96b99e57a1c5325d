"""The one exception type memo raises for bad input: its message is shown to the user as is."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable


class MemoError(Exception):
    """A user-facing error: bad config value, bad data file, bad checkpoint.

    The message must say what was expected and what was found; the CLI prints it without a
    stack trace.
    """


def exit_on_error(check: Callable[[], object]) -> None:
    """Run `check`; a MemoError ends the process with its one line on stderr, exit status 2
    (for Hydra callbacks, whose exceptions Hydra would print with a stack trace)."""
    try:
        check()
    except MemoError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def config_error(key: str, value: object, allowed: str) -> MemoError:
    """An error for config key `key` holding `value`; `allowed` describes the valid values."""
    return MemoError(f"config key '{key}': got {value!r}; allowed: {allowed}")


def out_of_memory(error: BaseException) -> MemoError | None:
    """A one-line MemoError for a failed memory allocation (numpy's MemoryError, torch's CPU
    allocator or CUDA out of memory), None for any other error: settings that ask for more
    memory than there is are bad input, not a crash."""
    text = str(error).strip()
    torch_oom = type(error).__name__ == "OutOfMemoryError" or "can't allocate memory" in text
    if not (isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and torch_oom)):
        return None
    first = re.sub(r"^\[enforce fail at [^\]]*\]\s*(err == 0\.\s*)?", "", text.splitlines()[0])
    return MemoError(
        f"out of memory: {first}. The settings ask for more memory than this machine has: "
        "check sizes such as model.hidden_*, dataset.seq_len, dataset.scale, trainer.batch_size"
    )
