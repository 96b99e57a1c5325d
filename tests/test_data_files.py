"""The real-files source: readers for every release format, safe unpickling, the array cache,
word-vector files, and the exporter's round trip."""

from __future__ import annotations

import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    CONF,
    SIZES,
    STEPS,
    component,
    dataset_config,
    iemocap_arrays,
    mosei_arrays,
    write_files,
    write_h5,
)
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from memo.data import mosei_files, word_vectors
from memo.data.components import build_component
from memo.data.embeddings import WordVectors, emotion_vectors
from memo.data.export import main as export_main
from memo.data.files import load_files_corpus, missing_files
from memo.data.py2pickle import py2_array_pickle
from memo.data.safe_pickle import safe_load
from memo.data.split import MODALITIES, SPLITS
from memo.data.synthetic import build_corpus
from memo.data.word_vectors import read_word_vectors
from memo.errors import MemoError

MOSEI_MODALITY_FILES = {"text": "text_{}_emb.h5", "audio": "audio_{}.h5", "vision": "video_{}.h5"}


def cleaned(array: np.ndarray) -> np.ndarray:
    """What the readers must return for a feature array: float32, -inf -> 0."""
    out = np.asarray(array, dtype=np.float32).copy()
    out[np.isneginf(out)] = 0.0
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def mosei(tmp_path, rng):
    """(folder, arrays) of a complete MOSEI fixture."""
    arrays = mosei_arrays(rng)
    write_files(tmp_path / "mosei", arrays)
    return tmp_path / "mosei", arrays


@pytest.fixture
def iemocap(tmp_path, rng):
    """(folder, contents) of a complete IEMOCAP fixture (aligned pickle + `.p` extras)."""
    contents = iemocap_arrays(rng)
    write_files(tmp_path / "iemocap", contents)
    return tmp_path / "iemocap", contents


def load(dataset: str, folder: Path, cache: Path, **overrides: object):
    return load_files_corpus(dataset_config(dataset, folder, **overrides), cache)


# --- readers ------------------------------------------------------------------------------


def test_mosei_reads_back_exactly(mosei, tmp_path):
    folder, arrays = mosei
    corpus = load("mosei", folder, tmp_path / "cache")
    assert (corpus.dataset, corpus.source) == ("mosei", "files")
    assert str(folder) in corpus.description
    assert corpus.extras == {}
    for s in SPLITS:
        split = corpus.splits[s]
        assert split.emotions == ("anger", "disgust", "fear", "happy", "sad", "surprise")
        for modality, name in MOSEI_MODALITY_FILES.items():
            got = getattr(split, modality)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, cleaned(arrays[name.format(s)]))
        assert split.labels.dtype == np.float32
        np.testing.assert_array_equal(split.labels, arrays[f"ey_{s}.h5"] > 0)
        assert split.audio[0, 5, 1] == 0.0  # was -inf


def test_iemocap_reads_back_exactly(iemocap, tmp_path):
    folder, contents = iemocap
    corpus = load("iemocap", folder, tmp_path / "cache")
    assert str(folder) in corpus.description
    for s in SPLITS:
        raw, split = contents["iemocap_data.pkl"][s], corpus.splits[s]
        assert split.emotions == ("neutral", "happy", "sad", "angry")
        for modality in MODALITIES:
            np.testing.assert_array_equal(getattr(split, modality), cleaned(raw[modality]))
        np.testing.assert_array_equal(split.labels, raw["labels"].argmax(-1))

        pool = corpus.extras[s]
        assert pool.emotions == ("excited", "surprised", "frustrated")
        classes = contents[f"y_{s}.p"].argmax(1)
        keep = np.isin(classes, [2, 5, 6])  # excited, surprised, frustrated columns
        assert len(pool) == keep.sum() == 6
        for modality, name in {"text": "text", "audio": "covarep", "vision": "facet"}.items():
            expected = cleaned(contents[f"{name}_{s}.p"][keep, :STEPS])
            np.testing.assert_array_equal(getattr(pool, modality), expected)
        np.testing.assert_array_equal(
            pool.labels.argmax(1), np.searchsorted([2, 5, 6], classes[keep])
        )
        assert (pool.labels.sum(1) == 1).all()


