"""Preparing CMU-MOSEI from `.csd` files: alignment rules, folds, labels, round trip, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import compose_config, run_in_process
from data_fixtures import component

from memo.data import csd
from memo.data.align import EPSILON, average_frames, left_pad, overlaps
from memo.data.csd import CsdReader, csd_writer
from memo.data.export import main as export_main
from memo.data.files import load_files_corpus
from memo.data.mosei_csd import sequences, standard_folds, write_corpus
from memo.data.prepare import Tally, main, prepare_mosei, video_samples
from memo.data.synthetic import build_corpus
from memo.errors import MemoError

FOLDS = {split: sorted(ids) for split, ids in standard_folds().items()}
TRAIN, VALID, TEST = FOLDS["train"][0], FOLDS["valid"][0], FOLDS["test"][0]
# sentiment, happy, sad, anger, surprise, disgust, fear -> ey: anger, disgust, fear, happy, ...
LABEL_ROW = [0.5, 1.0, 2 / 3, 1 / 3, 0.0, 2.0, 3.0]
EY_ROW = [1 / 3, 2.0, 3.0, 1.0, 2 / 3, 0.0]


def iv(*pairs: tuple[float, float]) -> np.ndarray:
    return np.array(pairs, dtype=float).reshape(-1, 2)


def column(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)[:, None]


def simple_video(label: list[float] = LABEL_ROW) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three 1 s words, one audio frame and one visual frame per word, one segment over all."""
    words = iv((0, 1), (1, 2), (2, 3))
    frames = iv((0.2, 0.8), (1.2, 1.8), (2.2, 2.8))
    return {
        "text": (words, column(1, 2, 3)),
        "audio": (frames, column(10, 20, 30)),
        "vision": (frames, column(-1, -2, -3)),
        "labels": (iv((0, 3)), np.array([label])),
    }


def write_sequences(folder, videos: dict[str, dict], visual: str = "facet") -> None:
    """The four `.csd` files for `videos` (id -> role -> (intervals, features)); a role a
    video lacks is left out of that file."""
    for role, (name, root) in sequences(visual).items():
        with csd_writer(folder / name, root, {}) as add:
            for video, data in videos.items():
                if role in data:
                    add(video, *data[role])


# --- alignment rules ------------------------------------------------------------------------


def test_partial_overlaps_count_at_full_weight_and_touching_frames_do_not():
    words = iv((1, 2))
    frames = iv((0, 1), (0.5, 1.5), (1.5, 1.6), (1.9, 3), (2, 3))  # touch, part, in, part, touch
    means, counts = average_frames(words, frames, column(100, 1, 2, 3, 100))
    assert counts.tolist() == [3]
    assert means.tolist() == [[2.0]]  # unweighted mean of 1, 2, 3


def test_overlap_must_exceed_epsilon():
    words = iv((1, 2))
    frames = iv((0, 1 + EPSILON / 2), (2 - 2 * EPSILON, 3))
    means, counts = average_frames(words, frames, column(5, 7))
    assert counts.tolist() == [1] and means.tolist() == [[7.0]]


def test_words_in_gaps_get_zeros_and_no_frames_at_all_too():
    words = iv((0, 1), (5, 6))
    means, counts = average_frames(words, iv((0, 1)), column(4))
    assert counts.tolist() == [1, 0] and means.tolist() == [[4.0], [0.0]]
    means, counts = average_frames(words, iv(), np.zeros((0, 1)))
    assert counts.tolist() == [0, 0] and means.tolist() == [[0.0], [0.0]]


def test_unsorted_nested_and_zero_length_frames_match_the_direct_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        starts = rng.choice(np.arange(0, 10, 0.5), 30)
        frames = np.stack([starts, starts + rng.choice([0, 0.5, 1, 3], 30)], axis=1)
        word_starts = rng.choice(np.arange(0, 10, 0.5), 8)
        words = np.stack([word_starts, word_starts + rng.choice([0, 0.5, 2], 8)], axis=1)
        features = rng.standard_normal((30, 2))
        means, counts = average_frames(words, frames, features)
        for w, (start, end) in enumerate(words):
            overlap = np.minimum(frames[:, 1], end) - np.maximum(frames[:, 0], start)
            used = (overlap > EPSILON) & (end - start > EPSILON)
            assert counts[w] == used.sum()
            want = features[used].mean(axis=0) if used.any() else np.zeros(2)
            np.testing.assert_allclose(means[w], want, atol=1e-12)


