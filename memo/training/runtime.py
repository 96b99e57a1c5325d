"""What a run sets up around training: random seeds, the device, a clean stop on signals."""

from __future__ import annotations

import random
import signal
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
