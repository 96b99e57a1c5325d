"""What a run sets up around training: random seeds, the device, the allocator, a clean stop
on signals."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import sys
import threading
from typing import Any

import numpy as np
import torch

from memo.errors import MemoError, config_error


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise config_error("trainer.device", name, "auto | cpu (no CUDA device is available)")
    if name not in ("cpu", "cuda"):
        raise config_error("trainer.device", name, "auto | cpu | cuda")
    return torch.device(name)


# glibc malloc settings for training (mallopt parameter numbers from <malloc.h>). With glibc's
# defaults, tensors of a few MB (activations, gradients, optimiser temporaries) are carved from
# the top of the heap and, once freed, the heap is trimmed back to the kernel; the next batch
# grows it again and faults every page in anew. A default run did this for ~2.6 GB per epoch
# (5-6 million minor page faults, 10% of its CPU time in the kernel). Keeping freed memory
# (no trimming below 1 GiB of free top) and serving blocks up to 32 MiB (glibc's maximum) from
# the heap removes that churn; the peak memory is what the run needed anyway. Numerics are
# unaffected (torch aligns every tensor to 64 bytes whatever the allocator returns).
MALLOC_SETTINGS = {
    "MALLOC_TRIM_THRESHOLD_": (-1, 1 << 30),  # M_TRIM_THRESHOLD
    "MALLOC_TOP_PAD_": (-2, 64 << 20),  # M_TOP_PAD: grow the heap 64 MiB at a time
    "MALLOC_MMAP_THRESHOLD_": (-3, 32 << 20),  # M_MMAP_THRESHOLD
}


def tune_allocator() -> dict[str, int]:
    """Apply `MALLOC_SETTINGS` with glibc's `mallopt` (Linux with glibc only; a setting the
    user gave as its `MALLOC_*_` environment variable is left as given). Idempotent; returns
    what was set, by environment-variable name (empty where nothing was)."""
    if not sys.platform.startswith("linux"):
        return {}
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library (no ldconfig search)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return {}
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = {}
    for name, (parameter, value) in MALLOC_SETTINGS.items():
        if name not in os.environ and mallopt(parameter, value) == 1:
            applied[name] = value
    return applied


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Interrupted(MemoError):
    """Training was stopped by SIGINT/SIGTERM; last.pt allows resuming."""


class StopOnSignal:
    """While active, SIGINT/SIGTERM set `requested` instead of killing the process."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self.previous: dict[int, Any] = {}

    def _handle(self, number: int, frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(number).name

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
