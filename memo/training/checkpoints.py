"""Checkpoints are data, not code: plain tensors and containers, saved atomically.

`torch.load(weights_only=True)` admits no code, but it does not bound what plain data can
do, so the archive is checked before torch reads it: torch.save never compresses an entry
(a compressed one can expand a small file to gigabytes), and the pickle `data.pkl` passes
the data files' opcode scan (a tuple nested 300,000 deep crashes the interpreter inside
torch.load). Every tensor loaded must cover no more bytes than its storage holds (a
zero-stride view can declare gigabytes over 4 bytes). `CheckpointWriter` writes them in a
background thread while training goes on.
"""

from __future__ import annotations

import io
import logging
import threading
import zipfile
from pathlib import Path
from typing import Any

import torch

from memo.data.safe_pickle import leaves, scan_pickle
from memo.data.validate import file_problem
from memo.errors import MemoError
from memo.io import atomic_write

log = logging.getLogger(__name__)


def save_checkpoint(path: Path | str, state: dict[str, Any]) -> None:
    """Serialise `state` with torch.save to a temp file and rename it into place."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`, within the bounds above; a missing, corrupt
    or refused file is a MemoError."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise MemoError(f"checkpoint {path}: {problem}")
    try:
        check_archive(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
        check_tensors(state)
    except MemoError as error:  # a limit above
        raise MemoError(
            f"checkpoint {path} is corrupt or not a memo checkpoint ({error})"
        ) from None
    except Exception as error:  # torch raises many types for truncated/garbled files
        raise MemoError(
            f"checkpoint {path} is corrupt or not a memo checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'})"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise MemoError(f"checkpoint {path} is not a memo checkpoint (no 'model' entry)")
    return state


def check_archive(path: Path) -> None:
    """Refuse a checkpoint archive with compressed entries, entries larger in all than the
    file, or a pickle beyond `scan_pickle`'s bounds; before torch reads any of it."""
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        compressed = [e.filename for e in entries if e.compress_type != zipfile.ZIP_STORED]
        if compressed:
            raise MemoError(
                f"refused: entry {compressed[0]} is compressed (torch.save stores entries as "
                "they are; a compressed one can expand to any size)"
            )
        declared = sum(e.file_size for e in entries)
        if declared > path.stat().st_size:
            raise MemoError(
                f"refused: its entries declare {declared} bytes, more than the file's "
                f"{path.stat().st_size}"
            )
        for entry in entries:
            if entry.filename.endswith(".pkl"):
                with archive.open(entry) as stream:
                    scan_pickle(stream, entry.filename, entry.file_size, forbidden=frozenset())


def check_tensors(state: object) -> None:
    """Refuse any tensor in `state` that is not dense or covers more bytes than its storage
    holds (a view repeating its data through zero or overlapping strides)."""
    for tensor in leaves(state, torch.Tensor):
        _check_tensor(tensor)


def _check_tensor(tensor: torch.Tensor) -> None:
    if tensor.layout != torch.strided:
        raise MemoError(f"refused a {tensor.layout} tensor; expected dense tensors")
    covered = tensor.numel() * tensor.element_size()
    held = tensor.untyped_storage().nbytes()
    if covered > held:
        raise MemoError(
            f"refused a tensor of shape {tuple(tensor.shape)} with strides "
            f"{tensor.stride()} covering {covered} bytes over a storage of {held}; a tensor "
            "may not repeat its data"
        )


def snapshot(value: Any) -> Any:
    """A copy of a checkpoint's containers with every tensor copied to the host, detached."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(snapshot(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    return value


class CheckpointWriter:
    """Writes checkpoints in a background thread, one batch of files at a time, in order.

    `save` takes an in-memory snapshot (host copies of the tensors: training can go on
    changing the originals) and returns; the files are serialised and written atomically
    while the next epoch runs. `wait` blocks until the files are on disk and re-raises a
    failed write. Used as a context manager, it waits on exit.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, paths: list[Path], checkpoint: dict[str, Any]) -> None:
        """Write `checkpoint` to each of `paths`, in order, after the previous save."""
        self.wait()
        copy = snapshot(checkpoint)

        def write() -> None:
            try:
                for path in paths:
                    save_checkpoint(path, copy)
            except BaseException as error:  # re-raised by wait() in the training thread
                self._error = error

        self._thread = threading.Thread(target=write, name="memo-checkpoint")
        self._thread.start()

    def raise_if_failed(self) -> None:
        """Raise the error of a write that already failed, without waiting for one running."""
        if self._error is not None:
            self.wait()

    def wait(self) -> None:
        """Block until the last save is on disk; raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.wait()
            return
        try:  # an exception is already on its way: report a failed write, do not mask it
            self.wait()
        except Exception as error:
            log.error("writing a checkpoint failed: %s", error)
