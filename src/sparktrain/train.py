"""``TrainClassifier`` and ``TrainRegressor``: featurize and fit in one call.

The fitted model is one native Spark pipeline (feature stages, an optional
scaler, the learner, and a SQL step that decodes the prediction back to the
label's own values), wrapped with what was learned about the columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Estimator, Model, PipelineModel
from pyspark.ml.classification import MultilayerPerceptronClassifier, OneVsRest
from pyspark.ml.feature import SQLTransformer, StandardScaler
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasLabelCol, HasSeed
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktrain._persist import CompositeReadable, CompositeWritable
from sparktrain.columns import quote, require_column
from sparktrain.errors import ColumnNotFoundError, ConfigError, DataError
from sparktrain.featurize import Featurize, FeaturizeModel
from sparktrain.learners import Learner, describe, get_learner

logger = logging.getLogger(__name__)

MAX_CLASSES = 100
OUTPUT_COLUMNS = ("prediction", "probability", "rawPrediction")
_LABEL = "__st_label"
_FEATURES = "__st_features"
_SCALED = "__st_scaled"
_INDEX = "__st_prediction_index"
_UNSUPPORTED_LABELS = (T.MapType, T.StructType, T.ArrayType, T.BinaryType)


@dataclass
class Prepared:
    """A table made ready for a learner: labelled rows, featurized."""

    dataset: DataFrame
    label: str
    labelled: DataFrame  # rows with a label, the encoded label in ``_LABEL``;
    # cached unless the input already is
    featurizer: FeaturizeModel
    features: DataFrame  # ``labelled`` plus the vector column ``_FEATURES``
    classes: list[str]
    rows: int
    dropped: int

    def release(self) -> None:
        self.labelled.unpersist()


class _TrainParams(HasLabelCol, HasSeed):
    model = Param(
        Params._dummy(),
        "model",
        "a pyspark.ml learner instance, or a learner name such as 'gbt'",
    )
    excludeCols = Param(
        Params._dummy(),
        "excludeCols",
        "columns never to use",
        typeConverter=TypeConverters.toListString,
    )
    columnKinds = Param(
        Params._dummy(), "columnKinds", "per-column kind overrides for Featurize"
    )
    maxCategories = Param(
        Params._dummy(),
        "maxCategories",
        "most distinct values a one-hot encoded column may have",
        typeConverter=TypeConverters.toInt,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            model="random_forest",
            excludeCols=[],
            columnKinds={},
            maxCategories=50,
            seed=42,
        )


class _Trainer(_TrainParams, Estimator, CompositeReadable, CompositeWritable):
    task = ""

    @keyword_only
    def __init__(
        self,
        *,
        model: Any = None,
        labelCol: str | None = None,
        excludeCols: list[str] | None = None,
        columnKinds: dict[str, str] | None = None,
        maxCategories: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def _state(self):
        chosen = self.getOrDefault("model")
        if isinstance(chosen, str):
            return {"model": chosen}, {}
        return {"model": None}, {"learner": describe(chosen).instance}

    def _restore(self, extra, inner) -> None:
        self._set(model=extra["model"] or inner["learner"])

    def _learner(self) -> Learner:
        chosen = self.getOrDefault("model")
        learner = (
            get_learner(chosen, self.task)
            if isinstance(chosen, str)
            else describe(chosen)
        )
        if learner.task != self.task:
            other = (
                "TrainRegressor"
                if learner.task == "regression"
                else ("TrainClassifier")
            )
            raise ConfigError(
                f"model={learner.name} is a {learner.task} learner; use {other} for "
                f"it, or pass a {self.task} learner"
            )
        return learner

    def _fit(self, dataset: DataFrame) -> TrainedModel:
        learner = self._learner()
        prepared = self._prepare(dataset)
        stages = list(prepared.featurizer.pipeline.stages)
        features, features_col = prepared.features, _FEATURES
        if learner.needs_scaling:
            scaler = StandardScaler(
                inputCol=_FEATURES, outputCol=_SCALED, withMean=False, withStd=True
            ).fit(features)
            stages.append(scaler)
            features = scaler.transform(features)
            features_col = _SCALED
        estimator = self._configure_learner(
            learner,
            features_col,
            len(prepared.featurizer.featureNames),
            len(prepared.classes),
        )
        fitted = estimator.fit(features)
        prepared.release()
        return self._assemble(prepared, learner.name, [*stages, fitted], features_col)

    def _prepare(self, dataset: DataFrame) -> Prepared:
        """Labelled rows (label encoded in ``_LABEL``), featurized and cached."""
        label = self.getOrDefault("labelCol")
        require_column(dataset, label, role="label column")
        classes, rows, dropped = self._labels(dataset, label)
        if dropped:
            logger.warning(
                "dropped %d row(s) whose label %r is missing", dropped, label
            )
        labelled = dataset.where(~_missing(dataset, label)).withColumn(
            _LABEL, self._label_expression(label, classes)
        )
        if not dataset.storageLevel.useMemory and not dataset.storageLevel.useDisk:
            # Cached input is read cheaply already; anything else (a CSV, a
            # query) would otherwise be computed again by every pass.
            labelled = labelled.cache()
        featurizer = Featurize(
            labelCol=label,
            outputCol=_FEATURES,
            excludeCols=[*self.getOrDefault("excludeCols"), _LABEL],
            columnKinds=self.getOrDefault("columnKinds"),
            maxCategories=self.getOrDefault("maxCategories"),
        ).fit(labelled)
        return Prepared(
            dataset,
            label,
            labelled,
            featurizer,
            featurizer.transform(labelled),
            classes,
            rows,
            dropped,
        )

    def _assemble(
        self, prepared: Prepared, name: str, stages: list, features_col: str
    ) -> TrainedModel:
        """The model: feature stages, the fitted learner, the decoding step."""
        featurizer, label, dataset = (
            prepared.featurizer,
            prepared.label,
            prepared.dataset,
        )
        helpers = [*featurizer.helperColumns, *dict.fromkeys([_FEATURES, features_col])]
        stages = [
            *stages,
            self._output_stage(helpers, prepared.classes, dataset, label),
        ]
        logger.info(
            "fitted %s on %d rows (%d without a label dropped)",
            name,
            prepared.rows,
            prepared.dropped,
        )
        model = TrainedModel()
        model._setup(
            self,
            PipelineModel(stages=stages),
            featurizer,
            {
                "task": self.task,
                "learner": name,
                "labelCol": label,
                "labelType": dataset.schema[label].dataType.simpleString(),
                "classes": prepared.classes,
                "rows": {
                    "labelled": prepared.rows,
                    "null_label_dropped": prepared.dropped,
                },
                "fit": _fit_report(stages[-2]),
            },
        )
        return model

    def _configure_learner(
        self, learner: Learner, features_col: str, num_features: int, num_classes: int
    ):
        estimator = learner.build(self.getOrDefault("seed"))
        if isinstance(
            estimator, MultilayerPerceptronClassifier
        ) and not estimator.isSet("layers"):
            hidden = max(8, min(64, num_features // 2))
            estimator.setLayers([num_features, hidden, num_classes])
        if self.task == "classification" and num_classes > 2 and not learner.multiclass:
            logger.info("%s is binary only: wrapping it in one-vs-rest", learner.name)
            estimator = OneVsRest(classifier=estimator)
        estimator.setFeaturesCol(features_col).setLabelCol(_LABEL)
        if self.task == "classification":
            estimator.setPredictionCol(_INDEX)
            if estimator.hasParam("probabilityCol"):
                estimator.setProbabilityCol("probability")
            if estimator.hasParam("rawPredictionCol"):
                estimator.setRawPredictionCol("rawPrediction")
        else:
            estimator.setPredictionCol("prediction")
        return estimator


class TrainClassifier(_Trainer):
    """Featurize a table and fit a classifier to ``labelCol`` in one call.

    Parameters
    ----------
    model : pyspark.ml classifier or str
        A configured learner (``GBTClassifier(maxDepth=4)``) or a name:
        ``logistic_regression``, ``decision_tree``, ``random_forest`` (default),
        ``gbt``, ``linear_svc``, ``naive_bayes``, ``multilayer_perceptron``,
        ``factorization_machines``. Binary-only learners are wrapped in
        one-vs-rest when the label has more than two classes.
    labelCol : str
        A string, boolean, integer or double column; predictions come back in
        its type. Rows without a label are dropped and counted.
    excludeCols, columnKinds, maxCategories
        Passed to :class:`~sparktrain.featurize.Featurize`.
    seed : int

    Examples
    --------
    >>> trainer = TrainClassifier(model="gbt", labelCol="Status")
    >>> model = trainer.fit(frame)  # doctest: +SKIP
    >>> model.transform(frame).select("prediction", "probability")  # doctest: +SKIP
    """

    task = "classification"

    def _labels(self, frame: DataFrame, label: str) -> tuple[list[str], int, int]:
        """Classes in their natural order, labelled rows, rows without a label."""
        dtype = frame.schema[label].dataType
        if isinstance(dtype, _UNSUPPORTED_LABELS):
            raise DataError(
                f"label column {label!r} has type {dtype.simpleString()}; "
                "expected strings, booleans or numbers"
            )
        groups = (
            frame.groupBy(
                _missing(frame, label).alias("missing"), F.col(quote(label)).alias("v")
            )
            .count()
            .orderBy("missing", "v")
            .limit(MAX_CLASSES + 3)
            .select("missing", F.col("v").cast("string").alias("v"), "count")
            .collect()
        )
        present = [g for g in groups if not g["missing"]]
        dropped = sum(g["count"] for g in groups if g["missing"])
        _require_labels(label, sum(g["count"] for g in present), dropped)
        classes = [g["v"] for g in present]
        if len(classes) > MAX_CLASSES:
            raise DataError(
                f"label column {label!r} has more than {MAX_CLASSES} "
                "distinct values; for a numeric target use TrainRegressor"
            )
        if len(classes) < 2:
            raise DataError(
                f"label column {label!r} holds one class only "
                f"({classes[0]!r}); a classifier needs at least two"
            )
        return classes, sum(g["count"] for g in present), dropped

    def _label_expression(self, label: str, classes: list[str]):
        return (
            F.array_position(
                F.array(*[F.lit(c) for c in classes]),
                F.col(quote(label)).cast("string"),
            )
            - 1
        ).cast("double")

    def _output_stage(self, helpers, classes, dataset, label) -> SQLTransformer:
        helpers = [*helpers, _INDEX]
        label_type = dataset.schema[label].dataType.simpleString()
        literals = ", ".join(_sql_string(c) for c in classes)
        decoded = (
            f"CAST(element_at(array({literals}), CAST({_INDEX} AS INT) + 1) "
            f"AS {label_type}) AS prediction"
        )
        return _select_except(helpers, decoded)


class TrainRegressor(_Trainer):
    """Featurize a table and fit a regressor to the numeric ``labelCol``.

    ``model`` is a configured regressor or a name: ``linear_regression``,
    ``generalized_linear_regression``, ``decision_tree``, ``random_forest``
    (default), ``gbt``, ``factorization_machines``, ``isotonic_regression``.
    """

    task = "regression"

    def _labels(self, frame: DataFrame, label: str) -> tuple[list[str], int, int]:
        dtype = frame.schema[label].dataType
        if not isinstance(dtype, T.NumericType):
            raise DataError(
                f"label column {label!r} has type {dtype.simpleString()}; regression "
                "needs a number. Cast it, or use TrainClassifier for classes"
            )
        counts = frame.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(_missing(frame, label).cast("long")).alias("missing"),
        ).first()
        dropped = int(counts["missing"] or 0)
        _require_labels(label, counts["rows"] - dropped, dropped)
        return [], counts["rows"] - dropped, dropped

    def _label_expression(self, label: str, classes: list[str]):
        return F.col(quote(label)).cast("double")

    def _output_stage(self, helpers, classes, dataset, label) -> SQLTransformer:
        return _select_except(helpers)


class TrainedModel(Model, CompositeReadable, CompositeWritable):
    """A fitted :class:`TrainClassifier` or :class:`TrainRegressor`.

    ``transform`` keeps every input column and adds ``prediction`` in the
    label's type; classifiers also add ``probability`` (classes in the order
    of :attr:`classes`) and ``rawPrediction`` where the learner has them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pipeline: PipelineModel | None = None
        self.featurizeModel: FeaturizeModel | None = None
        self.info: dict[str, Any] = {}

    def _setup(self, trainer, pipeline, featurizer, info) -> None:
        self.pipeline = pipeline
        self.featurizeModel = featurizer
        self.info = info

    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def learnerModel(self) -> Any:
        """The fitted pyspark.ml learner inside the pipeline."""
        return self.pipeline.stages[-2]

    def featureImportances(self) -> dict[str, float]:
        """Importance per input column (summed over its features), if the learner
        has ``featureImportances`` or coefficients; largest first."""
        learner = self.learnerModel
        if hasattr(learner, "featureImportances"):
            weights = learner.featureImportances.toArray()
        elif hasattr(learner, "coefficients"):
            weights = abs(learner.coefficients.toArray())
        else:
            raise ConfigError(
                f"{type(learner).__name__} has no feature importances or coefficients"
            )
        totals: dict[str, float] = {}
        for source, weight in zip(
            self.featurizeModel.featureSources, weights, strict=True
        ):
            totals[source] = totals.get(source, 0.0) + float(weight)
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def _transform(self, dataset: DataFrame) -> DataFrame:
        decisions = [d.as_dict() for d in self.featurizeModel.decisions]
        return score(
            self.pipeline,
            dataset,
            self.featurizeModel.inputColumns,
            self.classes,
            typed_columns(decisions),
        )

    def _state(self):
        return {"info": self.info}, {
            "pipeline": self.pipeline,
            "featurize": self.featurizeModel,
        }

    def _restore(self, extra, inner) -> None:
        self.pipeline = inner["pipeline"]
        self.featurizeModel = inner["featurize"]
        self.info = extra["info"]


