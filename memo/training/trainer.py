"""The training loop: batches by index slicing over device-resident tensors, early stopping.

Performance (see `python -m memo.bench`): the inner loop does no host synchronisation: batch
losses and logits stay on the device and are moved to the host once per epoch; metrics are
computed once per split per epoch; checkpoints are snapshotted in memory and written by a
background thread while the next epoch runs. `Trainer.run_epoch` is the one per-epoch code
path and `Trainer.train_step` the one optimiser step, shared by `fit` and the benchmark.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from memo.data.split import Split
from memo.errors import MemoError, config_error
from memo.loggers.base import RunLogger
from memo.models.base import EmotionModel
from memo.training.batches import Batch, DeviceSplit
from memo.training.checkpoints import CheckpointWriter, load_checkpoint
from memo.training.metrics import evaluate
from memo.training.runtime import Interrupted, StopOnSignal, tune_allocator

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16"]  # trainer.precision (the config schema uses this type)
PRECISIONS: dict[Precision, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
# Smallest evaluation batch per device type: on CPU larger batches are no faster (measured),
# on a GPU fewer, larger batches mean fewer kernel launches.
EVAL_BATCH = {"cuda": 2048}
EVAL_BATCH_DEFAULT = 256


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
    initial_loss: float | None = None  # the run's first batch loss, the divergence reference
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch, with its scalars

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


def prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    """`{name: v}` -> `{prefix/name: v}` (TensorBoard tags such as `valid/wa/anger`)."""
    return {f"{prefix}/{name}": value for name, value in values.items()}


def pos_weight(labels: np.ndarray) -> torch.Tensor:
    """BCE pos_weight per emotion = #negatives / #positives on the training split."""
    positives = labels.sum(0)
    negatives = len(labels) - positives
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    return torch.as_tensor(weights, dtype=torch.float32)


@dataclass
class Run:
    """What one training run carries from epoch to epoch (see `Trainer.prepare`)."""

    train: DeviceSplit
    valid: DeviceSplit
    vectors: torch.Tensor
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    state: TrainState
    best_weights: dict[str, torch.Tensor]


@dataclass(frozen=True)
class EpochResult:
    """One epoch's losses and metrics, and whether it is the best so far."""

    epoch: int
    train_loss: float
    train_metrics: dict[str, float]
    valid: Evaluation
    improved: bool


# The phases of an epoch, in order; `Trainer`'s `on_phase` hook is called as each one ends.
PHASES = ("train", "train_metrics", "valid", "valid_metrics", "logging", "checkpoint")


