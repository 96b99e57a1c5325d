"""Unpickling of downloaded data files: numpy arrays and plain containers only, bounded in size.

Plain `pickle.load` calls whatever a file names; and even plain containers can kill the
interpreter (a tuple nested 300,000 deep used as a dict key) or expand to gigabytes (one list
shared through the memo, doubled again and again). So a file is first scanned opcode by opcode
(`scan_pickle`) against fixed bounds, then loaded by an unpickler that admits only a few
array-building functions, each checking its arguments, and every array it returns is checked
to own exactly its data (`check_arrays`).
"""

from __future__ import annotations

import codecs
import importlib
import math
import mmap
import pickle
import pickletools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import numpy as np

from memo.data.validate import check_file, one_line
from memo.errors import MemoError

T = TypeVar("T")

# Bounds of the opcode scan (docs/security.md says why these values).
MAX_DEPTH = 100  # nesting of containers; data files nest fewer than 10 levels
MAX_OPCODES = 500_000  # about 1,600 300-d word vectors as lists of floats
MAX_FETCHES = 100_000  # fetches of one memo entry (numpy pickles fetch a dtype once per array)
EXPANSION_FLOOR = 64 * 2**20  # bytes any pickle may expand to ...
EXPANSION_RATIO = 16  # ... plus this many times its own size
ITEM_BYTES = 64  # what one unpickled object counts for, besides its payload

# Opcodes that data files never need: instances of classes, persistent ids, the extension
# registry, out-of-band buffers. Checkpoints (torch's own unpickler) may use persistent ids.
NOT_IN_DATA = frozenset(
    {"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4"}
    | {"NEXT_BUFFER", "READONLY_BUFFER"}
)
IN_PLACE = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})
GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})


class _Item:
    """What the scan knows of a container the pickle builds: nesting depth, expanded size, and
    whether it is inside another. (Objects built from an argument alone are ints: their size.)"""

    __slots__ = ("depth", "size", "placed")

    def __init__(self, depth: int, size: int) -> None:
        self.depth = depth
        self.size = size
        self.placed = False


class _Unbounded(Exception):
    """An opcode that would let the scan's depth and size fall behind the real ones."""


# Opcodes that push one object built from their argument alone (most opcodes of a pickle),
# less the empty containers, which later opcodes fill (in the memo too, so they are _Items).
LEAVES = (
    frozenset(
        op.name
        for op in pickletools.opcodes
        if not op.stack_before and op.stack_after and op.stack_after != [pickletools.markobject]
    )
    - GETS
    - {"EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"}
)


def scan_pickle(
    stream: bytes | IO[bytes] | mmap.mmap,
    where: str,
    size: int,
    forbidden: frozenset[str] = NOT_IN_DATA,
) -> None:
    """Refuse a pickle of `size` bytes that is too long, deep, shared or large when built,
    following each object's depth and expanded size (a memo entry counts at every use)."""
    limit = EXPANSION_FLOOR + EXPANSION_RATIO * size
    stack: list[_Item | int | None] = []  # None stands for a MARK
    marks: list[int] = []
    memo: dict[int, _Item | int] = {}
    fetches: dict[int, int] = {}

    def refuse(problem: str, pos: int | None) -> MemoError:
        return MemoError(f"{where}: refused before loading: {problem} (at byte {pos})")

    try:
        for count, (op, arg, pos) in enumerate(pickletools.genops(stream), start=1):
            name = op.name
            if count > MAX_OPCODES:
                raise refuse(f"more than {MAX_OPCODES} opcodes (limit)", pos)
            if name in forbidden:
                raise refuse(f"opcode {name} is not allowed in data files", pos)
            if name in LEAVES:
                payload = len(arg) if isinstance(arg, (str, bytes, bytearray)) else 8
                stack.append(ITEM_BYTES + payload)
            elif name in GETS:
                if arg not in memo:
                    raise refuse(f"memo entry {arg} fetched before it is stored", pos)
                fetches[arg] = fetches.get(arg, 0) + 1
                if fetches[arg] > MAX_FETCHES:
                    raise refuse(f"memo entry {arg} fetched more than {MAX_FETCHES} times", pos)
                stack.append(memo[arg])
            elif name in PUTS:
                index = len(memo) if name == "MEMOIZE" else arg
                if not 0 <= index <= count or not stack or stack[-1] is None:
                    raise refuse(f"bad memo store {index}", pos)
                memo[index] = stack[-1]
            elif name == "MARK":
                marks.append(len(stack))
                stack.append(None)
            elif name == "POP" and stack and stack[-1] is None:
                stack.pop()
                marks.pop()
            elif name == "DUP":
                if not stack or stack[-1] is None:
                    raise refuse("DUP of nothing", pos)
                stack.append(stack[-1])
            else:
                item = _step(name, stack, marks)
                if item is not None and item.depth > MAX_DEPTH:
                    raise refuse(f"nesting deeper than {MAX_DEPTH} levels (limit)", pos)
                if item is not None and item.size > limit:
                    raise refuse(
                        f"it would expand to more than {limit} bytes (limit: "
                        f"{EXPANSION_FLOOR >> 20} MiB + {EXPANSION_RATIO} x its size)",
                        pos,
                    )
    except _Unbounded as err:
        raise refuse(str(err), pos) from None
    except ValueError as err:  # genops: unknown opcode, truncated argument; _step: bad stack
        raise MemoError(f"{where}: not a readable pickle ({one_line(err)})") from None


