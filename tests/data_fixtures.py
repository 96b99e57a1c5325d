"""Small fixture files in the real releases' formats (docs/data-formats.md), written from raw
arrays.

The writers take plain arrays so tests can damage them first; they do not use memo's own
exporter, so the readers are checked against the formats, not against memo's writer.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from memo import CONFIG_DIR
from memo.data.components import build_component
from memo.data.datasets.base import Dataset
from memo.data.py2pickle import dump_py2_array

CONF = CONFIG_DIR
SIZES = {"train": 12, "valid": 5, "test": 6}
DIMS = {"text": 8, "audio": 5, "vision": 3}  # small stand-ins for 300 / 74 / 35
STEPS = 20


def dataset_config(dataset: str, folder: Path, **overrides: object) -> Dataset:
    """The component of conf/dataset/<dataset>.yaml reading from `folder`, with `overrides`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):  # no torch import:
        chosen = [f"dataset={dataset}", f"dataset.dir={folder}"]  # tests time this module
        cfg = compose(config_name="config", overrides=chosen).dataset
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return component(cfg)


def component(cfg: DictConfig) -> Dataset:
    """The dataset component a composed `cfg.dataset` names."""
    return build_component(cfg, "dataset", Dataset)


def features(rng: np.random.Generator, n: int, dim: int, steps: int = STEPS) -> np.ndarray:
    """float64 (n, steps, dim) features with a few left-padding zero steps."""
    array = rng.standard_normal((n, steps, dim))
    array[:, :3] = 0.0
    return array


def mosei_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """File name -> `d1` array for all MOSEI emotion-task files, with real-data quirks:
    -inf in audio, intensities in thirds (one above 3), rows without emotion."""
    files = {}
    for s, n in SIZES.items():
        files[f"text_{s}_emb.h5"] = features(rng, n, DIMS["text"])
        files[f"audio_{s}.h5"] = features(rng, n, DIMS["audio"])
        files[f"audio_{s}.h5"][0, 5, 1] = -np.inf
        files[f"video_{s}.h5"] = features(rng, n, DIMS["vision"])
        ey = rng.integers(0, 10, size=(n, 6)) / 3 * (rng.random((n, 6)) < 0.4)
        ey[0] = [0, 0, 0, 10 / 3, 0, 0]
        ey[1] = 0.0
        files[f"ey_{s}.h5"] = ey
        files[f"y_{s}.h5"] = rng.uniform(-3, 3, size=(n, 1))
    return files


def write_h5(path: Path, array: np.ndarray, key: str = "d1") -> None:
    with h5py.File(path, "w") as file:
        file.create_dataset(key, data=array)


def write_files(folder: Path, files: dict[str, object]) -> None:
    """Write each array by its name's format: .h5 (`d1`), .pkl (Python 3), .p (Python 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        if name.endswith(".h5"):
            write_h5(folder / name, value)
        elif name.endswith(".pkl"):
            (folder / name).write_bytes(pickle.dumps(value, protocol=4))
        else:
            dump_py2_array(value, folder / name)


def one_hot(classes: np.ndarray, width: int) -> np.ndarray:
    return np.eye(width)[classes]


def iemocap_arrays(rng: np.random.Generator, main: str = "iemocap_data.pkl") -> dict[str, object]:
    """File name -> content for IEMOCAP: the 4-emotion pickle (float32, labels (N, 4, 2))
    and the 9-emotion `.p` files (21 steps, y one-hot over 11 columns, all classes present)."""
    data = {}
    for s, n in SIZES.items():
        labels = one_hot(np.arange(n) % 4, 4)
        data[s] = {
            "text": features(rng, n, DIMS["text"]).astype(np.float32),
            "audio": features(rng, n, DIMS["audio"]).astype(np.float32),
            "vision": features(rng, n, DIMS["vision"]).astype(np.float32),
            "labels": np.stack([1 - labels, labels], axis=-1).astype(np.float32),
        }
        data[s]["audio"][1, 4, 0] = -np.inf
    files: dict[str, object] = {main: data}
    for s in SIZES:
        m = 22  # every one of the 11 classes twice
        files[f"text_{s}.p"] = features(rng, m, DIMS["text"], STEPS + 1)
        files[f"covarep_{s}.p"] = features(rng, m, DIMS["audio"], STEPS + 1)
        files[f"covarep_{s}.p"][2, 7, 3] = -np.inf
        files[f"facet_{s}.p"] = features(rng, m, DIMS["vision"], STEPS + 1)
        files[f"y_{s}.p"] = one_hot(rng.permutation(np.arange(m) % 11), 11)
    return files