def test_iemocap_unaligned_without_extras(tmp_path, rng):
    contents = iemocap_arrays(rng, main="iemocap_data_noalign.pkl")
    data = contents["iemocap_data_noalign.pkl"]
    for s, n in SIZES.items():
        data[s]["audio"] = rng.standard_normal((n, 40, 5)).astype(np.float32)
    write_files(tmp_path / "iemocap", {"iemocap_data_noalign.pkl": data})
    cfg = dataset_config("iemocap", tmp_path / "iemocap", aligned=False, extra_emotions=[])
    assert [p.name for p in cfg.expected_files()] == ["iemocap_data_noalign.pkl"]
    corpus = load_files_corpus(cfg, tmp_path / "cache")
    assert corpus.splits["train"].audio.shape == (SIZES["train"], 40, 5)
    assert corpus.extras == {}


def test_expected_and_missing_files(mosei, iemocap):
    mosei_cfg = dataset_config("mosei", mosei[0])
    assert len(mosei_cfg.expected_files()) == 12
    assert missing_files(mosei_cfg) == []
    names = sorted(p.name for p in dataset_config("iemocap", iemocap[0]).expected_files())
    assert names == sorted(
        ["iemocap_data.pkl"]
        + [f"{k}_{s}.p" for s in SPLITS for k in ("text", "covarep", "facet", "y")]
    )


def test_missing_files_are_listed_exactly(mosei, tmp_path):
    folder, _ = mosei
    for name in ("audio_valid.h5", "ey_test.h5"):
        (folder / name).unlink()
    cfg = dataset_config("mosei", folder)
    assert [p.name for p in missing_files(cfg)] == ["audio_valid.h5", "ey_test.h5"]
    with pytest.raises(MemoError) as err:
        load_files_corpus(cfg, tmp_path / "cache")
    message = str(err.value)
    assert "['audio_valid.h5', 'ey_test.h5']" in message
    assert str(folder.resolve()) in message and "2 of the 12" in message


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("memo.data.datasets.nope.Nope", "'dataset._target_': cannot import 'memo.data.dat"),
        ("memo.data.regimes.Full", "'dataset._target_': got 'memo.data.regimes.Full'; allowed"),
    ],
)
def test_a_target_that_is_not_a_dataset_is_one_line(tmp_path, target, message):
    with pytest.raises(MemoError, match=message) as error:
        dataset_config("mosei", tmp_path, _target_=target)
    assert "\n" not in str(error.value)


def test_unknown_dataset_key_is_refused(tmp_path):
    with pytest.raises(MemoError, match="'dataset.colour' is not a setting of dataset=mosei"):
        dataset_config("mosei", tmp_path, colour="red")


# --- validation ---------------------------------------------------------------------------


def damaged_mosei(tmp_path, rng, name: str, edit) -> str:
    """Write a MOSEI fixture with file `name` holding `edit(array)`; the load's MemoError."""
    arrays = mosei_arrays(rng)
    arrays[name] = edit(arrays[name])
    write_files(tmp_path / "mosei", arrays)
    with pytest.raises(MemoError) as err:
        load("mosei", tmp_path / "mosei", tmp_path / "cache")
    return str(err.value)


def put(index: tuple, value: float):
    """An edit that sets one element."""

    def edit(array: np.ndarray) -> np.ndarray:
        array[index] = value
        return array

    return edit


def test_nan_fails_naming_file_and_split(tmp_path, rng):
    message = damaged_mosei(tmp_path, rng, "video_test.h5", put((2, 3, 1), np.nan))
    assert "video_test.h5" in message and "test vision" in message and "1 NaN" in message


