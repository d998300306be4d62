"""``ComputeModelStatistics`` and ``ComputePerInstanceStatistics``.

Both read a scored table (the output of a trained model's ``transform``):
the label, the ``prediction`` in the label's own values, and for classifiers
the ``probability`` vector whose class order the model records.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.evaluation import BinaryClassificationEvaluator, RegressionEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasLabelCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktrain.columns import quote, require_column
from sparktrain.errors import ConfigError, DataError

EPSILON = 1e-15
_TASKS = ("auto", "classification", "regression")


class _StatisticsParams(HasLabelCol):
    predictionCol = Param(
        Params._dummy(),
        "predictionCol",
        "predicted values",
        typeConverter=TypeConverters.toString,
    )
    probabilityCol = Param(
        Params._dummy(),
        "probabilityCol",
        "class probabilities (classification)",
        typeConverter=TypeConverters.toString,
    )
    evaluationMetric = Param(
        Params._dummy(),
        "evaluationMetric",
        "auto, classification or regression",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            predictionCol="prediction",
            probabilityCol="probability",
            evaluationMetric="auto",
        )

    def _task(self, dataset: DataFrame) -> str:
        task = self.getOrDefault("evaluationMetric")
        if task not in _TASKS:
            raise ConfigError(
                f"evaluationMetric={task!r}; expected one of {list(_TASKS)}"
            )
        for name in ("labelCol", "predictionCol"):
            require_column(dataset, self.getOrDefault(name), role=name)
        if task != "auto":
            return task
        if self.getOrDefault("probabilityCol") in dataset.columns:
            return "classification"
        label_type = dataset.schema[self.getOrDefault("labelCol")].dataType
        return (
            "regression" if isinstance(label_type, T.NumericType) else "classification"
        )

    def _classes(self, dataset: DataFrame) -> list[str]:
        column = self.getOrDefault("probabilityCol")
        if column in dataset.columns:
            known = dataset.schema[column].metadata.get("sparktrain", {}).get("classes")
            if known:
                return list(known)
        label, prediction = (
            self.getOrDefault("labelCol"),
            self.getOrDefault("predictionCol"),
        )
        values = (
            dataset.select(F.col(quote(label)).alias("v"))
            .union(dataset.select(F.col(quote(prediction)).alias("v")))
            .distinct()
            .where("v IS NOT NULL")
            .orderBy("v")
        )
        return [r[0] for r in values.select(F.col("v").cast("string")).collect()]


class ComputeModelStatistics(
    _StatisticsParams, Transformer, DefaultParamsReadable, DefaultParamsWritable
):
    """Model quality over a scored table, as a one-row DataFrame or a dict.

    Classification: accuracy, precision/recall/F1 (macro and weighted), log
    loss, and for two classes ROC AUC and PR AUC (the second class in the
    model's order is the positive one), plus the confusion matrix in
    :meth:`compute`. Regression: RMSE, MAE, R² and explained variance.

    Examples
    --------
    >>> stats = ComputeModelStatistics(labelCol="Status")
    >>> stats.compute(model.transform(test))["accuracy"]  # doctest: +SKIP
    0.81
    """

    @keyword_only
    def __init__(
        self,
        *,
        labelCol: str | None = None,
        predictionCol: str | None = None,
        probabilityCol: str | None = None,
        evaluationMetric: str | None = None,
    ) -> None:
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def compute(self, dataset: DataFrame) -> dict[str, Any]:
        """The statistics as a dict (the confusion matrix included)."""
        if self._task(dataset) == "regression":
            return self._regression(dataset)
        return self._classification(dataset)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        stats = self.compute(dataset)
        flat = {
            k: float(v)
            for k, v in stats.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return dataset.sparkSession.createDataFrame([flat])

    def _regression(self, dataset: DataFrame) -> dict[str, Any]:
        frame = _numeric_pair(
            dataset, self.getOrDefault("labelCol"), self.getOrDefault("predictionCol")
        )
        evaluator = RegressionEvaluator(labelCol="label", predictionCol="prediction")
        names = {"rmse": "rmse", "mae": "mae", "r2": "r2", "var": "explained_variance"}
        stats = {
            out: evaluator.setMetricName(m).evaluate(frame) for m, out in names.items()
        }
        stats["rows"] = frame.count()
        return stats

    def _classification(self, dataset: DataFrame) -> dict[str, Any]:
        classes = self._classes(dataset)
        label, prediction = (
            self.getOrDefault("labelCol"),
            self.getOrDefault("predictionCol"),
        )
        pairs = (
            dataset.where(F.col(quote(label)).isNotNull())
            .groupBy(
                F.col(quote(label)).cast("string").alias("actual"),
                F.col(quote(prediction)).cast("string").alias("predicted"),
            )
            .count()
            .collect()
        )
        matrix = [[0] * len(classes) for _ in classes]
        position = {c: i for i, c in enumerate(classes)}
        for row in pairs:
            if row["actual"] not in position or row["predicted"] not in position:
                raise DataError(
                    f"value {row['actual']!r} of {label!r} or {row['predicted']!r} of "
                    f"{prediction!r} is not among the model's classes {classes}"
                )
            matrix[position[row["actual"]]][position[row["predicted"]]] += row["count"]
        stats = _from_confusion(matrix)
        stats["classes"] = classes
        stats["confusion_matrix"] = matrix
        if self.getOrDefault("probabilityCol") in dataset.columns:
            stats.update(self._probability_metrics(dataset, classes))
        return stats

    def _probability_metrics(self, dataset: DataFrame, classes: list[str]) -> dict:
        indexed = _with_true_probability(
            dataset,
            self.getOrDefault("labelCol"),
            self.getOrDefault("probabilityCol"),
            classes,
        )
        stats = {"log_loss": indexed.agg(F.avg("__log_loss")).first()[0]}
        if len(classes) == 2:
            binary = indexed.select(
                F.col("__index").alias("label"),
                vector_to_array(F.col(self.getOrDefault("probabilityCol")))[1].alias(
                    "score"
                ),
            )
            evaluator = BinaryClassificationEvaluator(
                labelCol="label", rawPredictionCol="score"
            )
            stats["roc_auc"] = evaluator.setMetricName("areaUnderROC").evaluate(binary)
            stats["pr_auc"] = evaluator.setMetricName("areaUnderPR").evaluate(binary)
        return stats


class ComputePerInstanceStatistics(
    _StatisticsParams, Transformer, DefaultParamsReadable, DefaultParamsWritable
):
    """Add per-row statistics: ``log_loss`` for classifiers; ``residual``,
    ``squared_error`` and ``absolute_error`` for regressors."""

    @keyword_only
    def __init__(
        self,
        *,
        labelCol: str | None = None,
        predictionCol: str | None = None,
        probabilityCol: str | None = None,
        evaluationMetric: str | None = None,
    ) -> None:
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def _transform(self, dataset: DataFrame) -> DataFrame:
        label, prediction = (
            self.getOrDefault("labelCol"),
            self.getOrDefault("predictionCol"),
        )
        if self._task(dataset) == "regression":
            residual = F.col(quote(label)).cast("double") - F.col(quote(prediction))
            return (
                dataset.withColumn("residual", residual)
                .withColumn("squared_error", F.pow(residual, 2))
                .withColumn("absolute_error", F.abs(residual))
            )
        probability = self.getOrDefault("probabilityCol")
        if probability not in dataset.columns:
            raise DataError(
                f"per-row log loss needs the probability column "
                f"{probability!r}; score with a model that gives probabilities"
            )
        scored = _with_true_probability(
            dataset, label, probability, self._classes(dataset)
        )
        return scored.withColumnRenamed("__log_loss", "log_loss").drop("__index")


def _numeric_pair(dataset: DataFrame, label: str, prediction: str) -> DataFrame:
    if not isinstance(dataset.schema[label].dataType, T.NumericType):
        raise DataError(
            f"regression statistics need a numeric label; {label!r} has "
            f"type {dataset.schema[label].dataType.simpleString()}"
        )
    return dataset.select(
        F.col(quote(label)).cast("double").alias("label"),
        F.col(quote(prediction)).cast("double").alias("prediction"),
    ).where("label IS NOT NULL")


def _with_true_probability(dataset, label, probability, classes) -> DataFrame:
    index = (
        F.array_position(
            F.array(*[F.lit(c) for c in classes]), F.col(quote(label)).cast("string")
        )
        - 1
    )
    true_p = F.element_at(vector_to_array(F.col(probability)), index.cast("int") + 1)
    clipped = F.least(F.greatest(true_p, F.lit(EPSILON)), F.lit(1 - EPSILON))
    return (
        dataset.where(F.col(quote(label)).isNotNull())
        .withColumn("__index", index.cast("double"))
        .withColumn("__log_loss", -F.log(clipped))
    )


def _from_confusion(matrix: list[list[int]]) -> dict[str, float]:
    total = sum(map(sum, matrix))
    if total == 0:
        raise DataError("no row has both a label and a prediction to measure")
    k = len(matrix)
    support = [sum(matrix[i]) for i in range(k)]
    predicted = [sum(matrix[i][j] for i in range(k)) for j in range(k)]
    precision = [matrix[j][j] / predicted[j] if predicted[j] else 0.0 for j in range(k)]
    recall = [matrix[i][i] / support[i] if support[i] else 0.0 for i in range(k)]
    f1 = [
        2 * p * r / (p + r) if p + r else 0.0
        for p, r in zip(precision, recall, strict=True)
    ]
    present = [i for i in range(k) if support[i]]

    def weighted(values: list[float]) -> float:
        return sum(values[i] * support[i] for i in range(k)) / total

    def macro(values: list[float]) -> float:
        return sum(values[i] for i in present) / len(present) if present else math.nan

    return {
        "accuracy": sum(matrix[i][i] for i in range(k)) / total,
        "precision_macro": macro(precision),
        "recall_macro": macro(recall),
        "f1_macro": macro(f1),
        "precision_weighted": weighted(precision),
        "recall_weighted": weighted(recall),
        "f1_weighted": weighted(f1),
        "rows": total,
    }
