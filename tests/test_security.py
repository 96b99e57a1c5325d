"""Hostile files (issue 11, and issue 12's label and overflow cases): each is refused with one
line naming the file and the limit it broke, within 1 s and 200 MB, before anything large is
built; caches never serve a replaced file, and concurrent or killed builders leave no trace.

Time and memory are measured in a fresh interpreter (`measure`), which also shows that a case
does not crash it.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from data_fixtures import (
    SIZES,
    dataset_config,
    iemocap_arrays,
    mosei_arrays,
    write_files,
)

from memo import CONFIG_DIR
from memo.data import cache, mosei_files, synthetic, validate
from memo.data.components import build_component
from memo.data.files import load_files_corpus
from memo.data.safe_pickle import check_arrays, safe_load
from memo.data.word_vectors import VectorFile, read_word_vectors
from memo.errors import MemoError
from memo.training.checkpoints import load_checkpoint, save_checkpoint

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
MAX_SECONDS = 1.0  # CPU seconds of the child (process_time): a busy machine does not add to it
MAX_MB = 200

CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
from memo.errors import MemoError
{setup}


def peak_mb():
    # VmHWM: this process's peak RSS since exec (getrusage's ru_maxrss would also count the
    # pages of the pytest process this one was forked from)
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


base = peak_mb()
results = {{}}
for name, argument in json.loads(sys.argv[1]).items():
    start = time.process_time()
    try:
        load(argument)
        message = "loaded"
    except MemoError as error:
        message = str(error)
    results[name] = {{"message": message, "seconds": time.process_time() - start}}
print(json.dumps({{"results": results, "peak_mb": peak_mb(), "growth_mb": peak_mb() - base}}))
"""


def measure(setup: str, cases: dict[str, str]) -> tuple[dict[str, dict], float, float]:
    """Call `load(argument)` (defined by `setup`) for each case in one fresh interpreter:
    per case its MemoError message (or "loaded") and CPU seconds; the peak RSS (MB) and its growth
    over the peak after `setup`, which covers every case, since a peak only rises."""
    code = CHILD.format(tests=str(TESTS), setup=setup)
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cases)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]  # -11 would be a crash (SIGSEGV)
    report = json.loads(result.stdout.splitlines()[-1])
    return report["results"], report["peak_mb"], report["growth_mb"]


def assert_refused(results: dict[str, dict], expected: dict[str, str], files: dict[str, Path]):
    """Each case refused in one line naming its file and containing its expected phrase."""
    for name, phrase in expected.items():
        message, seconds = results[name]["message"], results[name]["seconds"]
        assert "\n" not in message and str(files[name]) in message and phrase in message, (
            name,
            message,
        )
        assert seconds < MAX_SECONDS, (name, seconds)


# --- 1. unpickling is bounded -------------------------------------------------------------


def deep_tuple_key() -> bytes:
    """{((...((),)...),): 1} with the tuple nested 300,000 deep: hashing it as a dict key
    overflows the C stack (SIGSEGV) in a plain unpickler."""
    return b"\x80\x02}" + b")" + b"\x85" * 300_000 + b"K\x01s."


def shared_doubling(levels: int = 27) -> bytes:
    """An emotion-vector dict whose vector is one list shared through the memo, doubled
    `levels` times: a few hundred bytes that expand to 2**levels floats (4+ GB at 27)."""
    vector: list = [0.0]
    for _ in range(levels):
        vector = [vector, vector]
    return pickle.dumps({"anger": vector}, protocol=2)


def ndarray_call(strides: tuple[int, ...] = (0, 0, 0)) -> bytes:
    """numpy.ndarray((1000000, 20, 300), float32, 4-byte buffer, 0, strides): a view of 24 GB
    over 4 bytes, which `np.asarray(..., float32)` would then materialise."""
    shape = pickle.dumps((1_000_000, 20, 300), protocol=2)[2:-1]
    dtype = b"cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R"
    return (
        b"\x80\x02cnumpy\nndarray\n("
        + shape
        + dtype
        + b"C\x04\x00\x00\x80?K\x00"
        + pickle.dumps(strides, protocol=2)[2:-1]
        + b"tR."
    )


