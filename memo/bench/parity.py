"""bf16 parity: EEA trained on the built-in corpus in fp32 and in bf16, same seed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from memo.api import compose_config
from memo.bench.workers import spawn
from memo.experiment import run_experiment
from memo.training.trainer import PRECISIONS


def measure_parity(spec: dict[str, Any]) -> dict[str, Any]:
    """Train EEA on the built-in corpus (default config) at one precision; its test metrics."""
    torch.set_num_threads(spec["threads"])
    with tempfile.TemporaryDirectory(prefix="memo-parity-") as tmp:
        cfg = compose_config(
            [
                "dataset.source=synthetic",
                f"seed={spec['seed']}",
                f"trainer.precision={spec['precision']}",
                f"trainer.device={spec['device']}",
                "trainer.progress=false",
                f"paths.output_dir={tmp}",
                "resume=false",
            ]
        )
        started = time.perf_counter()
        metrics = run_experiment(cfg, Path(tmp) / "run")
    return {
        "precision": spec["precision"],
        "seed": spec["seed"],
        "wall_s": time.perf_counter() - started,
        "best_epoch": metrics["best_epoch"],
        "test": {k: metrics["test"][k] for k in ("wa/avg", "f1/avg", "auc/avg")},
    }


def compare_precisions(seed: int, device: str, threads: int) -> dict[str, Any]:
    """Both precisions, each in its own process; the report's `parity` entry."""
    runs = {
        p: spawn(
            "parity", {"precision": p, "seed": seed, "device": device, "threads": threads}, threads
        )  # fmt: skip
        for p in PRECISIONS
    }
    difference = runs["bf16"]["test"]["wa/avg"] - runs["fp32"]["test"]["wa/avg"]
    return {**runs, "seed": seed, "wa_avg_difference_points": 100 * difference}
