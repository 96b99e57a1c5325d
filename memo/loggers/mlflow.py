"""MLflow: a run per memo run in a local SQLite store (default) or a tracking server."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from memo.errors import MemoError
from memo.io import write_json
from memo.loggers.base import RunLogger, opening

RUN_ID_FILE = "mlflow_run.json"
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length


def _client(tracking_uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MemoError(
            "logger=mlflow needs MLflow: pip install -e '.[mlflow]' (mlflow-skinny and SQLite "
            "support)"
        ) from None
    return MlflowClient(tracking_uri)


class MLflowLogger(RunLogger):
    """Scalars per epoch, the composed config as parameters, tags, final test metrics.

    A restarted run deletes the MLflow run its earlier attempt created (its id is kept in
    `<run dir>/mlflow_run.json`) and logs into a new one from the replayed history.
    """

    def __init__(
        self,
        settings: DictConfig,
        run_dir: Path,
        output_dir: str,
        config: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> None:
        uri = settings.tracking_uri or f"sqlite:///{(Path(output_dir) / 'mlflow.db').resolve()}"
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        with opening(f"logger.mlflow.tracking_uri={uri}"):
            self.client = _client(uri)
            self._drop_earlier_attempt()
            name = str(settings.experiment)
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = (
                experiment.experiment_id if experiment else self.client.create_experiment(name)
            )
            run = self.client.create_run(experiment_id, run_name=run_dir.name, tags=dict(tags))
        self.run_id = run.info.run_id
        write_json(run_dir / RUN_ID_FILE, {"tracking_uri": uri, "run_id": self.run_id})
        from mlflow.entities import Param

        params = [Param(k, json.dumps(v)[:MAX_PARAM]) for k, v in sorted(config.items())]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def _drop_earlier_attempt(self) -> None:
        path = self.run_dir / RUN_ID_FILE
        if path.is_file():
            earlier = json.loads(path.read_text())["run_id"]
            from mlflow.exceptions import MlflowException

            with contextlib.suppress(MlflowException):  # already gone: nothing to remove
                self.client.delete_run(earlier)

    def log(self, tagged: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        metrics = [
            Metric(tag, float(value), 0, step)
            for tag, value in tagged.items()
            if value is not None and math.isfinite(value)
        ]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def hparams(self, hparams: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        self.client.set_tag(self.run_id, "memo.status", "completed")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