def test_nan_zeroed_when_configured(tmp_path, rng):
    arrays = mosei_arrays(rng)
    arrays["video_test.h5"][2, 3, 1] = np.nan
    arrays["text_train_emb.h5"][0, 4, 0] = np.inf
    write_files(tmp_path / "mosei", arrays)
    corpus = load("mosei", tmp_path / "mosei", tmp_path / "cache", zero_nonfinite=True)
    assert corpus.splits["test"].vision[2, 3, 1] == 0.0
    assert corpus.splits["train"].text[0, 4, 0] == 0.0


def test_wrong_shape(tmp_path, rng):
    message = damaged_mosei(tmp_path, rng, "audio_train.h5", lambda _: np.zeros((12, 74)))
    assert "audio_train.h5" in message and "expected shape (N, T, D), found (12, 74)" in message


def test_wrong_label_columns(tmp_path, rng):
    message = damaged_mosei(tmp_path, rng, "ey_valid.h5", lambda _: np.zeros((5, 5)))
    assert "ey_valid.h5" in message and "(N, 6)" in message and "(5, 5)" in message


def test_mismatched_sample_counts(tmp_path, rng):
    message = damaged_mosei(tmp_path, rng, "video_train.h5", lambda a: a[:11])
    assert "sample counts" in message and "video_train.h5: 11" in message
    assert "audio_train.h5: 12" in message


def test_feature_size_differs_between_splits(tmp_path, rng):
    message = damaged_mosei(tmp_path, rng, "text_test_emb.h5", lambda a: a[:, :, :-1])
    assert "text feature sizes" in message and "text_test_emb.h5: 7" in message


def test_negative_intensity(tmp_path, rng):
    message = damaged_mosei(tmp_path, rng, "ey_train.h5", put((3, 2), -1.0))
    assert "ey_train.h5" in message and "non-negative" in message


def test_intensities_not_in_thirds_only_warn(tmp_path, rng, caplog):
    arrays = mosei_arrays(rng)
    arrays["ey_train.h5"][4, 0] = 0.5
    write_files(tmp_path / "mosei", arrays)
    corpus = load("mosei", tmp_path / "mosei", tmp_path / "cache")
    assert corpus.splits["train"].labels[4, 0] == 1.0
    assert "not multiples of 1/3" in caplog.text


def test_missing_d1_lists_keys(mosei, tmp_path):
    folder, arrays = mosei
    write_h5(folder / "ey_valid.h5", arrays["ey_valid.h5"], key="data")
    with pytest.raises(
        MemoError, match=r"ey_valid.h5: expected an HDF5 dataset named 'd1', found keys \['data'\]"
    ):
        load("mosei", folder, tmp_path / "cache")


def test_truncated_h5(mosei, tmp_path):
    folder, _ = mosei
    path = folder / "text_train_emb.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MemoError, match="text_train_emb.h5: not a readable HDF5 file"):
        load("mosei", folder, tmp_path / "cache")


def test_iemocap_label_rows_need_one_positive(iemocap, tmp_path):
    folder, contents = iemocap
    data = contents["iemocap_data.pkl"]
    data["valid"]["labels"][3] = [[0, 1], [0, 1], [1, 0], [1, 0]]  # neutral and happy
    write_files(folder, {"iemocap_data.pkl": data})
    with pytest.raises(
        MemoError, match=r"\['valid'\]\['labels'\].*exactly one positive.*\[2\] positives"
    ):
        load("iemocap", folder, tmp_path / "cache")


def test_iemocap_missing_key(iemocap, tmp_path):
    folder, contents = iemocap
    data = contents["iemocap_data.pkl"]
    del data["test"]["vision"]
    write_files(folder, {"iemocap_data.pkl": data})
    with pytest.raises(MemoError, match=r"\['test'\]: expected keys .* missing \['vision'\]"):
        load("iemocap", folder, tmp_path / "cache")


def test_iemocap_extras_must_be_one_hot(iemocap, tmp_path):
    folder, contents = iemocap
    y = contents["y_train.p"]
    y[0] = 0.0
    write_files(folder, {"y_train.p": y})
    with pytest.raises(MemoError, match=r"y_train.p: expected exactly one positive"):
        load("iemocap", folder, tmp_path / "cache")


