"""Broken or hostile input files beyond test_security.py's pickles and HDF5 limits: paths that
are not regular files, text vector files without line breaks or with values that are not
finite numbers. Each is one MemoError naming the file and what is wrong with it."""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
from data_fixtures import SIZES, dataset_config, iemocap_arrays, mosei_arrays, write_files
from omegaconf import OmegaConf
from test_prepare import write_sequences

from memo import CONFIG_DIR
from memo.data import prepare_bench
from memo.data.components import build_component
from memo.data.csd import CsdReader
from memo.data.embeddings import WordVectors
from memo.data.export import main as export_main
from memo.data.files import load_files_corpus
from memo.data.fingerprint import fingerprint
from memo.data.h5out import atomic_h5
from memo.data.mosei_csd import sequences, standard_folds
from memo.data.prepare import prepare_mosei
from memo.data.safe_pickle import safe_load
from memo.data.word_vectors import read_word_vectors
from memo.errors import MemoError


def not_a_file(kind: str, path: Path) -> Path:
    """`path` made into a `kind` of thing that is not a regular file."""
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "broken link":
        path.symlink_to(path.with_name("gone"))
    elif kind == "device":
        path.symlink_to("/dev/zero")
    return path


NOT_A_FILE = {
    "directory": "a directory, not a file",
    "fifo": "a named pipe (FIFO), not a regular file",
    "device": "device.txt: a character device, not a regular file",
    "loop": "cannot be read (Too many levels of symbolic links)",
    "broken link": "a broken symbolic link (to ",
    "missing": "missing.txt: no such file",
}


def vector_file(path: Path, tmp_path: Path, **overrides: object) -> WordVectors:
    """conf/embeddings/file.yaml reading 4-d vectors from `path`, built as a run builds it."""
    cfg = OmegaConf.load(CONFIG_DIR / "embeddings" / "file.yaml")
    cfg.path, cfg.dim, cfg.cache_dir = str(path), 4, str(tmp_path / "cache")
    cfg.merge_with(overrides)
    return build_component(cfg, "embeddings", WordVectors)


@pytest.mark.parametrize("kind", NOT_A_FILE)
def test_a_vector_path_that_is_not_a_regular_file_is_refused_with_the_config(tmp_path, kind):
    """Refused when the config is built, before any data loads, saying what the path is (a
    FIFO would block the reader, /dev/zero never ends); all were 'no such file'."""
    with pytest.raises(MemoError) as raised:
        vector_file(not_a_file(kind, tmp_path / f"{kind}.txt"), tmp_path, format="text")
    assert str(raised.value).startswith("config key 'embeddings.path': ")
    assert NOT_A_FILE[kind] in str(raised.value)


def test_a_text_vector_file_without_line_breaks_is_refused_unread(tmp_path):
    """Lines are read in bounded pieces: one endless line is not loaded whole."""
    path = tmp_path / "glove.txt"
    path.write_bytes(b"anger" + b" 1" * 4 + b"0" * 300_000)
    with pytest.raises(MemoError) as raised:
        read_word_vectors(vector_file(path, tmp_path), ["anger"])
    assert str(raised.value) == (
        f"{path} line 1: longer than 65792 bytes (a word and 4 values need far fewer); "
        "not a GloVe text file"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "glove.txt: empty file; expected lines of a word and 4 values"),
        (b"anger 1 2 3 x\n", "glove.txt line 1: the values of 'anger' are not all numbers"),
        (b"the 1 2 3 4\nanger 1 nan 3 inf\n", "'anger' holds 2 values that are NaN, infinite"),
        (b"anger 1 2 3 1e39\n", "'anger' holds 1 values that are NaN, infinite or beyond float32"),
        (b"the 1 2 3 4\nanger 1 2 3 4 5\n", "line 2: 'anger' is followed by 5 values; expected 4"),
    ],
)
def test_text_vector_lines_must_hold_the_word_and_dim_finite_numbers(tmp_path, content, message):
    """Each was loaded (NaN, inf), a ValueError traceback ('x'), or 'words not found' (a
    line of 5 values: the word looked like 'anger 1')."""
    path = tmp_path / "glove.txt"
    path.write_bytes(content)
    with pytest.raises(MemoError, match=message.replace("(", r"\(")):
        read_word_vectors(vector_file(path, tmp_path), ["anger"])