def _effect(op: pickletools.OpcodeInfo) -> tuple[int, bool, bool]:
    """(objects taken below any MARK, whether it takes a MARK and what follows, pushes one)."""
    before = op.stack_before
    if pickletools.markobject in before:
        return before.index(pickletools.markobject), True, bool(op.stack_after)
    return len(before), False, bool(op.stack_after)


EFFECTS = {op.name: _effect(op) for op in pickletools.opcodes}


def _step(name: str, stack: list[_Item | int | None], marks: list[int]) -> _Item | None:
    """Apply the stack effect of an opcode that takes objects; the object it builds or extends."""
    wanted, takes_mark, pushes = EFFECTS[name]
    children: list[_Item | int | None] = []
    if takes_mark:
        if not marks:
            raise ValueError(f"{name} without a MARK")
        start = marks.pop()
        children = stack[start + 1 :]
        del stack[start:]
    if wanted:
        if len(stack) < wanted or None in stack[-wanted:]:
            raise ValueError(f"{name} on too short a stack")
        children = stack[-wanted:] + children
        del stack[-wanted:]
    if not pushes:
        return None
    depth, size = 0, 0
    for child in children[1:]:
        if isinstance(child, _Item):
            depth, size = max(depth, child.depth + 1), size + child.size
            child.placed = True
        else:
            depth, size = max(depth, 1), size + child
    target = children[0] if children else None
    if name in IN_PLACE:  # the first child is the container extended
        if not isinstance(target, _Item):  # a number or string: loading will fail anyway
            target = _Item(0, target)
        if target.placed:  # its parents' depth and size would not follow (Python's pickler
            # fills a container before placing it; only cyclic data does otherwise)
            raise _Unbounded(f"{name} on a container already inside another")
        target.depth = max(target.depth, depth)
        target.size += size
    elif isinstance(target, _Item):
        target.placed = True
        target = _Item(max(depth, target.depth + 1), ITEM_BYTES + size + target.size)
    elif target is not None:
        target = _Item(max(depth, 1), ITEM_BYTES + size + target)
    else:  # an empty list, dict or set
        target = _Item(0, ITEM_BYTES)
    stack.append(target)
    return target


class _Refused(Exception):
    """An allowed numpy function called with arguments a plain numeric array never needs."""


def _plain_dtype(dtype: object) -> bool:
    """True for a numeric dtype without fields or sub-arrays (bool, int, uint, float)."""
    return (
        isinstance(dtype, np.dtype)
        and dtype.kind in "biuf"
        and dtype.fields is None
        and dtype.subdtype is None
    )


class _Global:
    """An allowed global: a checked function, or (none) a name only passed to `_reconstruct`.
    BUILD on it is refused, so one file cannot change what the next one gets."""

    __slots__ = ("name", "function")

    def __init__(self, name: str, function: Callable[..., object] | None = None) -> None:
        self.name = name
        self.function = function

    def __call__(self, *args: object) -> object:
        if self.function is None:  # numpy.ndarray(shape, dtype, buffer, offset, strides)
            raise _Refused(f"{self.name} called directly (a view of any shape over a buffer)")
        return self.function(*args)

    def __setstate__(self, state: object) -> None:
        raise _Refused(f"BUILD on {self.name}")


NDARRAY = _Global("numpy.ndarray")


def _reconstruct(cls: object, shape: object, dtype: object) -> np.ndarray:
    """numpy's `_reconstruct(ndarray, (0,), b'b')`: an empty array that BUILD then fills."""
    if cls is not NDARRAY or shape != (0,):
        raise _Refused(f"_reconstruct({cls!r}, {shape!r}) is not how numpy pickles arrays")
    return np.empty((0,), np.int8)


def _dtype(name: object, align: object = False, copy: object = False) -> np.dtype:
    """`numpy.dtype(name)` for a plain numeric type name, always a copy (BUILD changes it)."""
    if not isinstance(name, str) or not _plain_dtype(np.dtype(name)):
        raise _Refused(f"dtype {name!r} is not a plain numeric type")
    return np.dtype(name, align=bool(align), copy=True)


def _scalar(dtype: object, data: object) -> object:
    """numpy's `scalar(dtype, raw bytes)` for a plain numeric dtype and bytes of its size."""
    if not _plain_dtype(dtype) or not isinstance(data, (bytes, str)) or len(data) != dtype.itemsize:
        raise _Refused(f"scalar of dtype {dtype!r} from {type(data).__name__} data")
    return _numpy("multiarray", "scalar")(dtype, data)


