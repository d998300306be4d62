"""``AutoML``: a table, a label and a time budget in; the best model out.

The run, in order: featurize and collect the table once; check it for
guardrails (and drop a leaked column); plan the validation folds and the
successive-halving rungs; search with Optuna on Spark tasks until the
budget's search share is spent; blend the best trials when that helps;
refit the winner on every row. The result is an :class:`AutoMLModel`, a
:class:`~sparktrain.train.TrainedModel` that also carries the leaderboard.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Estimator
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasLabelCol, HasSeed
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktrain._extras import require
from sparktrain._persist import CompositeReadable, CompositeWritable
from sparktrain.automl import ensemble, guardrails, space, validation
from sparktrain.automl.runner import Payload, Runner, warm_up
from sparktrain.automl.search import Clock, Search, TrialRecord
from sparktrain.automl.tracking import Tracker
from sparktrain.columns import quote, require_column
from sparktrain.errors import ConfigError, DataError
from sparktrain.libraries._matrix import TrainingSet, collect, default_max_bytes
from sparktrain.train import (
    _FEATURES,
    _LABEL,
    Prepared,
    TrainClassifier,
    TrainedModel,
    TrainRegressor,
)

logger = logging.getLogger(__name__)

MIN_BUDGET = 10.0
ENSEMBLE_CANDIDATES = 8
_ORDER = "__st_order"
_STUDY = "automl"


def _param(name: str, doc: str, converter=None) -> Param:
    return Param(Params._dummy(), name, doc, typeConverter=converter)


class _AutoMLParams(HasLabelCol, HasSeed):
    task = _param(
        "task",
        "'classification', 'regression', or '' to infer",
        TypeConverters.toString,
    )
    metric = _param(
        "metric",
        "validation metric; '' picks one for the task",
        TypeConverters.toString,
    )
    timeBudget = _param(
        "timeBudget", "seconds the whole fit may take", TypeConverters.toFloat
    )
    maxTrials = _param(
        "maxTrials", "most trials to run; 0 for no limit", TypeConverters.toInt
    )
    learners = _param(
        "learners", "learners to search; empty for all", TypeConverters.toListString
    )
    excludeLearners = _param(
        "excludeLearners", "learners never to try", TypeConverters.toListString
    )
    parallelism = _param(
        "parallelism",
        "trials at once; 0 for the cluster's task slots",
        TypeConverters.toInt,
    )
    validation = _param(
        "validation", "'auto', 'kfold' or 'holdout'", TypeConverters.toString
    )
    numFolds = _param("numFolds", "folds for k-fold validation", TypeConverters.toInt)
    timeCol = _param(
        "timeCol",
        "a column ordering the rows in time; '' for none",
        TypeConverters.toString,
    )
    ensemble = _param(
        "ensemble",
        "blend the best trials when that beats the best one",
        TypeConverters.toBoolean,
    )
    classWeights = _param(
        "classWeights", "'none' or 'balanced'", TypeConverters.toString
    )
    excludeLeaks = _param(
        "excludeLeaks",
        "drop a column that alone predicts the label",
        TypeConverters.toBoolean,
    )
    excludeCols = _param(
        "excludeCols", "columns never to use", TypeConverters.toListString
    )
    columnKinds = _param("columnKinds", "per-column kind overrides for Featurize")
    tracking = _param("tracking", "log the run to MLflow", TypeConverters.toBoolean)
    trackingUri = _param(
        "trackingUri",
        "MLflow tracking URI; '' for sqlite:///mlflow.db",
        TypeConverters.toString,
    )
    experimentName = _param(
        "experimentName", "MLflow experiment", TypeConverters.toString
    )
    runDir = _param(
        "runDir",
        "folder for the run's state (Optuna study, predictions)",
        TypeConverters.toString,
    )
    resume = _param(
        "resume", "continue the run kept in runDir", TypeConverters.toBoolean
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            task="",
            metric="",
            timeBudget=60.0,
            maxTrials=0,
            learners=[],
            excludeLearners=[],
            parallelism=0,
            validation="auto",
            numFolds=5,
            timeCol="",
            ensemble=True,
            classWeights="none",
            excludeLeaks=True,
            excludeCols=[],
            columnKinds={},
            tracking=True,
            trackingUri="",
            experimentName="sparktrain",
            runDir="",
            resume=False,
            seed=42,
        )


class AutoML(_AutoMLParams, Estimator, CompositeReadable, CompositeWritable):
    """Search learners, preprocessing and hyperparameters within a time budget.

    Parameters
    ----------
    labelCol : str
        The column to predict; any type TrainClassifier/TrainRegressor take.
    task : {"", "classification", "regression"}
        Inferred when empty (see :func:`sparktrain.run.infer_task`).
    metric : str
        ``roc_auc`` (two classes), ``log_loss`` (more) or ``rmse`` by
        default; also ``pr_auc``, ``accuracy``, ``f1_macro``,
        ``f1_weighted``, ``mae``, ``r2``.
    timeBudget : float
        Seconds for the whole fit: search, ensembling and final refit.
    maxTrials : int
        Stop after this many trials (0: only the budget limits).
    learners, excludeLearners : list of str
        Among ``linear``, ``lightgbm``, ``xgboost``, ``random_forest``,
        ``extra_trees``.
    parallelism : int
        Trials at once; by default the session's task slots.
    validation : {"auto", "kfold", "holdout"}
        ``auto``: k-fold up to 20,000 labelled rows, else a 20 % holdout;
        stratified for classes, ordered by ``timeCol`` when given.
    ensemble, classWeights, excludeLeaks
        Blend the best trials; weight classes ``balanced``; drop a column
        that alone predicts the label.
    tracking, trackingUri, experimentName
        MLflow logging (SQLite ``mlflow.db`` in the working folder by default).
    runDir, resume
        Where the Optuna study and predictions live; ``resume=True`` goes on
        with the run kept there, re-running none of its finished trials.

    Examples
    --------
    >>> automl = AutoML(labelCol="Status", timeBudget=60, tracking=False)
    >>> model = automl.fit(frame)  # doctest: +SKIP
    >>> model.leaderboard.show()  # doctest: +SKIP
    """

    @keyword_only
    def __init__(
        self,
        *,
        labelCol: str | None = None,
        task: str | None = None,
        metric: str | None = None,
        timeBudget: float | None = None,
        maxTrials: int | None = None,
        learners: list[str] | None = None,
        excludeLearners: list[str] | None = None,
        parallelism: int | None = None,
        validation: str | None = None,
        numFolds: int | None = None,
        timeCol: str | None = None,
        ensemble: bool | None = None,
        classWeights: str | None = None,
        excludeLeaks: bool | None = None,
        excludeCols: list[str] | None = None,
        columnKinds: dict[str, str] | None = None,
        tracking: bool | None = None,
        trackingUri: str | None = None,
        experimentName: str | None = None,
        runDir: str | None = None,
        resume: bool | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})
        self.onTrial: Callable[[TrialRecord, dict], None] | None = None

    def setOnTrial(
        self, callback: Callable[[TrialRecord, dict], None] | None
    ) -> AutoML:
        """Call ``callback(record, progress)`` as each trial ends (for progress
        displays); ``progress`` has ``trials``, ``best`` and ``left`` seconds."""
        self.onTrial = callback
        return self

    def copy(self, extra=None):
        copied = super().copy(extra)
        copied.onTrial = getattr(self, "onTrial", None)
        return copied

    def _state(self):
        return {}, {}

    def _restore(self, extra, inner) -> None:
        self.onTrial = None

    def _fit(self, dataset: DataFrame) -> AutoMLModel:
        clock = Clock(self._budget())
        require("optuna", extra="automl", purpose="AutoML")
        run = _Run(self, dataset, clock)
        try:
            return run.execute()
        except BaseException:
            run.tracker.fail()
            run.discard_unused_storage()
            raise

    def _budget(self) -> float:
        budget = self.getOrDefault("timeBudget")
        if budget < MIN_BUDGET:
            raise ConfigError(
                f"timeBudget={budget:g} s is below the minimum of {MIN_BUDGET:g} s: "
                "featurizing the table and fitting even one trial take longer. "
                f"Pass at least {MIN_BUDGET:g}"
            )
        return float(budget)


class _Run:
    """One execution of :meth:`AutoML.fit`: the steps, and what they share."""

    def __init__(self, automl: AutoML, dataset: DataFrame, clock: Clock) -> None:
        self.automl = automl
        self.get = automl.getOrDefault
        self.dataset = dataset
        self.clock = clock
        folder = self.get("runDir") or tempfile.mkdtemp(prefix="sparktrain-automl-")
        self.folder = Path(folder).resolve()
        self.tracker = Tracker(
            self.get("trackingUri") or None,
            self.get("experimentName"),
            enabled=self.get("tracking"),
        )
        self.guardrails: list[guardrails.Guardrail] = []
        self._storage: Future | None = None
        self._new_database: Path | None = None
        self._study_begun = False

    def execute(self) -> AutoMLModel:
        label = self.get("labelCol")
        require_column(self.dataset, label, role="label column")
        storage = self._storage = self._open_storage()
        warm_up(self.dataset.sparkSession)
        task = self._task(label)
        trainer = self._trainer(task, self.get("excludeCols"))
        prepared, data, order, sampled = self._prepare(trainer)
        if task == "classification":
            validation.require_class_rows(data.y, 2, prepared.classes, label)
        prepared, data, order, trainer = self._guard(
            task, trainer, prepared, data, order
        )
        self.clock.mark("featurized")
        logger.info(
            "table featurized and collected in %.1f s: %d rows x %d features",
            self.clock.elapsed(),
            data.rows,
            data.width,
        )
        classes = prepared.classes
        metric = self.get("metric") or validation.default_metric(task, len(classes))
        validation.check_metric(metric, task, len(classes))
        plan = validation.plan(
            data.y,
            task=task,
            validation=self.get("validation"),
            num_folds=self.get("numFolds"),
            seed=self.get("seed"),
            order=order,
        )
        self.guardrails += guardrails.label_checks(
            data.y,
            classes,
            task=task,
            balanced=self._balanced(task),
            folds=len(plan.folds),
        )
        for g in self.guardrails:
            logger.warning(
                "guardrail %s%s: %s; %s",
                g.check,
                f" ({g.column})" if g.column else "",
                g.message,
                g.action,
            )
        weight = self._weights(task, data.y)
        payload = Payload(
            data.X,
            data.y,
            weight,
            plan,
            task,
            max(len(classes), 1),
            metric,
            self.get("seed"),
        )
        sparse = hasattr(data.X, "tocsr")
        names = space.choose_candidates(
            task, self.get("learners"), self.get("excludeLearners"), _installed
        )
        targets = space.targets_for(task, data.y)
        study = self._study(storage, metric, task, names, sparse, targets)
        self._study_begun = True
        self._save_state(task=task, metric=metric, seed=self.get("seed"))
        self.tracker.start(
            self._state().get("mlflow_run_id"),
            self.folder.name,
            self._settings(task, metric, plan),
            on_open=lambda run_id: self._save_state(mlflow_run_id=run_id),
        )

        runner = Runner(self.dataset.sparkSession, payload)
        try:
            search = Search(
                study,
                runner,
                task=task,
                names=names,
                sparse=sparse,
                targets=targets,
                plan=plan,
                clock=self.clock,
                max_trials=self.get("maxTrials") or None,
                parallelism=self.get("parallelism") or runner.slots,
                predictions_dir=self.folder / "predictions",
                on_trial=self._on_trial,
            )
            logger.info(
                "searching %s for %s (%s), %d trial(s) at a time; %.1f s left",
                names,
                metric,
                plan.reason,
                search.parallelism,
                self.clock.remaining(),
            )
            records = search.run()
            self.clock.mark("searched")
            logger.info(
                "search ended %.1f s into the run with %d trial(s)",
                self.clock.elapsed(),
                len(records),
            )
            best, blend = self._choose(search, metric, data.y[plan.validated])
            model = self._refit(runner, trainer, prepared, data, task, records, blend)
            self.clock.mark("refit")
        finally:
            runner.close()
        summary = self._summary(
            task, metric, plan, runner, sampled, records, best, blend
        )
        self.tracker.finish(
            {"best_validation_score": best.score, "trials": len(records)},
            {
                "leaderboard.json": summary["leaderboard"],
                "guardrails.json": summary["guardrails"],
                "best.json": summary["best"],
            },
            # the budget's 5 % slack, less a margin for what follows
            wait=max(1.04 * self.clock.budget - self.clock.elapsed(), 1.0),
        )
        summary["mlflow_run_id"] = self.tracker.run_id
        self.clock.mark("finished")
        summary["seconds"] = self.clock.marks["finished"]
        summary["timeline"] = dict(self.clock.marks)
        model._setAutoML(summary)
        data_rows = prepared.rows
        logger.info(
            "AutoML chose %s (%s %.5g) after %d trial(s) on %d rows in %.1f s",
            model.info["learner"],
            metric,
            summary["best"]["score"],
            len(records),
            data_rows,
            self.clock.elapsed(),
        )
        return model

    def _on_trial(self, record: TrialRecord, progress: dict) -> None:
        self.tracker.trial(record.as_dict())
        if self.automl.onTrial is not None:
            self.automl.onTrial(record, progress)

    # -- preparing the table ----------------------------------------------------

    def _task(self, label: str) -> str:
        from sparktrain.run import infer_task

        task = self.get("task")
        if task and task not in ("classification", "regression"):
            raise ConfigError(
                f"task={task!r}; expected 'classification', 'regression', "
                "or '' to infer it"
            )
        return task or infer_task(self.dataset, label)

    def _trainer(self, task: str, exclude: list[str]):
        cls = TrainClassifier if task == "classification" else TrainRegressor
        return cls(
            labelCol=self.get("labelCol"),
            excludeCols=list(exclude),
            columnKinds=self.get("columnKinds"),
            seed=self.get("seed"),
        )

    def _prepare(
        self, trainer
    ) -> tuple[Prepared, TrainingSet, np.ndarray | None, float]:
        """Featurize and bring the table to the driver (a sample if it is too big)."""
        prepared = trainer._prepare(self.dataset)
        features = prepared.features
        time_col = self.get("timeCol")
        if time_col:
            require_column(self.dataset, time_col, role="timeCol")
            features = features.withColumn(_ORDER, _as_number(self.dataset, time_col))
        share = 1.0
        limit = default_max_bytes()
        try:
            data = self._collect(features, time_col, limit)
        except DataError as exc:
            if "maxLocalBytes" not in str(exc):
                raise
            share = _sample_share(exc, prepared.rows, limit)
            logger.warning(
                "the featurized table is too large for the driver; "
                "searching on a %.1f%% sample",
                100 * share,
            )
            data = self._collect(
                features.sample(fraction=share, seed=self.get("seed")), time_col, limit
            )
        prepared.release()
        order = data.weight
        data.weight = None
        return prepared, data, order, share

    def _collect(self, features: DataFrame, time_col: str, limit: int) -> TrainingSet:
        # The time column rides in the weight slot; it is taken out at once.
        return collect(
            features,
            features_col=_FEATURES,
            label_col=_LABEL,
            weight_col=_ORDER if time_col else None,
            max_bytes=limit,
        )

    def _guard(self, task, trainer, prepared, data, order):
        """Column guardrails, and a second preparation without leaked columns."""
        self.guardrails = guardrails.column_checks(
            prepared.featurizer.decisions, prepared.rows
        )
        leaks = guardrails.find_leaks(
            data.X,
            data.y,
            prepared.featurizer.featureSources,
            task=task,
            seed=self.get("seed"),
        )
        exclude = self.get("excludeLeaks")
        self.guardrails += guardrails.leak_guardrails(leaks, task, exclude)
        if not leaks or not exclude:
            return prepared, data, order, trainer
        if len(leaks) == len(set(prepared.featurizer.featureSources)):
            raise DataError(
                "every feature column predicts the label almost perfectly "
                f"({sorted(leaks)}); check the table for leaked copies of the "
                "label, or pass excludeLeaks=False"
            )
        logger.warning("excluding likely leaked column(s) %s", sorted(leaks))
        trainer = self._trainer(task, [*self.get("excludeCols"), *leaks])
        prepared, data, order, _ = self._prepare(trainer)
        return prepared, data, order, trainer

    def _balanced(self, task: str) -> bool:
        weights = self.get("classWeights")
        if weights not in ("none", "balanced"):
            raise ConfigError(
                f"classWeights={weights!r}; expected 'none' or 'balanced'"
            )
        if weights == "balanced" and task != "classification":
            raise ConfigError(
                "classWeights='balanced' needs a classification task; "
                "leave it 'none' for regression"
            )
        return weights == "balanced"

    def _weights(self, task: str, y: np.ndarray) -> np.ndarray | None:
        if not self._balanced(task):
            return None
        from sklearn.utils.class_weight import compute_sample_weight

        return compute_sample_weight("balanced", y)

    # -- the study and its state ------------------------------------------------

    def _open_storage(self) -> Future:
        """Check the run folder, then open the study's SQLite store in the
        background (a second or more: SQLAlchemy builds the schema) while the
        table is featurized."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.folder.mkdir(parents=True, exist_ok=True)
        database = self.folder / "optuna.db"
        exists = database.is_file()
        if exists and not self.get("resume"):
            raise ConfigError(
                f"runDir={str(self.folder)!r} already holds an AutoML run; pass "
                "resume=True (CLI: --resume) to continue it, or choose another folder"
            )
        if self.get("resume") and not exists:
            raise ConfigError(
                f"resume=True, but runDir={str(self.folder)!r} holds no AutoML run; "
                "pass the folder of an earlier run, or resume=False to start one"
            )
        self._new_database = None if exists else database
        pool = ThreadPoolExecutor(1, thread_name_prefix="optuna-storage")
        opened = pool.submit(optuna.storages.RDBStorage, f"sqlite:///{database}")
        pool.shutdown(wait=False)
        return opened

    def discard_unused_storage(self) -> None:
        """Remove the study store this run created if the run failed before
        its search began, so that the same runDir can be used again."""
        if self._storage is None or self._study_begun or self._new_database is None:
            return
        with contextlib.suppress(Exception):
            self._storage.result().engine.dispose()
        self._new_database.unlink(missing_ok=True)

    def _study(self, storage: Future, metric, task, names, sparse, targets):
        import optuna

        if self.get("resume"):
            self._check_resumable(task, metric)
        study = optuna.create_study(
            storage=storage.result(),
            study_name=_STUDY,
            direction="maximize" if validation.maximize(metric) else "minimize",
            sampler=optuna.samplers.TPESampler(
                seed=self.get("seed"), constant_liar=True
            ),
            pruner=optuna.pruners.SuccessiveHalvingPruner(
                min_resource=1, reduction_factor=validation.REDUCTION
            ),
            load_if_exists=True,
        )
        for config in space.default_configs(task, names, sparse, targets):
            study.enqueue_trial(
                space.optuna_params(config),
                user_attrs={"default": config},
                skip_if_exists=True,
            )
        return study

    def _check_resumable(self, task: str, metric: str) -> None:
        state = self._state()
        for key, value in (
            ("task", task),
            ("metric", metric),
            ("seed", self.get("seed")),
        ):
            if key in state and state[key] != value:
                raise ConfigError(
                    f"{key}={value!r} differs from the run being resumed "
                    f"({state[key]!r}); resume with the same settings"
                )

    def _state(self) -> dict[str, Any]:
        path = self.folder / "state.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _save_state(self, **values: Any) -> None:
        state = {**self._state(), **values, "label": self.get("labelCol")}
        (self.folder / "state.json").write_text(json.dumps(state, indent=2))

    def _settings(self, task: str, metric: str, plan) -> dict[str, Any]:
        return {
            "label": self.get("labelCol"),
            "task": task,
            "metric": metric,
            "time_budget": self.get("timeBudget"),
            "validation": plan.kind,
            "folds": len(plan.folds),
            "seed": self.get("seed"),
        }

    # -- choosing, blending, refitting ------------------------------------------

    def _choose(self, search: Search, metric: str, y_valid: np.ndarray):
        """The best trial, and blend weights when an ensemble beats it."""
        best = search.best()
        if best is None:
            best = best_partial(search, metric)
        blend = {best.number: 1.0}
        if not self.get("ensemble") or best.state != "complete":
            return best, blend
        ranked = sorted(
            (
                r
                for r in search.records
                if r.state == "complete" and r.number in search.predictions
            ),
            key=lambda r: r.score,
            reverse=validation.maximize(metric),
        )[:ENSEMBLE_CANDIDATES]
        if len(ranked) < 2:
            return best, blend
        weights, value = ensemble.select(
            {r.number: search.predictions[r.number] for r in ranked}, y_valid, metric
        )
        if len(weights) < 2 or not ensemble.worth_keeping(value, best.score, metric):
            logger.info(
                "no ensemble: it does not beat the best trial (%.5g vs %.5g)",
                value,
                best.score,
            )
            return best, blend
        by_number = {r.number: r for r in ranked}
        cost = search.finish_seconds([by_number[n].config for n in weights])
        if cost > self.clock.remaining():
            logger.info(
                "no ensemble: refitting its %d members needs about %.1f s; "
                "%.1f s are left",
                len(weights),
                cost,
                self.clock.remaining(),
            )
            return best, blend
        self.ensemble_score = value
        return best, weights

    def _refit(self, runner, trainer, prepared, data, task, records, blend):
        """Fit the chosen configuration (or each blend member) on every row,
        as Spark tasks, and assemble the model."""
        from sparktrain.libraries import SklearnClassifier, SklearnRegressor

        by_number = {r.number: r for r in records}
        configs = [by_number[n].config for n in blend]
        started = self.clock.elapsed()
        fitted = runner.refit(configs)
        logger.info(
            "refitted %d configuration(s) on every row in %.1f s (fits %s s; "
            "%.1f s into the run)",
            len(configs),
            self.clock.elapsed() - started,
            [round(seconds, 2) for _, seconds in fitted],
            self.clock.elapsed(),
        )
        members = [estimator for estimator, _ in fitted]
        classes = list(range(len(prepared.classes)))
        weights = list(blend.values())
        if task == "classification":
            estimator = ensemble.BlendClassifier.fitted(members, weights, classes)
            wrapper = SklearnClassifier(estimator=estimator)
        else:
            estimator = ensemble.BlendRegressor.fitted(members, weights)
            wrapper = SklearnRegressor(estimator=estimator)
        learner = trainer._configure_learner(
            _describe_wrapper(wrapper), _FEATURES, data.width, max(len(classes), 1)
        )
        model = learner._model(
            estimator,
            data.width,
            classes,
            runner.where["mode"],
            "AutoML refit on every row",
            sum(seconds for _, seconds in fitted),
        )
        first = by_number[next(iter(blend))]
        name = (
            first.learner
            if len(blend) == 1
            else "ensemble(" + ", ".join(by_number[n].learner for n in blend) + ")"
        )
        trained = trainer._assemble(
            prepared, name, [*prepared.featurizer.pipeline.stages, model], _FEATURES
        )
        result = AutoMLModel()
        result._setup(trainer, trained.pipeline, trained.featurizeModel, trained.info)
        return result

    def _summary(self, task, metric, plan, runner, sampled, records, best, blend):
        leaderboard = _leaderboard(records, metric)
        execution = dict(runner.where)
        if sampled < 1.0:
            execution["reason"] += (
                f"; searched and refitted on a {sampled:.1%} sample "
                "that fits the driver"
            )
        return {
            "metric": metric,
            "task": task,
            "validation": plan.describe(),
            "execution": execution,
            "guardrails": [g.as_dict() for g in self.guardrails],
            "leaderboard": leaderboard,
            "best": {"trial": best.number, "score": best.score, **best.config},
            "ensemble": None
            if len(blend) < 2
            else {
                "weights": {str(n): w for n, w in blend.items()},
                "score": getattr(self, "ensemble_score", None),
            },
            "run_dir": str(self.folder),
            "mlflow_run_id": self.tracker.run_id,
            "tracking_uri": self.tracker.uri if self.tracker.enabled else None,
            "seconds": round(self.clock.elapsed(), 3),
        }


