"""fp32 against bf16: EEA trained on the built-in corpus in both (parity of test metrics),
and training/evaluation throughput of both side by side in one process (speed)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from memo.api import compose_config
from memo.bench.session import Session
from memo.bench.stats import median
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


def measure_precision(spec: dict[str, Any]) -> dict[str, Any]:
    """fp32 and bf16 autocast side by side in this process on one model and shape: floor
    passes (`Trainer.train_step` over the same training batches, then evaluation forwards
    over the same evaluation batches) alternating fp32/bf16, the order swapped every pair;
    samples/s as medians over the pairs and the speed-up as the median of the pairs' ratios.
    """
    torch.set_num_threads(spec["threads"])
    with tempfile.TemporaryDirectory(prefix="memo-precision-") as tmp:
        session = Session({**spec, "precision": "fp32", "compile": False}, Path(tmp))
        trainer, data, size = session.trainer, session.run.train, int(spec["batch_size"])
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(2))
        count = min(len(data), max(size, spec["train_samples"]) // size * size)
        train = [data.batch(order[s : s + size]) for s in range(0, count, size)]
        eval_size, valid = trainer.eval_batch_size, session.run.valid
        evals = [
            (valid.batch(slice(s, s + eval_size)), session.run.vectors)
            for s in range(0, min(len(valid), max(eval_size, spec["eval_samples"])), eval_size)
        ]
        for dtype in PRECISIONS.values():  # warm-up: oneDNN primitives of both precisions
            trainer.autocast_dtype = dtype
            session.floor(train[:2], evals[:1])
        times: dict[str, list[dict[str, float]]] = {p: [] for p in PRECISIONS}
        for pair in range(spec["pairs"]):
            for precision in list(PRECISIONS)[:: 1 if pair % 2 == 0 else -1]:
                trainer.autocast_dtype = PRECISIONS[precision]
                times[precision].append(session.floor(train, evals))
        session.logger.close()
    trained = sum(len(b.labels) for b in train)
    evaluated = sum(len(b.labels) for b, _ in evals)
    result: dict[str, Any] = {
        **{k: spec[k] for k in ("model", "text_dim", "batch_size", "threads", "pairs")},
        "seq_len": spec["seq_len"],
        "train_samples": trained,
        "eval_samples": evaluated,
    }
    for precision, runs in times.items():
        result[precision] = {
            "train_samples_per_s": trained / median([t["train"] for t in runs]),
            "eval_samples_per_s": evaluated / median([t["eval"] for t in runs]),
        }
    for phase in ("train", "eval"):
        ratios = [f[phase] / b[phase] for f, b in zip(times["fp32"], times["bf16"], strict=True)]
        result[f"bf16_speedup_{phase}"] = median(ratios)
        result[f"bf16_speedup_{phase}_range"] = [min(ratios), max(ratios)]
    return result


def precision_grid(args: Any, device: str) -> list[dict[str, Any]]:
    """`measure_precision` for every model x text size x batch size, each in its own process."""
    rows = []
    for model in args.models:
        for text_dim in args.grid_text_dims:
            for batch_size in args.grid_batch_sizes:
                spec = {
                    "model": model, "text_dim": text_dim, "batch_size": batch_size,
                    "device": device, "threads": args.threads, "scale": args.scale,
                    "seq_len": args.seq_len, "pairs": args.grid_pairs,
                    "train_samples": args.grid_train_samples, "eval_samples": 512,
                }  # fmt: skip
                rows.append(spawn("precision", spec, args.threads))
    return rows


def format_precision_grid(rows: list[dict[str, Any]]) -> str:
    """The grid as a Markdown table: samples/s of both precisions and bf16's speed-up."""
    lines = [
        "| model | text dim | batch | train fp32 | train bf16 | train speed-up "
        "| eval fp32 | eval bf16 | eval speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['text_dim']} | {r['batch_size']} "
            f"| {r['fp32']['train_samples_per_s']:.0f} | {r['bf16']['train_samples_per_s']:.0f} "
            f"| {r['bf16_speedup_train']:.2f}x "
            f"| {r['fp32']['eval_samples_per_s']:.0f} | {r['bf16']['eval_samples_per_s']:.0f} "
            f"| {r['bf16_speedup_eval']:.2f}x |"
        )
    return "\n".join(lines)