def test_a_single_frame_is_copied_exactly():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((500, 3)) * 1e3
    frames = np.stack([np.arange(500.0), np.arange(500.0) + 1], axis=1)
    means, _ = average_frames(frames + [0.1, -0.1], frames, features)
    assert np.array_equal(means, features)


def test_non_finite_frames_propagate_like_a_plain_mean():
    words = iv((0, 2), (2, 4), (4, 6))
    frames = iv((0, 1), (1, 2), (2, 3), (3, 4), (4, 6))
    features = column(-np.inf, 1, np.inf, -np.inf, np.nan)
    means, _ = average_frames(words, frames, features)
    assert means[0, 0] == -np.inf and np.isnan(means[1, 0]) and np.isnan(means[2, 0])


def test_left_padding_and_truncation_keep_the_last_rows():
    rows = column(1, 2, 3)
    assert left_pad(rows, 5)[:, 0].tolist() == [0, 0, 1, 2, 3]
    assert left_pad(rows, 2)[:, 0].tolist() == [2, 3]


def test_segment_membership_needs_an_overlap_above_epsilon():
    members = overlaps(iv((1, 3)), iv((0, 1), (0.5, 1.5), (2.9, 4), (3, 4)), 10)
    assert [m.tolist() for m in members] == [[1, 2]]


def test_segments_take_the_same_word_rows_in_every_modality():
    video = simple_video()
    video["labels"] = (iv((0.5, 2.5), (1.5, 1.5), (5, 6)), np.array([LABEL_ROW] * 3))
    video["text"] = (iv((0, 1), (1, 1), (1, 2), (2, 3)), column(1, 99, 2, 3))  # zero-length word
    video["audio"] = (iv((3.5, 3.6), (1.2, 1.8), (2.2, 2.8)), column(10, 20, 30))
    tally = Tally()
    samples = video_samples(video, 4, tally)
    assert samples["text"][..., 0].tolist() == [[0, 1, 2, 3]]
    assert samples["audio"][..., 0].tolist() == [[0, 0, 20, 30]]  # word 1 has no audio frame
    assert samples["vision"][..., 0].tolist() == [[0, -1, -2, -3]]
    assert samples["labels"].tolist() == [LABEL_ROW]
    assert tally.notes == {
        "zero-length words (skipped, as the SDK's align)": 1,
        "words without audio frames (zeros, as the SDK's impute)": 1,
        "zero-length segments (skipped, as the SDK's align)": 1,
        "segments without words (dropped, as the SDK's hard_unify)": 1,
    }


def test_long_segments_keep_their_last_words():
    tally = Tally()
    samples = video_samples(simple_video(), 2, tally)
    assert samples["text"][0, :, 0].tolist() == [2, 3]
    assert tally.notes["segments longer than 2 words (kept the last)"] == 1


def test_bad_values_are_counted_not_fatal():
    video = simple_video()
    video["text"] = (iv((1, 2), (0, 1), (2, 3), (np.nan, 4), (5, 4)), column(2, 1, 3, 8, 9))
    video["audio"] = (iv((0.2, 0.8), (1.2, 1.8), (2.2, 2.8)), column(np.nan, 20, np.inf))
    video["labels"] = (iv((0, 3), (0, 3)), np.array([LABEL_ROW, [0, np.nan, 0, 0, 0, 0, 0]]))
    tally = Tally()
    samples = video_samples(video, 3, tally)
    assert samples["text"][0, :, 0].tolist() == [1, 2, 3]  # sorted
    assert samples["audio"][0, :, 0].tolist() == [0, 20, 0]
    assert tally.warnings == {
        "words with non-finite or reversed intervals (dropped)": 2,
        "videos with words out of time order (sorted)": 1,
        "audio values NaN or +inf (set to 0)": 2,
        "segments with non-finite labels or negative emotion intensities (dropped)": 1,
    }


# --- whole preparation ----------------------------------------------------------------------


def read_d1(path) -> np.ndarray:
    with h5py.File(path, "r") as file:
        return file["d1"][()]


