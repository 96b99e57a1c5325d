"""The training loop: batches by index slicing over device-resident tensors, early stopping.

Performance (see `python -m memo.bench`): the inner loop does no host synchronisation: batch
losses and logits stay on the device and are moved to the host once per epoch; metrics are
computed once per split per epoch; checkpoints are snapshotted in memory and written by a
background thread while the next epoch runs. `Trainer.run_epoch` is the one per-epoch code
path, shared by `fit` and the benchmark.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
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


def prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    """`{name: v}` -> `{prefix/name: v}` (TensorBoard tags such as `valid/wa/anger`)."""
    return {f"{prefix}/{name}": value for name, value in values.items()}


def pos_weight(labels: np.ndarray) -> torch.Tensor:
    """BCE pos_weight per emotion = #negatives / #positives on the training split."""
    positives = labels.sum(0)
    negatives = len(labels) - positives
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    return torch.as_tensor(weights, dtype=torch.float32)


def _snapshot(value: Any) -> Any:
    """A copy of a checkpoint's containers with every tensor copied to the host, detached."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_snapshot(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    return value


class CheckpointWriter:
    """Writes checkpoints in a background thread, one batch of files at a time, in order.

    `save` takes an in-memory snapshot (host copies of the tensors: training can go on
    changing the originals) and returns; the files are serialised and written atomically
    while the next epoch runs. `wait` blocks until the files are on disk and re-raises a
    failed write. Used as a context manager, it waits on exit.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, paths: list[Path], checkpoint: dict[str, Any]) -> None:
        """Write `checkpoint` to each of `paths`, in order, after the previous save."""
        self.wait()
        snapshot = _snapshot(checkpoint)

        def write() -> None:
            try:
                for path in paths:
                    save_checkpoint(path, snapshot)
            except BaseException as error:  # re-raised by wait() in the training thread
                self._error = error

        self._thread = threading.Thread(target=write, name="memo-checkpoint")
        self._thread.start()

    def raise_if_failed(self) -> None:
        """Raise the error of a write that already failed, without waiting for one running."""
        if self._error is not None:
            self.wait()

    def wait(self) -> None:
        """Block until the last save is on disk; raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.wait()
            return
        try:  # an exception is already on its way: report a failed write, do not mask it
            self.wait()
        except Exception as error:
            log.error("writing a checkpoint failed: %s", error)


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
    """One epoch's losses and metrics, and where its wall time went (seconds by phase)."""

    epoch: int
    train_loss: float
    train_metrics: dict[str, float]
    valid: Evaluation
    improved: bool
    timings: dict[str, float]


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
        self.checkpoints = CheckpointWriter()
        # Optional torch.compile of the forward pass (`trainer.compile`, off by default: it
        # did not help these models on CPU; see the README's Performance section).
        # The compiled module shares the model's parameters; state dicts are unaffected.
        self.forward: Callable[..., torch.Tensor] = self.model
        if bool(config.get("compile", False)):
            self.forward = torch.compile(self.model)

    @property
    def eval_batch_size(self) -> int:
        """Samples per evaluation batch: the training batch size or the device's minimum."""
        floor = EVAL_BATCH.get(self.device.type, EVAL_BATCH_DEFAULT)
        return max(int(self.config.batch_size), floor)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _logits(self, data: DeviceSplit, index: torch.Tensor, vectors: torch.Tensor):
        with self._autocast():
            logits = self.forward(data.text[index], data.audio[index], data.vision[index], vectors)
        return logits.float()

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
        clock = time.perf_counter
        started = clock()
        train_loss, train_scores, train_labels = self._train_pass(epoch, run, stop)
        trained = clock()
        train_metrics = self._metrics(train_labels, train_scores, run.train.emotions)
        scored = clock()
        valid_loss, valid_scores, valid_labels = self._predict(
            run.valid, run.criterion, run.vectors
        )
        validated = clock()
        result = Evaluation(
            valid_loss,
            valid_scores,
            valid_labels,
            self._metrics(valid_labels, valid_scores, run.valid.emotions),
        )
        valid_scored = clock()
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
        seconds = clock() - started
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
        logged = clock()
        # best.pt before last.pt: a kill between the two only repeats this epoch.
        checkpoint = self._checkpoint(run, run.train.emotions)
        paths = [self.checkpoint_dir / "best.pt"] if improved else []
        self.checkpoints.save([*paths, self.checkpoint_dir / "last.pt"], checkpoint)
        if self._early_stop(state):
            log.info("early stop: no better valid %s for %d epochs",
                     self.task.selection_key, state.bad_epochs)  # fmt: skip
        finished = clock()
        timings = {
            "train": trained - started,
            "train_metrics": scored - trained,
            "valid": validated - scored,
            "valid_metrics": valid_scored - validated,
            "logging": logged - valid_scored,
            "checkpoint": finished - logged,
            "epoch": finished - started,
        }
        return EpochResult(epoch, train_loss, train_metrics, result, improved, timings)

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
        model, data, optimizer = self.model, run.train, run.optimizer
        model.train()
        batch_size = int(self.config.batch_size)
        clip = self.config.clip_grad_norm
        clip = None if clip is None else float(clip)
        parameters = [p for p in model.parameters() if p.requires_grad]
        criterion, vectors, labels = run.criterion, run.vectors, data.labels
        order = torch.randperm(len(data), generator=run.generator).to(self.device)
        losses, outputs = [], []
        for start in self._batches(len(data), batch_size, epoch):
            index = order[start : start + batch_size]
            logits = self._logits(data, index, vectors)
            loss = criterion(logits, labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(parameters, clip)
            optimizer.step()
            losses.append(loss.detach())
            outputs.append(logits.detach())
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
        return train_loss, scores.cpu().numpy(), labels[order].cpu().numpy()

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
        best = self.checkpoint_dir / "best.pt"
        if state.best_epoch and best.is_file():
            return load_checkpoint(best)["model"]
        return self._copy_weights()

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
    def _predict(self, data: DeviceSplit, criterion: nn.Module | None, vectors: torch.Tensor):
        """(loss, sigmoid scores, labels) of the current model on `data`, eval mode; the
        loss and the scores reach the host in one transfer."""
        self.model.eval()
        batch = self.eval_batch_size
        index = torch.arange(len(data), device=self.device)
        logits = torch.cat(
            [self._logits(data, index[s : s + batch], vectors) for s in range(0, len(data), batch)]
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
        loss, scores, labels = self._predict(data, criterion, vectors)
        return Evaluation(loss, scores, labels, self._metrics(labels, scores, data.emotions))

    def test(self, split: Split, trained: tuple[str, ...]) -> Evaluation:
        """Evaluate on `split`, whose emotion set may extend the trained one (zero-shot)."""
        self.model.adapt_emotions(trained, split.emotions)
        self.model.to(self.device)
        data = DeviceSplit.from_split(split, self.device)
        return self.evaluate(data, None, self.vectors(split.emotions))
