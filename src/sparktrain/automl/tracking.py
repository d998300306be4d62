"""MLflow tracking of an AutoML run: one parent run, a child run per trial.

The store is SQLite by default (``sqlite:///<cwd>/mlflow.db``), so
``mlflow ui --backend-store-uri sqlite:///mlflow.db`` opens on it. Every
call runs on one background thread, in order: creating a new store takes
seconds, and the search should not wait for it or for any logging. When a
run ends with logging still queued (a slow store), the run returns on time
and the logging goes on; :func:`flush` waits for it, and so does Python's
exit.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparktrain._extras import require

logger = logging.getLogger(__name__)

#: Logging threads whose run has returned but whose queue is not yet empty.
_unfinished: set[threading.Thread] = set()


def flush(timeout: float | None = None) -> None:
    """Wait until every run's MLflow logging has reached the store."""
    for worker in list(_unfinished):
        worker.join(timeout)
        if not worker.is_alive():
            _unfinished.discard(worker)


atexit.register(flush)


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite file in the working folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{Path('mlflow.db').resolve()}"
    )


class Tracker:
    """Logs a run to MLflow; every method is a no-op when tracking is off."""

    def __init__(self, uri: str | None, experiment: str, *, enabled: bool) -> None:
        self.enabled = enabled
        self.uri = uri or default_uri()
        self.experiment = experiment
        self.run_id: str | None = None
        self._client = None
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(
        self,
        run_id: str | None,
        name: str,
        params: dict[str, Any],
        on_open: Callable[[str], None] = lambda run_id: None,
    ) -> None:
        """Open the parent run (or reopen ``run_id`` when resuming) in the
        background, then call ``on_open`` with its id."""
        if not self.enabled:
            return
        require("mlflow", extra="automl", purpose="AutoML tracking")
        self._worker = threading.Thread(target=self._work, name="mlflow", daemon=True)
        self._worker.start()
        self._queue.put(lambda: on_open(self._open(run_id, name, params)))

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                job()
            except Exception as exc:  # tracking must not break the search
                self._error = exc
                logger.warning("MLflow tracking stopped: %s", exc)

    def _open(self, run_id: str | None, name: str, params: dict[str, Any]) -> str:
        import mlflow

        self._client = mlflow.MlflowClient(tracking_uri=self.uri)
        if run_id:
            self._client.update_run(run_id, status="RUNNING")
            self.run_id = run_id
            return run_id
        experiment = self._client.get_experiment_by_name(self.experiment)
        if experiment is None:
            experiment_id = self._client.create_experiment(
                self.experiment, artifact_location=self._artifact_root()
            )
        else:
            experiment_id = experiment.experiment_id
        self.run_id = self._client.create_run(experiment_id, run_name=name).info.run_id
        self._log(self.run_id, params=params)
        logger.info(
            "MLflow run %s in experiment %r (%s)",
            self.run_id,
            self.experiment,
            self.uri,
        )
        return self.run_id

    def _artifact_root(self) -> str | None:
        if self.uri.startswith("sqlite:///"):
            folder = Path(self.uri[len("sqlite:///") :]).parent / "mlartifacts"
            return folder.as_uri()
        return None

    def trial(self, record: dict[str, Any]) -> None:
        """A child run for one finished, pruned, failed or skipped trial."""
        if self.enabled:
            self._queue.put(lambda: self._trial(record))

    def _trial(self, record: dict[str, Any]) -> None:
        experiment_id = self._client.get_run(self.run_id).info.experiment_id
        run = self._client.create_run(
            experiment_id,
            run_name=f"trial-{record['number']}",
            tags={"mlflow.parentRunId": self.run_id, "state": record["state"]},
        )
        params = {"learner": record["learner"], "scaler": record["scaler"]}
        params.update({f"param.{k}": v for k, v in record["params"].items()})
        if record["reason"]:
            params["reason"] = record["reason"]
        metrics = {"fit_seconds": record["seconds"], "share": record["share"]}
        if record.get("score") is not None:
            metrics["validation_score"] = record["score"]
        self._log(run.info.run_id, params=params, metrics=metrics)
        status = "FAILED" if record["state"] == "failed" else "FINISHED"
        self._client.set_terminated(run.info.run_id, status=status)

    def finish(
        self,
        metrics: dict[str, float],
        artifacts: dict[str, Any],
        wait: float | None = None,
    ) -> None:
        """Log the run's results and artifacts and close it; wait up to
        ``wait`` seconds for the logging to end, then let it go on."""
        if self.enabled:
            self._queue.put(lambda: self._finish(metrics, artifacts))
            self._close(wait)

    def _finish(self, metrics: dict[str, float], artifacts: dict[str, Any]) -> None:
        self._log(self.run_id, metrics=metrics)
        with tempfile.TemporaryDirectory() as folder:
            for name, content in artifacts.items():
                path = Path(folder) / name
                path.write_text(json.dumps(content, indent=2, default=str))
                self._client.log_artifact(self.run_id, str(path))
        self._client.set_terminated(self.run_id, status="FINISHED")

    def fail(self) -> None:
        """Mark the run failed (the search raised)."""
        if self.enabled and self._worker is not None:
            self._queue.put(
                lambda: (
                    self.run_id
                    and self._client.set_terminated(self.run_id, status="FAILED")
                )
            )
            self._close()

    def _close(self, wait: float | None = None) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(wait)
            if self._worker.is_alive():
                logger.warning(
                    "MLflow logging goes on in the background (%d call(s) queued)",
                    self._queue.qsize(),
                )
                _unfinished.add(self._worker)
            self._worker = None

    def _log(self, run_id: str, *, params=None, metrics=None) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        self._client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)[:500]) for k, v in (params or {}).items()],
        )


def log_model(uri: str, run_id: str, folder: Path) -> None:
    """Attach a saved model folder to a finished run as its ``model`` artifact."""
    mlflow = require("mlflow", extra="automl", purpose="AutoML tracking")
    mlflow.MlflowClient(tracking_uri=uri).log_artifacts(run_id, str(folder), "model")
