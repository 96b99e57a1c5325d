"""The training loop: batches by index slicing over device-resident tensors, early stopping.

Performance (see `python -m memo.bench`): the inner loop does no host synchronisation: batch
losses and logits stay on the device and are moved to the host once per epoch; metrics are
computed once per split per epoch; checkpoints are snapshotted in memory and written by a
background thread while the next epoch runs. `Trainer.run_epoch` is the one per-epoch code
path, shared by `fit` and the benchmark.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from memo.data.split import Split
from memo.errors import MemoError, config_error
from memo.models.base import EmotionModel
from memo.training.checkpoints import load_checkpoint, save_checkpoint
from memo.training.metrics import evaluate
from memo.training.tensorboard import TensorBoardLogger

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
# Smallest evaluation batch per device type: on CPU larger batches are no faster (measured),
# on a GPU fewer, larger batches mean fewer kernel launches.
EVAL_BATCH = {"cuda": 2048}
EVAL_BATCH_DEFAULT = 256


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


@dataclass(frozen=True)
class DeviceSplit:
    """A split's tensors on the training device, so that batching is index slicing."""

    text: torch.Tensor
    audio: torch.Tensor
    vision: torch.Tensor
    labels: torch.Tensor
    emotions: tuple[str, ...]

    @classmethod
    def from_split(cls, split: Split, device: torch.device) -> DeviceSplit:
        def put(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32).to(device)

        return cls(
            put(split.text), put(split.audio), put(split.vision), put(split.labels), split.emotions
        )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TaskSpec:
    """How a dataset is scored: which metrics, whole-sample accuracies, model selection."""

    metrics: tuple[str, ...]
    whole_sample: bool
    selection: str  # a metric name; its average over emotions on valid selects the best epoch

    @property
    def selection_key(self) -> str:
        return f"{self.selection}/avg"


@dataclass(frozen=True)
class Evaluation:
    """Loss, sigmoid scores, labels and metrics of one pass over a split."""

    loss: float
    scores: np.ndarray
    labels: np.ndarray
    metrics: dict[str, float]


@dataclass
class TrainState:
    """Everything early stopping needs to continue: epoch counters and the best so far."""

    epoch: int = 0
    best_value: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def update(self, epoch: int, value: float) -> bool:
        """Record epoch `epoch`'s selection value (NaN counts as worst); True if it is best."""
        self.epoch = epoch
        if not math.isnan(value) and value > self.best_value:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


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


def pos_weight(labels: np.ndarray) -> torch.Tensor:
    """BCE pos_weight per emotion = #negatives / #positives on the training split."""
    positives = labels.sum(0)
    negatives = len(labels) - positives
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    return torch.as_tensor(weights, dtype=torch.float32)


