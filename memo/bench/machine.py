"""What the benchmark runs on: CPU, cores, device, library versions, peak memory."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path
from typing import Any

import torch

from memo.training.runtime import resolve_device


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's with its core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({cores()} cores)"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock reading includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def describe(device: str) -> dict[str, Any]:
    """The report's `machine` entry for the `--device` setting."""
    resolved = resolve_device(device)
    return {
        "device": device_name(resolved),
        "device_type": resolved.type,
        "cpu": cpu_name(),
        "cores": cores(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
