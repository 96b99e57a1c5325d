"""TensorBoard views read back from the event files: HParams columns (swept keys and key
settings, headline metrics first), no extra scalars, custom scalars, config text, PR-curve and
projector marking of the target emotion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cli, run_in_process
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import api_pb2, metadata

from memo.training.tensorboard import custom_layout

TINY = ["dataset.scale=0.03", "trainer.epochs=1", "trainer.progress=false"]
EMOTIONS = ("anger", "fear")  # the sweep's two zero-shot targets, job 0 and job 1
KEY_SETTINGS = {
    "dataset", "data_source", "model", "model.modalities", "regime", "regime.emotion", "seed",
    "trainer.lr", "trainer.epochs", "trainer.batch_size",
}  # fmt: skip
HEADLINE = ["valid/wa/avg", "test/wa/avg", "test/wa/avg_seen", "test/wa/target"]


def events(tb: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(tb), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def start_info(run: EventAccumulator) -> dict[str, object]:
    """The hparams the run recorded (its session start info), by name."""
    content = run.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
    hparams = metadata.parse_session_start_info_plugin_data(content).hparams
    return {name: value.string_value or value.number_value for name, value in hparams.items()}


def experiment(run: EventAccumulator) -> api_pb2.Experiment:
    content = run.PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG]
    return metadata.parse_experiment_plugin_data(content)


def text(run: EventAccumulator, tag: str) -> str:
    return run.Tensors(tag)[0].tensor_proto.string_val[0].decode()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> list[EventAccumulator]:
    """A 2-job zero-shot sweep over the target emotion; each job's TensorBoard events."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    run_cli(["-m", "regime=zsl", "regime.emotion=anger,fear", *TINY], tmp_path)
    (folder,) = (tmp_path / "multirun").glob("*/*")
    return [events(folder / str(job) / "tb") for job in range(len(EMOTIONS))]


@pytest.mark.slow
def test_hparams_are_the_swept_keys_and_the_key_settings(sweep):
    for run, emotion in zip(sweep, EMOTIONS, strict=True):
        hparams = start_info(run)
        assert set(hparams) == KEY_SETTINGS | {"dataset.scale"}  # trainer.progress is run-only
        assert hparams["regime.emotion"] == emotion and hparams["regime"] == "zsl"
        assert hparams["dataset.scale"] == pytest.approx(0.03)
        assert (hparams["trainer.epochs"], hparams["dataset"], hparams["model"]) == (
            1,
            "mosei",
            "eea",
        )
        assert hparams["data_source"] == "synthetic"


@pytest.mark.slow
def test_swept_keys_are_ticked_and_headline_metrics_come_first(sweep):
    for run in sweep:
        shown = experiment(run)
        differs = {info.name for info in shown.hparam_infos if info.differs}
        assert differs == {"dataset.scale", "regime", "regime.emotion", "trainer.epochs"}
        assert {info.name for info in shown.hparam_infos} == KEY_SETTINGS | {"dataset.scale"}
        tags = [info.name.tag for info in shown.metric_infos]
        assert tags[:4] == HEADLINE
        assert {"test/f1/avg", "test/auc/target", "test/wa/anger", "test/exact"} <= set(tags)
        # The metrics are the run's own scalars: no extra one-point `hparam/*` charts.
        scalars = set(run.Tags()["scalars"])
        assert set(HEADLINE) <= scalars
        assert not [tag for tag in scalars if tag.startswith("hparam/")]


@pytest.mark.slow
def test_custom_scalars_config_text_pr_curves_and_projector(sweep):
    for job, (run, emotion) in enumerate(zip(sweep, EMOTIONS, strict=True)):
        layout = layout_pb2.Layout.FromString(
            run.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
        )
        charts = {c.title: c for category in layout.category for c in category.chart}
        assert [c.title for c in layout.category] == ["loss", "wa", "f1", "auc", "whole-sample"]
        loss = charts["train and valid loss"].multiline.tag[0]
        assert re.match(loss, "train/loss") and re.match(loss, "valid/loss")

        config = text(run, "config/text_summary")
        assert config.startswith("```yaml\n") and f"emotion: {emotion}" in config

        pr = set(run.Tags()["tensors"])
        other = EMOTIONS[1 - job]
        assert {f"test/pr/{emotion} (unseen target)", f"test/pr/{other}"} <= pr
        assert f"test/pr/{emotion}" not in pr

    tb = Path(sweep[0].path)
    (labels,) = tb.glob("*/emotions_t/metadata.tsv")
    rows = labels.read_text().splitlines()
    assert rows[0] == "emotion\trole" and "anger\tunseen target" in rows and "fear\tseen" in rows


def test_few_shot_target_is_marked_in_process(tmp_path):
    run_in_process(tmp_path, ["regime=fsl", "regime.emotion=fear", *TINY])
    run = events(tmp_path / "run" / "tb")
    assert "test/pr/fear (few-shot target)" in run.Tags()["tensors"]
    hparams = start_info(run)
    assert set(hparams) == KEY_SETTINGS and hparams["regime.emotion"] == "fear"
    assert not [info for info in experiment(run).hparam_infos if info.differs]  # no command line


def test_custom_layout_groups_every_emotion_of_a_metric():
    tags = ["train/loss", "valid/loss", "train/lr", "valid/acc/happy", "valid/acc/avg"]
    tags += ["train/acc/happy", "valid/f1/sad"]
    layout = custom_layout(tags)
    assert list(layout) == ["loss", "acc", "f1"]  # IEMOCAP: no whole-sample accuracies
    (pattern,) = layout["acc"]["valid acc, every emotion"][1]
    assert [tag for tag in tags if re.match(pattern, tag)] == ["valid/acc/happy", "valid/acc/avg"]
