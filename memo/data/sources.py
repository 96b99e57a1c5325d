"""Where a run's corpus comes from: the real files, or the built-in synthetic corpus."""

from __future__ import annotations

import logging
from pathlib import Path

from memo.data.datasets.base import Dataset
from memo.data.files import load_files_corpus, missing_files
from memo.data.split import Corpus
from memo.data.synthetic import build_corpus

log = logging.getLogger(__name__)

# The data folder `paths.data_dir` names by default. Only below it may `dataset.source=auto`
# fall back to the built-in corpus; a folder the user chose must hold the files.
DEFAULT_DATA_DIR = Path("data")


def chosen_by_user(dataset: Dataset) -> bool:
    """Whether `dataset.dir` lies outside the default data folder (set on purpose)."""
    return Path(dataset.dir).parent != DEFAULT_DATA_DIR


def load_corpus(dataset: Dataset, cache_dir: Path | str) -> Corpus:
    """Load `dataset` from `dataset.source`; `auto` prefers real files when all are present,
    and falls back to the built-in corpus only under the default data folder."""
    source = dataset.source
    if source == "synthetic":
        log.info("data: built-in synthetic %s corpus (dataset.source=synthetic)", dataset.name)
        return build_corpus(dataset, cache_dir)
    missing = missing_files(dataset)
    if source == "auto" and missing and not chosen_by_user(dataset):
        log.info(
            "data: built-in synthetic %s corpus, because %d of the real files are missing "
            "under %s (dataset.source=auto)",
            dataset.name,
            len(missing),
            dataset.dir,
        )
        return build_corpus(dataset, cache_dir)
    log.info("data: real %s files from %s (dataset.source=%s)", dataset.name, dataset.dir, source)
    return load_files_corpus(dataset, Path(cache_dir))
