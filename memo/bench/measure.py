"""One benchmark configuration in this process: epochs and floors side by side, summarised."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from memo.bench.machine import device_name, peak_rss_mb
from memo.bench.session import Session
from memo.bench.stats import median, quartiles


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one benchmark configuration in this process; the result as a JSON-able dict."""
    torch.set_num_threads(spec["threads"])
    with tempfile.TemporaryDirectory(prefix="memo-bench-") as tmp:
        built = time.perf_counter()
        session = Session(spec, Path(tmp))
        setup_s = time.perf_counter() - built
        session.warm_up(spec["warmup_batches"], spec["warmup_epochs"])
        if session.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(session.device)
        reps = []
        peak_rss = peak_gpu = None
        for rep in range(spec["epochs"]):
            # Full epoch and floor side by side; their order alternates from the second
            # pair on, so that a slow-down that comes and goes favours neither.
            floor = None
            if spec["floor"] and rep % 2:
                floor = session.floor(session.train_batches, session.eval_batches)
            full = session.full_epoch()
            if peak_rss is None:  # the trainer's own peak, before the floor's batch copies
                peak_rss = peak_rss_mb()
                if session.device.type == "cuda":
                    peak_gpu = torch.cuda.max_memory_allocated(session.device) / 2**20
            if spec["floor"] and rep == 0:
                session.make_batches()
            if spec["floor"] and not rep % 2:
                floor = session.floor(session.train_batches, session.eval_batches)
            reps.append({"full": full, "floor": floor})
        side_by_side = None
        if spec.get("side_by_side") and spec["floor"]:
            side_by_side = session.precision_side_by_side(spec["epochs"])
        session.logger.close()
    sizes = {name: len(split) for name, split in session.splits.items()}
    result = summarise(spec, sizes, reps, session, setup_s, peak_rss, peak_gpu)
    if side_by_side is not None:
        result["bf16_side_by_side"] = side_by_side
    return result


def summarise(
    spec: dict[str, Any],
    sizes: dict[str, int],
    reps: list[dict[str, Any]],
    session: Session,
    setup_s: float,
    peak_rss: float | None,
    peak_gpu: float | None,
) -> dict[str, Any]:
    """Medians over the measured epochs (and floors, with the epoch/floor ratios)."""
    full = [r["full"] for r in reps]
    keys = [k for k in full[0] if k != "valid_selection"]
    phases = {k: median([f[k] for f in full]) for k in keys}
    evaluated = sizes["valid"] + sizes["test"]
    result: dict[str, Any] = {
        **{k: spec[k] for k in ("model", "precision", "scale", "seq_len", "batch_size", "compile")},
        "device": device_name(session.device),
        "threads": spec["threads"],
        "parameters": session.parameters,
        "sizes": sizes,
        "epochs_measured": len(reps),
        "setup_s": setup_s,
        "train_samples_per_s": sizes["train"] / phases["train"],
        "eval_samples_per_s": evaluated / (phases["valid"] + phases["test"]),
        "epoch_s": phases["epoch"],
        "phases_s": phases,
        "peak_rss_mb": peak_rss,
        "peak_gpu_mb": peak_gpu,
        "reps": reps,
    }
    if spec["floor"]:
        floors = [r["floor"] for r in reps]
        ratios = [r["full"]["epoch"] / r["floor"]["epoch"] for r in reps]
        result.update(
            floor_s=median([f["epoch"] for f in floors]),
            floor_train_samples_per_s=sizes["train"] / median([f["train"] for f in floors]),
            floor_eval_samples_per_s=evaluated / median([f["eval"] for f in floors]),
            overhead=median(ratios),
            # quartiles of the per-pair ratios, and all epochs' time over all floors' time
            overhead_quartiles=quartiles(ratios),
            overhead_pooled=sum(r["full"]["epoch"] for r in reps)
            / sum(r["floor"]["epoch"] for r in reps),
            # process CPU time: robust to other jobs on a shared machine (with 1 thread)
            overhead_cpu=median([r["full"]["epoch_cpu"] / r["floor"]["epoch_cpu"] for r in reps]),
        )
    return result