def frombuffer_mismatch() -> bytes:
    """numpy's protocol-5 `_frombuffer(buffer, dtype, shape, order)` declaring
    (1000000, 20, 300) over a 4-byte buffer."""
    return (
        b"\x80\x05cnumpy._core.numeric\n_frombuffer\n(C\x04\x00\x00\x80?"
        + b"cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R"
        + pickle.dumps((1_000_000, 20, 300), protocol=2)[2:-1]
        + b"X\x01\x00\x00\x00CtR."
    )


def late_deepening(lists: int = 1000) -> bytes:
    """`lists` empty lists, then list i appended to list i - 1 in increasing i: each is extended
    after it is inside another, which would hide the nesting depth from a scan."""
    data = b"\x80\x02" + b"".join(b"]r" + i.to_bytes(4, "little") for i in range(lists))
    for i in range(lists - 1):
        data += b"j" + i.to_bytes(4, "little") + b"j" + (i + 1).to_bytes(4, "little") + b"a0"
    return data + b"j\x00\x00\x00\x00."


PICKLES = {  # name -> (bytes, phrase of the refusal)
    "deep_tuple_key": (deep_tuple_key(), "nesting deeper than 100 levels"),
    "shared_doubling": (shared_doubling(), "would expand to more than"),
    "zero_strides": (ndarray_call(), "numpy.ndarray called directly"),
    "overlapping_strides": (ndarray_call((4, 4, 4)), "numpy.ndarray called directly"),
    "frombuffer_mismatch": (frombuffer_mismatch(), "_frombuffer of shape (1000000, 20, 300)"),
    "too_many_opcodes": (b"\x80\x02(" + b"\x88" * 600_000 + b"l.", "more than 500000 opcodes"),
    "memo_fan_out": (b"\x80\x02]q\x00(" + b"h\x00" * 100_001 + b"l.", "fetched more than 100000"),
    "huge_memo_index": (b"\x80\x02]r\xff\xff\xff\x7f.", "bad memo store 2147483647"),
    "object_dtype": (pickle.dumps(np.array([1, "a"], dtype=object)), "dtype 'O8' is not a plain"),
    "bytes_of_size": (
        b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x7f\x85R.",
        "bytes(2130706432,)",
    ),
    "build_on_global": (b"\x80\x02cnumpy\ndtype\n}b.", "BUILD on numpy.dtype"),
    "instance_opcode": (b"\x80\x02cnumpy\ndtype\n)\x81.", "opcode NEWOBJ is not allowed"),
    "late_deepening": (late_deepening(), "APPEND on a container already inside another"),
}


def test_hostile_pickles_are_refused_quickly_and_small(tmp_path):
    files = {}
    for name, (data, _) in PICKLES.items():
        files[name] = tmp_path / f"{name}.pkl"
        files[name].write_bytes(data)
    assert files["deep_tuple_key"].stat().st_size > 300_000
    assert files["shared_doubling"].stat().st_size < 700
    setup = "from memo.data.safe_pickle import safe_load as load"
    results, peak, _ = measure(setup, {name: str(path) for name, path in files.items()})
    assert_refused(results, {name: phrase for name, (_, phrase) in PICKLES.items()}, files)
    assert peak < MAX_MB