class AutoMLModel(TrainedModel):
    """The model :class:`AutoML` chose, with what the search found.

    ``transform`` scores like any :class:`~sparktrain.train.TrainedModel`
    (every input column kept, ``prediction`` in the label's type, class
    probabilities). The leaderboard, the best configuration, the ensemble
    and the guardrails are kept with the model and saved with it.
    """

    def _setAutoML(self, summary: dict[str, Any]) -> None:
        self.info = {**self.info, "automl": summary}

    @property
    def summary(self) -> dict[str, Any]:
        return self.info["automl"]

    @property
    def leaderboard(self) -> DataFrame:
        """Trials ranked by validation score: rank, trial, learner,
        preprocessing, hyperparameters (JSON), score, share of rows,
        fit seconds, state and reason."""
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        rows = [
            {**r, "hyperparameters": json.dumps(r["hyperparameters"], sort_keys=True)}
            for r in self.summary["leaderboard"]
        ]
        return spark.createDataFrame(rows, schema=_LEADERBOARD_SCHEMA)

    @property
    def bestConfig(self) -> dict[str, Any]:
        return dict(self.summary["best"])

    @property
    def ensemble(self) -> dict[str, Any] | None:
        return self.summary["ensemble"]

    @property
    def guardrails(self) -> list[dict[str, Any]]:
        return list(self.summary["guardrails"])


