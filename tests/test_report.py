"""memo.report on hand-made sweep directories: per-emotion tables with mean ± std over seeds, the
data source in every row and title, the Markdown / CSV / LaTeX formats, plots, damaged jobs."""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from memo.report import summarize
from memo.report.__main__ import main
from memo.report.jobs import BASIC_SWEEPER
from memo.sweep import SweepReport

EMOTIONS = ["anger", "fear", "sad"]
TASK = ["dataset.scale=0.03", "regime=zsl", "trainer.progress=false"]
# WA per emotion of each job: (target emotion, seed) -> anger, fear, sad.
WA = {
    ("fear", 0): (0.5, 0.7, 0.6),
    ("fear", 1): (0.6, 0.8, 0.6),
    ("sad", 0): (0.9, 0.4, 0.3),
    ("sad", 1): (0.7, 0.2, 0.5),
}


def metrics(target: str, seed: int, source: str = "synthetic") -> dict:
    """metrics.json of a zero-shot MOSEI-like job, as memo.experiment writes it."""
    test = {}
    for metric, shift in (("wa", 0.0), ("f1", -0.1), ("auc", 0.05)):
        values = dict(zip(EMOTIONS, (v + shift for v in WA[target, seed]), strict=True))
        seen = [v for e, v in values.items() if e != target]
        test |= {f"{metric}/{e}": v for e, v in values.items()}
        test[f"{metric}/avg"] = statistics.fmean(values.values())
        test[f"{metric}/avg_seen"] = statistics.fmean(seen)
        test[f"{metric}/target"] = values[target]
    test |= {"exact": 0.1 + seed / 10, "subset": 0.2, "intersect": 0.5}
    return {
        "status": "completed",
        "mode": "train",
        "dataset": "mosei",
        "data_source": source,
        "data_description": f"{source} mosei corpus",
        "model": "eea",
        "modalities": "tav",
        "regime": "zsl",
        "target_emotion": target,
        "seed": seed,
        "seen_emotions": [e for e in EMOTIONS if e != target],
        "test_emotions": EMOTIONS,
        "best_epoch": 1,
        "test": test,
        "config": {"seed": seed, "regime.emotion": target},  # as in .hydra/config.yaml
    }


