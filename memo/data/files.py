"""The real-files source: a dataset's expected files, loaded through the array cache."""

from __future__ import annotations

from pathlib import Path

from memo.data.cache import cached_corpus
from memo.data.datasets.base import Dataset
from memo.data.split import Corpus
from memo.data.validate import NO_SUCH_FILE, file_problem
from memo.errors import MemoError


def missing_files(dataset: Dataset) -> list[Path]:
    """The expected files that do not exist. (A folder, device, pipe or broken link in a file's
    place is not missing: `load_files_corpus` says what it is.)"""
    return [path for path in dataset.expected_files() if file_problem(path) == NO_SUCH_FILE]


def load_files_corpus(dataset: Dataset, cache_dir: Path | str) -> Corpus:
    """The corpus read from `dataset.dir`, validated, via the array cache under `cache_dir`."""
    expected = dataset.expected_files()
    problems = {path: file_problem(path) for path in expected}
    missing = [path for path, problem in problems.items() if problem == NO_SUCH_FILE]
    if missing:
        raise MemoError(
            f"dataset.source={dataset.source}: {len(missing)} of the {len(expected)} expected "
            f"{dataset.name} files are missing in {Path(dataset.dir).resolve()}: "
            f"{[p.name for p in missing]}"
        )
    unreadable = [f"{path}: {problem}" for path, problem in problems.items() if problem]
    if unreadable:
        raise MemoError(
            f"dataset.source={dataset.source}: expected regular files; {'; '.join(unreadable)}"
        )
    kind = type(dataset)
    settings = {key: getattr(dataset, key) for key in dataset.READ_KEYS}
    settings["reader"] = f"{kind.__module__}.{kind.__qualname__}"
    settings["reader_version"] = dataset.READER_VERSION
    return cached_corpus(Path(cache_dir) / "files", expected, settings, dataset.read)