_LEADERBOARD_SCHEMA = T.StructType(
    [
        T.StructField("rank", T.IntegerType()),
        T.StructField("trial", T.IntegerType()),
        T.StructField("learner", T.StringType()),
        T.StructField("preprocessing", T.StringType()),
        T.StructField("hyperparameters", T.StringType()),
        T.StructField("score", T.DoubleType()),
        T.StructField("share", T.DoubleType()),
        T.StructField("fit_seconds", T.DoubleType()),
        T.StructField("state", T.StringType()),
        T.StructField("reason", T.StringType()),
    ]
)


def best_partial(search: Search, metric: str) -> TrialRecord:
    """Without a finished trial, the best one measured on the most rows;
    without any, an error that says why."""
    pruned = [r for r in search.records if r.state == "pruned"]
    if pruned:
        sign = -1 if validation.maximize(metric) else 1
        top_share = max(r.share for r in pruned)
        return min(
            (r for r in pruned if r.share == top_share), key=lambda r: sign * r.score
        )
    reasons = sorted({r.reason for r in search.records if r.reason})
    out_of_time = all(
        r.state == "skipped" or r.reason.startswith("stopped") for r in search.records
    )
    if out_of_time:
        budget = search.clock.budget
        spent = budget - search.clock.remaining()
        raise ConfigError(
            f"timeBudget={budget:g} s was too small to fit even one trial "
            f"({spent:.0f} s went by, preparing the table and trying); pass at "
            f"least {_suggest_budget(search):.0f} s. Reasons: "
            f"{reasons or ['no trial could start']}"
        )
    raise DataError(
        f"every one of {len(search.records)} trial(s) failed; the distinct "
        "reasons: " + "; ".join(reasons)
    )


