"""Running one trial: fit a configuration on each fold, score the held-out rows.

A trial runs as a one-task Spark job, so several run at once on the
executors (or the cores of an embedded session). The training set goes to
the executors once, as a broadcast, however many trials follow. Every job
carries its own job group, so a trial that overruns its allowance is
stopped by cancelling the group.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparktrain.automl import space
from sparktrain.automl.validation import Plan, score, subsample
from sparktrain.errors import SparktrainError

logger = logging.getLogger(__name__)

_groups = itertools.count()


class TrialStopped(SparktrainError):
    """A trial ran past its allowance and was cancelled."""


@dataclass
class Payload:
    """What each executor holds for a run: the table, the label, the folds."""

    X: Any
    y: np.ndarray
    weight: np.ndarray | None
    plan: Plan
    task: str
    num_classes: int
    metric: str
    seed: int


@dataclass
class Evaluation:
    """One configuration measured at one data share."""

    score: float
    seconds: float
    predictions: np.ndarray | None  # out-of-fold, rows in ``plan.validated`` order


def evaluate(payload: Payload, config: dict, share: float, threads: int) -> Evaluation:
    """Fit ``config`` on ``share`` of every fold's training rows; score it.

    Runs wherever it is called: in a Spark task or on the driver.
    """
    started = time.perf_counter()
    predictions = []
    for train, valid in payload.plan.folds:
        rows = subsample(train, share, payload.y, payload.task, payload.seed)
        with _quiet():
            estimator = fit_estimator(payload, config, rows, threads)
        predictions.append(predict(estimator, payload.X[valid], payload))
    stacked = np.concatenate(predictions)
    value = score(payload.metric, payload.y[payload.plan.validated], stacked)
    return Evaluation(
        score=value,
        seconds=time.perf_counter() - started,
        predictions=stacked.astype(np.float32) if share >= 1.0 else None,
    )


def refit(payload: Payload, config: dict, threads: int) -> tuple[Any, float]:
    """``config`` fitted on every row; returns it and the seconds it took."""
    started = time.perf_counter()
    with _quiet():
        estimator = fit_estimator(payload, config, np.arange(len(payload.y)), threads)
    return estimator, time.perf_counter() - started


@contextlib.contextmanager
def _quiet():
    """Silence convergence warnings: a trial that stops early is still scored."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def fit_estimator(payload: Payload, config: dict, rows: np.ndarray, threads: int):
    estimator = space.build_estimator(
        config, payload.task, threads=threads, seed=payload.seed
    )
    y = payload.y[rows]
    if payload.task == "classification":
        # A small sample may miss a class; libraries want labels 0..k-1.
        present, y = np.unique(y, return_inverse=True)
        estimator.present_classes_ = present
    weight = None if payload.weight is None else payload.weight[rows]
    if weight is None:
        estimator.fit(payload.X[rows], y)
    else:
        estimator.fit(payload.X[rows], y, model__sample_weight=weight)
    return estimator


def predict(estimator, X, payload: Payload) -> np.ndarray:
    """Values, or probabilities over every class of the run."""
    if payload.task == "regression":
        return np.asarray(estimator.predict(X), dtype=float)
    full = np.zeros((X.shape[0], payload.num_classes))
    full[:, estimator.present_classes_.astype(int)] = estimator.predict_proba(X)
    return full


def warm_up(spark) -> None:
    """Start the executors' Python workers and import the learners' libraries
    in them, in the background, while the driver featurizes the table.

    Skipped where the workers would share two cores or fewer with the driver:
    there the imports slow featurizing by more than they save (on 2 cores a
    400-row table took 17 s to featurize with them and 12 s without).
    """
    from sparktrain.libraries._base import spark_context

    context = spark_context(spark)
    if context is None or not _workers_have_room(context.master):
        return
    slots = context.defaultParallelism

    def job() -> None:
        context.setJobGroup("sparktrain-warm-up", "AutoML: import learners", True)
        try:
            context.parallelize(range(slots), slots).foreach(_import_learners)
        except Exception as exc:  # only an optimisation: trials import on demand
            logger.debug("warming the Python workers failed: %s", exc)

    threading.Thread(target=job, name="warm-up", daemon=True).start()


def _workers_have_room(master: str) -> bool:
    return not master.startswith("local") or (os.cpu_count() or 1) > 2


def _import_learners(_) -> None:
    import importlib.util

    import sklearn.ensemble
    import sklearn.linear_model  # noqa: F401

    for module in ("lightgbm", "xgboost"):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


class Runner:
    """Evaluates configurations as Spark tasks (or on the driver on Spark
    Connect, where no SparkContext is at hand)."""

    def __init__(self, spark, payload: Payload) -> None:
        from sparktrain.libraries._base import spark_context

        self.payload = payload
        self.context = spark_context(spark)
        self._shared = None
        if self.context is not None:
            self._shared = self.context.broadcast(payload)
            self.threads = int(self.context.getConf().get("spark.task.cpus", "1"))
            self.slots = max(1, self.context.defaultParallelism // self.threads)
        else:
            self.threads, self.slots = 0, 1

    @property
    def where(self) -> dict[str, str]:
        if self.context is None:
            return {
                "mode": "driver",
                "reason": "Spark Connect has no SparkContext for trial tasks",
            }
        return {
            "mode": "trial-parallel",
            "reason": (
                f"the featurized table fits one worker: {self.slots} trial(s) at "
                "a time, one Spark task each, the table broadcast once"
            ),
        }

    def evaluate(self, config: dict, share: float, allowance: float) -> Evaluation:
        """Measure ``config``; raise :class:`TrialStopped` past ``allowance`` s."""
        threads = self.threads
        return self._task(
            lambda payload: evaluate(payload, config, share, threads),
            f"AutoML trial {config['learner']}",
            allowance,
        )

    def refit(self, configs: list[dict]) -> list[tuple[Any, float]]:
        """Each configuration fitted on every row, one Spark task each, at once.

        Never cancelled: the run needs a model, and the scheduler kept time
        for this from the configurations' measured costs.
        """
        threads = self.threads
        with ThreadPoolExecutor(max(1, len(configs))) as pool:
            jobs = [
                pool.submit(
                    self._task,
                    lambda payload, c=c: refit(payload, c, threads),
                    f"AutoML refit {c['learner']}",
                    None,
                )
                for c in configs
            ]
            return [job.result() for job in jobs]

    def _task(self, work, description: str, allowance: float | None):
        """``work(payload)`` as a one-task Spark job, cancelled past ``allowance``
        seconds (never when it is None)."""
        if self.context is None:
            return work(self.payload)
        group = f"sparktrain-trial-{next(_groups)}"
        shared = self._shared
        self.context.setJobGroup(group, description, True)
        if allowance is None:
            return self._collect(shared, work)
        fired = threading.Event()

        def cancel() -> None:
            fired.set()
            self.context.cancelJobGroup(group)

        timer = threading.Timer(allowance, cancel)
        timer.daemon = True
        timer.start()
        try:
            return self._collect(shared, work)
        except Exception as exc:
            if fired.is_set():
                raise TrialStopped(
                    f"stopped after its allowance of {allowance:.1f} s"
                ) from exc
            raise
        finally:
            timer.cancel()

    def _collect(self, shared, work):
        return (
            self.context.parallelize([0], 1)
            .map(lambda _: work(shared.value))
            .collect()[0]
        )

    def close(self) -> None:
        if self._shared is not None:
            self._shared.unpersist()
