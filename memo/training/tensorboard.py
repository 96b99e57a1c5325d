"""TensorBoard output of a run: scalars and a custom-scalars layout, the composed config,
hyperparameters for the HParams view, PR curves and the emotion-vector projector.

TensorBoard (its protobufs and `torch.utils.tensorboard`) is imported, and the event file
opened, on the first write, which comes after the first epoch: not during start-up.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from memo.loggers.base import RunLogger

if TYPE_CHECKING:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from torch.utils.tensorboard import SummaryWriter

PER_EPOCH = ("train/", "valid/")
SEEN = "seen"


def custom_layout(tags: Iterable[str]) -> dict[str, dict[str, list]]:
    """Custom Scalars charts for per-epoch tags: train and valid loss together, and for each
    metric (tags `<split>/<metric>/<emotion>`) one chart per split with every emotion."""
    tags = [tag for tag in tags if tag.startswith(PER_EPOCH)]
    per_emotion = dict.fromkeys(tag.split("/")[1] for tag in tags if tag.count("/") == 2)
    whole = sorted({tag.split("/")[1] for tag in tags if tag.count("/") == 1} - {"loss", "lr"})
    layout = {
        "loss": {
            "train and valid loss": ["Multiline", [r"^(train|valid)/loss$"]],
            "learning rate": ["Multiline", [r"^train/lr$"]],
        }
    }
    for metric in per_emotion:
        layout[metric] = {
            f"{split} {metric}, every emotion": ["Multiline", [f"^{split}/{re.escape(metric)}/"]]
            for split in ("valid", "train")
        }
    if whole:
        names = "|".join(re.escape(name) for name in whole)
        layout["whole-sample"] = {
            f"{split} {', '.join(whole)}": ["Multiline", [f"^{split}/({names})$"]]
            for split in ("valid", "train")
        }
    return layout


def _hparams_summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    value = Summary.Value(
        tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
    )
    return Summary(value=[value])


def _hparam_info(name: str, value: object, differs: bool) -> api_pb2.HParamInfo:
    """An HParams column without a domain (so no filter hides another run's value)."""
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, differs=differs, type=api_pb2.DATA_TYPE_STRING)
    if isinstance(value, bool):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend([False, True])
    elif isinstance(value, (int, float)):
        info.type = api_pb2.DATA_TYPE_FLOAT64
    return info


def _metric_info(tag: str) -> api_pb2.MetricInfo:
    """An HParams metric column showing the last value of the scalar `tag`."""
    from tensorboard.plugins.hparams import api_pb2

    shown = f"{tag} (last epoch)" if tag.startswith(PER_EPOCH) else tag
    return api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=shown)


class TensorBoardLogger(RunLogger):
    """Writes every event of one run into `<run dir>/tb`, hyperparameters included.

    The folder is derived state: it is emptied when the logger starts (memo.loggers replays
    a resumed run's epochs), so after any kill and re-run every tag has one value per step.
    """

    def __init__(self, log_dir: Path | str) -> None:
        shutil.rmtree(log_dir, ignore_errors=True)
        self.log_dir = str(log_dir)
        self._writer: SummaryWriter | None = None  # opened on the first write (see `writer`)
        self.layout_written = False
        self.swept: tuple[str, ...] = ()
        self.roles: dict[str, str] = {}

    @property
    def writer(self) -> SummaryWriter:
        """The run's event writer, created on first use: importing TensorBoard and opening
        the event file are left out of start-up (the first write follows the first epoch)."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=self.log_dir)
        return self._writer

    def log(self, tagged: Mapping[str, float], step: int) -> None:
        """Log each value under its tag (e.g. `valid/wa/anger`); NaN values are skipped. The
        first per-epoch values also write the custom-scalars layout."""
        if not self.layout_written and any(tag.startswith(PER_EPOCH) for tag in tagged):
            self.writer.add_custom_scalars(custom_layout(tagged))
            self.layout_written = True
        for tag, value in tagged.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def describe(self, config: str, swept: Sequence[str], roles: Mapping[str, str]) -> None:
        """The composed config as YAML text; `swept` and `roles` mark the HParams columns, PR
        curves and projector points written next."""
        self.writer.add_text("config", f"```yaml\n{config}```")
        self.swept, self.roles = tuple(swept), dict(roles)

    def hparams(self, hparams: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        """This run's hyperparameters and the experiment the HParams view shows: every hparam,
        the swept ones marked as differing (TensorBoard ticks those first), and the metrics in
        the given order, each the scalar tag of that name (no extra scalars are written)."""
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        values = {
            k: v if isinstance(v, (int, float, str, bool)) else str(v)
            for k, v in hparams.items()
            if v is not None
        }
        experiment = api_pb2.Experiment(
            hparam_infos=[_hparam_info(k, v, k in self.swept) for k, v in hparams.items()],
            metric_infos=[_metric_info(tag) for tag in metrics],
        )
        start = plugin_data_pb2.SessionStartInfo()
        for name, value in values.items():
            if isinstance(value, bool):
                start.hparams[name].bool_value = value
            elif isinstance(value, (int, float)):
                start.hparams[name].number_value = value
            else:
                start.hparams[name].string_value = value
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
        plugin_data = plugin_data_pb2.HParamsPluginData
        for tag, data in (
            (metadata.EXPERIMENT_TAG, plugin_data(experiment=experiment)),
            (metadata.SESSION_START_INFO_TAG, plugin_data(session_start_info=start)),
            (metadata.SESSION_END_INFO_TAG, plugin_data(session_end_info=end)),
        ):
            self.writer.file_writer.add_summary(_hparams_summary(tag, data))

    def emotion_vectors(
        self, names: Sequence[str], by_modality: Mapping[str, torch.Tensor]
    ) -> None:
        """Emotion vectors per modality space in the embedding projector, each point labelled
        with its emotion and role (seen, unseen target, ...)."""
        labels = [[name, self.roles.get(name, SEEN)] for name in names]
        for modality, vectors in by_modality.items():
            self.writer.add_embedding(
                vectors.detach().float().cpu(),
                metadata=labels,
                metadata_header=["emotion", "role"],
                tag=f"emotions_{modality}",
            )

    def pr_curves(
        self, split: str, labels: np.ndarray, scores: np.ndarray, names: Sequence[str], step: int
    ) -> None:
        """One precision-recall curve per emotion (`<split>/pr/<emotion>`); an emotion that is
        not simply seen has its role in the tag (`test/pr/fear (unseen target)`)."""
        for k, name in enumerate(names):
            role = self.roles.get(name, SEEN)
            tag = f"{split}/pr/{name}" if role == SEEN else f"{split}/pr/{name} ({role})"
            self.writer.add_pr_curve(tag, labels[:, k], scores[:, k], step)

    def close(self) -> None:
        self.writer.close()  # a run that wrote nothing still leaves its (empty) event file