def _leaderboard(records: list[TrialRecord], metric: str) -> list[dict[str, Any]]:
    """Completed trials by score, then pruned ones by share and score, then
    failed ones; trials skipped for lack of time are left out."""
    sign = -1 if validation.maximize(metric) else 1
    order = {"complete": 0, "pruned": 1, "failed": 2, "skipped": 3}

    def key(r: TrialRecord):
        value = sign * r.score if r.score is not None else float("inf")
        return (order[r.state], -r.share, value, r.number)

    shown = [r for r in records if r.state != "skipped"]
    return [
        {
            "rank": rank,
            "trial": r.number,
            "learner": r.learner,
            "preprocessing": f"scaler={r.scaler}"
            + (f", target={r.target}" if r.target != "none" else ""),
            "hyperparameters": r.params,
            "score": r.score,
            "share": float(r.share),
            "fit_seconds": float(r.seconds),
            "state": r.state,
            "reason": r.reason,
        }
        for rank, r in enumerate(sorted(shown, key=key), start=1)
    ]


def _describe_wrapper(wrapper):
    from sparktrain.learners import describe

    return describe(wrapper)


def _installed(library: str) -> bool:
    import importlib.util

    module = {"scikit-learn": "sklearn"}.get(library, library)
    return importlib.util.find_spec(module) is not None


def _as_number(frame: DataFrame, column: str):
    dtype = frame.schema[column].dataType
    if isinstance(dtype, (T.DateType, T.TimestampType, T.TimestampNTZType)):
        return F.unix_timestamp(F.col(quote(column)).cast("timestamp")).cast("double")
    if isinstance(dtype, T.NumericType):
        return F.col(quote(column)).cast("double")
    raise DataError(
        f"timeCol {column!r} has type {dtype.simpleString()}; expected a date, "
        "a timestamp or a number that orders the rows in time"
    )


def _sample_share(exc: DataError, rows: int, limit: int) -> float:
    import re

    match = re.search(r"about ([\d.]+) (GiB|MiB)", str(exc))
    if not match:
        return 0.5
    size = float(match.group(1)) * (1 << 30 if match.group(2) == "GiB" else 1 << 20)
    return max(1e-4, min(1.0, 0.8 * limit / size))


def _suggest_budget(search: Search) -> float:
    """Twice the time spent before the first trial could start, plus room."""
    prepared = search.started_after or search.clock.budget
    return max(MIN_BUDGET, 2 * prepared + 10)