class Trainer:
    """Fits one model on one train/valid pair and evaluates it; owns no data loading."""

    def __init__(
        self,
        model: EmotionModel,
        vectors: Callable[[tuple[str, ...]], torch.Tensor],
        config: DictConfig,
        task: TaskSpec,
        run_dir: Path,
        device: torch.device,
        logger: TensorBoardLogger,
        checkpoint_meta: dict[str, Any],
        show_progress: bool,
        target: str | None = None,
    ) -> None:
        if str(config.precision) not in PRECISIONS:
            raise config_error("trainer.precision", config.precision, " | ".join(PRECISIONS))
        self.model = model.to(device)
        self.vectors = vectors
        self.config = config
        self.task = task
        self.device = device
        self.logger = logger
        self.checkpoint_dir = run_dir / "checkpoints"
        self.checkpoint_meta = checkpoint_meta
        self.show_progress = show_progress
        self.target = target  # the zero-/few-shot emotion, reported apart from the others
        self.autocast_dtype = PRECISIONS[str(config.precision)]

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        )

    def _logits(self, data: DeviceSplit, index: torch.Tensor, vectors: torch.Tensor):
        with self._autocast():
            logits = self.model(data.text[index], data.audio[index], data.vision[index], vectors)
        return logits.float()

    def fit(self, train: Split, valid: Split, resume: dict[str, Any] | None = None) -> TrainState:
        """Train with early stopping on the validation selection metric; best weights loaded.

        `resume` is a `last.pt` checkpoint: training continues after its epoch with the same
        model, optimiser, scheduler, early-stopping and random-number state, so the result
        equals an uninterrupted run's. SIGINT/SIGTERM stop after the current batch; the
        `last.pt` of the previous epoch is kept for resuming.
        """
        config = self.config
        model = self.model
        train_data = DeviceSplit.from_split(train, self.device)
        valid_data = DeviceSplit.from_split(valid, self.device)
        vectors = self.vectors(train.emotions)
        criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight(train.labels).to(self.device))
        optimizer = instantiate(config.optimizer)(model.parameters())
        scheduler = instantiate(config.scheduler)(optimizer)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        state = TrainState()
        best_weights = copy.deepcopy(model.state_dict())
        if resume is not None:
            best_weights = self._restore(resume, optimizer, scheduler, generator, state)
            log.info("resumed after epoch %d (best epoch %d)", state.epoch, state.best_epoch)

        with StopOnSignal() as stop:
            for epoch in range(state.epoch + 1, int(config.epochs) + 1):
                if state.bad_epochs >= int(config.early_stop):
                    break
                started = time.perf_counter()
                train_loss, train_metrics = self._train_epoch(
                    epoch, train_data, vectors, criterion, optimizer, generator, stop
                )
                result = self.evaluate(valid_data, criterion, vectors)
                scheduler.step(result.loss)
                improved = state.update(epoch, result.metrics[self.task.selection_key])
                if improved:
                    best_weights = copy.deepcopy(model.state_dict())
                lr = optimizer.param_groups[0]["lr"]
                seconds = time.perf_counter() - started
                state.history.append(
                    {
                        "epoch": epoch,
                        "train_loss": train_loss,
                        "valid_loss": result.loss,
                        "valid_selection": result.metrics[self.task.selection_key],
                        "lr": lr,
                        "seconds": seconds,
                    }  # fmt: skip
                )
                self.logger.scalars("train", {"loss": train_loss, "lr": lr, **train_metrics}, epoch)
                self.logger.scalars("valid", {"loss": result.loss, **result.metrics}, epoch)
                log.info(
                    "epoch %d  train loss %.4f  valid loss %.4f  valid %s %.4f%s  (%.1fs)",
                    epoch, train_loss, result.loss, self.task.selection_key,
                    result.metrics[self.task.selection_key], "  *best*" if improved else "",
                    seconds,
                )  # fmt: skip
                # best.pt before last.pt: a kill between the two only repeats this epoch.
                checkpoint = self._checkpoint(optimizer, scheduler, generator, state, train)
                if improved:
                    save_checkpoint(self.checkpoint_dir / "best.pt", checkpoint)
                save_checkpoint(self.checkpoint_dir / "last.pt", checkpoint)
                if state.bad_epochs >= int(config.early_stop):
                    log.info("early stop: no better valid %s for %d epochs",
                             self.task.selection_key, state.bad_epochs)  # fmt: skip
        model.load_state_dict(best_weights)
        return state

    def _train_epoch(self, epoch, data, vectors, criterion, optimizer, generator, stop):
        """One pass over the training data in a random order; returns loss and metrics.

        Losses and outputs stay on the device and are moved once, at the end of the epoch.
        """
        model, config = self.model, self.config
        model.train()
        batch_size = int(config.batch_size)
        order = torch.randperm(len(data), generator=generator).to(self.device)
        losses, outputs = [], []
        batches = range(0, len(data), batch_size)
        if self.show_progress:
            batches = tqdm(batches, desc=f"epoch {epoch}", leave=False, unit="batch")
        for start in batches:
            index = order[start : start + batch_size]
            logits = self._logits(data, index, vectors)
            loss = criterion(logits, data.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), float(config.clip_grad_norm))
            optimizer.step()
            losses.append(loss.detach())
            outputs.append(logits.detach())
            if stop.requested:
                raise Interrupted(
                    f"stopped by {stop.signal_name} during epoch {epoch}; checkpoints/last.pt "
                    "holds the previous epoch: run the same command with resume=true to continue"
                )
        batch_losses = torch.stack(losses)
        finite = torch.isfinite(batch_losses)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0])
            raise MemoError(
                f"non-finite training loss ({float(batch_losses[first])}) in epoch {epoch}, batch "
                f"{first + 1} of {len(losses)}; checkpoints/last.pt holds the weights from before "
                "this epoch (try a lower trainer.lr, or check the features for extreme values)"
            )
        sizes = torch.full_like(batch_losses, batch_size)
        sizes[-1] = len(data) - batch_size * (len(losses) - 1)
        train_loss = float((batch_losses * sizes).sum()) / len(data)
        scores = torch.sigmoid(torch.cat(outputs)).cpu().numpy()
        labels = data.labels[order].cpu().numpy()
        return train_loss, self._metrics(labels, scores, data.emotions)

    def _checkpoint(self, optimizer, scheduler, generator, state: TrainState, train: Split):
        return {
            **self.checkpoint_meta,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "emotions": list(train.emotions),
            "state": state.as_dict(),
            "rng": {"torch": torch.get_rng_state(), "shuffle": generator.get_state()},
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }

    def _restore(self, checkpoint, optimizer, scheduler, generator, state: TrainState):
        """Load a `last.pt` into the training objects; return the best weights so far."""
        self.model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        state.load(checkpoint["state"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        generator.set_state(checkpoint["rng"]["shuffle"])
        if checkpoint["cuda_rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
        best = self.checkpoint_dir / "best.pt"
        if state.best_epoch and best.is_file():
            return load_checkpoint(best)["model"]
        return copy.deepcopy(self.model.state_dict())

    def _metrics(self, labels: np.ndarray, scores: np.ndarray, emotions) -> dict[str, float]:
        return evaluate(
            labels,
            scores,
            emotions,
            self.task.metrics,
            threshold=float(self.config.threshold),
            whole_sample=self.task.whole_sample,
            target=self.target if self.target in emotions else None,
        )

    @torch.no_grad()
    def evaluate(
        self, data: DeviceSplit, criterion: nn.Module | None, vectors: torch.Tensor
    ) -> Evaluation:
        """Scores and metrics of the current model on `data` (eval mode, one host transfer)."""
        self.model.eval()
        batch = max(int(self.config.batch_size), 256)
        index = torch.arange(len(data), device=self.device)
        logits = torch.cat(
            [self._logits(data, index[s : s + batch], vectors) for s in range(0, len(data), batch)]
        )
        loss = float(criterion(logits, data.labels)) if criterion is not None else math.nan
        scores = torch.sigmoid(logits).cpu().numpy()
        labels = data.labels.cpu().numpy()
        return Evaluation(loss, scores, labels, self._metrics(labels, scores, data.emotions))

    def test(self, split: Split, trained: tuple[str, ...]) -> Evaluation:
        """Evaluate on `split`, whose emotion set may extend the trained one (zero-shot)."""
        self.model.adapt_emotions(trained, split.emotions)
        self.model.to(self.device)
        data = DeviceSplit.from_split(split, self.device)
        return self.evaluate(data, None, self.vectors(split.emotions))
