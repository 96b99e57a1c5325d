"""One model at one precision and data size: a `Trainer` on random data, timed two ways.

`full_epoch` runs the trainer's own epoch (`Trainer.run_epoch`: training, validation,
metrics, logging, checkpoints) plus the test split; `floor` runs only `Trainer.train_step`
and evaluation forwards over pre-made batches: the compute the epoch cannot avoid.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf, open_dict

from memo.api import compose_config
from memo.bench.data import EMOTION_DIM, EMOTIONS, dims, random_splits
from memo.bench.machine import sync
from memo.bench.stats import median
from memo.models.factory import build_model
from memo.training.batches import Batch, DeviceSplit
from memo.training.runtime import resolve_device, seed_everything
from memo.training.tensorboard import TensorBoardLogger
from memo.training.trainer import TaskSpec, Trainer

EvalBatch = tuple[Batch, torch.Tensor]  # a batch and the emotion vectors it is scored against


class PhaseClock:
    """The trainer's `on_phase` hook: seconds from the previous phase's end, by phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()

    def start(self) -> None:
        """Forget the last epoch's phases; the next phase starts now."""
        self.seconds, self.last = {}, time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self.last
        self.last = now


class Session:
    """A trainer prepared on random MOSEI-shaped data, and the batches the floor replays."""

    def __init__(self, spec: dict[str, Any], work: Path) -> None:
        self.spec = spec
        self.device = resolve_device(spec["device"])
        seed_everything(0)
        # --text-dim: text features and emotion vectors of that size, as GloVe gives both
        # (300 in the paper, 50 for the built-in corpus); EEA's text hidden size follows it
        text_dim = int(spec.get("text_dim", EMOTION_DIM))
        cfg = compose_config(
            [
                "experiment=paper_mosei",
                f"model={spec['model']}",
                "embeddings=file",
                f"embeddings.dim={text_dim}",
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
        self.splits = random_splits(spec["scale"], spec["seq_len"], text_dim=text_dim)
        model = build_model(cfg.model, dims(text_dim), len(EMOTIONS), text_dim)
        table = torch.randn(len(EMOTIONS), text_dim, generator=torch.Generator().manual_seed(1))
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
            "dims": dims(text_dim),
            "emotion_dim": text_dim,
        }
        self.phases = PhaseClock()
        self.trainer = Trainer(
            model, vectors, cfg.trainer, task, run_dir, self.device, self.logger, meta, False,
            on_phase=self.phases,
        )  # fmt: skip
        self.parameters = sum(p.numel() for p in model.parameters())
        self.run = self.trainer.prepare(self.splits["train"], self.splits["valid"])
        self.test = DeviceSplit.from_split(self.splits["test"], self.device)
        self.test_vectors = vectors(self.splits["test"].emotions)
        self.epoch = 0
        self.train_batches: list[Batch] = []
        self.eval_batches: list[EvalBatch] = []

    def full_epoch(self) -> dict[str, float]:
        """The trainer's own epoch, then the test split; seconds by phase."""
        clock = time.perf_counter
        self.epoch += 1
        cpu = time.process_time()
        self.phases.start()
        started = clock()
        result = self.trainer.run_epoch(self.run, self.epoch)
        tested = clock()
        _, scores, labels = self.trainer.predict(self.test, None, self.test_vectors)
        predicted = clock()
        metrics = self.trainer.compute_metrics(labels, scores, self.test.emotions)
        scored = clock()
        self.logger.scalars("test", metrics, self.epoch)
        sync(self.device)
        finished = clock()
        self.trainer.checkpoints.wait()  # so the floor is not measured beside a write
        timings = dict(self.phases.seconds)
        timings["test"] = predicted - tested
        timings["test_metrics"] = scored - predicted
        timings["logging"] += finished - scored
        timings["epoch"] = finished - started
        timings["checkpoint_write_wait"] = clock() - finished
        timings["epoch_cpu"] = time.process_time() - cpu  # the write's CPU time included
        timings["valid_selection"] = result.valid.metrics[self.trainer.task.selection_key]
        return timings

    def make_batches(self) -> None:
        """Pre-make the floor's batches: one shuffled training epoch, valid and test."""
        data, size = self.run.train, int(self.spec["batch_size"])
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(2))
        order = order.to(self.device)
        self.train_batches = [data.batch(order[s : s + size]) for s in range(0, len(data), size)]
        size = self.trainer.eval_batch_size
        scored = ((self.run.valid, self.run.vectors), (self.test, self.test_vectors))
        self.eval_batches = [
            (split.batch(slice(s, s + size)), vectors)
            for split, vectors in scored
            for s in range(0, len(split), size)
        ]

    def floor(self, train_batches: list[Batch], eval_batches: list[EvalBatch]) -> dict[str, float]:
        """`Trainer.train_step` over `train_batches`, then evaluation forwards; seconds."""
        trainer, clock = self.trainer, time.perf_counter
        sync(self.device)
        cpu = time.process_time()
        started = clock()
        trainer.model.train()
        for batch in train_batches:
            trainer.train_step(self.run, batch)
        sync(self.device)
        trained = clock()
        trainer.model.eval()
        with torch.no_grad():
            for batch, vectors in eval_batches:
                trainer.logits(batch, vectors)
        sync(self.device)
        finished = clock()
        return {"train": trained - started, "eval": finished - trained,
                "epoch": finished - started, "epoch_cpu": time.process_time() - cpu}  # fmt: skip

    def precision_side_by_side(self, pairs: int, batches: int = 40) -> dict[str, Any]:
        """fp32 against bf16 autocast in this process: floor passes over the same `batches`
        training batches and two evaluation batches, alternating; ratios of adjacent pairs."""
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
            **{f"speedup_{k}": median([r[k] for r in ratios]) for k in ratios[0]},
            "pairs": ratios,
        }

    def warm_up(self, batches: int, epochs: int) -> None:
        """A few steps on the first rows (and, with `epochs`, whole untimed epochs)."""
        data, size = self.run.train, int(self.spec["batch_size"])
        count = min(batches, -(-len(data) // size))
        steps = [data.batch(slice(s, s + size)) for s in range(0, count * size, size)]
        evals = [(self.run.valid.batch(slice(0, self.trainer.eval_batch_size)), self.run.vectors)]
        self.floor(steps, evals)
        for _ in range(epochs):
            self.full_epoch()