def test_a_text_file_read_as_a_pickle_says_how_to_read_it_as_text(tmp_path):
    """A fastText-style `.vec` file was only 'not a readable pickle (...)'."""
    path = tmp_path / "vectors.vec"
    path.write_text("anger 1 2 3 4\n")
    with pytest.raises(MemoError, match=r"pickle \(APPEND on too short a stack\) \(embeddings."):
        read_word_vectors(vector_file(path, tmp_path), ["anger"])
    read_word_vectors(vector_file(path, tmp_path, format="text"), ["anger"])


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ([1.0, float("nan"), 3.0, 4.0], "holds 1 values that are NaN, infinite or beyond float32"),
        ([1.0, 1e300, 3.0, 4.0], "holds 1 values that are NaN, infinite or beyond float32"),
        ([1, 10**400, 3, 4], "holds an integer beyond float32's range"),
    ],
)
def test_pickled_vectors_must_be_finite_numbers(tmp_path, vector, message):
    """NaN and overflowing values were loaded as they were (NaN or inf emotion vectors)."""
    path = tmp_path / "glove.emotions.840B.300d.pt"
    path.write_bytes(pickle.dumps({"anger": vector}, protocol=2))
    with pytest.raises(MemoError, match=f"the vector of 'anger' {message}"):
        read_word_vectors(vector_file(path, tmp_path), ["anger"])


@pytest.mark.parametrize(
    ("dataset", "name"), [("mosei", "audio_valid.h5"), ("iemocap", "y_test.p")]
)
@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "loop"])
def test_a_data_file_that_is_not_a_regular_file_is_named_not_missing(tmp_path, dataset, name, kind):
    """Such a path was reported as a missing file (and a FIFO would block the reader)."""
    folder = tmp_path / dataset
    arrays = mosei_arrays if dataset == "mosei" else iemocap_arrays
    write_files(folder, arrays(np.random.default_rng(0)))
    path = folder / name
    path.unlink()
    not_a_file(kind, path)
    with pytest.raises(MemoError) as raised:
        load_files_corpus(dataset_config(dataset, folder, source="files"), tmp_path / "cache")
    kept = NOT_A_FILE[kind].split(": ")[-1]
    assert str(raised.value) == f"dataset.source=files: expected regular files; {path}: {kept}"


def test_loaders_say_what_a_path_is(tmp_path):
    """The readers check too: safe_load of a directory said 'cannot read file (Is a
    directory)', of /dev/zero 'empty file'; a .csd FIFO was a missing sequence."""
    with pytest.raises(MemoError, match=f"^{tmp_path}: a directory, not a file$"):
        safe_load(tmp_path)
    with pytest.raises(MemoError, match="^/dev/zero: a character device, not a regular file$"):
        safe_load("/dev/zero")
    for name, _ in sequences().values():
        (tmp_path / name).write_bytes(b"")
    fifo = tmp_path / sequences()["audio"][0]
    fifo.unlink()
    os.mkfifo(fifo)
    with pytest.raises(MemoError, match=f"^{fifo}: a named pipe \\(FIFO\\), not a regular file$"):
        prepare_mosei(tmp_path, tmp_path / "out")


def unwritten(path: Path) -> None:
    with h5py.File(path, "w") as file:
        file.create_dataset("d1", (12, 20, 5), "f8")


def empty_dataspace(path: Path) -> None:
    with h5py.File(path, "w") as file:
        file.create_dataset("d1", data=h5py.Empty("f8"))


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (unwritten, "'d1' declares shape (12, 20, 5) but holds no data (never written; every "),
        (empty_dataspace, "'d1' must be a numeric dataset, found <HDF5 dataset \"d1\": shape None"),
    ],
)
def test_h5_d1_without_data_is_refused(tmp_path, write, message):
    """An unwritten `d1` loaded as zeros; one without a dataspace was a TypeError traceback."""
    folder = tmp_path / "mosei"
    write_files(folder, mosei_arrays(np.random.default_rng(0)))
    write(folder / "audio_train.h5")
    with pytest.raises(MemoError) as raised:
        load_files_corpus(dataset_config("mosei", folder), tmp_path / "cache")
    assert str(raised.value).startswith(f"{folder / 'audio_train.h5'}: {message}")