def score(
    pipeline: PipelineModel,
    frame: DataFrame,
    input_columns: list[str],
    classes: list[str],
    typed_columns: dict[str, str] | None = None,
) -> DataFrame:
    """Check ``frame`` against a trained pipeline, then score it.

    ``typed_columns`` maps the columns trained as numbers, booleans or dates
    to their training type; arriving as strings they are refused with the
    column named, rather than failing inside Spark on the first bad value.
    The probability column carries the class order in its metadata, which
    :class:`~sparktrain.statistics.ComputeModelStatistics` reads.
    """
    missing = [c for c in input_columns if c not in frame.columns]
    if missing:
        raise ColumnNotFoundError(
            f"the table lacks column(s) {missing} that the model was trained on; "
            f"the table has: {', '.join(frame.columns)}"
        )
    _require_types(frame, typed_columns or {})
    clashes = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    if clashes:
        raise DataError(
            f"the table already has column(s) {clashes}, which scoring adds; "
            "rename or drop them first"
        )
    scored = pipeline.transform(frame)
    if "probability" in scored.columns:
        meta = {"sparktrain": {"classes": classes}}
        scored = scored.withColumn(
            "probability", F.col("probability").alias("probability", metadata=meta)
        )
    return scored


def typed_columns(decisions: list[dict[str, Any]]) -> dict[str, str]:
    """The columns a model reads as numbers, booleans or dates, with their
    training types (from :meth:`ColumnDecision.as_dict` records)."""
    kinds = ("numeric", "boolean", "datetime")
    return {
        d["name"]: d["spark_type"]
        for d in decisions
        if d["kind"] in kinds and d["spark_type"] != "string"
    }


