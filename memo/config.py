"""Fail-fast checks of a composed config: every bad value is named with the allowed ones."""

from __future__ import annotations

from omegaconf import DictConfig

from memo.data.components import build_component
from memo.data.datasets.base import Dataset
from memo.data.embeddings import WordVectors
from memo.data.regimes import Regime
from memo.errors import config_error
from memo.models.base import parse_modalities

MODES = ("train", "eval")
PROGRESS = ("auto", True, False)


def _positive(cfg: DictConfig, key: str, kind: type) -> None:
    value = cfg
    for part in key.split("."):
        value = value[part]
    if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
        raise config_error(key, value, f"a positive {kind.__name__}")


def validate(cfg: DictConfig) -> None:
    """Check the values a run depends on before any data is loaded."""
    if cfg.mode not in MODES:
        raise config_error("mode", cfg.mode, " | ".join(MODES))
    if cfg.mode == "eval" and not cfg.ckpt:
        raise config_error("ckpt", cfg.ckpt, "a checkpoint path (required with mode=eval)")
    if cfg.resume not in ("auto", True, False):
        raise config_error("resume", cfg.resume, "auto | true | false")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise config_error("seed", cfg.seed, "a non-negative integer")
    for key, kind in (("dataset", Dataset), ("regime", Regime), ("embeddings", WordVectors)):
        build_component(cfg[key], key, kind)  # each component checks its own values
    parse_modalities(cfg.model.modalities)
    _positive(cfg, "trainer.epochs", int)
    _positive(cfg, "trainer.batch_size", int)
    _positive(cfg, "trainer.lr", float)
    stop = cfg.trainer.early_stop
    if stop is not None and (not isinstance(stop, int) or isinstance(stop, bool) or stop < 1):
        raise config_error("trainer.early_stop", stop, "a positive integer, or null (off)")
    factor = cfg.trainer.divergence_factor
    if factor is not None and (
        isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1
    ):
        raise config_error("trainer.divergence_factor", factor, "null or a number above 1")
    if cfg.trainer.progress not in PROGRESS:
        raise config_error("trainer.progress", cfg.trainer.progress, "auto | true | false")
