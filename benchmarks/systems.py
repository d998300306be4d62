"""The systems the harness compares, each run in a child process of its own.

Every runner reads the split the parent wrote, fits within the budget on
the given cores and returns ``(predictions, report)``: predictions for the
test rows (``p:<class>`` columns for classification, else ``prediction``)
and a report with ``fit_seconds``, ``trials``, ``chosen`` and ``curve``, the
best validation score so far against seconds since the fit began, in the
system's own validation metric (named in ``curve_metric``).
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import RESULT_PREFIX


def main(
    system: str, folder: Path, out: Path, budget: float, cores: int, cv_grid: str
) -> None:
    spec = json.loads((folder / "split.json").read_text())
    train = pd.read_parquet(folder / "train.parquet")
    test = pd.read_parquet(folder / "test.parquet")
    classes = (
        sorted(str(c) for c in train[spec["label"]].unique())
        if spec["task"] == "classification"
        else []
    )
    runner = RUNNERS[system]
    if system == "sparkml-cv":
        runner = functools.partial(runner, grid_size=cv_grid)
    predictions, report = runner(
        train, test, spec["label"], spec["task"], classes, budget, cores, spec["seed"]
    )
    predictions.to_parquet(out / "predictions.parquet", index=False)
    print(RESULT_PREFIX + json.dumps(report), flush=True)


def _frame(classes: list[str], probability, order) -> pd.DataFrame:
    """Probability columns named ``p:<class>``, ``order`` being the system's
    own class order."""
    probability = np.asarray(probability, dtype=float)
    named = {str(c): probability[:, i] for i, c in enumerate(order)}
    return pd.DataFrame({f"p:{c}": named.get(c, 0.0) for c in classes})


class _Curve:
    """Best validation score so far against seconds since the fit began."""

    def __init__(self, higher_is_better: bool) -> None:
        self.started = time.monotonic()
        self.sign = 1 if higher_is_better else -1
        self.points: list[list[float]] = []

    def add(self, score: float | None, at: float | None = None) -> None:
        if score is None or not np.isfinite(score):
            return
        if self.points and self.sign * score <= self.sign * self.points[-1][1]:
            return
        seconds = time.monotonic() - self.started if at is None else at
        self.points.append([round(seconds, 2), float(score)])


def run_sparktrain(train, test, label, task, classes, budget, cores, seed):
    import sparktrain

    spark = sparktrain.session(master=f"local[{cores}]")
    spark.range(1).count()  # the JVM is up before the clock starts
    frame = spark.createDataFrame(train)
    automl = sparktrain.AutoML(
        labelCol=label, task=task, timeBudget=budget, tracking=False, seed=seed
    )
    metric = {"classification": "roc_auc" if len(classes) == 2 else "log_loss"}
    curve = _Curve(higher_is_better=metric.get(task) == "roc_auc")
    automl.setOnTrial(lambda record, progress: curve.add(progress.get("best")))

    started = time.monotonic()
    model = automl.fit(frame)
    seconds = time.monotonic() - started
    scored = model.transform(spark.createDataFrame(test)).toPandas()
    if task == "classification":
        probability = np.vstack([np.asarray(p) for p in scored["probability"]])
        predictions = _frame(classes, probability, [str(c) for c in model.classes])
    else:
        predictions = pd.DataFrame({"prediction": scored["prediction"]})
    return predictions, {
        "fit_seconds": seconds,
        "trials": len(model.summary["leaderboard"]),
        "chosen": model.info["learner"],
        "curve": curve.points,
        "curve_metric": metric.get(task, "rmse"),
    }


def pandas_features(train: pd.DataFrame, test: pd.DataFrame, label: str):
    """Features for pandas-based learners: dates as integers, strings and
    booleans as ``category`` with the training set's categories."""
    X_train, X_test = train.drop(columns=[label]), test.drop(columns=[label])
    for column in X_train.columns:
        kind = X_train[column].dtype
        if pd.api.types.is_datetime64_any_dtype(kind):
            for X in (X_train, X_test):
                X[column] = X[column].astype("int64")
        elif pd.api.types.is_bool_dtype(kind) or not pd.api.types.is_numeric_dtype(
            kind
        ):
            known = X_train[column].astype(str).astype("category").cat.categories
            for X in (X_train, X_test):
                X[column] = pd.Categorical(X[column].astype(str), categories=known)
    return X_train, X_test