def no_steps(arrays: dict) -> str:
    for split in SIZES:
        arrays[f"text_{split}_emb.h5"] = arrays[f"text_{split}_emb.h5"][:, :0]
    return "text_train_emb.h5 (train text): features of shape (12, 0, 8)"


def no_columns(arrays: dict) -> str:
    for split in SIZES:
        arrays["iemocap_data.pkl"][split]["vision"] = arrays["iemocap_data.pkl"][split]["vision"][
            ..., :0
        ]
    return "iemocap_data.pkl ['train']['vision']: features of shape (12, 20, 0)"


def one_extra_step(arrays: dict) -> str:
    for split in SIZES:  # the reader drops the last of the release's 21 steps: none is left
        arrays[f"facet_{split}.p"] = arrays[f"facet_{split}.p"][:, :1]
    return "facet_train.p: features of shape (6, 0, 3)"


@pytest.mark.parametrize(
    ("dataset", "edit"), [("mosei", no_steps), ("iemocap", no_columns), ("iemocap", one_extra_step)]
)
def test_features_without_steps_or_columns_are_refused(tmp_path, dataset, edit):
    """T = 0 or D = 0 loaded, for a model to fail on later (or to learn nothing from)."""
    arrays = (mosei_arrays if dataset == "mosei" else iemocap_arrays)(np.random.default_rng(0))
    where = edit(arrays)
    write_files(tmp_path / dataset, arrays)
    with pytest.raises(MemoError) as raised:
        load_files_corpus(dataset_config(dataset, tmp_path / dataset), tmp_path / "cache")
    assert str(raised.value) == (
        f"{tmp_path / dataset}/{where} have no time steps or no feature columns; "
        "expected (N, T, D) with T and D at least 1"
    )


def tamper_with_float64(path: Path) -> None:
    """A same-shape float64 array of sevens, its manifest entry edited to match."""
    np.save(path, np.full(np.load(path).shape, 7.0))
    manifest = path.parents[2] / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"float32"', '"float64"'))


def link_to_sevens(path: Path) -> None:
    """A symbolic link to a valid array of sevens elsewhere."""
    other = path.parents[4] / "elsewhere.npy"
    np.save(other, np.full(np.load(path).shape, 7.0, dtype=np.float32))
    path.unlink()
    path.symlink_to(other)


@pytest.mark.parametrize("tamper", [tamper_with_float64, link_to_sevens])
def test_array_cache_files_memo_did_not_write_are_rebuilt(tmp_path, tamper, caplog):
    """Both were served as they were (sevens in place of the features)."""
    folder = tmp_path / "mosei"
    write_files(folder, mosei_arrays(np.random.default_rng(0)))
    dataset = dataset_config("mosei", folder)
    first = load_files_corpus(dataset, tmp_path / "cache").splits["train"].text.copy()
    (cached,) = (tmp_path / "cache" / "files").glob("*/splits/train/text.npy")
    tamper(cached)
    again = load_files_corpus(dataset, tmp_path / "cache").splits["train"].text
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.float32
    assert f"{cached} " in caplog.text and "rebuilding it" in caplog.text


@pytest.mark.parametrize("tamper", ["compressed", "link"])
def test_word_vector_cache_files_memo_did_not_write_are_not_read(tmp_path, tamper):
    """A compressed cache member can expand to any size; a link points at data memo did not
    check. Both were read (here: sevens instead of the file's vector)."""
    path = tmp_path / "glove.txt"
    path.write_text("anger 1 2 3 4\n")
    vectors = vector_file(path, tmp_path)
    read_word_vectors(vectors, ["anger"])
    (cached,) = (tmp_path / "cache" / "word_vectors").glob("*.npz")
    sevens = {"words": np.array(["anger"]), "vectors": np.full((1, 4), 7.0, np.float32)}
    if tamper == "compressed":
        np.savez_compressed(cached, **sevens)
    else:
        cached.unlink()
        np.savez(tmp_path / "elsewhere.npz", **sevens)
        cached.symlink_to(tmp_path / "elsewhere.npz")
    assert read_word_vectors(vectors, ["anger"])["anger"].tolist() == [1, 2, 3, 4]


