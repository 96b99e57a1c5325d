"""The real-files source: which files a dataset needs, and loading them through the cache."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from omegaconf import DictConfig, OmegaConf

from memo.data import iemocap_files, mosei_files
from memo.data.cache import cached_corpus
from memo.data.split import Corpus
from memo.errors import MemoError, config_error

# dataset.name -> reader module with expected_files, read_corpus, SETTINGS and VERSION.
READERS: dict[str, ModuleType] = {"mosei": mosei_files, "iemocap": iemocap_files}


def _reader(dataset: DictConfig) -> ModuleType:
    if dataset.name not in READERS:
        raise config_error("dataset.name", dataset.name, " | ".join(READERS))
    return READERS[dataset.name]


def _plain(value: object) -> object:
    """A config value as plain Python (lists for ListConfig), for hashing."""
    return OmegaConf.to_object(value) if OmegaConf.is_config(value) else value


def expected_files(dataset: DictConfig) -> list[Path]:
    """Every file under `dataset.dir` that loading `dataset` reads."""
    return _reader(dataset).expected_files(dataset)


def missing_files(dataset: DictConfig) -> list[Path]:
    """The expected files that do not exist."""
    return [path for path in expected_files(dataset) if not path.is_file()]


def load_files_corpus(dataset: DictConfig, cache_dir: Path | str) -> Corpus:
    """The corpus read from `dataset.dir`, validated, via the array cache under `cache_dir`."""
    missing = missing_files(dataset)
    if missing:
        expected = expected_files(dataset)
        raise MemoError(
            f"dataset.source={dataset.source}: {len(missing)} of the {len(expected)} expected "
            f"{dataset.name} files are missing in {Path(dataset.dir).resolve()}: "
            f"{[p.name for p in missing]}"
        )
    reader = _reader(dataset)
    settings = {key: _plain(dataset[key]) for key in reader.SETTINGS}
    settings["reader_version"] = reader.VERSION
    return cached_corpus(
        Path(cache_dir) / "files",
        expected_files(dataset),
        settings,
        lambda: reader.read_corpus(dataset),
    )
