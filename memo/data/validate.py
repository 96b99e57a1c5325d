"""Checks and clean-up applied to every feature array, whatever its source."""

from __future__ import annotations

import numpy as np

from memo.errors import MemoError


def clean_features(array: np.ndarray, where: str, zero_nonfinite: bool = False) -> np.ndarray:
    """Return `array` as float32 with -inf replaced by 0 (as the authors do for audio).

    NaN and +inf are errors naming `where` (file and split) and the count, unless
    `zero_nonfinite` is set, in which case they are zeroed as well.
    """
    out = np.asarray(array, dtype=np.float32)
    finite = np.isfinite(out)
    if finite.all():
        return out
    out = out.copy()
    bad = ~finite & ~np.isneginf(out)
    if bad.any() and not zero_nonfinite:
        raise MemoError(
            f"{where}: {int(np.isnan(out).sum())} NaN and {int(np.isposinf(out).sum())} +inf "
            "values; expected finite features (-inf is zeroed). Set dataset.zero_nonfinite=true "
            "to zero them instead."
        )
    out[~finite] = 0.0
    return out


def expect_shape(array: object, expected: tuple[int | str, ...], where: str) -> np.ndarray:
    """`array` as a numeric ndarray whose shape matches `expected` (ints fixed, names free).

    A name such as "N" matches any size; the error shows e.g. "expected shape (N, 4, 2)".
    """
    layout = "(" + ", ".join(str(d) for d in expected) + ")"
    if not isinstance(array, np.ndarray):
        raise MemoError(f"{where}: expected a numpy array of shape {layout}, found {type(array)}")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise MemoError(f"{where}: expected a numeric array, found dtype {array.dtype}")
    fits = array.ndim == len(expected) and all(
        isinstance(want, str) or want == got
        for want, got in zip(expected, array.shape, strict=True)
    )
    if not fits:
        raise MemoError(f"{where}: expected shape {layout}, found {array.shape}")
    return array


def expect_same(what: str, found: dict[str, object]) -> None:
    """Raise when the values in `found` (source name -> value) are not all equal."""
    if len({repr(v) for v in found.values()}) > 1:
        listing = ", ".join(f"{source}: {value}" for source, value in found.items())
        raise MemoError(f"{what} differ: {listing}")