def test_folds_labels_order_and_dropped_videos(tmp_path):
    second = simple_video([0, 1, 0, 0, 0, 0, 0])
    second["labels"] = (iv((2, 3), (0, 1)), np.array([[0, 1, 0, 0, 0, 0, 0], LABEL_ROW]))
    videos = {
        TRAIN: simple_video(),
        FOLDS["train"][1]: second,
        VALID: simple_video(),
        TEST: simple_video(),
        "not-in-a-fold": simple_video(),
        FOLDS["test"][1]: {k: v for k, v in simple_video().items() if k != "audio"},
    }
    write_sequences(tmp_path / "csd", videos)
    report = prepare_mosei(tmp_path / "csd", tmp_path / "out", seq_len=3)
    out = tmp_path / "out"
    assert report["samples"] == {"train": 3, "valid": 1, "test": 1}
    text = read_d1(out / "text_train_emb.h5")
    assert text.shape == (3, 3, 1) and text.dtype == np.float32
    assert text[:, :, 0].tolist() == [[1, 2, 3], [0, 0, 3], [0, 0, 1]]  # id, then segment index
    assert read_d1(out / "ey_train.h5").tolist() == [EY_ROW, [0, 0, 0, 1, 0, 0], EY_ROW]
    assert read_d1(out / "y_train.h5").tolist() == [[0.5], [0], [0.5]]
    assert read_d1(out / "video_test.h5").shape == (1, 3, 1)
    assert report["warnings"] == {
        "videos absent from CMU_MOSEI_COVAREP.csd (dropped from every sequence)": 1
    }
    assert report["notes"]["videos in no standard fold (skipped, as get_tensors)"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{kind}_{s}{end}" for s in ("train", "valid", "test")
         for kind, end in [("text", "_emb.h5"), ("audio", ".h5"), ("video", ".h5"),
                           ("ey", ".h5"), ("y", ".h5")]] + ["prepare.json"]
    )  # fmt: skip