def run_flaml(train, test, label, task, classes, budget, cores, seed):
    from flaml import AutoML

    X_train, X_test = pandas_features(train, test, label)
    y_train = train[label].astype(str) if task == "classification" else train[label]
    metric = "rmse"
    if task == "classification":
        metric = "roc_auc" if len(classes) == 2 else "log_loss"
    automl = AutoML()
    log = Path(tempfile.mkdtemp()) / "flaml.log"
    started = time.monotonic()
    automl.fit(
        X_train,
        y_train,
        task=task,
        metric=metric,
        time_budget=budget,
        n_jobs=cores,
        seed=seed,
        verbose=0,
        log_file_name=str(log),
    )
    seconds = time.monotonic() - started
    if task == "classification":
        predictions = _frame(
            classes, automl.predict_proba(X_test), [str(c) for c in automl.classes_]
        )
    else:
        predictions = pd.DataFrame({"prediction": automl.predict(X_test)})
    return predictions, {
        "fit_seconds": seconds,
        "trials": len(automl.config_history),
        "chosen": str(automl.best_estimator),
        "curve": _flaml_curve(log, budget, metric),
        "curve_metric": f"FLAML validation {metric}",
    }


def _flaml_curve(log: Path, budget: float, metric: str) -> list[list[float]]:
    """FLAML's best validation score so far, read back from its trial log
    (FLAML logs losses; for ROC AUC the loss is 1 - AUC)."""
    from flaml.automl.data import get_output_from_log

    times, best_losses, *_ = get_output_from_log(str(log), budget * 10)
    auc = metric == "roc_auc"
    curve = _Curve(higher_is_better=auc)
    for at, loss in zip(times, best_losses, strict=True):
        curve.add(1 - float(loss) if auc else float(loss), at=float(at))
    return curve.points


def run_h2o(train, test, label, task, classes, budget, cores, seed):
    import h2o
    from h2o.automl import H2OAutoML

    h2o.init(nthreads=cores, verbose=False, max_mem_size="4G")
    h2o.no_progress()
    try:
        frame = h2o.H2OFrame(train)
        features = [c for c in train.columns if c != label]
        if task == "classification":
            frame[label] = frame[label].asfactor()
        automl = H2OAutoML(max_runtime_secs=int(max(budget, 1)), seed=seed)
        started = time.monotonic()
        automl.train(x=features, y=label, training_frame=frame)
        seconds = time.monotonic() - started
        scored = automl.leader.predict(h2o.H2OFrame(test)).as_data_frame()
        if task == "classification":
            order = [c for c in scored.columns if c != "predict"]
            predictions = _frame(classes, scored[order].to_numpy(), order)
        else:
            predictions = pd.DataFrame({"prediction": scored["predict"]})
        board = automl.leaderboard.as_data_frame()
        return predictions, {
            "fit_seconds": seconds,
            "trials": len(board),
            "chosen": str(board["model_id"].iloc[0]),
            "curve": _h2o_curve(automl, board),
            "curve_metric": f"H2O leaderboard {board.columns[1]}",
        }
    finally:
        h2o.cluster().shutdown()


def _h2o_curve(automl, board: pd.DataFrame) -> list[list[float]]:
    """Best leaderboard score against when each model finished, from the
    event log's timestamps."""
    events = automl.event_log.as_data_frame()
    higher = board.columns[1] in ("auc", "aucpr")
    curve = _Curve(higher_is_better=higher)
    finished = {}
    for _, event in events.iterrows():
        message = str(event.get("message", ""))
        for model_id in board["model_id"]:
            if model_id in message and model_id not in finished:
                finished[model_id] = _clock_seconds(str(event["timestamp"]))
    if not finished:
        return []
    start = min(finished.values())
    scores = dict(zip(board["model_id"], board[board.columns[1]], strict=True))
    for model_id, at in sorted(finished.items(), key=lambda item: item[1]):
        curve.add(float(scores[model_id]), at=at - start)
    return curve.points