def test_iemocap_unknown_extra_emotion(iemocap, tmp_path):
    with pytest.raises(MemoError, match="dataset.extra_emotions"):
        load("iemocap", iemocap[0], tmp_path / "cache", extra_emotions=["bored"])


# --- safe unpickling ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_load_reads_python3_pickles(tmp_path, protocol):
    value = {"a": np.arange(6.0).reshape(2, 3), "b": [np.float64(2.5), np.int64(3)], "c": (1, "x")}
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    loaded = safe_load(path)
    np.testing.assert_array_equal(loaded["a"], value["a"])
    assert loaded["b"] == [2.5, 3] and loaded["c"] == (1, "x")


def test_python2_writer_matches_a_real_python2_pickle():
    """numpy ships a pickle written by Python 2; ours must be the same bytes (less memo ops)."""
    real = Path(np.__file__).parent / "_core" / "tests" / "data" / "astype_copy.pkl"
    if not real.exists():
        pytest.skip("numpy's test data is not installed")
    array = safe_load(real, encoding="latin1")
    assert pickletools.optimize(real.read_bytes()) == py2_array_pickle(array)


def test_python2_pickles_use_py2_opcodes(tmp_path):
    array = np.random.default_rng(0).standard_normal((3, 21, 4))
    ops = {(op.name, arg) for op, arg, _ in pickletools.genops(py2_array_pickle(array))}
    assert ("GLOBAL", "numpy.core.multiarray _reconstruct") in ops
    assert "BINSTRING" in {name for name, _ in ops}
    assert not any("_codecs" in str(arg) for _, arg in ops)
    path = tmp_path / "x.p"
    path.write_bytes(py2_array_pickle(array))
    np.testing.assert_array_equal(safe_load(path, encoding="latin1"), array)


PAYLOADS = {  # protocol-0 pickles that call a global on a path under the test's folder
    "builtins.open": "cbuiltins\nopen\n(V{target}\nVw\ntR.",
    "os.system": "cos\nsystem\n(Vtouch {target}\ntR.",
}


@pytest.mark.parametrize("refused", PAYLOADS)
def test_malicious_pickle_is_refused(tmp_path, refused):
    target = tmp_path / "created"
    path = tmp_path / "evil.pkl"
    path.write_bytes(PAYLOADS[refused].format(target=target).encode())
    if refused == "builtins.open":  # the payload really works when unpickled without the guard
        pickle.loads(path.read_bytes()).close()
        assert target.exists()
        target.unlink()
    with pytest.raises(MemoError, match=f"evil.pkl: refused to load global '{refused}'"):
        safe_load(path)
    assert not target.exists()


def test_malicious_data_file_is_refused_by_the_loader(iemocap, tmp_path):
    folder, _ = iemocap
    target = tmp_path / "created"
    payload = f"(dVtrain\ncbuiltins\nopen\n(V{target}\nVw\ntRs.".encode()
    (folder / "iemocap_data.pkl").write_bytes(payload)
    with pytest.raises(MemoError, match="iemocap_data.pkl: refused to load global 'builtins.open'"):
        load("iemocap", folder, tmp_path / "cache")
    assert not target.exists()


def test_truncated_pickle(tmp_path):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(MemoError, match="data.pkl: not a readable pickle"):
        safe_load(path)


# --- cache --------------------------------------------------------------------------------


@pytest.fixture
def count_reads(monkeypatch):
    """A list that gains an entry each time the MOSEI reader parses the files."""
    calls = []
    read = mosei_files.read_corpus

    def counting(dataset):
        calls.append(1)
        return read(dataset)

    monkeypatch.setattr(mosei_files, "read_corpus", counting)
    return calls


def entries(cache: Path) -> list[Path]:
    """The cache's entries (besides them, the folder holds one lock file per entry)."""
    return [path for path in (cache / "files").iterdir() if path.suffix != ".lock"]


def entry_of(cache: Path) -> Path:
    (entry,) = entries(cache)
    return entry