def _require_types(frame: DataFrame, expected: dict[str, str]) -> None:
    strings = [
        name
        for name, _ in expected.items()
        if name in frame.columns
        and isinstance(frame.schema[name].dataType, T.StringType)
    ]
    if strings:
        name = strings[0]
        raise DataError(
            f"column {name!r} is a string here but was {expected[name]} in "
            f"training ({len(strings)} such column(s): {strings}); cast it, e.g. "
            f"F.col({name!r}).cast({expected[name]!r}), or read the file with "
            "read_table(..., column_types=...) so rows that do not parse are "
            "set aside"
        )


def _fit_report(fitted: Any) -> dict[str, str]:
    """Where the learner ran, and why (single-node learners choose)."""
    info = getattr(fitted, "info", None)
    if isinstance(info, dict) and "mode" in info:
        return {"mode": info["mode"], "reason": info["modeReason"]}
    return {"mode": "spark", "reason": "a SparkML learner runs on the executors"}


def _missing(frame: DataFrame, label: str):
    column = F.col(quote(label))
    if isinstance(frame.schema[label].dataType, (T.FloatType, T.DoubleType)):
        return column.isNull() | F.isnan(column)
    return column.isNull()


def _require_labels(label: str, labelled: int, dropped: int) -> None:
    if labelled:
        return
    if dropped:
        raise DataError(
            f"label column {label!r} is missing in every row; "
            "choose a label that has values"
        )
    raise DataError("the training table has no rows")


def _select_except(helpers: list[str], *extra: str) -> SQLTransformer:
    columns = ", ".join(quote(h) for h in helpers)
    added = "".join(f", {e}" for e in extra)
    return SQLTransformer(statement=f"SELECT * EXCEPT ({columns}){added} FROM __THIS__")


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
