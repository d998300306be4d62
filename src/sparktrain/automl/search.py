"""The budgeted search: Optuna proposes, Spark tasks measure, the clock decides.

Trials run ``parallelism`` at a time. Each climbs the successive-halving
rungs of the run's plan (a third of the rows, then all of them, ...) and
Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner` stops it at a rung
where it trails the others. Before a trial starts, its cost is estimated
from the trials already measured; one that cannot finish before the search
deadline is not started, and one that overruns its allowance is cancelled.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparktrain.automl import space
from sparktrain.automl.runner import Runner, TrialStopped
from sparktrain.automl.validation import REDUCTION, Plan

logger = logging.getLogger(__name__)

#: Time kept back for the final refit and for building the model, beyond
#: the refit's own estimate.
FINISH_SECONDS = 2.0
MAX_SKIPS = 8
MIN_ALLOWANCE = 5.0
_REASON_CHARS = 300


class Clock:
    """Seconds since the run started, against its budget."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.started = time.monotonic()
        #: Seconds into the run at which each named step ended.
        self.marks: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def mark(self, step: str) -> None:
        self.marks[step] = round(self.elapsed(), 3)

    def remaining(self) -> float:
        return self.budget - self.elapsed()


@dataclass
class TrialRecord:
    """One trial as the leaderboard and the tracker see it."""

    number: int
    learner: str
    scaler: str
    params: dict[str, Any]
    state: str  # complete, pruned, failed, skipped
    score: float | None = None
    share: float = 0.0  # the largest share of training rows it was fitted on
    seconds: float = 0.0
    reason: str = ""

    target: str = "none"

    @classmethod
    def of(cls, number: int, config: dict, state: str, **fields) -> TrialRecord:
        return cls(
            number,
            config["learner"],
            config["scaler"],
            config["params"],
            state,
            target=config.get("target", "none"),
            **fields,
        )

    @property
    def config(self) -> dict[str, Any]:
        return {
            "learner": self.learner,
            "scaler": self.scaler,
            "target": self.target,
            "params": self.params,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Costs:
    """Measured seconds per unit of work, per learner."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    @staticmethod
    def _work(config: dict, share: float) -> float:
        return share * config["params"].get("n_estimators", 100) / 100

    def add(self, config: dict, share: float, seconds: float) -> None:
        self.samples[config["learner"]].append(seconds / self._work(config, share))

    def measured(self, learner: str) -> bool:
        """Whether ``learner`` has costs of its own (else they are guessed
        from the other learners' and its relative cost)."""
        return bool(self.samples.get(learner))

    def estimate(self, config: dict, share: float) -> float | None:
        """Seconds to evaluate ``config`` at ``share``; None before any data."""
        measured = self.samples.get(config["learner"])
        if measured:
            return statistics.median(measured) * self._work(config, share)
        others = [
            statistics.median(v) / space.CANDIDATES[name].cost
            for name, v in self.samples.items()
            if v
        ]
        if not others:
            return None
        unit = statistics.median(others) * space.CANDIDATES[config["learner"]].cost
        return unit * self._work(config, share)


class Search:
    """Runs trials until the budget, ``maxTrials`` or the space runs out."""

    def __init__(
        self,
        study,
        runner: Runner,
        *,
        task: str,
        names: list[str],
        sparse: bool,
        targets: tuple[str, ...] = ("none",),
        plan: Plan,
        clock: Clock,
        max_trials: int | None,
        parallelism: int,
        predictions_dir: Path,
        on_trial: Callable[[TrialRecord, dict], None] | None = None,
    ) -> None:
        self.study = study
        self.runner = runner
        self.task = task
        self.names = names
        self.sparse = sparse
        self.targets = targets
        self.plan = plan
        self.clock = clock
        self.max_trials = max_trials
        self.parallelism = max(1, parallelism)
        self.predictions_dir = predictions_dir
        self.on_trial = on_trial
        self.costs = Costs()
        self.records: list[TrialRecord] = []
        self.predictions: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self._skips = 0
        #: the largest start-up cost seen around a trial's own work (a new
        #: Python worker importing the libraries and reading the broadcast);
        #: cancelled trials take their workers with them, so the refit may
        #: pay it again
        self.task_overhead = 0.0
        #: seconds into the run when the search began (preparation before it)
        self.started_after = clock.elapsed()
        self._restore()

    # -- resume ---------------------------------------------------------------

    def _restore(self) -> None:
        """Take in the trials of an earlier, interrupted run of this study."""
        from optuna.trial import TrialState

        for frozen in self.study.get_trials(deepcopy=False):
            if frozen.state == TrialState.RUNNING:
                self.study._storage.set_trial_user_attr(
                    frozen._trial_id, "reason", "interrupted: the run stopped"
                )
                self.study._storage.set_trial_state_values(
                    frozen._trial_id, TrialState.FAIL
                )
                continue
            if frozen.state == TrialState.WAITING or "config" not in frozen.user_attrs:
                continue
            record = _record_from(frozen)
            self.records.append(record)
            if record.state == "complete":
                self.costs.add(record.config, 1.0, max(record.seconds, 1e-3))
                stored = self.predictions_dir / f"{record.number}.npy"
                if stored.is_file():
                    self.predictions[record.number] = np.load(stored)
        if self.records:
            logger.info(
                "resumed %d finished trial(s) from the study", len(self.records)
            )

    # -- the loop -------------------------------------------------------------

    def run(self) -> list[TrialRecord]:
        running: dict[Future, Any] = {}
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="trial") as pool:
            while True:
                while len(running) < self.parallelism and self._may_start(len(running)):
                    started = self._start(pool)
                    if started is not None:
                        running[started[0]] = started[1]
                if not running:
                    break
                done, _ = wait(list(running), timeout=0.25, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(running.pop(future), future)
        return self.records

    def search_remaining(self) -> float:
        return self.clock.remaining() - self.reserve()

    def reserve(self) -> float:
        """Seconds kept for refitting the best configuration on every row."""
        best = self.best()
        return self.finish_seconds([] if best is None else [best.config])

    def finish_seconds(self, configs: list[dict]) -> float:
        """Seconds to refit ``configs`` on every row (as many at once as there
        are trial slots) and to build and record the model."""
        fits = [self.refit_estimate(config) for config in configs] or [0.0]
        wall = max(max(fits), sum(fits) / self.parallelism)
        return FINISH_SECONDS + self.task_overhead + 1.5 * wall

    def refit_estimate(self, config: dict) -> float:
        per_fold = (self.costs.estimate(config, 1.0) or 0.0) / len(self.plan.folds)
        return per_fold * 1.3

    def best(self) -> TrialRecord | None:
        done = [r for r in self.records if r.state == "complete"]
        if not done:
            return None
        sign = -1 if _maximize(self.study) else 1
        return min(done, key=lambda r: sign * r.score)

    def _may_start(self, running: int) -> bool:
        finished = sum(r.state != "skipped" for r in self.records)
        if self.max_trials is not None and finished + running >= self.max_trials:
            return False
        if self._skips >= MAX_SKIPS:
            return False
        return self.search_remaining() > 0.5

    def _start(self, pool: ThreadPoolExecutor):
        with self._lock:
            trial = self.study.ask()
            # An enqueued default gets its fixed values from suggest too, so
            # the sampler learns from it; its exact configuration wins.
            config = space.suggest(
                trial, self.task, self.names, self.sparse, self.targets
            )
            config = trial.user_attrs.get("default") or config
            trial.set_user_attr("config", config)
        first = self.costs.estimate(config, self.plan.rungs[0])
        if first is not None and first > self.search_remaining():
            self._skips += 1
            self._tell(
                trial,
                TrialRecord.of(
                    trial.number,
                    config,
                    "skipped",
                    reason=f"needs about {first:.1f} s; "
                    f"{max(0.0, self.search_remaining()):.1f} s were left",
                ),
            )
            return None
        self._skips = 0
        logger.info("trial %d started: %s", trial.number, _describe(config))
        return pool.submit(self._run_trial, trial, config), (trial, config)

    def _run_trial(self, trial, config: dict) -> tuple[str, float, float, float, Any]:
        """Climb the rungs; returns (state, score, share, seconds, predictions)."""
        seconds = 0.0
        for rung, share in enumerate(self.plan.rungs):
            allowance = self._allowance(config, share)
            if allowance <= 0:
                raise TrialStopped("the search deadline had passed")
            # cut by its estimate rather than by the deadline
            estimated = allowance < self.search_remaining()
            started = time.monotonic()
            try:
                result = self.runner.evaluate(config, share, allowance)
            except TrialStopped:
                if estimated:
                    # It needs at least its allowance: the learner's next
                    # trials are given more, instead of all being stopped.
                    self.costs.add(config, share, allowance)
                raise
            overhead = time.monotonic() - started - result.seconds
            self.task_overhead = max(self.task_overhead, overhead)
            seconds += result.seconds
            self.costs.add(config, share, result.seconds)
            if not math.isfinite(result.score):
                raise ValueError(f"the validation score is {result.score}")
            if rung == len(self.plan.rungs) - 1:
                return "complete", result.score, share, seconds, result.predictions
            with self._lock:
                trial.report(result.score, step=REDUCTION**rung)
                # A learner's defaults always reach every row: on a small
                # share, boosted trees can trail a linear model they beat on
                # all rows, and pruning them there hides the better learner.
                if "default" not in trial.user_attrs and trial.should_prune():
                    return "pruned", result.score, share, seconds, None
        raise AssertionError("unreachable: the last rung returns")

    def _allowance(self, config: dict, share: float) -> float:
        # A trial never runs into the time kept for the refit: stopping it
        # there would still leave the refit short of its reserve.
        left = self.search_remaining()
        estimate = self.costs.estimate(config, share)
        if estimate is None:
            return left
        # A cost guessed from other learners can be off tenfold (a wide
        # sparse table is cheap for a linear model, dear for trees).
        factor = 3.0 if self.costs.measured(config["learner"]) else 10.0
        return min(left, max(factor * estimate, MIN_ALLOWANCE))

    def _finish(self, started, future: Future) -> None:
        trial, config = started
        record = TrialRecord.of(
            trial.number,
            config,
            "failed",
        )
        try:
            state, value, share, seconds, predictions = future.result()
        except TrialStopped as exc:
            record.reason = f"stopped: {exc}"
        except Exception as exc:  # a failing trial is reported, the run goes on
            record.reason = _short(exc)
        else:
            record.state, record.score, record.share = state, value, share
            record.seconds = round(seconds, 3)
            if predictions is not None:
                self.predictions_dir.mkdir(parents=True, exist_ok=True)
                np.save(self.predictions_dir / f"{trial.number}.npy", predictions)
                self.predictions[trial.number] = predictions
        self._tell(trial, record)

    def _tell(self, trial, record: TrialRecord) -> None:
        from optuna.trial import TrialState

        with self._lock:
            trial.set_user_attr("seconds", record.seconds)
            trial.set_user_attr("share", record.share)
            if record.reason:
                trial.set_user_attr("reason", record.reason)
            if record.state == "complete":
                self.study.tell(trial, record.score)
            elif record.state == "pruned":
                self.study.tell(trial, state=TrialState.PRUNED)
            else:
                self.study.tell(trial, state=TrialState.FAIL)
            self.records.append(record)
        if record.state == "failed":
            logger.warning("trial %d failed: %s", record.number, record.reason)
        else:
            logger.info(
                "trial %d %s: %s score %s in %.2f s",
                record.number,
                record.state,
                record.learner,
                record.score,
                record.seconds,
            )
        if self.on_trial is not None:
            best = self.best()
            self.on_trial(
                record,
                {
                    "trials": sum(r.state != "skipped" for r in self.records),
                    "best": None if best is None else best.score,
                    "left": max(0.0, self.clock.remaining()),
                },
            )


def _record_from(frozen) -> TrialRecord:
    from optuna.trial import TrialState

    config = frozen.user_attrs["config"]
    state = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
    }.get(frozen.state, "failed")
    reason = frozen.user_attrs.get("reason", "")
    if state == "failed" and reason.startswith("needs about"):
        state = "skipped"
    score = frozen.value if state == "complete" else None
    if state == "pruned" and frozen.intermediate_values:
        score = frozen.intermediate_values[max(frozen.intermediate_values)]
    return TrialRecord.of(
        frozen.number,
        config,
        state,
        score=score,
        share=frozen.user_attrs.get("share", 0.0),
        seconds=frozen.user_attrs.get("seconds", 0.0),
        reason=reason,
    )


def _maximize(study) -> bool:
    from optuna.study import StudyDirection

    return study.direction == StudyDirection.MAXIMIZE


def _describe(config: dict) -> str:
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in config["params"].items()
    )
    return f"{config['learner']} (scaler {config['scaler']}; {params})"


def _short(exc: BaseException) -> str:
    """The last meaningful line of an error, which for a failed Spark task is
    the Python exception raised inside it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    candidates = [line for line in lines if "Error" in line or "Exception" in line]
    text = candidates[-1] if candidates else lines[-1] if lines else type(exc).__name__
    return text[:_REASON_CHARS]