def test_second_load_hits_the_cache(mosei, tmp_path, count_reads):
    folder, _ = mosei
    first = load("mosei", folder, tmp_path / "cache")
    second = load("mosei", folder, tmp_path / "cache")
    assert len(count_reads) == 1
    assert isinstance(second.splits["train"].text, np.memmap)
    for s in SPLITS:
        for field in (*MODALITIES, "labels"):
            np.testing.assert_array_equal(
                getattr(first.splits[s], field), getattr(second.splits[s], field)
            )
    assert second.description == first.description
    second.splits["train"].text[0, 0, 0] = 99.0  # writable, but never written back
    assert load("mosei", folder, tmp_path / "cache").splits["train"].text[0, 0, 0] != 99.0


def test_touched_source_or_changed_setting_misses_the_cache(mosei, tmp_path, count_reads):
    folder, _ = mosei
    load("mosei", folder, tmp_path / "cache")
    stat = (folder / "audio_test.h5").stat()
    os.utime(folder / "audio_test.h5", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load("mosei", folder, tmp_path / "cache")
    load("mosei", folder, tmp_path / "cache", zero_nonfinite=True)
    assert len(count_reads) == 3


@pytest.mark.parametrize("damage", ["truncate", "drop_manifest"])
def test_damaged_cache_entry_is_rebuilt(mosei, tmp_path, count_reads, damage):
    folder, arrays = mosei
    load("mosei", folder, tmp_path / "cache")
    entry = entry_of(tmp_path / "cache")
    if damage == "truncate":
        npy = entry / "splits" / "train" / "text.npy"
        npy.write_bytes(npy.read_bytes()[:-100])
    else:
        (entry / "manifest.json").unlink()
    corpus = load("mosei", folder, tmp_path / "cache")
    assert len(count_reads) == 2
    np.testing.assert_array_equal(corpus.splits["train"].text, cleaned(arrays["text_train_emb.h5"]))
    load("mosei", folder, tmp_path / "cache")
    assert len(count_reads) == 2
    assert entries(tmp_path / "cache") == [entry]  # no temp left


def test_unwritable_cache_still_loads(mosei, tmp_path):
    folder, _ = mosei
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    corpus = load("mosei", folder, tmp_path / "cache")
    assert len(corpus.splits["train"]) == SIZES["train"]


# --- word vectors -------------------------------------------------------------------------

VECTORS = {
    "anger": [1.0, 2, 3, 4],
    "Anger": [5.0, 6, 7, 8],
    "happy": [0.5, 0, 0, 1],
    "a b": [9.0, 9, 9, 9],
}


def embeddings_config(path: Path, tmp_path: Path, **overrides: object):
    """The component of conf/embeddings/file.yaml reading `path` (4-d), with `overrides`."""
    cfg = OmegaConf.load(CONF / "embeddings" / "file.yaml")
    cfg.path, cfg.dim, cfg.cache_dir = str(path), 4, str(tmp_path / "cache")
    for key, value in overrides.items():
        cfg[key] = value
    return build_component(cfg, "embeddings", WordVectors)


@pytest.fixture(params=["pickle", "text"])
def vectors_file(request, tmp_path) -> Path:
    """The same vectors as the authors' pickled dict (.pt) or as a GloVe text file (.txt)."""
    if request.param == "pickle":
        path = tmp_path / "glove.emotions.840B.300d.pt"
        path.write_bytes(pickle.dumps(VECTORS, protocol=2))
    else:
        path = tmp_path / "glove.txt"
        lines = ["the 0.1 0.2 0.3 0.4"] + [
            f"{w} {' '.join(map(str, v))}" for w, v in VECTORS.items()
        ]
        path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("capitalize", [False, True])
def test_word_vectors(vectors_file, tmp_path, capitalize):
    cfg = embeddings_config(vectors_file, tmp_path, capitalize=capitalize)
    table = read_word_vectors(cfg, ["anger"] if capitalize else ["anger", "a b"])
    assert table["anger"].dtype == np.float32
    np.testing.assert_array_equal(table["anger"], VECTORS["Anger" if capitalize else "anger"])
    if not capitalize:
        np.testing.assert_array_equal(table["a b"], VECTORS["a b"])


def test_word_vectors_capitalized_word_missing(vectors_file, tmp_path):
    cfg = embeddings_config(vectors_file, tmp_path, capitalize=True)
    with pytest.raises(MemoError, match=r"1 words not found: \['Happy'\]"):
        read_word_vectors(cfg, ["anger", "happy"])


def test_missing_words_all_listed(vectors_file, tmp_path):
    cfg = embeddings_config(vectors_file, tmp_path)
    with pytest.raises(MemoError, match=r"2 words not found: \['nope', 'zilch'\]"):
        read_word_vectors(cfg, ["zilch", "anger", "nope"])


def test_word_vector_dimension_mismatch(vectors_file, tmp_path):
    cfg = embeddings_config(vectors_file, tmp_path, dim=5)
    with pytest.raises(MemoError, match=r"embeddings.dim"):
        read_word_vectors(cfg, ["anger"])


def test_text_vectors_are_cached(tmp_path, monkeypatch):
    path = tmp_path / "glove.txt"
    path.write_text("the 0 0 0 0\nanger 1 2 3 4\n")
    cfg = embeddings_config(path, tmp_path, format="text")
    first = read_word_vectors(cfg, ["anger"])

    def fail(*args):
        raise AssertionError("scanned the text file again")

    monkeypatch.setattr(word_vectors, "scan_text", fail)
    np.testing.assert_array_equal(read_word_vectors(cfg, ["anger"])["anger"], first["anger"])
    path.write_text("the 0 0 0 0\nanger 4 3 2 1\n")
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="scanned"):
        read_word_vectors(cfg, ["anger"])