def test_arrays_must_own_exactly_their_data(tmp_path):
    """The check behind the unpickler: zero-stride and overlapping views are refused."""
    base = np.zeros(1, np.float32)
    view = np.lib.stride_tricks.as_strided(base, shape=(1_000_000, 20, 300), strides=(0, 0, 0))
    with pytest.raises(MemoError, match=r"f.pkl: refused an array of shape \(1000000, 20, 300\)"):
        check_arrays({"a": [view]}, "f.pkl")
    overlapping = np.lib.stride_tricks.as_strided(np.zeros(10), shape=(9, 2), strides=(8, 8))
    with pytest.raises(MemoError, match="standard strides"):
        check_arrays(overlapping, "f.pkl")
    check_arrays({"ok": [np.zeros((3, 4)), np.asfortranarray(np.zeros((3, 4)))]}, "f.pkl")


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_plain_arrays_still_load_under_every_protocol(tmp_path, protocol):
    value = {
        "c": np.arange(12.0).reshape(3, 4),
        "f": np.asfortranarray(np.ones((3, 4), np.float32)),
        "strided": np.arange(12).reshape(3, 4)[:, ::2],  # pickled as a copy
        "empty": np.zeros((0, 3)),
        "scalars": [np.float64(2.5), np.int64(3), True],
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    loaded = safe_load(path)
    for key in ("c", "f", "strided", "empty"):
        np.testing.assert_array_equal(loaded[key], value[key])
    assert loaded["scalars"] == [2.5, 3, True]


def test_iemocap_and_word_vector_loaders_refuse_hostile_pickles(tmp_path):
    folder = tmp_path / "iemocap"
    write_files(folder, iemocap_arrays(np.random.default_rng(0)))
    (folder / "iemocap_data.pkl").write_bytes(deep_tuple_key())
    with pytest.raises(MemoError, match="iemocap_data.pkl: refused before loading: nesting"):
        load_files_corpus(dataset_config("iemocap", folder), tmp_path / "cache")
    vectors = tmp_path / "glove.emotions.840B.300d.pt"
    vectors.write_bytes(shared_doubling())
    cfg = word_vector_config(vectors, tmp_path)  # the file must exist when the config is built
    with pytest.raises(MemoError, match="glove.emotions.840B.300d.pt: refused before loading"):
        read_word_vectors(cfg, ["anger"])
    # Small enough to pass the scan, but each vector element is a list: its size is checked
    # before conversion, so nothing of shape (4, 1000) is built.
    vectors.write_bytes(pickle.dumps({"anger": [[0.0] * 1000] * 4}, protocol=2))
    with pytest.raises(MemoError, match="the vector of 'anger' is not numeric"):
        read_word_vectors(cfg, ["anger"])
    vectors.write_bytes(pickle.dumps({"anger": [0.0] * 5}, protocol=2))
    with pytest.raises(MemoError, match=r"has shape \(5,\); expected \(4,\)"):
        read_word_vectors(cfg, ["anger"])


def word_vector_config(path: Path, tmp_path: Path) -> VectorFile:
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONFIG_DIR / "embeddings" / "file.yaml")
    cfg.path, cfg.dim, cfg.cache_dir, cfg.format = str(path), 4, str(tmp_path / "cache"), "auto"
    return build_component(cfg, "embeddings", VectorFile)


# --- checkpoints ----------------------------------------------------------------------------


