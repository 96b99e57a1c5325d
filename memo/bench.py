"""Benchmark of the training loop: throughput, epoch overhead, start-up, memory, precision.

    python -m memo.bench                                   # every model, fp32 and bf16
    python -m memo.bench --models eea --scaling --startup --parity

For each model and precision it trains on random tensors of CMU-MOSEI's size and shapes
(15290 / 2291 / 4832 samples at --scale 1, 20 steps, text 300-d, audio 74-d, visual
35-d, 6 emotions) with the paper's hyperparameters (experiment=paper_mosei, batch 64) and
measures, as medians over --epochs epochs after a warm-up:

- a full epoch through `Trainer.run_epoch` (the code `fit` runs: training, validation,
  metrics, TensorBoard, log, checkpoints) plus the test-split evaluation and its metrics
  and TensorBoard scalars; training and evaluation samples/s come from its phases;
- the compute floor: the same epoch's forward/backward/optimizer steps (with gradient
  clipping) and evaluation forwards on pre-made batches, nothing else; and the ratio
  epoch / floor, measured side by side in the same process;
- peak host memory (and GPU memory on CUDA) of the training process.

With --startup it times process start to the first optimizer step of a real run
(`run_experiment` on MOSEI-layout files of random data, embeddings=file), cold (empty data
cache) and warm; --scaling times epochs at several dataset sizes and sequence lengths;
--parity trains EEA on the built-in corpus in fp32 and bf16 with the same seed and compares
test metrics. Each measurement runs in its own process. Results: a table on stdout and
JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
MODELS = ("eea", "rnn_ef", "rnn_lf", "mult")
PRECISIONS = ("fp32", "bf16")
MOSEI_SIZES = {"train": 15290, "valid": 2291, "test": 4832}
DIMS = {"text": 300, "audio": 74, "vision": 35}
EMOTIONS = ("anger", "disgust", "fear", "happy", "sad", "surprise")
# Share of samples showing each emotion, roughly MOSEI's (about a fifth show none).
LABEL_RATES = (0.21, 0.17, 0.08, 0.53, 0.25, 0.10)
EMOTION_DIM = 300
# Targets of the performance issue, checked in the summary.
TARGET_OVERHEAD = 1.05
TARGET_BF16_SPEEDUP = 1.4
TARGET_PARITY_POINTS = 0.5
TARGET_STARTUP_S = 3.0
TARGET_CUDA_EPOCH_S = 1.0


# --------------------------------------------------------------------------- helpers


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]] if values else []
    quartiles = statistics.quantiles(values, n=4)
    return [quartiles[0], quartiles[2]]


def _sizes(scale: float) -> dict[str, int]:
    return {split: max(8, round(n * scale)) for split, n in MOSEI_SIZES.items()}


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def random_splits(scale: float, seq_len: int, seed: int = 0) -> dict[str, Any]:
    """Train/valid/test `Split`s of random MOSEI-shaped features and multi-label labels."""
    import numpy as np

    from memo.data.split import Split

    rng = np.random.default_rng(seed)
    splits = {}
    for name, n in _sizes(scale).items():
        features = {
            m: rng.standard_normal((n, seq_len, d), dtype=np.float32) for m, d in DIMS.items()
        }
        labels = (rng.random((n, len(EMOTIONS))) < np.array(LABEL_RATES)).astype(np.float32)
        labels[0], labels[1] = 1.0, 0.0  # every emotion has a positive and a negative
        splits[name] = Split(**features, labels=labels, emotions=EMOTIONS)
    return splits


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _device(name: str):
    from memo.training.trainer import resolve_device

    return resolve_device(name)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_name()} ({_cores()} cores)"


# --------------------------------------------------------------------------- one training


class _Bench:
    """One model at one precision and data size: a Trainer plus what the floor needs."""

    def __init__(self, spec: dict[str, Any], work: Path) -> None:
        import torch
        from omegaconf import OmegaConf, open_dict

        from memo.experiment import build_model
        from memo.training.tensorboard import TensorBoardLogger
        from memo.training.trainer import DeviceSplit, TaskSpec, Trainer, seed_everything

        self.spec = spec
        self.device = _device(spec["device"])
        seed_everything(0)
        cfg = _compose(
            [
                "experiment=paper_mosei",
                f"model={spec['model']}",
                "embeddings=file",
                f"trainer.precision={spec['precision']}",
                f"trainer.device={self.device.type}",
                f"trainer.batch_size={spec['batch_size']}",
                "trainer.progress=false",
                f"paths.cache_dir={work / 'cache'}",
                f"paths.output_dir={work / 'outputs'}",
            ]
        )
        with open_dict(cfg.trainer):
            cfg.trainer.compile = bool(spec["compile"])
        self.splits = random_splits(spec["scale"], spec["seq_len"])
        model = build_model(cfg.model, DIMS, len(EMOTIONS), EMOTION_DIM)
        table = torch.randn(len(EMOTIONS), EMOTION_DIM, generator=torch.Generator().manual_seed(1))
        table = table.to(self.device)
        row = {e: k for k, e in enumerate(EMOTIONS)}

        def vectors(emotions: tuple[str, ...]) -> torch.Tensor:
            return table[[row[e] for e in emotions]]

        task = TaskSpec(
            tuple(cfg.dataset.metrics), bool(cfg.dataset.whole_sample), str(cfg.dataset.selection)
        )
        run_dir = work / "run"
        self.logger = TensorBoardLogger(run_dir / "tb")
        meta = {
            "model_config": OmegaConf.to_container(cfg.model, resolve=True),
            "dataset": "mosei",
            "dims": DIMS,
            "emotion_dim": EMOTION_DIM,
        }
        self.trainer = Trainer(
            model, vectors, cfg.trainer, task, run_dir, self.device, self.logger, meta, False
        )
        self.parameters = sum(p.numel() for p in model.parameters())
        self.run = self.trainer.prepare(self.splits["train"], self.splits["valid"])
        self.test = DeviceSplit.from_split(self.splits["test"], self.device)
        self.test_vectors = vectors(self.splits["test"].emotions)
        self.epoch = 0
        self.clip = cfg.trainer.clip_grad_norm
        self.train_batches: list[tuple] = []

    # The full epoch: the trainer's own per-epoch code, then the test split.
    def full_epoch(self) -> dict[str, float]:
        clock = time.perf_counter
        self.epoch += 1
        cpu = time.process_time()
        started = clock()
        result = self.trainer.run_epoch(self.run, self.epoch)
        tested = clock()
        loss, scores, labels = self.trainer._predict(self.test, None, self.test_vectors)
        predicted = clock()
        metrics = self.trainer._metrics(labels, scores, self.test.emotions)
        scored = clock()
        self.logger.scalars("test", metrics, self.epoch)
        _sync(self.device)
        finished = clock()
        self.trainer.checkpoints.wait()  # so the floor is not measured beside a write
        timings = dict(result.timings)
        timings["test"] = predicted - tested
        timings["test_metrics"] = scored - predicted
        timings["logging"] += finished - scored
        timings["epoch"] = finished - started
        timings["checkpoint_write_wait"] = clock() - finished
        timings["epoch_cpu"] = time.process_time() - cpu  # the write's CPU time included
        timings["valid_selection"] = result.valid.metrics[self.trainer.task.selection_key]
        return timings

    # The compute floor: forward/backward/optimizer steps and eval forwards, pre-made batches.
    def make_batches(self) -> None:
        import torch

        data, size = self.run.train, int(self.spec["batch_size"])
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(2))
        order = order.to(self.device)
        self.train_batches = [
            (data.text[i], data.audio[i], data.vision[i], data.labels[i])
            for i in (order[s : s + size] for s in range(0, len(data), size))
        ]
        size = self.trainer.eval_batch_size
        self.eval_batches = [
            (d.text[s : s + size], d.audio[s : s + size], d.vision[s : s + size], vectors)
            for d, vectors in ((self.run.valid, self.run.vectors), (self.test, self.test_vectors))
            for s in range(0, len(d), size)
        ]

    def floor(self, train_batches: list[tuple], eval_batches: list[tuple]) -> dict[str, float]:
        import torch
        from torch import nn

        trainer, run = self.trainer, self.run
        model, forward, optimizer, criterion = (
            trainer.model, trainer.forward, run.optimizer, run.criterion
        )  # fmt: skip
        parameters = [p for p in model.parameters() if p.requires_grad]
        clip = None if self.clip is None else float(self.clip)
        clock = time.perf_counter
        _sync(self.device)
        cpu = time.process_time()
        started = clock()
        model.train()
        for text, audio, vision, labels in train_batches:
            with trainer._autocast():
                logits = forward(text, audio, vision, run.vectors)
            loss = criterion(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(parameters, clip)
            optimizer.step()
        _sync(self.device)
        trained = clock()
        model.eval()
        with torch.no_grad():
            for text, audio, vision, vectors in eval_batches:
                with trainer._autocast():
                    forward(text, audio, vision, vectors)
        _sync(self.device)
        finished = clock()
        return {"train": trained - started, "eval": finished - trained,
                "epoch": finished - started, "epoch_cpu": time.process_time() - cpu}  # fmt: skip

    def precision_side_by_side(self, pairs: int, batches: int = 40) -> dict[str, Any]:
        """fp32 against bf16 autocast in this process: floor passes over the same `batches`
        training batches and two evaluation batches, alternating; ratios of adjacent pairs."""
        import torch

        train, evals = self.train_batches[:batches], self.eval_batches[:2]
        saved, ratios = self.trainer.autocast_dtype, []
        try:
            for _ in range(pairs):
                times = {}
                for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
                    self.trainer.autocast_dtype = dtype
                    times[name] = self.floor(train, evals)
                ratios.append({k: times["fp32"][k] / times["bf16"][k] for k in times["fp32"]})
        finally:
            self.trainer.autocast_dtype = saved
        return {
            "train_batches": len(train),
            "eval_batches": len(evals),
            **{f"speedup_{k}": _median([r[k] for r in ratios]) for k in ratios[0]},
            "pairs": ratios,
        }

    def warm_up(self, batches: int, epochs: int) -> None:
        """A few steps on the first rows (and, with `epochs`, whole untimed epochs)."""
        data, size = self.run.train, int(self.spec["batch_size"])
        count = min(batches, -(-len(data) // size))
        steps = [
            (data.text[s : s + size], data.audio[s : s + size], data.vision[s : s + size],
             data.labels[s : s + size])
            for s in range(0, count * size, size)
        ]  # fmt: skip
        valid, eval_size = self.run.valid, self.trainer.eval_batch_size
        evals = [(valid.text[:eval_size], valid.audio[:eval_size], valid.vision[:eval_size],
                  self.run.vectors)]  # fmt: skip
        self.floor(steps, evals)
        for _ in range(epochs):
            self.full_epoch()


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one benchmark configuration in this process; the result as a JSON-able dict."""
    import torch

    _set_threads(spec["threads"])
    with tempfile.TemporaryDirectory(prefix="memo-bench-") as tmp:
        built = time.perf_counter()
        bench = _Bench(spec, Path(tmp))
        setup_s = time.perf_counter() - built
        bench.warm_up(spec["warmup_batches"], spec["warmup_epochs"])
        if bench.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(bench.device)
        reps = []
        peak_rss = peak_gpu = None
        for rep in range(spec["epochs"]):
            # Full epoch and floor side by side; their order alternates from the second
            # pair on, so that a slow-down that comes and goes favours neither.
            floor = None
            if spec["floor"] and rep % 2:
                floor = bench.floor(bench.train_batches, bench.eval_batches)
            full = bench.full_epoch()
            if peak_rss is None:  # the trainer's own peak, before the floor's batch copies
                peak_rss = _peak_rss_mb()
                if bench.device.type == "cuda":
                    peak_gpu = torch.cuda.max_memory_allocated(bench.device) / 2**20
            if spec["floor"] and rep == 0:
                bench.make_batches()
            if spec["floor"] and not rep % 2:
                floor = bench.floor(bench.train_batches, bench.eval_batches)
            reps.append({"full": full, "floor": floor})
        side_by_side = None
        if spec.get("side_by_side") and spec["floor"]:
            side_by_side = bench.precision_side_by_side(spec["epochs"])
        bench.logger.close()
    sizes = {name: len(split) for name, split in bench.splits.items()}
    result = summarise(spec, sizes, reps, bench, setup_s, peak_rss, peak_gpu)
    if side_by_side is not None:
        result["bf16_side_by_side"] = side_by_side
    return result