def test_emotion_vectors_from_a_file(vectors_file, tmp_path):
    cfg = embeddings_config(vectors_file, tmp_path)
    vectors = emotion_vectors(cfg, {"angry": "anger", "joy": "happy"}, ["joy", "angry"])
    np.testing.assert_array_equal(vectors, [VECTORS["happy"], VECTORS["anger"]])


# --- export round trip --------------------------------------------------------------------


def composed(name: str, tmp_path: Path, scale: float):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(
            "config",
            overrides=[
                f"dataset={name}",
                f"dataset.scale={scale}",
                f"dataset.dir={tmp_path / 'out'}",
                f"paths.cache_dir={tmp_path / '.cache' / 'memo'}",
            ],
        )


def assert_same_corpus(loaded, built):
    assert (
        loaded.splits.keys() == built.splits.keys() and loaded.extras.keys() == built.extras.keys()
    )
    for group in ("splits", "extras"):
        for s, want in getattr(built, group).items():
            got = getattr(loaded, group)[s]
            assert got.emotions == want.emotions
            for field in (*MODALITIES, "labels"):
                a, b = getattr(got, field), getattr(want, field)
                assert a.dtype == b.dtype == np.float32
                np.testing.assert_array_equal(a, b)


def test_export_cli_round_trip_mosei(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the CLI caches the built-in corpus under ./.cache/memo
    export_main(["--dataset", "mosei", "--out", str(tmp_path / "out"), "--scale", "0.01"])
    assert "dataset.source=files" in capsys.readouterr().out
    cfg = composed("mosei", tmp_path, 0.01)
    dataset = component(cfg.dataset)
    built = build_corpus(dataset, cfg.paths.cache_dir)
    loaded = load_files_corpus(dataset, cfg.paths.cache_dir)
    assert loaded.source == "files"
    assert_same_corpus(loaded, built)


def test_export_round_trip_iemocap(tmp_path):
    cfg = composed("iemocap", tmp_path, 0.05)
    dataset = component(cfg.dataset)
    built = build_corpus(dataset, cfg.paths.cache_dir)
    (tmp_path / "out").mkdir()
    written = dataset.exports()["release"].write(built, tmp_path / "out")
    assert sorted(written) == sorted(dataset.expected_files())
    assert (tmp_path / "out" / "text_train.p").read_bytes()[:2] == b"\x80\x02"
    assert_same_corpus(load_files_corpus(dataset, cfg.paths.cache_dir), built)