def test_openface_is_read_when_asked(tmp_path):
    videos = {TRAIN: simple_video(), VALID: simple_video(), TEST: simple_video()}
    write_sequences(tmp_path / "csd", videos, visual="openface")
    with pytest.raises(MemoError, match=r"missing .*CMU_MOSEI_VisualFacet42.csd"):
        prepare_mosei(tmp_path / "csd", tmp_path / "out")
    report = prepare_mosei(tmp_path / "csd", tmp_path / "out", visual="openface")
    assert report["sequences"]["vision"]["name"] == "OpenFace_2"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The built-in corpus at scale 0.01, exported as `.csd` and prepared again."""
    root = tmp_path_factory.mktemp("round-trip")
    cfg = compose_config(
        ["dataset.scale=0.01", f"paths.cache_dir={root / 'cache'}", f"paths.data_dir={root}"]
    )
    built = build_corpus(component(cfg.dataset), cfg.paths.cache_dir)
    write_corpus(built, root / "csd")
    prepare_mosei(root / "csd", cfg.dataset.dir)
    return root, cfg, built


def test_export_prepare_load_reproduces_the_built_in_corpus(exported):
    _, cfg, built = exported
    loaded = load_files_corpus(component(cfg.dataset), cfg.paths.cache_dir)
    for name, split in built.splits.items():
        for field in ("text", "audio", "vision", "labels"):
            assert np.array_equal(getattr(loaded.splits[name], field), getattr(split, field))


def test_a_prepared_folder_trains(exported, tmp_path):
    root, _, _ = exported
    metrics = run_in_process(
        tmp_path,
        [
            "dataset.source=files",
            f"paths.data_dir={root}",
            "trainer.epochs=1",
            "model.hidden_audio=8",
            "model.hidden_vision=8",
        ],
    )
    assert metrics["data_source"] == "files"


# --- bad input ------------------------------------------------------------------------------


def test_missing_sequences_are_listed(tmp_path):
    write_sequences(tmp_path, {TRAIN: {"text": simple_video()["text"]}})
    (tmp_path / "CMU_MOSEI_Labels.csd").unlink()
    with pytest.raises(MemoError, match=r"missing the CMU-MOSEI sequences \['CMU_MOSEI_Labels"):
        prepare_mosei(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("intervals", lambda g, n: g.__setitem__(n, h5py.SoftLink("/seq")), "SoftLink; refused"),
        ("features", lambda g, n: g.__setitem__(n, h5py.ExternalLink("x.h5", "/")), "ExternalLink"),
        (
            "features",
            lambda g, n: g.create_dataset(n, (2, 1), "f8", external=[("raw.bin", 0, 16)]),
            "keeps its data in other files",
        ),
        ("features", lambda g, n: g.create_dataset(n, data=[b"a", b"b"]), "must be numeric"),
        ("features", lambda g, n: g.create_dataset(n, data=np.zeros((3, 1))), r"\(3, 1\)"),
        ("intervals", lambda g, n: g.create_dataset(n, data=np.zeros(2)), r"found \(2,\)"),
        # the MOSEI files' storage checks (mosei_files.check_storage) apply here too
        (
            "features",
            lambda g, n: g.create_dataset(n, (2, 10**9), "f4"),
            r"declares shape \(2, 1000000000\) of float32 \(8000000000 bytes\) but stores 0 bytes",
        ),
        (
            "features",
            lambda g, n: g.create_dataset(
                n, data=np.zeros((2, 1)), compression=32015, allow_unknown_filter=True
            ),
            r"features' uses HDF5 filters \[32015\], which are not built in",
        ),
        (
            "features",
            lambda g, n: g.create_dataset(
                n, data=np.ones((2, 1)), maxshape=(None, 1), chunks=(10**7, 1), compression="gzip"
            ),
            r"has chunks of shape \(10000000, 1\) \(80000000 bytes\), larger than the dataset",
        ),
        ("features", lambda g, n: g.create_dataset(n, (2, 1), "f8"), "holds no data"),
        ("features", lambda g, n: g.create_dataset(n, data=h5py.Empty("f8")), "shape None"),
        ("features", lambda g, n: g.create_dataset(n, data=np.zeros((2, 0))), "no feature columns"),
    ],
)
def test_untrusted_files_are_checked_before_reading(tmp_path, name, make, message):
    path = tmp_path / "x.csd"
    with h5py.File(path, "w") as file:
        group = file.create_group("seq/data/v")
        make(group, name)
        other = "features" if name == "intervals" else "intervals"
        group.create_dataset(other, data=np.zeros((2, 1 if other == "features" else 2)))
    with pytest.raises(MemoError, match=message) as error:
        CsdReader(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_video_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(csd, "MAX_ARRAY_BYTES", 64)
    write_sequences(tmp_path, {TRAIN: {"text": (np.zeros((3, 2)), np.zeros((3, 3)))}})
    with pytest.raises(MemoError, match=r"features' declares shape \(3, 3\), over the 0 MiB limit"):
        CsdReader(tmp_path / sequences()["text"][0])


def test_an_error_mid_way_writes_nothing(tmp_path):
    videos = {TRAIN: simple_video(), VALID: simple_video(), TEST: simple_video()}
    write_sequences(tmp_path / "csd", videos)
    with h5py.File(tmp_path / "csd" / "CMU_MOSEI_COVAREP.csd", "a") as file:
        del file[f"COVAREP/data/{TEST}/features"]
        file[f"COVAREP/data/{TEST}/features"] = np.zeros((3, 2))
    with pytest.raises(MemoError, match=f"'/COVAREP/data/{TEST}/features' has 2 features"):
        prepare_mosei(tmp_path / "csd", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_fold_without_samples_is_an_error(tmp_path):
    write_sequences(tmp_path / "csd", {TRAIN: simple_video(), VALID: simple_video()})
    with pytest.raises(MemoError, match=r"standard \['test'\] fold"):
        prepare_mosei(tmp_path / "csd", tmp_path / "out")


def test_settings_are_checked(tmp_path):
    with pytest.raises(MemoError, match="--seq-len: got 0; allowed: 1 to 1000 words"):
        prepare_mosei(tmp_path, tmp_path / "out", seq_len=0)
    with pytest.raises(MemoError, match="got 'facet42'; allowed: facet | openface"):
        prepare_mosei(tmp_path, tmp_path / "out", visual="facet42")


def test_export_writes_csd_for_mosei_only(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the CLI caches the built-in corpus under ./.cache/memo
    export_main(["--format", "csd", "--out", "csd", "--scale", "0.01"])
    assert sorted(p.name for p in (tmp_path / "csd").iterdir()) == sorted(
        name for name, _ in sequences().values()
    )
    assert "python -m memo.data.prepare mosei --csd csd" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        export_main(["--format", "csd", "--dataset", "iemocap", "--out", "csd"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "error: --format csd: dataset iemocap is written as release\n"
    )


def test_cli_errors_are_one_line_with_exit_status_2(tmp_path, capsys):
    write_sequences(tmp_path, {TRAIN: simple_video()})
    (tmp_path / "CMU_MOSEI_Labels.csd").write_bytes(b"not hdf5")
    with pytest.raises(SystemExit) as exit_:
        main(["mosei", "--csd", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a readable HDF5 file" in err
    assert "Traceback" not in err and err.count("\n") == 1