def test_prepare_compares_only_candidate_segment_word_pairs(tmp_path):
    """Every segment overlapping every word made alignment build (segments x words) arrays:
    20,000 of each in 2 MB of .csd files took 9.8 GB and 22 s. Only candidate pairs are built
    now, and a video whose candidates exceed the limit is refused."""
    n = 3000  # 9 M pairs, over the limit of 4 M
    steps = np.arange(n, dtype=float)
    nested = {  # every segment spans every word
        "text": (np.stack([steps, steps + 1], 1), np.ones((n, 1))),
        "audio": (np.array([[0.0, 1.0]]), np.ones((1, 1))),
        "vision": (np.array([[0.0, 1.0]]), np.ones((1, 1))),
        "labels": (np.stack([steps * 0, steps * 0 + n], 1), np.zeros((n, 7))),
    }
    (train, *_), (valid, *_), (test, *_) = standard_folds().values()
    write_sequences(tmp_path / "csd", {train: nested, valid: nested, test: nested})
    with pytest.raises(MemoError) as raised:
        prepare_mosei(tmp_path / "csd", tmp_path / "out")
    assert str(raised.value) == (
        f"{tmp_path / 'csd'}: video '{min(train, valid, test)}': 3000 labelled segments and "
        "3000 words nest far more than in any real video: 9000000 pairs to compare, over the "
        "limit of 4194304"
    )