def write_yaml(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def make_sweep(root: Path, jobs: dict[int, tuple[str, int]], source: str = "synthetic") -> Path:
    """A finished sweep `regime.emotion=fear,sad seed=0,1` with job number -> (emotion, seed)."""
    sweep = root / "sweep"
    sweeper = {"_target_": BASIC_SWEEPER, "params": None}
    task = [*TASK, "regime.emotion=fear,sad", "seed=0,1"]
    write_yaml(
        sweep / "multirun.yaml", {"hydra": {"sweeper": sweeper, "overrides": {"task": task}}}
    )
    for num, (emotion, seed) in jobs.items():
        job = sweep / str(num)
        overrides = [*TASK, f"regime.emotion={emotion}", f"seed={seed}"]
        hydra = {"mode": "MULTIRUN", "job": {"num": num}, "overrides": {"task": overrides}}
        write_yaml(job / ".hydra" / "hydra.yaml", {"hydra": hydra})
        write_yaml(job / ".hydra" / "config.yaml", {"seed": seed, "regime": {"emotion": emotion}})
        write_yaml(job / ".hydra" / "overrides.yaml", overrides)
        status = {"status": "completed", "job": num, "overrides": overrides}
        (job / "status.json").write_text(json.dumps(status))
        (job / "metrics.json").write_text(json.dumps(metrics(emotion, seed, source)))
    return sweep


ALL_JOBS = {0: ("fear", 0), 1: ("fear", 1), 2: ("sad", 0), 3: ("sad", 1)}


def report(capsys, *args: str) -> tuple[int, str, str]:
    """`python -m memo.report args` in process: (exit status, stdout, stderr)."""
    code = main([*args, "--no-plots"])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_per_emotion_tables_hold_mean_and_std_over_seeds_and_the_data_source(tmp_path, capsys):
    sweep = make_sweep(tmp_path, ALL_JOBS)
    code, markdown, _ = report(capsys, str(sweep))
    assert code == 0
    assert markdown == (sweep / "summary.md").read_text()
    assert markdown.startswith("# Sweep summary: mosei, synthetic data\n")

    # Emotions as columns, one row per configuration; fear row: anger 0.5, 0.6 -> 0.550 ± 0.071,
    # fear 0.7, 0.8 -> 0.750 ± 0.071, sad 0.6, 0.6 -> 0.600 ± 0.000.
    assert "## WA per emotion (mosei, synthetic data)" in markdown
    header = "| regime.emotion | data | n | anger | fear | sad | average | seen average | target |"
    assert header in markdown
    fear = (
        "| fear | synthetic | 2 | 0.550 ± 0.071 | 0.750 ± 0.071 | 0.600 ± 0.000 | 0.633 ± 0.047 |"
    )
    assert fear in markdown
    assert "## F1 per emotion (mosei, synthetic data)" in markdown
    assert "| fear | synthetic | 2 | 0.450 ± 0.071 |" in markdown
    assert "## AUC per emotion (mosei, synthetic data)" in markdown
    assert "## Whole-sample accuracy (mosei, synthetic data)" in markdown
    assert "| regime.emotion | data | n | exact | subset | intersect |" in markdown
    assert "| sad | synthetic | 2 | 0.150 ± 0.071 | 0.200 ± 0.000 | 0.500 ± 0.000 |" in markdown
    assert "| regime.emotion | data | n | seeds | wa/avg |" in markdown  # the averages table

    rows = {row["regime.emotion"]: row for row in read_csv((sweep / "summary.csv").read_text())}
    assert (rows["sad"]["data"], rows["sad"]["n"], rows["sad"]["seeds"]) == (
        "synthetic",
        "2",
        "0 1",
    )
    for emotion, column in (("sad", 0), ("sad", 1), ("fear", 2)):
        values = [WA[emotion, seed][column] for seed in (0, 1)]
        name = f"wa/{EMOTIONS[column]}"
        assert float(rows[emotion][f"{name} mean"]) == pytest.approx(statistics.fmean(values))
        assert float(rows[emotion][f"{name} std"]) == pytest.approx(statistics.stdev(values))
    assert float(rows["fear"]["exact mean"]) == pytest.approx(0.15)


def test_mixed_data_sources_are_separate_rows_and_named_in_titles(tmp_path, capsys):
    sweep = make_sweep(tmp_path, {0: ("fear", 0), 1: ("fear", 1)})
    (sweep / "1" / "metrics.json").write_text(json.dumps(metrics("fear", 1, "files")))
    code, markdown, _ = report(capsys, str(sweep))
    assert code == 0
    assert "## WA per emotion (mosei, mixed data: synthetic + files)" in markdown
    assert "| fear | synthetic | 1 | 0.500 | 0.700 | 0.600 |" in markdown
    assert "| fear | files | 1 | 0.600 | 0.800 | 0.600 |" in markdown


def test_latex_has_one_booktabs_table_per_markdown_table(tmp_path, capsys):
    sweep = make_sweep(tmp_path, ALL_JOBS)
    code, latex, _ = report(capsys, str(sweep), "--format", "latex")
    assert code == 0
    assert latex == (sweep / "summary.tex").read_text()
    markdown = (sweep / "summary.md").read_text()
    assert latex.count(r"\begin{table}") == markdown.count("\n## ") == 5
    assert latex.count(r"\end{tabular}") == latex.count(r"\bottomrule") == 5
    assert r"\caption{WA per emotion (mosei, synthetic data). Test metrics, mean $\pm$" in latex
    assert r"fear & synthetic & 2 & $0.550 \pm 0.071$ & $0.750 \pm 0.071$" in latex
    assert r"wa/avg\_seen" in latex  # special characters escaped
    # Every row has as many cells as its tabular has columns.
    for block in latex.split(r"\begin{tabular}{")[1:]:
        spec, body = block.split("}\n", 1)
        rows = [line for line in body.split(r"\end{tabular}")[0].splitlines() if "&" in line]
        assert len(rows) in (2, 3)  # header + fear + sad (whole-sample: header + 2 rows)
        assert all(line.endswith(r" \\") and line.count("&") == len(spec) - 1 for line in rows)


def test_csv_format_is_printed_and_plots_have_titles_and_chance_lines(tmp_path, capsys):
    sweep = make_sweep(tmp_path, ALL_JOBS)
    code, text, _ = report(capsys, str(sweep), "--format", "csv")
    assert code == 0 and text == (sweep / "summary.csv").read_text()

    import matplotlib

    matplotlib.use("Agg")
    from memo.report.plots import figure, plot_summary

    summary = summarize([sweep])
    assert [p.name for p in plot_summary(summary, tmp_path)] == [
        "plot_wa.png",
        "plot_f1.png",
        "plot_auc.png",
    ]
    for metric, chance in (("wa", True), ("f1", False), ("auc", True)):
        ax = figure(summary, metric, summary.per_emotion[metric]).axes[0]
        assert "(mosei, synthetic data)" in ax.get_title()
        level = [line for line in ax.get_lines() if list(line.get_ydata()) == [0.5, 0.5]]
        assert bool(level) == chance, metric


def damage(text: str | bytes, file: str = "metrics.json"):
    """A damage to job 1: `file` (relative to the job) replaced by `text`."""

    def apply(job: Path) -> None:
        data = text if isinstance(text, bytes) else text.encode()
        (job / file).write_bytes(data)

    return apply


def edit_metrics(**changes):
    """A damage to job 1: metrics.json with some keys changed (None: removed)."""

    def apply(job: Path) -> None:
        data = json.loads((job / "metrics.json").read_text())
        for key, value in changes.items():
            data[key] = value
            if value is None:
                del data[key]
        (job / "metrics.json").write_text(json.dumps(data))

    return apply


DAMAGES = {
    "empty": (damage(""), "metrics.json: empty"),
    "malformed": (damage('{"seed": 1,'), "metrics.json: not valid JSON (Expecting"),
    "bad utf-8": (damage(b'{"seed": "\xff"}'), "metrics.json: not UTF-8 text (byte 10"),
    "a list": (damage("[1, 2]"), "metrics.json: expected a JSON object, found list"),
    "no test": (edit_metrics(test=None), "metrics.json: no 'test'"),
    "no source": (edit_metrics(data_source=None), "metrics.json: no 'data_source'"),
    "seed text": (edit_metrics(seed="1"), "metrics.json: 'seed' is '1'; expected an integer"),
    "metric text": (
        edit_metrics(test={"wa/avg": "high"}),
        "metrics.json: 'test.wa/avg' is 'high'; expected a finite number or null",
    ),
    "metric NaN": (
        damage('{"test": {"wa/avg": NaN}}'),
        "metrics.json: 'test.wa/avg' is nan; expected a finite number or null",
    ),
    "emotions": (edit_metrics(test_emotions="fear"), "metrics.json: 'test_emotions' is 'fear'"),
    "no config": (edit_metrics(config=None), "metrics.json: no 'config'"),
    "not completed": (
        edit_metrics(status="running"),
        "metrics.json: 'status' is 'running'; expected 'completed' (memo writes no other)",
    ),
    # Hydra rewrote .hydra/ at a later start in the job's folder that memo then refused (a re-run
    # with other settings, a second process): the numbers are not the overrides' it now lists.
    "relabelled": (
        damage("seed: 5\nregime: {emotion: fear}\n", ".hydra/config.yaml"),
        "metrics.json holds the results of other settings than .hydra/config.yaml (seed: 1 -> 5, "
        "as metrics.json -> .hydra/config.yaml)",
    ),
    "config.yaml": (damage("[1", ".hydra/config.yaml"), ".hydra/config.yaml: not valid YAML"),
    "status.json": (damage("{", "status.json"), "status.json: not valid JSON"),
    "hydra.yaml": (damage("[1", ".hydra/hydra.yaml"), ".hydra/hydra.yaml: not valid YAML"),
    "hydra.yaml keys": (
        damage("hydra: {mode: MULTIRUN}", ".hydra/hydra.yaml"),
        ".hydra/hydra.yaml: no 'hydra.overrides.task'",
    ),
}


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_job_is_listed_with_the_reason_and_the_rest_summarised(kind, tmp_path, capsys):
    sweep = make_sweep(tmp_path, ALL_JOBS)
    apply, reason = DAMAGES[kind]
    apply(sweep / "1")
    code, markdown, err = report(capsys, str(sweep))
    assert code == 0
    assert "4 jobs: 3 completed, 1 damaged." in markdown
    listed = [line for line in markdown.splitlines() if line.startswith("- job 1 (")]
    assert len(listed) == 1 and f": damaged: {reason}" in listed[0], markdown
    assert listed[0].endswith("(`1`)")
    assert f"damaged: job 1: {reason}" in err and "Traceback" not in err
    assert "| fear | synthetic | 1 | 0.500 | 0.700 | 0.600 |" in markdown  # seed 0 alone
    assert "| sad | synthetic | 2 | 0.800 ± 0.141 |" in markdown
    manifest = read_csv((sweep / "manifest.csv").read_text())
    assert manifest[1]["status"] == "damaged" and manifest[1]["error"].startswith(reason)


def test_a_damaged_multirun_yaml_still_summarises_the_jobs(tmp_path, capsys):
    sweep = make_sweep(tmp_path, {0: ("fear", 0), 2: ("sad", 0)})
    (sweep / "multirun.yaml").write_text("hydra: [")
    code, markdown, _ = report(capsys, str(sweep))
    assert code == 0
    assert "2 jobs: 2 completed." in markdown  # jobs 1 and 3 (never started) cannot be known
    assert "| sad | synthetic | 1 | 0.900 | 0.400 | 0.300 |" in markdown


def test_the_end_of_sweep_report_lists_a_damaged_job(tmp_path, capsys):
    sweep = make_sweep(tmp_path, ALL_JOBS)
    (sweep / "2" / "metrics.json").write_text("")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    SweepReport(plots=False).on_multirun_end(config)  # no failed job: returns normally
    out, _ = capsys.readouterr()
    assert "- job 2 (`regime.emotion=sad seed=0`): damaged: metrics.json: empty (`2`)" in out
    assert out == (sweep / "summary.md").read_text()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("summary.md", "cannot write the report into {out}: it is a file, not a folder"),
        ("summary.md/report", "cannot write {out}/summary.md: Not a directory"),
    ],
)
def test_out_that_cannot_be_a_folder_is_one_line(where, message, tmp_path, capsys):
    sweep = make_sweep(tmp_path, ALL_JOBS)
    (tmp_path / "summary.md").write_text("a file")
    out = tmp_path / where
    code, stdout, err = report(capsys, str(sweep), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert err == f"error: {message.format(out=out)}\n"


def test_a_seed_reported_twice_counts_once(tmp_path, capsys):
    """The same sweep given twice (or a job folder copied into another sweep): each seed of a
    configuration counts once, so n and the standard deviation are not those of repeats."""
    sweep = make_sweep(tmp_path, ALL_JOBS)
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    code, markdown, err = report(capsys, str(sweep), str(copy), "--out", str(tmp_path / "out"))
    assert code == 0
    assert "8 jobs: 4 completed, 4 duplicate." in markdown
    assert f"duplicate: job 0 of {sweep.resolve()}: seed 0 of these settings" in err
    assert "incomplete" not in err  # every job has results; the repeats are only not counted
    assert "| fear | synthetic | 2 | 0, 1 | 0.633 ± 0.047 |" in markdown  # n: 2 seeds, not 4
    repeat = f"seed 0 of these settings is counted from {copy.resolve() / '0'}"
    assert f"- job 0 of {sweep.resolve()} (`regime.emotion=fear seed=0`): duplicate: {repeat}" in (
        markdown
    )


def test_settings_only_one_side_records_do_not_make_a_job_damaged(tmp_path, capsys):
    """A run made by another memo version: a setting it did not have yet, or a key now run-only,
    in metrics.json but not in .hydra/config.yaml (or the reverse) is not a relabelling."""
    sweep = make_sweep(tmp_path, ALL_JOBS)
    edit_metrics(config={"seed": 1, "regime.emotion": "fear", "logger.csv": True, "new.key": 2})(
        sweep / "1"
    )
    assert "4 jobs: 4 completed." in report(capsys, str(sweep))[1]


def test_a_job_folder_copied_into_another_number_is_not_that_jobs(tmp_path, capsys):
    """Job 0's folder copied to `4` (from this or another sweep): its hydra.yaml says job 0, so
    its results are not job 4's; listed as damaged, the real job 0 still counted."""
    sweep = make_sweep(tmp_path, ALL_JOBS)
    shutil.copytree(sweep / "0", sweep / "4")
    code, markdown, _ = report(capsys, str(sweep))
    assert code == 0 and "5 jobs: 4 completed, 1 damaged." in markdown
    assert "- job 4 (`regime.emotion=fear seed=0`): damaged: .hydra/hydra.yaml records job 0" in (
        markdown
    )
    assert "| fear | synthetic | 2 |" in markdown  # job 0 and job 1, not job 0 twice


def set_setting(job: Path, key: str, recorded: object, saved: object) -> None:
    """Record `key` (a top-level key here) in the job's metrics.json config and config.yaml."""
    config = json.loads((job / "metrics.json").read_text())["config"]
    edit_metrics(config={**config, key: recorded})(job)
    config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
    write_yaml(job / ".hydra" / "config.yaml", {**config, key: saved})


def test_jobs_of_one_row_made_with_other_defaults_are_not_averaged(tmp_path, capsys):
    """Two sweeps with the same overrides, one made before a default changed (epochs 12 -> 20):
    the same label, two experiments. A key set through a path interpolation may differ."""
    sweep = make_sweep(tmp_path, ALL_JOBS)
    set_setting(sweep / "0", "epochs", 12, 12)
    set_setting(sweep / "1", "epochs", 20, 20)
    for num, data_dir in ((2, "/a/data"), (3, "/b/data")):  # paths.* are run-only
        set_setting(sweep / str(num), "dir", f"{data_dir}/iemocap", "${paths.data_dir}/iemocap")
        set_setting(sweep / str(num), "paths", {"data_dir": data_dir}, {"data_dir": data_dir})
    code, markdown, err = report(capsys, str(sweep))
    assert code == 0 and "4 jobs: 3 completed, 1 mismatched." in markdown
    expected = f"the same overrides as {sweep.resolve() / '0'} but other settings (epochs: 12 -> 20"
    assert f"mismatched: job 1: {expected}" in err
    assert "| fear | synthetic | 1 |" in markdown and "| sad | synthetic | 2 |" in markdown


def test_a_file_or_missing_folder_to_report_on_says_which(tmp_path, capsys):
    """A file given as the sweep was reported as 'no such directory'."""
    (tmp_path / "summary.md").write_text("a file")
    for given, what in [("summary.md", "a file, not a directory"), ("gone", "no such directory")]:
        code, stdout, err = report(capsys, str(tmp_path / given), "--no-plots")
        assert (code, stdout) == (2, "")
        assert err == f"error: {tmp_path / given}: {what} (expected a sweep or run directory)\n"