def _clock_seconds(stamp: str) -> float:
    """Seconds since midnight of an H2O event time such as ``08:48:57.851``."""
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def run_sparkml_cv(
    train, test, label, task, classes, budget, cores, seed, grid_size="default"
):
    """SparkML's CrossValidator over a default-style grid, 3 folds; it knows
    no budget, so it runs to the end and its time is what it took."""
    from pyspark.ml import classification as C
    from pyspark.ml import evaluation as E
    from pyspark.ml import regression as R
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    import sparktrain

    spark = sparktrain.session(master=f"local[{cores}]")
    spark.range(1).count()
    classify = task == "classification"
    frame = spark.createDataFrame(train)
    if classify:
        frame = frame.withColumn(label, frame[label].cast("string"))
    started = time.monotonic()
    features = sparktrain.Featurize(labelCol=label, outputCol="features").fit(frame)
    prepared = features.transform(frame)
    if classify:
        indexer = StringIndexer(inputCol=label, outputCol="__label").fit(prepared)
        prepared = indexer.transform(prepared)
        learners = [
            C.LogisticRegression(labelCol="__label", maxIter=50),
            C.RandomForestClassifier(labelCol="__label", seed=seed),
        ]
        if len(classes) == 2:
            learners.append(C.GBTClassifier(labelCol="__label", seed=seed))
        evaluator: Any = (
            E.BinaryClassificationEvaluator(labelCol="__label")
            if len(classes) == 2
            else E.MulticlassClassificationEvaluator(
                labelCol="__label", metricName="logLoss"
            )
        )
    else:
        learners = [
            R.LinearRegression(labelCol=label),
            R.RandomForestRegressor(labelCol=label, seed=seed),
            R.GBTRegressor(labelCol=label, seed=seed),
        ]
        evaluator = E.RegressionEvaluator(labelCol=label)
    if grid_size == "small":
        learners = learners[:1]  # the linear model only: a plumbing check
    best_model, best_score, trials = None, None, 0
    curve = _Curve(higher_is_better=evaluator.isLargerBetter())
    for learner in learners:
        grid = _grid(ParamGridBuilder(), learner, grid_size)
        cv = CrossValidator(
            estimator=learner,
            estimatorParamMaps=grid,
            evaluator=evaluator,
            numFolds=3,
            parallelism=cores,
            seed=seed,
        )
        fitted = cv.fit(prepared)
        trials += len(grid)
        score = (
            max(fitted.avgMetrics)
            if evaluator.isLargerBetter()
            else min(fitted.avgMetrics)
        )
        curve.add(score)
        better = best_score is None or (
            score > best_score if evaluator.isLargerBetter() else score < best_score
        )
        if better:
            best_model, best_score = fitted.bestModel, score
    seconds = time.monotonic() - started
    scored = best_model.transform(
        features.transform(spark.createDataFrame(test))
    ).toPandas()
    if classify:
        order = list(indexer.labels)
        probability = np.vstack([np.asarray(p) for p in scored["probability"]])
        predictions = _frame(classes, probability, order)
    else:
        predictions = pd.DataFrame({"prediction": scored["prediction"]})
    return predictions, {
        "fit_seconds": seconds,
        "trials": trials,
        "chosen": type(best_model).__name__,
        "curve": curve.points,
        "curve_metric": evaluator.getMetricName(),
    }


def _grid(builder, learner, size: str) -> list:
    """A default-style grid: a few values of each learner's main knobs; for
    ``size="small"`` the library's defaults alone (and only the linear
    model is tried)."""
    if size == "small":
        return builder.build()
    name = type(learner).__name__
    if name.startswith(("LogisticRegression", "LinearRegression")):
        builder.addGrid(learner.regParam, [0.0, 0.01, 0.1])
        builder.addGrid(learner.elasticNetParam, [0.0, 0.5])
    elif name.startswith("RandomForest"):
        builder.addGrid(learner.numTrees, [20, 50])
        builder.addGrid(learner.maxDepth, [5, 10])
    else:
        builder.addGrid(learner.maxDepth, [3, 5])
        builder.addGrid(learner.maxIter, [20, 50])
    return builder.build()


def run_lightgbm_default(train, test, label, task, classes, budget, cores, seed):
    """The floor: LightGBM with its defaults, no search."""
    import lightgbm

    X_train, X_test = pandas_features(train, test, label)
    started = time.monotonic()
    if task == "classification":
        model = lightgbm.LGBMClassifier(n_jobs=cores, random_state=seed, verbose=-1)
        model.fit(X_train, train[label].astype(str))
        order = [str(c) for c in model.classes_]
        predictions = _frame(classes, model.predict_proba(X_test), order)
    else:
        model = lightgbm.LGBMRegressor(n_jobs=cores, random_state=seed, verbose=-1)
        model.fit(X_train, train[label])
        predictions = pd.DataFrame({"prediction": model.predict(X_test)})
    return predictions, {
        "fit_seconds": time.monotonic() - started,
        "trials": 1,
        "chosen": "lightgbm (defaults)",
        "curve": [],
        "curve_metric": "",
    }


RUNNERS = {
    "sparktrain": run_sparktrain,
    "flaml": run_flaml,
    "h2o": run_h2o,
    "sparkml-cv": run_sparkml_cv,
    "lightgbm-default": run_lightgbm_default,
}