def summarise(spec, sizes, reps, bench, setup_s, peak_rss, peak_gpu) -> dict[str, Any]:
    """Medians over the measured epochs."""
    full = [r["full"] for r in reps]
    keys = [k for k in full[0] if k != "valid_selection"]
    phases = {k: _median([f[k] for f in full]) for k in keys}
    evaluated = sizes["valid"] + sizes["test"]
    result: dict[str, Any] = {
        **{k: spec[k] for k in ("model", "precision", "scale", "seq_len", "batch_size", "compile")},
        "device": _device_name(bench.device),
        "threads": spec["threads"],
        "parameters": bench.parameters,
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
        result.update(
            floor_s=_median([f["epoch"] for f in floors]),
            floor_train_samples_per_s=sizes["train"] / _median([f["train"] for f in floors]),
            floor_eval_samples_per_s=evaluated / _median([f["eval"] for f in floors]),
            overhead=_median([r["full"]["epoch"] / r["floor"]["epoch"] for r in reps]),
            # quartiles of the per-pair ratios, and all epochs' time over all floors' time
            overhead_quartiles=_quartiles([r["full"]["epoch"] / r["floor"]["epoch"] for r in reps]),
            overhead_pooled=sum(r["full"]["epoch"] for r in reps)
            / sum(r["floor"]["epoch"] for r in reps),
            # process CPU time: robust to other jobs on a shared machine (with 1 thread)
            overhead_cpu=_median([r["full"]["epoch_cpu"] / r["floor"]["epoch_cpu"] for r in reps]),
        )
    return result


# --------------------------------------------------------------------------- start-up


class _FirstStep(Exception):
    """Raised by the probe after the first optimizer step, with its time.time()."""


def write_mosei_files(folder: Path, scale: float, seq_len: int) -> Path:
    """Random MOSEI-size data in the release's HDF5 layout (float32) and a pickled emotion
    vector file for embeddings=file; returns the vector file's path."""
    import pickle

    import h5py
    import numpy as np

    from memo.data.mosei_files import DATASET_KEY, FILES, LABELS

    folder.mkdir(parents=True, exist_ok=True)
    for split, data in random_splits(scale, seq_len).items():
        arrays = {name.format(split): getattr(data, m) for m, name in FILES.items()}
        arrays[LABELS.format(split)] = data.labels
        for name, array in arrays.items():
            with h5py.File(folder / name, "w") as file:
                file.create_dataset(DATASET_KEY, data=array)
    rng = np.random.default_rng(3)
    vectors = {e: rng.standard_normal(EMOTION_DIM).tolist() for e in EMOTIONS}
    path = folder / "emotion_vectors.pkl"
    path.write_bytes(pickle.dumps(vectors, protocol=4))
    return path


def probe_startup(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: a real run (`run_experiment`) up to its first optimizer step."""
    import memo.experiment
    from memo.training.trainer import Trainer

    main_started = time.time()
    _set_threads(spec["threads"])

    class ProbeTrainer(Trainer):
        def prepare(self, *args: Any, **kwargs: Any):
            run = super().prepare(*args, **kwargs)
            step = run.optimizer.step

            def first_step(*a: Any, **k: Any) -> None:
                step(*a, **k)
                _sync(self.device)
                raise _FirstStep(time.time())

            run.optimizer.step = first_step
            return run

    folder = Path(spec["folder"])
    cfg = _compose(
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
    memo.experiment.Trainer = ProbeTrainer
    try:
        memo.experiment.run_experiment(cfg, Path(tempfile.mkdtemp(dir=folder)))
    except _FirstStep as done:
        return {"main_started": main_started, "first_step": done.args[0]}
    raise RuntimeError("the probe run ended without a training step")


def measure_startup(args: argparse.Namespace, device: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="memo-startup-") as tmp:
        folder = Path(tmp) / "mosei"
        written = time.perf_counter()
        vectors = write_mosei_files(folder, args.scale, args.seq_len)
        write_s = time.perf_counter() - written
        cache = Path(tmp) / "cache"
        spec = {"folder": str(folder), "vectors": str(vectors), "cache": str(cache),
                "device": device, "threads": args.threads}  # fmt: skip
        runs = {"cold": [], "warm": []}
        for kind in ["cold"] + ["warm"] * args.startup_runs:
            spawned = time.time()
            probe = _spawn("startup", spec, args)
            runs[kind].append(
                {
                    "to_first_step_s": probe["first_step"] - spawned,
                    "interpreter_and_imports_s": probe["main_started"] - spawned,
                    "setup_and_first_step_s": probe["first_step"] - probe["main_started"],
                }
            )
    return {
        "scale": args.scale,
        "samples": sum(_sizes(args.scale).values()),
        "files_written_s": write_s,
        "cold_s": _median([r["to_first_step_s"] for r in runs["cold"]]),
        "warm_s": _median([r["to_first_step_s"] for r in runs["warm"]]),
        "warm_imports_s": _median([r["interpreter_and_imports_s"] for r in runs["warm"]]),
        "runs": runs,
    }


# --------------------------------------------------------------------------- bf16 parity


def measure_parity(spec: dict[str, Any]) -> dict[str, Any]:
    """Train EEA on the built-in corpus (default config) at one precision; its test metrics."""
    from memo.experiment import run_experiment

    _set_threads(spec["threads"])
    with tempfile.TemporaryDirectory(prefix="memo-parity-") as tmp:
        cfg = _compose(
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


# --------------------------------------------------------------------------- orchestration


def _spawn(kind: str, spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in a fresh `python -m memo.bench --worker` process."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "memo.bench", "--worker", kind, json.dumps(spec), str(out)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"benchmark worker {kind} {spec} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def _worker(kind: str, spec_json: str, out: str) -> None:
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    spec = json.loads(spec_json)
    result = {"bench": measure, "startup": probe_startup, "parity": measure_parity}[kind](spec)
    Path(out).write_text(json.dumps(result))


def _machine(device: str) -> dict[str, Any]:
    import torch

    from memo.training.trainer import resolve_device

    resolved = resolve_device(device)
    return {
        "device": _device_name(resolved),
        "device_type": resolved.type,
        "cpu": _cpu_name(),
        "cores": _cores(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _specs(args: argparse.Namespace, device: str) -> tuple[list[dict], list[dict]]:
    """The main grid and the scaling grid (scaling entries already in the main grid reused)."""
    warmup_epochs = args.warmup_epochs
    if warmup_epochs is None:  # compilation and cuDNN autotuning need a whole epoch
        warmup_epochs = 1 if (device == "cuda" or args.compile) else 0
    base = {"device": device, "threads": args.threads, "batch_size": args.batch_size,
            "epochs": args.epochs, "warmup_batches": args.warmup_batches,
            "warmup_epochs": warmup_epochs, "compile": args.compile,
            "floor": not args.no_floor}  # fmt: skip
    main = []
    both = set(PRECISIONS) <= set(args.precisions)
    if not args.skip_main:
        main = [
            {
                **base,
                "model": m,
                "precision": p,
                "scale": args.scale,
                "seq_len": args.seq_len,
                "side_by_side": both and p == "fp32",
            }  # fmt: skip
            for m in args.models
            for p in args.precisions
        ]
    scaling = []
    if args.scaling:  # sizes at --seq-len, then sequence lengths at the smallest size
        points = [(s, args.seq_len) for s in args.scaling_scales]
        points += [(min(args.scaling_scales), t) for t in args.scaling_seq_lens]
        scaling = [
            {**base, "model": m, "precision": args.precisions[0], "scale": s, "seq_len": t}
            for m in args.models
            for s, t in dict.fromkeys(points)
        ]
    return main, scaling


def _key(spec: dict[str, Any]) -> tuple:
    return (spec["model"], spec["precision"], spec["scale"], spec["seq_len"])


def _scaling_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Epoch time against samples x steps, relative to the smallest configuration."""
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = sorted(
            (r for r in rows if r["model"] == model), key=lambda r: (r["seq_len"], r["scale"])
        )
        work = [sum(r["sizes"].values()) * r["seq_len"] for r in mine]
        for r, w in zip(mine, work, strict=True):
            table.append(
                {
                    "model": model,
                    "precision": r["precision"],
                    "scale": r["scale"],
                    "seq_len": r["seq_len"],
                    "samples": sum(r["sizes"].values()),
                    "epoch_s": r["epoch_s"],
                    "work_ratio": w / work[0],
                    "time_ratio": r["epoch_s"] / mine[0]["epoch_s"],
                    # 1.0 = exactly linear in samples x steps; above 1: worse than linear
                    "linearity": (r["epoch_s"] / mine[0]["epoch_s"]) / (w / work[0]),
                }
            )
    return table


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    rows = {(r["model"], r["precision"]): r for r in report["results"] if r["scale"] >= 1}
    targets: dict[str, Any] = {}
    eea = rows.get(("eea", "fp32"))
    if eea and "overhead" in eea and report["machine"]["device_type"] == "cpu":
        for key in ("overhead", "overhead_cpu"):
            value = eea[key]
            targets[f"{key}_eea_fp32"] = {"value": value, "target": TARGET_OVERHEAD,
                                          "met": value <= TARGET_OVERHEAD}  # fmt: skip
    if eea and ("eea", "bf16") in rows:
        value = eea["epoch_s"] / rows[("eea", "bf16")]["epoch_s"]
        targets["bf16_speedup_eea"] = {"value": value, "target": TARGET_BF16_SPEEDUP,
                                       "met": value >= TARGET_BF16_SPEEDUP}  # fmt: skip
    side = report.get("bf16_speedup_side_by_side", {}).get("eea")
    if side is not None:
        targets["bf16_speedup_eea_side_by_side"] = {"value": side, "target": TARGET_BF16_SPEEDUP,
                                                    "met": side >= TARGET_BF16_SPEEDUP}  # fmt: skip
    if report.get("parity"):
        value = abs(report["parity"]["wa_avg_difference_points"])
        targets["bf16_wa_parity_points"] = {"value": value, "target": TARGET_PARITY_POINTS,
                                            "met": value <= TARGET_PARITY_POINTS}  # fmt: skip
    if report.get("startup") and report["startup"]["scale"] >= 1:
        value = report["startup"]["warm_s"]
        targets["startup_warm_s"] = {"value": value, "target": TARGET_STARTUP_S,
                                     "met": value <= TARGET_STARTUP_S}  # fmt: skip
    if eea and report["machine"]["device_type"] == "cuda":
        value = eea["epoch_s"]
        targets["cuda_epoch_eea_s"] = {"value": value, "target": TARGET_CUDA_EPOCH_S,
                                       "met": value < TARGET_CUDA_EPOCH_S}  # fmt: skip
    return targets


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _ratio(row: dict[str, Any]) -> str:
    if row.get("overhead") is None:
        return "-"
    low, high = row["overhead_quartiles"]
    return f"{row['overhead']:.3f} [{low:.3f}, {high:.3f}] {row['overhead_pooled']:.3f}"


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    machine = report["machine"]
    lines = [
        f"device: {machine['device']}; torch {machine['torch']}; threads "
        f"{report['settings']['threads']}; OMP_NUM_THREADS={machine['OMP_NUM_THREADS']}",
        "",
    ]
    if report["results"]:
        lines += [
            "| model | precision | scale | train samples/s | eval samples/s | epoch s "
            "| floor s | epoch/floor (median, [quartiles], pooled) | epoch/floor CPU time "
            "| peak RSS MB | peak GPU MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in report["results"]:
            lines.append(
                f"| {r['model']} | {r['precision']} | {r['scale']:g} | "
                f"{_fmt(r['train_samples_per_s'], 0)} | {_fmt(r['eval_samples_per_s'], 0)} | "
                f"{_fmt(r['epoch_s'])} | {_fmt(r.get('floor_s'))} | {_ratio(r)} | "
                f"{_fmt(r.get('overhead_cpu'), 3)} | "
                f"{_fmt(r['peak_rss_mb'], 0)} | {_fmt(r['peak_gpu_mb'], 0)} |"
            )
        lines += ["", "epoch phases (median s): " + "; ".join(
            f"{r['model']}/{r['precision']}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in r["phases_s"].items() if k not in ("epoch", "epoch_cpu"))
            for r in report["results"])]  # fmt: skip
    if report.get("bf16_speedup"):
        lines += ["", "bf16 speed-up (fp32 epoch / bf16 epoch, separate processes): " + ", ".join(
            f"{m} {v:.2f}x" for m, v in report["bf16_speedup"].items())]  # fmt: skip
    if report.get("bf16_speedup_side_by_side"):
        lines += ["", "bf16 speed-up of the compute floor, fp32 and bf16 alternating in one "
                  "process: " + ", ".join(f"{m} {v:.2f}x" for m, v in
                                          report["bf16_speedup_side_by_side"].items())]  # fmt: skip
    if report.get("scaling"):
        lines += [
            "",
            "| model | scale | steps | samples | epoch s | work x | time x | time/work |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report["scaling"]:
            lines.append(
                f"| {r['model']} | {r['scale']:g} | {r['seq_len']} | {r['samples']} | "
                f"{_fmt(r['epoch_s'])} | {_fmt(r['work_ratio'])} | {_fmt(r['time_ratio'])} | "
                f"{_fmt(r['linearity'])} |"
            )
    if report.get("startup"):
        s = report["startup"]
        lines += ["", f"start-up to first training step ({s['samples']} samples): cold "
                  f"{s['cold_s']:.2f} s, warm cache {s['warm_s']:.2f} s (interpreter and "
                  f"imports {s['warm_imports_s']:.2f} s)"]  # fmt: skip
    if report.get("parity"):
        p = report["parity"]
        lines += ["", f"bf16 parity (built-in corpus, seed {p['seed']}): test wa/avg fp32 "
                  f"{p['fp32']['test']['wa/avg']:.4f}, bf16 {p['bf16']['test']['wa/avg']:.4f} "
                  f"({p['wa_avg_difference_points']:+.2f} points); wall fp32 "
                  f"{p['fp32']['wall_s']:.1f} s, bf16 {p['bf16']['wall_s']:.1f} s"]  # fmt: skip
    if report.get("targets"):
        lines += ["", "targets: " + "; ".join(
            f"{k} {v['value']:.3f} (target {v['target']}: {'met' if v['met'] else 'MISSED'})"
            for k, v in report["targets"].items())]  # fmt: skip
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _names(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [x for x in text.split(",") if x]
        unknown = [x for x in names if x not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{unknown or text!r}; allowed: {','.join(allowed)}")
        return names

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m memo.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", type=_names(MODELS), default=list(MODELS),
                        help="comma-separated (default: all)")  # fmt: skip
    parser.add_argument("--precisions", type=_names(PRECISIONS), default=list(PRECISIONS),
                        help="comma-separated (default: fp32,bf16)")  # fmt: skip
    parser.add_argument("--scale", type=float, default=1.0,
                        help="data size as a fraction of MOSEI's (default 1)")  # fmt: skip
    parser.add_argument("--seq-len", type=int, default=20, help="time steps (default 20)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs (median)")
    parser.add_argument("--warmup-batches", type=int, default=10)
    parser.add_argument("--warmup-epochs", type=int, default=None,
                        help="untimed whole epochs first (default: 1 on CUDA or with "
                        "--compile, else 0)")  # fmt: skip
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=_cores(),
                        help="torch threads and OMP_NUM_THREADS (default: all cores)")  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--no-floor", action="store_true", help="skip the compute floor")
    parser.add_argument("--skip-main", action="store_true", help="only the chosen extras")
    parser.add_argument("--scaling", action="store_true",
                        help="also time epochs at other sizes and sequence lengths")  # fmt: skip
    parser.add_argument("--scaling-scales", type=_floats, default=[0.25, 0.5, 1.0],
                        help="sizes timed at --seq-len (default 0.25,0.5,1)")  # fmt: skip
    parser.add_argument("--scaling-seq-lens", type=_floats, default=[20, 50],
                        help="lengths timed at the smallest of those (default 20,50)")  # fmt: skip
    parser.add_argument("--startup", action="store_true",
                        help="also time start-up to the first step, cold and warm")  # fmt: skip
    parser.add_argument("--startup-runs", type=int, default=3, help="warm start-ups (median)")
    parser.add_argument("--parity", action="store_true",
                        help="also train EEA on the built-in corpus in fp32 and bf16")  # fmt: skip
    parser.add_argument("--parity-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench.json"),
                        help="JSON results (default outputs/bench.json)")  # fmt: skip
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.scaling_seq_lens = [int(t) for t in args.scaling_seq_lens]
    if args.epochs < 1 or args.threads < 1 or args.scale <= 0:
        parser.error("--epochs and --threads must be positive, --scale above 0")
    return args


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return None
    machine = _machine(args.device)
    device = machine["device_type"]
    report: dict[str, Any] = {
        "command": "python -m memo.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k != "worker"
        },  # fmt: skip
        "results": [],
    }
    main_specs, scaling_specs = _specs(args, device)
    done: dict[tuple, dict] = {}
    for spec in main_specs + scaling_specs:
        if _key(spec) in done:
            continue
        print(f"measuring {spec['model']} {spec['precision']} scale {spec['scale']:g} "
              f"steps {spec['seq_len']} ...", file=sys.stderr, flush=True)  # fmt: skip
        done[_key(spec)] = _spawn("bench", spec, args)
        report["results"] = [done[_key(s)] for s in main_specs if _key(s) in done]
        _write(args.out, report)  # what is measured so far, in case the run is cut short
    report["results"] = [done[_key(s)] for s in main_specs]
    speedup = {}
    for m in args.models:
        fp32, bf16 = (done.get((m, p, args.scale, args.seq_len)) for p in PRECISIONS)
        if fp32 and bf16:
            speedup[m] = fp32["epoch_s"] / bf16["epoch_s"]
    report["bf16_speedup"] = speedup
    report["bf16_speedup_side_by_side"] = {
        r["model"]: r["bf16_side_by_side"]["speedup_epoch"]
        for r in report["results"]
        if r.get("bf16_side_by_side")
    }
    if scaling_specs:
        report["scaling"] = _scaling_table([done[_key(s)] for s in scaling_specs])
    if args.startup:
        print("measuring start-up ...", file=sys.stderr, flush=True)
        report["startup"] = measure_startup(args, device)
    if args.parity:
        print("measuring bf16 parity ...", file=sys.stderr, flush=True)
        runs = {
            p: _spawn(
                "parity",
                {
                    "precision": p,
                    "seed": args.parity_seed,
                    "device": device,
                    "threads": args.threads,
                },
                args,
            )  # fmt: skip
            for p in PRECISIONS
        }
        difference = runs["bf16"]["test"]["wa/avg"] - runs["fp32"]["test"]["wa/avg"]
        report["parity"] = {**runs, "seed": args.parity_seed,
                            "wa_avg_difference_points": 100 * difference}  # fmt: skip
    report["targets"] = _targets(report)
    _write(args.out, report)
    print(format_report(report))
    print(f"\nJSON written to {args.out}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
