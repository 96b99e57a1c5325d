"""The one exception type memo raises for bad input: its message is shown to the user as is."""


class MemoError(Exception):
    """A user-facing error: bad config value, bad data file, bad checkpoint.

    The message must say what was expected and what was found; the CLI prints it without a
    stack trace.
    """


def config_error(key: str, value: object, allowed: str) -> MemoError:
    """An error for config key `key` holding `value`; `allowed` describes the valid values."""
    return MemoError(f"config key '{key}': got {value!r}; allowed: {allowed}")
