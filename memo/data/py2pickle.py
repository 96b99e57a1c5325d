"""Write a numpy array as Python 2's cPickle (protocol 2) did: the layout of IEMOCAP's `.p` files.

Python 3's pickler cannot produce it (it writes bytes as `_codecs.encode` calls), so the
opcodes are emitted one by one: GLOBAL numpy.core.multiarray._reconstruct, the dtype state,
and the raw array bytes as a Python 2 `str` (SHORT_BINSTRING / BINSTRING).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from memo.errors import MemoError


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _string(value: bytes) -> bytes:
    """A Python 2 `str`: SHORT_BINSTRING below 256 bytes, BINSTRING otherwise."""
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value
    if len(value) >= 2**31:
        raise MemoError(f"array of {len(value)} bytes is too large for a Python 2 pickle")
    return b"T" + struct.pack("<i", len(value)) + value


def _int(value: int) -> bytes:
    """BININT1 / BININT2 / BININT, the smallest that holds `value`, as Python 2 wrote them."""
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def _tuple(items: list[bytes]) -> bytes:
    """TUPLE1/2/3 for short tuples, MARK ... TUPLE otherwise."""
    if 1 <= len(items) <= 3:
        return b"".join(items) + b"\x85\x86\x87"[len(items) - 1 : len(items)]
    return b"(" + b"".join(items) + b"t"


def py2_array_pickle(array: np.ndarray) -> bytes:
    """The protocol-2 pickle bytes that Python 2 with numpy 1.x wrote for `array`."""
    array = np.asarray(array, order="C")
    if array.dtype.kind not in "biuf":
        raise MemoError(
            f"only numeric arrays can be written as Python 2 pickles, not {array.dtype}"
        )
    order = "|" if array.dtype.itemsize == 1 else "<"
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    dtype_state = [_int(3), _string(order.encode()), b"N", b"N", b"N"]
    dtype_state += [_int(-1), _int(-1), _int(0)]
    return b"".join(
        [
            b"\x80\x02",  # PROTO 2
            _global("numpy.core.multiarray", "_reconstruct"),
            _global("numpy", "ndarray"),
            _tuple([_int(0)]),
            _string(b"b"),
            b"\x87R",  # TUPLE3, REDUCE: _reconstruct(ndarray, (0,), 'b')
            b"(",  # MARK: the array state (version, shape, dtype, fortran, data)
            _int(1),
            _tuple([_int(d) for d in array.shape]) if array.ndim else b")",
            _global("numpy", "dtype"),
            _string(array.dtype.str[1:].encode()),
            _int(0),
            _int(1),
            b"\x87R",  # dtype('f8', 0, 1)
            _tuple(dtype_state),
            b"b",  # BUILD: dtype.__setstate__
            b"\x89",  # NEWFALSE: C order
            _string(data),
            b"t",  # TUPLE (from MARK)
            b"b.",  # BUILD: ndarray.__setstate__, STOP
        ]
    )


def dump_py2_array(array: np.ndarray, path: Path | str) -> None:
    """Write `array` to `path` as a Python 2 protocol-2 pickle (see `py2_array_pickle`)."""
    Path(path).write_bytes(py2_array_pickle(array))