def rewrite_checkpoint(source: Path, target: Path, pickle_bytes: bytes | None, method: int):
    """`source`'s archive written to `target` with data.pkl replaced and entries `method`."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", method) as new:
        for entry in old.infolist():
            data = old.read(entry)
            if pickle_bytes is not None and entry.filename.endswith("/data.pkl"):
                data = pickle_bytes
            new.writestr(entry.filename, data)


def test_hostile_checkpoints_are_refused_quickly_and_small(tmp_path):
    files = {name: tmp_path / f"{name}.pt" for name in ("deep", "compressed", "zero_strides")}
    plain = tmp_path / "plain.pt"
    save_checkpoint(plain, {"model": {"w": torch.zeros(4_000_000)}})
    deep = b"\x80\x02}X\x05\x00\x00\x00model}" + b")" + b"\x85" * 300_000 + b"K\x01s" + b"s."
    rewrite_checkpoint(plain, files["deep"], deep, zipfile.ZIP_STORED)
    rewrite_checkpoint(plain, files["compressed"], None, zipfile.ZIP_DEFLATED)
    assert files["compressed"].stat().st_size < plain.stat().st_size // 100
    save_checkpoint(files["zero_strides"], {"model": {"w": torch.zeros(1).expand(10**6, 20, 300)}})
    setup = "import torch\nfrom memo.training.checkpoints import load_checkpoint as load"
    results, _, growth = measure(setup, {name: str(path) for name, path in files.items()})
    expected = {
        "deep": "not a memo checkpoint (archive/data.pkl: refused before loading: nesting",
        "compressed": "is compressed",
        "zero_strides": "refused a tensor of shape (1000000, 20, 300) with strides (0, 0, 0)",
    }
    assert_refused(results, expected, files)
    assert growth < MAX_MB  # torch alone takes about 280 MB
    assert load_checkpoint(plain)["model"]["w"].shape == (4_000_000,)


# --- 2. HDF5 files are checked from their metadata -----------------------------------------


def hostile_h5(name: str, path: Path) -> None:
    """Write one hostile version of a MOSEI file (shape (12, 20, 5)) to `path`."""
    folder = path.parent
    with h5py.File(path, "w") as file:
        if name == "declares_millions":  # 1.4 KB declaring 2.5 M samples
            file.create_dataset(
                "d1", (2_500_000, 20, 5), "f8", chunks=(1000, 20, 5), compression="gzip"
            )
        elif name == "external_link":
            with h5py.File(folder / "elsewhere.h5", "w") as other:
                other["d1"] = np.zeros((12, 20, 5))
            file["d1"] = h5py.ExternalLink("elsewhere.h5", "/d1")
        elif name == "dangling_soft_link":
            file["d1"] = h5py.SoftLink("/nowhere")
        elif name == "external_raw_data":  # the dataset's bytes come from another file
            (folder / "raw.bin").write_bytes(bytes(12 * 20 * 5 * 8))
            file.create_dataset(
                "d1", (12, 20, 5), "f8", external=[(str(folder / "raw.bin"), 0, 12 * 20 * 5 * 8)]
            )
        elif name == "virtual":
            layout = h5py.VirtualLayout((12, 20, 5), "f8")
            layout[:] = h5py.VirtualSource(str(folder / "raw.h5"), "d1", shape=(12, 20, 5))
            file.create_virtual_dataset("d1", layout)
        elif name == "plugin_filter":  # zstd: reading it would load a filter plug-in
            file.create_dataset(
                "d1", data=np.zeros((12, 20, 5)), compression=32015, allow_unknown_filter=True
            )
        elif name == "chunk_bomb":  # 12 samples in one 80 MB gzip chunk of about 80 KB
            file.create_dataset(
                "d1",
                data=np.ones((12, 20, 5)),
                maxshape=(None, 20, 5),
                chunks=(100_000, 20, 5),
                compression="gzip",
            )
        elif name == "compound_dtype":
            file.create_dataset("d1", data=np.zeros((12, 20, 5), dtype=[("a", "f8")]))


H5_CASES = {
    "declares_millions": "declares shape (2500000, 20, 5) of float64 (2000000000 bytes) but "
    "stores 0 bytes; refused (limit: 50 x the stored size, or 64 MiB)",
    "external_link": "'d1' is an external link to elsewhere.h5:/d1",
    "dangling_soft_link": "'d1' is a soft link to /nowhere",
    "external_raw_data": "keeps its data in other files",
    "virtual": "keeps its data in other files",
    "plugin_filter": "uses HDF5 filters [32015], which are not built in",
    "chunk_bomb": "has chunks of shape (100000, 20, 5) (80000000 bytes), larger than the",
    "compound_dtype": "'d1' must be a numeric dataset",
}


def test_hostile_h5_files_are_refused_from_metadata(tmp_path):
    good = tmp_path / "good"
    write_files(good, mosei_arrays(np.random.default_rng(0)))
    folders, files = {}, {}
    for name in H5_CASES:
        folders[name] = tmp_path / name
        shutil.copytree(good, folders[name])
        files[name] = folders[name] / "audio_train.h5"
        hostile_h5(name, files[name])
    assert files["declares_millions"].stat().st_size < 2000
    setup = (
        "from data_fixtures import dataset_config\n"
        "from memo.data.files import load_files_corpus\n"
        "def load(folder):\n"
        f"    load_files_corpus(dataset_config('mosei', folder), {str(tmp_path / 'cache')!r})"
    )
    results, peak, _ = measure(setup, {name: str(path) for name, path in folders.items()})
    assert_refused(results, H5_CASES, files)
    assert peak < MAX_MB


def test_sample_counts_are_compared_before_any_data_is_read(tmp_path, monkeypatch):
    arrays = mosei_arrays(np.random.default_rng(0))
    arrays["video_test.h5"] = arrays["video_test.h5"][:5]
    write_files(tmp_path / "mosei", arrays)

    def no_reading(*args, **kwargs):
        raise AssertionError("data read before the counts were compared")

    monkeypatch.setattr(mosei_files, "clean_features", no_reading)
    with pytest.raises(MemoError, match=r"sample counts .* video_test.h5: 5"):
        load_files_corpus(dataset_config("mosei", tmp_path / "mosei"), tmp_path / "cache")


# --- 3. caches never serve a replaced file ---------------------------------------------------


def replace_keeping_size_and_mtime(path: Path, content: bytes) -> None:
    """What `cp -p`, `rsync -a`, `tar` and `touch -r` do: new bytes, same size and mtime."""
    stat = path.stat()
    assert len(content) == stat.st_size
    replacement = path.with_name(path.name + ".new")
    replacement.write_bytes(content)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size


def test_array_cache_misses_a_same_size_copy_with_the_same_mtime(tmp_path):
    rng = np.random.default_rng(0)
    first, second = mosei_arrays(rng), mosei_arrays(rng)
    write_files(tmp_path / "mosei", first)
    write_files(tmp_path / "other", second)
    cfg = dataset_config("mosei", tmp_path / "mosei")
    old = load_files_corpus(cfg, tmp_path / "cache").splits["train"].audio.copy()
    path = tmp_path / "mosei" / "audio_train.h5"
    replace_keeping_size_and_mtime(path, (tmp_path / "other" / "audio_train.h5").read_bytes())
    new = load_files_corpus(cfg, tmp_path / "cache").splits["train"].audio
    assert not np.array_equal(old, new)
    np.testing.assert_array_equal(new, validate.clean_features(second["audio_train.h5"], "x"))


def test_word_vector_cache_misses_a_same_size_copy_with_the_same_mtime(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0 0 0 0\nanger 1 2 3 4\n")
    cfg = word_vector_config(path, tmp_path)
    assert read_word_vectors(cfg, ["anger"])["anger"].tolist() == [1, 2, 3, 4]
    replace_keeping_size_and_mtime(path, b"the 0 0 0 0\nanger 4 3 2 1\n")
    assert read_word_vectors(cfg, ["anger"])["anger"].tolist() == [4, 3, 2, 1]


def test_built_in_corpus_cache_misses_a_changed_generator_file(tmp_path, monkeypatch):
    lexicon = tmp_path / "nrc_en.json"
    lexicon.write_text("{}")
    files = synthetic._generator_files()[:2] + [lexicon]
    monkeypatch.setattr(synthetic, "_generator_files", lambda: files)
    generated = []
    generate = synthetic._generate
    monkeypatch.setattr(synthetic, "_generate", lambda *a: generated.append(1) or generate(*a))
    cfg = dataset_config("iemocap", tmp_path, scale=0.02)
    synthetic.build_corpus(cfg, tmp_path / "cache")
    synthetic.build_corpus(cfg, tmp_path / "cache")
    assert len(generated) == 1
    replace_keeping_size_and_mtime(lexicon, b"[]")
    synthetic.build_corpus(cfg, tmp_path / "cache")
    assert len(generated) == 2


BUILDER = """
import json, logging, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from data_fixtures import dataset_config
from memo.data import mosei_files
from memo.data.files import load_files_corpus

