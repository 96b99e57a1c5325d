"""Start-up: process start to the first optimizer step of a real run, cold and warm cache."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from memo.api import compose_config
from memo.bench.data import sizes, write_mosei_files
from memo.bench.machine import sync
from memo.bench.stats import median
from memo.bench.workers import spawn
from memo.experiment import run_experiment
from memo.training.runtime import resolve_device


class FirstStep(Exception):
    """Raised after the probe run's first optimizer step, with its time.time()."""


def probe_startup(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: a real run (`run_experiment`) up to its first optimizer step,
    stopped there by a post-step hook on every optimizer."""
    main_started = time.time()
    torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])

    def first_step(*_: Any) -> None:
        sync(device)
        raise FirstStep(time.time())

    folder = Path(spec["folder"])
    cfg = compose_config(
        [
            "experiment=paper_mosei",
            "model=eea",
            "embeddings=file",
            f"embeddings.path={spec['vectors']}",
            "dataset.source=files",
            f"dataset.dir={folder}",
            f"paths.cache_dir={spec['cache']}",
            f"paths.output_dir={folder / 'outputs'}",
            f"trainer.device={spec['device']}",
            "trainer.progress=false",
            "resume=false",
        ]
    )
    hook = register_optimizer_step_post_hook(first_step)
    try:
        run_experiment(cfg, Path(tempfile.mkdtemp(dir=folder)))
    except FirstStep as done:
        return {"main_started": main_started, "first_step": done.args[0]}
    finally:
        hook.remove()
    raise RuntimeError("the probe run ended without a training step")


def measure_startup(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Time probes in fresh processes: one with an empty data cache, then `--startup-runs`
    with the cache it left."""
    with tempfile.TemporaryDirectory(prefix="memo-startup-") as tmp:
        folder = Path(tmp) / "mosei"
        written = time.perf_counter()
        vectors = write_mosei_files(folder, args.scale, args.seq_len)
        write_s = time.perf_counter() - written
        cache = Path(tmp) / "cache"
        spec = {"folder": str(folder), "vectors": str(vectors), "cache": str(cache),
                "device": device, "threads": args.threads}  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
        for kind in ["cold"] + ["warm"] * args.startup_runs:
            spawned = time.time()
            probe = spawn("startup", spec, args.threads)
            runs[kind].append(
                {
                    "to_first_step_s": probe["first_step"] - spawned,
                    "interpreter_and_imports_s": probe["main_started"] - spawned,
                    "setup_and_first_step_s": probe["first_step"] - probe["main_started"],
                }
            )
    return {
        "scale": args.scale,
        "samples": sum(sizes(args.scale).values()),
        "files_written_s": write_s,
        "cold_s": median([r["to_first_step_s"] for r in runs["cold"]]),
        "warm_s": median([r["to_first_step_s"] for r in runs["warm"]]),
        "warm_imports_s": median([r["interpreter_and_imports_s"] for r in runs["warm"]]),
        "runs": runs,
    }