def _frombuffer(buffer: object, dtype: object, shape: object, order: object) -> np.ndarray:
    """numpy's protocol-5 `_frombuffer`, when the buffer holds exactly shape x itemsize bytes."""
    fits = (
        isinstance(buffer, (bytes, bytearray))
        and _plain_dtype(dtype)
        and isinstance(shape, tuple)
        and all(isinstance(d, int) and d >= 0 for d in shape)
        and order in ("C", "F")
    )
    if not fits or len(buffer) != math.prod(shape) * dtype.itemsize:
        raise _Refused(f"_frombuffer of shape {shape!r} and dtype {dtype!r} over this buffer")
    return _numpy("numeric", "_frombuffer")(buffer, dtype, shape, order)


def _encode(text: object, encoding: object = "utf-8") -> bytes:
    """`_codecs.encode(text, 'latin1')`: how Python 3 protocol-2 pickles write bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode of {type(text).__name__} as {encoding!r}")
    return codecs.encode(text, "latin1")


def _empty_bytes(*args: object) -> bytes:
    """`bytes()`: how protocols 0 and 1 write empty bytes (a size argument would allocate it)."""
    if args:
        raise _Refused(f"bytes{args!r} (only bytes() is written by pickle)")
    return b""


def _numpy(submodule: str, name: str) -> Callable[..., object]:
    """`numpy._core.<submodule>.<name>` under the installed numpy (< 1.26: numpy.core)."""
    try:
        module = importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:
        module = importlib.import_module(f"numpy.core.{submodule}")
    return getattr(module, name)


# (module, name) as written in files -> what the unpickler gets. Files from numpy 1 name
# numpy.core, files from numpy 2 name numpy._core; both map to the same checked function.
_ALLOWED: dict[tuple[str, str], _Global] = {
    ("numpy", "ndarray"): NDARRAY,
    ("numpy", "dtype"): _Global("numpy.dtype", _dtype),
    ("_codecs", "encode"): _Global("_codecs.encode", _encode),  # bytes, Python 3 protocol 2
    ("__builtin__", "bytes"): _Global("bytes", _empty_bytes),  # empty bytes, protocols 0-1
    ("builtins", "bytes"): _Global("bytes", _empty_bytes),
    **{
        (f"numpy.{core}.{module}", name): _Global(f"numpy.{core}.{module}.{name}", function)
        for core in ("core", "_core")
        for module, name, function in (
            ("multiarray", "_reconstruct", _reconstruct),
            ("multiarray", "scalar", _scalar),
            ("numeric", "_frombuffer", _frombuffer),  # arrays in protocol-5 pickles
        )
    },
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler whose `find_class` refuses every global not in `_ALLOWED`."""

    def __init__(self, file: IO[bytes] | mmap.mmap, path: Path, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.path = path

    def find_class(self, module: str, name: str) -> _Global:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise MemoError(
                f"{self.path}: refused to load global {f'{module}.{name}'!r}; only numpy arrays "
                "and plain containers are allowed in data pickles"
            )
        return target


def check_arrays(value: object, where: str) -> None:
    """Refuse any array in `value` that is not plain numeric or does not cover a buffer of
    exactly shape x itemsize bytes with C or Fortran strides (no zero-stride views)."""
    for array in leaves(value, np.ndarray):
        _check_array(array, where)


def leaves(value: object, kind: type[T]) -> Iterator[T]:
    """Every object of type `kind` inside plain containers (dicts, lists, tuples, sets), each
    once, without recursion (depth cannot overflow the stack)."""
    seen: set[int] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo.extend(item)
        elif isinstance(item, kind):
            yield item


def _check_array(array: np.ndarray, where: str) -> None:
    if not _plain_dtype(array.dtype):
        raise MemoError(f"{where}: refused an array of dtype {array.dtype}; expected numbers")
    declared = math.prod(array.shape) * array.dtype.itemsize
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    try:
        held = root.nbytes if root.base is None else memoryview(root.base).nbytes
    except TypeError:
        held = -1
    if held != declared or not (array.flags.c_contiguous or array.flags.f_contiguous):
        raise MemoError(
            f"{where}: refused an array of shape {array.shape} and dtype {array.dtype} with "
            f"strides {array.strides} over a buffer of {held} bytes; an array must own "
            f"exactly shape x itemsize = {declared} bytes with standard strides"
        )


def safe_load(path: Path | str, encoding: str = "ASCII") -> object:
    """Unpickle `path` admitting only numpy arrays and plain containers, within fixed bounds.
    Use encoding="latin1" for Python 2 pickles (their array bytes are Python 2 `str`)."""
    path = check_file(Path(path))  # a FIFO would block, a device never end
    try:
        with path.open("rb") as file:
            if not path.stat().st_size:
                raise MemoError(f"{path}: not a readable pickle of numpy arrays (empty file)")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                scan_pickle(data, str(path), len(data))
                data.seek(0)
                value = _ArrayUnpickler(data, path, encoding).load()
    except MemoError:
        raise
    except _Refused as err:
        raise MemoError(f"{path}: refused: {err}") from None
    except OSError as err:
        raise MemoError(f"{path}: cannot read file ({err.strerror or err})") from None
    except Exception as err:  # a damaged pickle can fail in many ways inside numpy too
        raise MemoError(
            f"{path}: not a readable pickle of numpy arrays ({type(err).__name__}: {one_line(err)})"
        ) from None
    check_arrays(value, str(path))
    return value