warnings, builds = [], []


class Collect(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())


logging.getLogger().addHandler(Collect(logging.WARNING))
read = mosei_files.read_corpus
mosei_files.read_corpus = lambda dataset: builds.append(1) or read(dataset)
Path({ready!r}).touch()
while not Path({go!r}).exists():
    time.sleep(0.005)
corpus = load_files_corpus(dataset_config("mosei", {folder!r}), {cache!r})
print(json.dumps({{"builds": len(builds), "warnings": warnings, "n": len(corpus.splits["train"])}}))
"""


def test_six_concurrent_builders_of_one_entry_build_it_once_without_warnings(tmp_path):
    write_files(tmp_path / "mosei", mosei_arrays(np.random.default_rng(0)))
    go = tmp_path / "go"
    children = []
    for index in range(6):
        code = BUILDER.format(
            tests=str(TESTS),
            ready=str(tmp_path / f"ready{index}"),
            go=str(go),
            folder=str(tmp_path / "mosei"),
            cache=str(tmp_path / "cache"),
        )
        children.append(
            subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(6)):
        assert time.monotonic() < deadline and all(c.poll() is None for c in children)
        time.sleep(0.01)
    go.touch()  # all six start loading at once
    reports = [json.loads(child.communicate()[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sum(r["builds"] for r in reports) == 1
    assert [r["warnings"] for r in reports] == [[]] * 6
    assert {r["n"] for r in reports} == {SIZES["train"]}


def test_a_killed_writer_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    write_files(tmp_path / "mosei", mosei_arrays(np.random.default_rng(0)))
    cfg = dataset_config("mosei", tmp_path / "mosei")
    pid = os.fork()
    if pid == 0:  # the writer: killed by SIGKILL once its first split is on disk
        try:
            write_split = cache._write_split

            def die_midway(folder, split):
                write_split(folder, split)
                os.kill(os.getpid(), signal.SIGKILL)

            cache._write_split = die_midway
            load_files_corpus(cfg, tmp_path / "cache")
        finally:
            os._exit(1)
    assert os.waitpid(pid, 0)[1] == signal.SIGKILL
    root = tmp_path / "cache" / "files"
    assert [p.name for p in root.glob(".tmp-*")]  # what the killed writer left
    corpus = load_files_corpus(cfg, tmp_path / "cache")
    assert len(corpus.splits["train"]) == SIZES["train"]
    assert not list(root.glob(".tmp-*"))


def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    here = cache.temp_sibling(tmp_path / "entry").name.split("@")[1]
    names = {
        "dead": f".tmp-entry@{here}@{dead.pid}@0",
        "alive": f".tmp-entry@{here}@{os.getpid()}@0",
        "other_host_recent": ".tmp-entry@elsewhere@1@0",
        "other_host_old": ".tmp-entry@elsewhere@2@0",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
    day_ago = time.time() - cache.STALE_AFTER_S - 60
    os.utime(tmp_path / names["other_host_old"], (day_ago, day_ago))
    cache.remove_stale_temps(tmp_path)
    left = {path.name for path in tmp_path.iterdir()}
    assert left == {names["alive"], names["other_host_recent"]}


def test_word_vector_and_built_in_caches_remove_stale_temporaries(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0 0 0 0\nanger 1 2 3 4\n")
    stale = tmp_path / "cache" / "word_vectors" / ".tmp-x.npz@elsewhere@1@0"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    read_word_vectors(word_vector_config(path, tmp_path), ["anger"])
    assert not stale.exists()
    stale = tmp_path / "cache" / "synthetic" / ".tmp-x.npz@elsewhere@1@0"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    synthetic.build_corpus(dataset_config("iemocap", tmp_path, scale=0.02), tmp_path / "cache")
    assert not stale.exists()


# --- issue 12: IEMOCAP labels are one-hot, float32 overflow is reported --------------------


@pytest.mark.parametrize("pair", [[np.nan, np.nan], [1.0, 1.0], [0.0, 0.0], [0.5, 0.5]])
def test_iemocap_label_pairs_must_be_finite_one_hot(tmp_path, pair):
    contents = iemocap_arrays(np.random.default_rng(0))
    contents["iemocap_data.pkl"]["train"]["labels"][3, 2] = pair
    write_files(tmp_path / "iemocap", contents)
    with pytest.raises(MemoError) as error:
        load_files_corpus(dataset_config("iemocap", tmp_path / "iemocap"), tmp_path / "cache")
    message = str(error.value)
    assert "iemocap_data.pkl ['train']['labels']" in message
    assert "expected one-hot pairs [1, 0] or [0, 1], found 1 that are not" in message
    assert "sample 3, emotion 2" in message


def test_iemocap_extra_labels_must_be_finite_zero_or_one(tmp_path):
    contents = iemocap_arrays(np.random.default_rng(0))
    contents["y_valid.p"][4] = np.nan
    write_files(tmp_path / "iemocap", contents)
    with pytest.raises(MemoError, match=r"y_valid.p: expected labels of 0 or 1, found 11 other"):
        load_files_corpus(dataset_config("iemocap", tmp_path / "iemocap"), tmp_path / "cache")


@pytest.mark.parametrize("value", [1e39, -1e39])
def test_float64_values_beyond_float32_are_reported_not_zeroed(tmp_path, value):
    arrays = mosei_arrays(np.random.default_rng(0))
    arrays["video_valid.h5"][1, 4, 2] = value  # -inf itself (audio) is still zeroed
    write_files(tmp_path / "mosei", arrays)
    cfg = dataset_config("mosei", tmp_path / "mosei")
    with pytest.raises(MemoError) as error:
        load_files_corpus(cfg, tmp_path / "cache")
    assert "video_valid.h5 (valid vision): 0 NaN and 0 +inf values and 1 finite values " in (
        str(error.value)
    )
    cfg = dataset_config("mosei", tmp_path / "mosei", zero_nonfinite=True)
    assert load_files_corpus(cfg, tmp_path / "cache").splits["valid"].vision[1, 4, 2] == 0.0


def test_iemocap_float64_overflow_is_reported(tmp_path):
    contents = iemocap_arrays(np.random.default_rng(0))
    text = contents["iemocap_data.pkl"]["test"]["text"].astype(np.float64)
    text[0, 5, 1] = -1e300
    contents["iemocap_data.pkl"]["test"]["text"] = text
    write_files(tmp_path / "iemocap", contents)
    with pytest.raises(MemoError, match=r"\['test'\]\['text'\]: 0 NaN and 0 \+inf values and 1"):
        load_files_corpus(dataset_config("iemocap", tmp_path / "iemocap"), tmp_path / "cache")


def test_h5_features_are_converted_in_blocks(tmp_path, monkeypatch):
    """A float64 dataset is never held in full at float64: blocks of about BLOCK_BYTES."""
    monkeypatch.setattr(validate, "BLOCK_BYTES", 2 * 20 * 5 * 8)  # two samples per block
    arrays = mosei_arrays(np.random.default_rng(0))
    write_files(tmp_path / "mosei", arrays)
    corpus = load_files_corpus(dataset_config("mosei", tmp_path / "mosei"), tmp_path / "cache")
    expected = arrays["audio_train.h5"].astype(np.float32)
    expected[np.isneginf(expected)] = 0.0
    np.testing.assert_array_equal(corpus.splits["train"].audio, expected)
