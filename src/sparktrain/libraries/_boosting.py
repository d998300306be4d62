"""LightGBM and XGBoost as ``pyspark.ml`` estimators.

Both fit on the driver (or in trial-parallel tasks) through the libraries'
scikit-learn interfaces. XGBoost also fits across executors with
``xgboost.spark`` when ``mode='distributed'``, or when ``mode='auto'`` and the
table is too large for the driver; the distributed booster is then scored like
a local one.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from pyspark import keyword_only
from pyspark.ml.param import TypeConverters
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparktrain._extras import require
from sparktrain.columns import quote
from sparktrain.errors import ConfigError, DataError
from sparktrain.libraries._base import (
    SingleNodeClassifier,
    SingleNodeModel,
    SingleNodeRegressor,
    param,
    spark_context,
)

logger = logging.getLogger(__name__)

_TO_INT = TypeConverters.toInt
_TO_FLOAT = TypeConverters.toFloat


class _BoostingParams:
    numIterations = param("numIterations", "boosting rounds", _TO_INT)
    learningRate = param("learningRate", "shrinkage per round", _TO_FLOAT)
    maxDepth = param("maxDepth", "deepest a tree may grow (-1: no limit)", _TO_INT)
    subsample = param("subsample", "share of rows sampled per tree", _TO_FLOAT)
    colsampleBytree = param(
        "colsampleBytree", "share of features sampled per tree", _TO_FLOAT
    )
    regAlpha = param("regAlpha", "L1 regularization", _TO_FLOAT)
    regLambda = param("regLambda", "L2 regularization", _TO_FLOAT)


class _LightGBMParams(_BoostingParams):
    numLeaves = param("numLeaves", "most leaves per tree", _TO_INT)
    minDataInLeaf = param("minDataInLeaf", "fewest rows in a leaf", _TO_INT)

    libraryParams: ClassVar[dict[str, str]] = {
        "numIterations": "n_estimators",
        "learningRate": "learning_rate",
        "maxDepth": "max_depth",
        "numLeaves": "num_leaves",
        "minDataInLeaf": "min_child_samples",
        "subsample": "subsample",
        "colsampleBytree": "colsample_bytree",
        "regAlpha": "reg_alpha",
        "regLambda": "reg_lambda",
    }

    @classmethod
    def _trial_cost(cls, kwargs: dict[str, Any]) -> float:
        depth = kwargs.get("max_depth") or -1
        leaves = kwargs.get("num_leaves") or 31
        if depth > 0:
            leaves = min(leaves, 2**depth)
        return (kwargs.get("n_estimators") or 100) * leaves

    @classmethod
    def _build(cls, kwargs: dict[str, Any], threads: int, seed: int) -> Any:
        lightgbm = require("lightgbm", extra="boost", purpose="LightGBM")
        estimator = (
            lightgbm.LGBMClassifier
            if cls.task == "classification"
            else lightgbm.LGBMRegressor
        )
        if kwargs.get("subsample", 1.0) < 1.0:
            kwargs = {"subsample_freq": 1, **kwargs}
        return estimator(
            **{
                "n_jobs": threads or None,
                "random_state": seed,
                "verbose": -1,
                **kwargs,
            }
        )


class LightGBMClassifier(_LightGBMParams, SingleNodeClassifier):
    """LightGBM gradient-boosted trees for classes, fitted on one machine.

    Labels are class indices 0..k-1 (``TrainClassifier`` takes any label and
    indexes it for you). Unset Params keep LightGBM's own defaults; anything
    else LightGBM takes goes in ``extraParams`` by LightGBM's own name.

    Examples
    --------
    >>> from sparktrain import TrainClassifier
    >>> lgbm = LightGBMClassifier(numIterations=200, numLeaves=15)
    >>> TrainClassifier(model=lgbm, labelCol="Status")  # doctest: +ELLIPSIS
    TrainClassifier_...
    """

    library = "lightgbm"
    extra = "boost"

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        probabilityCol: str = "probability",
        rawPredictionCol: str = "rawPrediction",
        weightCol: str | None = None,
        numIterations: int | None = None,
        learningRate: float | None = None,
        maxDepth: int | None = None,
        numLeaves: int | None = None,
        minDataInLeaf: int | None = None,
        subsample: float | None = None,
        colsampleBytree: float | None = None,
        regAlpha: float | None = None,
        regLambda: float | None = None,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)


class LightGBMRegressor(_LightGBMParams, SingleNodeRegressor):
    """LightGBM gradient-boosted trees for a numeric label, on one machine.

    Params as for :class:`LightGBMClassifier`.
    """

    library = "lightgbm"
    extra = "boost"

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        weightCol: str | None = None,
        numIterations: int | None = None,
        learningRate: float | None = None,
        maxDepth: int | None = None,
        numLeaves: int | None = None,
        minDataInLeaf: int | None = None,
        subsample: float | None = None,
        colsampleBytree: float | None = None,
        regAlpha: float | None = None,
        regLambda: float | None = None,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)


class _XGBoostParams(_BoostingParams):
    minChildWeight = param(
        "minChildWeight", "least hessian weight in a child", _TO_FLOAT
    )
    numWorkers = param(
        "numWorkers",
        "Spark tasks in distributed mode; 0 means every core of the session",
        _TO_INT,
    )

    libraryParams: ClassVar[dict[str, str]] = {
        "numIterations": "n_estimators",
        "learningRate": "learning_rate",
        "maxDepth": "max_depth",
        "minChildWeight": "min_child_weight",
        "subsample": "subsample",
        "colsampleBytree": "colsample_bytree",
        "regAlpha": "reg_alpha",
        "regLambda": "reg_lambda",
    }
    distributed = True

    @classmethod
    def _trial_cost(cls, kwargs: dict[str, Any]) -> float:
        leaves = kwargs.get("max_leaves") or 2 ** (kwargs.get("max_depth") or 6)
        return (kwargs.get("n_estimators") or 100) * leaves

    @classmethod
    def _build(cls, kwargs: dict[str, Any], threads: int, seed: int) -> Any:
        xgboost = require("xgboost", extra="boost", purpose="XGBoost")
        estimator = (
            xgboost.XGBClassifier
            if cls.task == "classification"
            else xgboost.XGBRegressor
        )
        return estimator(**{"n_jobs": threads or None, "random_state": seed, **kwargs})

    def _fit_distributed(self, dataset: DataFrame, reason: str) -> SingleNodeModel:
        """Fit with ``xgboost.spark`` across executors, then keep the booster."""
        context = spark_context(dataset.sparkSession)
        if context is None:
            raise ConfigError(
                "mode='distributed' XGBoost needs a classic Spark session "
                "(xgboost.spark runs barrier tasks); Spark Connect cannot run it. "
                "Use mode='local', or connect with a spark:// master"
            )
        spark_xgb = require("xgboost.spark", extra="boost", purpose="XGBoost")
        label, features = self.getLabelCol(), self.getFeaturesCol()
        frame, classes = self._distributed_labels(dataset, label)
        workers = self.getOrDefault(self.numWorkers) or context.defaultParallelism
        estimator_class = (
            spark_xgb.SparkXGBClassifier
            if self.task == "classification"
            else spark_xgb.SparkXGBRegressor
        )
        kwargs = self._library_kwargs()
        kwargs.pop("n_jobs", None)
        options = dict(
            features_col=features,
            label_col=label,
            num_workers=workers,
            random_state=self.getOrDefault(self.seed),
            **kwargs,
        )
        options.setdefault("verbose", False)
        if self.isSet("weightCol") and self.getOrDefault("weightCol"):
            options["weight_col"] = self.getOrDefault("weightCol")
        started = time.perf_counter()
        fitted = estimator_class(**options).fit(frame)
        seconds = time.perf_counter() - started
        logger.info(
            "XGBoost fitted on %d Spark tasks in %.2f s (%s)", workers, seconds, reason
        )
        local = self._build(kwargs, 0, self.getOrDefault(self.seed))
        local.load_model(bytearray(fitted.get_booster().save_raw("ubj")))
        width = frame.select(features).first()[0].size
        return self._model(local, width, classes, "distributed", reason, seconds)

    def _distributed_labels(self, dataset: DataFrame, label: str):
        """Check labels on the cluster; recode classes to 0..k-1 there."""
        column = F.col(quote(label))
        missing = dataset.where(column.isNull() | F.isnan(column)).count()
        if missing:
            raise DataError(
                f"label column {label!r} is missing (null or NaN) in {missing} "
                "row(s); drop or fill them"
            )
        if self.task == "regression":
            return dataset, []
        values = [
            row[0]
            for row in dataset.select(column.cast("double"))
            .distinct()
            .orderBy(label)
            .limit(1001)
            .collect()
        ]
        if any(v != round(v) or v < 0 for v in values) or len(values) > 1000:
            raise DataError(
                f"label column {label!r} holds {values[:5]}...; a classifier here "
                "needs class indices 0, 1, 2, ..."
            )
        if len(values) < 2:
            raise DataError(f"label column {label!r} holds one class only ({values})")
        recoded = F.array_position(F.array(*[F.lit(v) for v in values]), column) - 1
        return dataset.withColumn(label, recoded.cast("double")), [
            int(v) for v in values
        ]


class XGBoostClassifier(_XGBoostParams, SingleNodeClassifier):
    """XGBoost gradient-boosted trees for classes: local or distributed.

    ``mode='local'`` fits on the driver, ``mode='distributed'`` across
    ``numWorkers`` Spark tasks with ``xgboost.spark``; ``'auto'`` goes
    distributed only when the table is too large for the driver.

    Examples
    --------
    >>> XGBoostClassifier(numIterations=300, maxDepth=4).getMode()
    'auto'
    """

    library = "xgboost"
    extra = "boost"

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        probabilityCol: str = "probability",
        rawPredictionCol: str = "rawPrediction",
        weightCol: str | None = None,
        numIterations: int | None = None,
        learningRate: float | None = None,
        maxDepth: int | None = None,
        minChildWeight: float | None = None,
        subsample: float | None = None,
        colsampleBytree: float | None = None,
        regAlpha: float | None = None,
        regLambda: float | None = None,
        numWorkers: int = 0,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._setDefault(numWorkers=0)
        self._set_kwargs(self._input_kwargs)


class XGBoostRegressor(_XGBoostParams, SingleNodeRegressor):
    """XGBoost gradient-boosted trees for a numeric label: local or distributed.

    Params as for :class:`XGBoostClassifier`.
    """

    library = "xgboost"
    extra = "boost"

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        weightCol: str | None = None,
        numIterations: int | None = None,
        learningRate: float | None = None,
        maxDepth: int | None = None,
        minChildWeight: float | None = None,
        subsample: float | None = None,
        colsampleBytree: float | None = None,
        regAlpha: float | None = None,
        regLambda: float | None = None,
        numWorkers: int = 0,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._setDefault(numWorkers=0)
        self._set_kwargs(self._input_kwargs)