def test_a_file_where_a_folder_belongs_is_one_line(tmp_path, capsys):
    """prepare's and export's --out, prepare's --csd: tracebacks (FileExistsError, then
    NotADirectoryError from the clean-up) or a '.csd cannot be read' before; export's errors
    exit 2, as every memo command line's (they exited 1)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(MemoError, match=f"^{blocker}: not a folder \\(expected the CMU-MOSEI"):
        prepare_mosei(blocker, tmp_path / "out")
    problems = {blocker: "it is a file, not a folder", blocker / "sub": "cannot make this folder"}
    for out, problem in problems.items():
        with pytest.raises(SystemExit) as exited:
            export_main(["--dataset", "iemocap", "--out", str(out)])
        assert exited.value.code == 2
        assert capsys.readouterr().err.startswith(f"error: --out {out}: {problem}")
    with (
        pytest.raises(MemoError, match=f"^cannot write {blocker}/x.h5 into {blocker}: it is a "),
        atomic_h5(blocker / "x.h5"),
    ):
        pass


def test_keys_and_names_from_a_file_stay_on_one_short_line(tmp_path):
    """A file's keys were listed in full (a 80 MB HDF5 file of 100,000 groups made a 1 MB
    message), and names with line breaks broke the message into lines."""
    folder = tmp_path / "mosei"
    write_files(folder, mosei_arrays(np.random.default_rng(0)))
    with h5py.File(folder / "ey_test.h5", "w") as file:
        for i in range(20):
            file.create_group(f"g{i:02}")
    with pytest.raises(MemoError) as raised:
        load_files_corpus(dataset_config("mosei", folder), tmp_path / "cache")
    assert str(raised.value).endswith(
        "expected an HDF5 dataset named 'd1', found keys ['g00', 'g01', 'g02', 'g03', 'g04', "
        "'g05', 'g06', 'g07', 'g08', 'g09', ...] (20 in all)"
    )
    path = tmp_path / "x.csd"
    with h5py.File(path, "w") as file:
        file.create_group("seq/data/line\nbreak").create_dataset("intervals", data=np.zeros(2))
        file["seq/data/line\nbreak/features"] = np.zeros((2, 1))
    with pytest.raises(MemoError) as raised:
        CsdReader(path)
    assert str(raised.value).startswith(f"{path}: video 'line\\nbreak' must hold intervals")


def test_a_global_named_with_a_line_break_stays_one_line(tmp_path):
    path = tmp_path / "data.pkl"  # protocol 4: STACK_GLOBAL of module "os\nx", name "system"
    path.write_bytes(b"\x80\x04\x8c\x04os\nx\x94\x8c\x06system\x94\x93\x94.")
    with pytest.raises(MemoError) as raised:
        safe_load(path)
    assert str(raised.value).startswith(f"{path}: refused to load global 'os\\nx.system'; only")


def test_a_data_folder_that_is_a_file_is_refused_with_the_config(tmp_path):
    """Each of the 12 files was listed as unreadable ('Not a directory'), after start-up."""
    blocker = tmp_path / "cmu-mosei"
    blocker.write_text("")
    with pytest.raises(MemoError) as raised:
        dataset_config("mosei", blocker)
    assert str(raised.value) == (
        f"config key 'dataset.dir': got '{blocker}'; allowed: a folder of the real files "
        "(this is a file)"
    )


def test_a_cache_lock_replaced_by_a_fifo_does_not_block(tmp_path, caplog):
    """Opening the lock for writing waited for a reader of the FIFO forever."""
    folder = tmp_path / "mosei"
    write_files(folder, mosei_arrays(np.random.default_rng(0)))
    dataset = dataset_config("mosei", folder)
    load_files_corpus(dataset, tmp_path / "cache")
    (entry,) = (p for p in (tmp_path / "cache" / "files").iterdir() if p.is_dir())
    shutil.rmtree(entry)
    lock = entry.parent / f"{entry.name}.lock"
    lock.unlink()
    os.mkfifo(lock)

    class Blocked(Exception):
        """Raised by the alarm (not an OSError, which the cache would take as unwritable)."""

    def hung(*_: object) -> None:
        raise Blocked

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        corpus = load_files_corpus(dataset, tmp_path / "cache")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert len(corpus.splits["train"]) == SIZES["train"]
    assert f"could not write cache {entry} (" in caplog.text


def test_a_deeply_nested_cache_manifest_is_rebuilt(tmp_path, caplog):
    """It was a RecursionError traceback."""
    folder = tmp_path / "mosei"
    write_files(folder, mosei_arrays(np.random.default_rng(0)))
    dataset = dataset_config("mosei", folder)
    load_files_corpus(dataset, tmp_path / "cache")
    (path,) = (tmp_path / "cache" / "files").glob("*/manifest.json")
    path.write_text("[" * 100_000)
    assert len(load_files_corpus(dataset, tmp_path / "cache").splits["train"]) == SIZES["train"]
    assert f"cache entry {path.parent} is damaged" in caplog.text


def test_a_deeply_nested_fingerprint_cache_entry_is_hashed_again(tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(b"x")
    first = fingerprint([data], tmp_path / "cache")
    (entry,) = (tmp_path / "cache" / "fingerprints").glob("*.json")
    entry.write_text("[" * 100_000)
    assert fingerprint([data], tmp_path / "cache") == first


@pytest.mark.parametrize(
    "command",
    [
        ["memo.data.export", "--out", ""],
        ["memo.data.prepare", "mosei", "--csd", "csd", "--out", " "],
        ["memo.report", ""],
        ["memo.report", "sweep", "--out", ""],
        ["memo.data.prepare_bench", "--dir", ""],
    ],
)
def test_a_blank_path_is_refused_not_read_as_the_working_folder(command, capsys):
    """An unset shell variable (`--out "$OUT"`) was the working folder: export wrote the corpus
    into it, prepare_bench deleted it afterwards."""
    module = importlib.import_module(
        command[0] + ("" if command[0] != "memo.report" else ".__main__")
    )
    with pytest.raises(SystemExit) as exited:
        module.main(command[1:])
    assert exited.value.code == 2
    assert "allowed: a path that is not blank" in capsys.readouterr().err


def test_prepare_bench_removes_only_the_folder_it_made(tmp_path, monkeypatch, capsys):
    """--dir was removed whole afterwards (with whatever it held before)."""
    (tmp_path / "mine.txt").write_text("kept")
    monkeypatch.setattr(prepare_bench, "run_prepare", lambda csd, out: (1.0, 0))
    prepare_bench.main(["--scale", "0.002", "--dir", str(tmp_path)])
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    assert "frames/s" in capsys.readouterr().out