def _no_hook(phase: str) -> None:
    """The default `on_phase`: an epoch's phases are not observed."""


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
        logger: RunLogger,
        checkpoint_meta: dict[str, Any],
        show_progress: bool,
        target: str | None = None,
        on_phase: Callable[[str], None] = _no_hook,
    ) -> None:
        """`on_phase(name)` is called as each of an epoch's `PHASES` ends (the benchmark times
        them); the default does nothing."""
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
        clip = config.clip_grad_norm
        self.clip_grad_norm = None if clip is None else float(clip)
        self.on_phase = on_phase
        self.checkpoints = CheckpointWriter()
        # Keep freed memory for the next batch instead of returning it to the kernel (glibc):
        # no page-fault churn per batch; see runtime.MALLOC_SETTINGS.
        log.debug("allocator settings: %s", tune_allocator() or "unchanged")
        # Optional torch.compile of the forward pass (`trainer.compile`, off by default: it
        # did not help these models on CPU; see the README's Performance section).
        # The compiled module shares the model's parameters; state dicts are unaffected.
        self.forward: Callable[..., torch.Tensor] = self.model
        if config.compile:
            self.forward = torch.compile(self.model)

    @property
    def eval_batch_size(self) -> int:
        """Samples per evaluation batch: the training batch size or the device's minimum."""
        floor = EVAL_BATCH.get(self.device.type, EVAL_BATCH_DEFAULT)
        return max(int(self.config.batch_size), floor)

    def logits(self, batch: Batch, vectors: torch.Tensor) -> torch.Tensor:
        """The model's float32 logits for `batch`, in the configured precision (autocast)."""
        autocast = (
            contextlib.nullcontext()
            if self.autocast_dtype is None
            else torch.autocast(self.device.type, dtype=self.autocast_dtype)
        )
        with autocast:
            logits = self.forward(batch.text, batch.audio, batch.vision, vectors)
        return logits.float()

    def train_step(self, run: Run, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on `batch` (forward, loss, backward, clipping, update); the loss
        and the logits, detached and left on the device (no host synchronisation)."""
        logits = self.logits(batch, run.vectors)
        loss = run.criterion(logits, batch.labels)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_grad_norm is not None:
            parameters = [p for p in self.model.parameters() if p.requires_grad]
            nn.utils.clip_grad_norm_(parameters, self.clip_grad_norm)
        run.optimizer.step()
        return loss.detach(), logits.detach()

    def prepare(self, train: Split, valid: Split, resume: dict[str, Any] | None = None) -> Run:
        """Put the splits on the device and build the optimiser, scheduler and state; with
        `resume` (a `last.pt` checkpoint), restore them as they were after its epoch."""
        config = self.config
        train_data = DeviceSplit.from_split(train, self.device)
        valid_data = DeviceSplit.from_split(valid, self.device)
        criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight(train.labels).to(self.device))
        optimizer = instantiate(config.optimizer)(self.model.parameters())
        scheduler = instantiate(config.scheduler)(optimizer)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        state = TrainState()
        best_weights = self._copy_weights()
        if resume is not None:
            best_weights = self._restore(resume, optimizer, scheduler, generator, state)
            log.info("resumed after epoch %d (best epoch %d)", state.epoch, state.best_epoch)
        vectors = self.vectors(train.emotions)
        return Run(
            train_data, valid_data, vectors, criterion, optimizer, scheduler, generator, state,
            best_weights,
        )  # fmt: skip

    def fit(self, train: Split, valid: Split, resume: dict[str, Any] | None = None) -> TrainState:
        """Train with early stopping on the validation selection metric; best weights loaded.

        `resume` is a `last.pt` checkpoint: training continues after its epoch with the same
        model, optimiser, scheduler, early-stopping and random-number state, so the result
        equals an uninterrupted run's. SIGINT/SIGTERM stop after the current batch; the
        `last.pt` of the previous epoch is kept for resuming.
        """
        run = self.prepare(train, valid, resume)
        with StopOnSignal() as stop, self.checkpoints:
            for epoch in range(run.state.epoch + 1, int(self.config.epochs) + 1):
                if self._early_stop(run.state):
                    break
                self.run_epoch(run, epoch, stop)
        if run.state.best_epoch == 0:  # cannot happen after a validated config; never report it
            raise MemoError("no epoch was trained and selected; nothing to test")
        self.model.load_state_dict(run.best_weights)
        return run.state

    def run_epoch(self, run: Run, epoch: int, stop: StopOnSignal | None = None) -> EpochResult:
        """One epoch: train, validate, step the scheduler, track the best weights, log to
        TensorBoard and the log, and queue best.pt (if improved) and last.pt for writing."""
        stop = stop if stop is not None else StopOnSignal()
        state = run.state
        started = time.perf_counter()
        train_loss, train_scores, train_labels = self._train_pass(epoch, run, stop)
        self.on_phase("train")
        train_metrics = self.compute_metrics(train_labels, train_scores, run.train.emotions)
        self.on_phase("train_metrics")
        valid_loss, valid_scores, valid_labels = self.predict(run.valid, run.criterion, run.vectors)
        self.on_phase("valid")
        valid_metrics = self.compute_metrics(valid_labels, valid_scores, run.valid.emotions)
        result = Evaluation(valid_loss, valid_scores, valid_labels, valid_metrics)
        self.on_phase("valid_metrics")
        selection = result.metrics[self.task.selection_key]
        if math.isnan(selection):
            raise MemoError(
                f"valid {self.task.selection_key} is undefined in epoch {epoch}: no emotion of "
                f"the valid split ({', '.join(run.valid.emotions)}) has both positive and "
                "negative samples, so no epoch can be selected and nothing would be trained"
            )
        run.scheduler.step(result.loss)
        improved = state.update(epoch, selection)
        if improved:
            run.best_weights = self._copy_weights()
        lr = run.optimizer.param_groups[0]["lr"]
        seconds = time.perf_counter() - started
        scalars = {
            **prefixed("train", {"loss": train_loss, "lr": lr, **train_metrics}),
            **prefixed("valid", {"loss": result.loss, **result.metrics}),
        }
        state.history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "valid_loss": result.loss,
                "valid_selection": selection,
                "lr": lr,
                "seconds": seconds,
                "scalars": scalars,  # what TensorBoard got, to rebuild it on resume
            }  # fmt: skip
        )
        self.logger.log(scalars, epoch)
        log.info(
            "epoch %d  train loss %.4f  valid loss %.4f  valid %s %.4f%s  (%.1fs)",
            epoch, train_loss, result.loss, self.task.selection_key, selection,
            "  *best*" if improved else "", seconds,
        )  # fmt: skip
        self.on_phase("logging")
        # best.pt before last.pt: a kill between the two only repeats this epoch.
        checkpoint = self._checkpoint(run, run.train.emotions)
        paths = [self.checkpoint_dir / "best.pt"] if improved else []
        self.checkpoints.save([*paths, self.checkpoint_dir / "last.pt"], checkpoint)
        if self._early_stop(state):
            log.info("early stop: no better valid %s for %d epochs",
                     self.task.selection_key, state.bad_epochs)  # fmt: skip
        self.on_phase("checkpoint")
        return EpochResult(epoch, train_loss, train_metrics, result, improved)

    def _batches(self, count: int, batch_size: int, epoch: int) -> Iterator[int]:
        starts = range(0, count, batch_size)
        if self.show_progress:
            return iter(tqdm(starts, desc=f"epoch {epoch}", leave=False, unit="batch"))
        return iter(starts)

    def _train_pass(self, epoch: int, run: Run, stop: StopOnSignal):
        """One pass over the training data in a random order: (loss, scores, labels).

        No host synchronisation per batch: losses and logits stay on the device and are
        moved once, at the end of the epoch, where a non-finite loss is reported.
        """
        data = run.train
        self.model.train()
        batch_size = int(self.config.batch_size)
        order = torch.randperm(len(data), generator=run.generator).to(self.device)
        losses, outputs = [], []
        for start in self._batches(len(data), batch_size, epoch):
            loss, logits = self.train_step(run, data.batch(order[start : start + batch_size]))
            losses.append(loss)
            outputs.append(logits)
            self.checkpoints.raise_if_failed()
            if stop.requested:
                raise Interrupted(
                    f"stopped by {stop.signal_name} during epoch {epoch}; checkpoints/last.pt "
                    "holds the previous epoch: run the same command with resume=true to continue"
                )
        batch_losses = torch.stack(losses)
        sizes = torch.full_like(batch_losses, batch_size)
        sizes[-1] = len(data) - batch_size * (len(losses) - 1)
        # One transfer: the epoch's losses, its loss, and the scores.
        scores = torch.sigmoid(torch.cat(outputs))
        loss_sum = (batch_losses * sizes).sum().reshape(1)
        host = torch.cat([batch_losses, loss_sum]).cpu().numpy()
        finite = np.isfinite(host[:-1])
        kept = (
            f"checkpoints/last.pt holds the weights after epoch {epoch - 1}"
            if epoch > 1
            else "no checkpoint was written (this was the first epoch)"
        )
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            raise MemoError(
                f"non-finite training loss ({float(host[first])}) in epoch {epoch}, batch "
                f"{first + 1} of {len(losses)}; {kept} (try a lower trainer.lr, or check the "
                "features for extreme values)"
            )
        train_loss = float(host[-1]) / len(data)
        if run.state.initial_loss is None:
            run.state.initial_loss = float(host[0])
        self._check_divergence(train_loss, epoch, run.state.initial_loss, kept)
        return train_loss, scores.cpu().numpy(), data.labels[order].cpu().numpy()

    def _early_stop(self, state: TrainState) -> bool:
        """Whether `trainer.early_stop` epochs passed without a better selection (null: off)."""
        patience = self.config.early_stop
        return patience is not None and state.bad_epochs >= int(patience)

    def _check_divergence(self, loss: float, epoch: int, initial: float, kept: str) -> None:
        """Stop when the epoch's mean training loss exceeds `trainer.divergence_factor` times
        the run's first batch loss: the optimiser is moving away from any fit."""
        factor = self.config.divergence_factor
        if factor is not None and loss > float(factor) * initial:
            raise MemoError(
                f"training diverged: mean train loss {loss:.4g} in epoch {epoch} is more than "
                f"trainer.divergence_factor={factor} times the first batch's loss {initial:.4g}; "
                f"{kept} (try a lower trainer.lr)"
            )

    def _copy_weights(self) -> dict[str, torch.Tensor]:
        """A copy of the model's weights on its device (cheaper than deepcopy)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _checkpoint(self, run: Run, emotions: tuple[str, ...]) -> dict[str, Any]:
        return {
            **self.checkpoint_meta,
            "model": self.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "emotions": list(emotions),
            "state": run.state.as_dict(),
            "rng": {"torch": torch.get_rng_state(), "shuffle": run.generator.get_state()},
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
        if not state.best_epoch:
            return self._copy_weights()
        return self._best_weights(checkpoint, state)

    def _best_weights(self, last: dict[str, Any], restored: TrainState) -> dict[str, torch.Tensor]:
        """The weights of `best.pt`, which must be the selected epoch of the run that wrote
        `last` (`restored`): a missing or other file would report other weights as the best
        epoch's. Or the epoch after `last`'s: killed between writing best.pt and last.pt, that
        epoch is trained again and, being deterministic, selected again."""
        path = self.checkpoint_dir / "best.pt"
        best = load_checkpoint(path) if path.is_file() else None
        state = best.get("state") if best is not None else None
        if best is None:
            what = "is missing"
        elif best.get("config") != last.get("config"):
            what = "was written by a run with other settings"
        elif (epoch := state.get("epoch") if isinstance(state, dict) else None) not in (
            restored.best_epoch,
            restored.epoch + 1,
        ):
            what = f"holds epoch {epoch}"
        else:
            return best["model"]
        raise MemoError(
            f"cannot resume: {path} {what}, but last.pt selected epoch {restored.best_epoch}, "
            "so the run's result would be other weights. Use resume=false to train again"
        )

    def compute_metrics(
        self, labels: np.ndarray, scores: np.ndarray, emotions: tuple[str, ...]
    ) -> dict[str, float]:
        """The task's metrics of `scores` against `labels` (the target emotion reported apart)."""
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
    def predict(
        self, data: DeviceSplit, criterion: nn.Module | None, vectors: torch.Tensor
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """(loss, sigmoid scores, labels) of the current model on `data`, eval mode; the
        loss and the scores reach the host in one transfer (no criterion: NaN loss)."""
        self.model.eval()
        size = self.eval_batch_size
        index = torch.arange(len(data), device=self.device)
        logits = torch.cat(
            [
                self.logits(data.batch(index[s : s + size]), vectors)
                for s in range(0, len(data), size)
            ]
        )
        scores = torch.sigmoid(logits)
        if criterion is None:
            return math.nan, scores.cpu().numpy(), data.labels.cpu().numpy()
        loss = criterion(logits, data.labels).reshape(1, 1).expand(1, scores.shape[1])
        host = torch.cat([scores, loss]).cpu().numpy()
        return float(host[-1, 0]), host[:-1], data.labels.cpu().numpy()

    def evaluate(
        self, data: DeviceSplit, criterion: nn.Module | None, vectors: torch.Tensor
    ) -> Evaluation:
        """Scores and metrics of the current model on `data` (eval mode, one host transfer)."""
        loss, scores, labels = self.predict(data, criterion, vectors)
        return Evaluation(loss, scores, labels, self.compute_metrics(labels, scores, data.emotions))

    def test(self, split: Split, trained: tuple[str, ...]) -> Evaluation:
        """Evaluate on `split`, whose emotion set may extend the trained one (zero-shot)."""
        self.model.adapt_emotions(trained, split.emotions)
        self.model.to(self.device)
        data = DeviceSplit.from_split(split, self.device)
        return self.evaluate(data, None, self.vectors(split.emotions))
