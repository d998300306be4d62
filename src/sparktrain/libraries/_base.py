"""The shared shape of every single-node learner as a ``pyspark.ml`` stage.

A :class:`SingleNodeEstimator` fits a library model (LightGBM, XGBoost,
scikit-learn, PyTorch) in one of three ways:

* *local* — the featurized table is brought to the driver (refused with a
  clear message when it would not fit) and the library fits it there;
* *trial-parallel* — :meth:`SingleNodeEstimator.fitMultiple` ships the table
  to each executor once, as a broadcast, and runs one fit per Spark task;
* *distributed* — learners whose library scales out (XGBoost through
  ``xgboost.spark``, PyTorch through ``TorchDistributor``) override
  ``_fit_distributed``.

The fitted :class:`SingleNodeModel` scores on the executors through an Arrow
UDF: the model is pickled once into the UDF, decoded once per Python worker,
and only the features column crosses to Python.
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import DenseVector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasFeaturesCol,
    HasLabelCol,
    HasPredictionCol,
    HasProbabilityCol,
    HasRawPredictionCol,
    HasSeed,
    HasWeightCol,
)
from pyspark.ml.util import (
    DefaultParamsReader,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparktrain.columns import quote
from sparktrain.errors import ConfigError, DataError
from sparktrain.libraries._matrix import (
    SPARSE_MIN_WIDTH,
    TrainingSet,
    collect,
    default_max_bytes,
)
from sparktrain.libraries._matrix import to_matrix as _to_matrix

logger = logging.getLogger(__name__)

MODES = ("auto", "local", "distributed")


def param(name: str, doc: str, converter=None) -> Param:
    """A class-level Param, as pyspark declares them."""
    return Param(Params._dummy(), name, doc, typeConverter=converter)


class _SingleNodeParams(
    HasFeaturesCol, HasLabelCol, HasPredictionCol, HasWeightCol, HasSeed
):
    mode = param(
        "mode",
        "where to fit: 'auto' (local when the table fits the driver), 'local', or "
        "'distributed' (XGBoost and PyTorch only)",
        TypeConverters.toString,
    )
    maxLocalBytes = param(
        "maxLocalBytes",
        "most bytes the featurized table may take on the driver in local mode; "
        "0 means a quarter of the driver machine's memory",
        TypeConverters.toInt,
    )
    numThreads = param(
        "numThreads",
        "threads per fit; 0 lets the library choose (all cores) in local mode and "
        "uses spark.task.cpus in trial-parallel mode",
        TypeConverters.toInt,
    )
    extraParams = param(
        "extraParams",
        "further keyword arguments for the library's estimator, by its own names",
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            mode="auto", maxLocalBytes=0, numThreads=0, extraParams={}, seed=42
        )

    def setFeaturesCol(self, value: str):
        return self._set(featuresCol=value)

    def setLabelCol(self, value: str):
        return self._set(labelCol=value)

    def setPredictionCol(self, value: str):
        return self._set(predictionCol=value)

    def setWeightCol(self, value: str):
        return self._set(weightCol=value)

    def setSeed(self, value: int):
        return self._set(seed=value)

    def setMode(self, value: str):
        return self._set(mode=value)

    def setMaxLocalBytes(self, value: int):
        return self._set(maxLocalBytes=value)

    def setNumThreads(self, value: int):
        return self._set(numThreads=value)

    def setExtraParams(self, value: dict[str, Any]):
        return self._set(extraParams=value)

    def getMode(self) -> str:
        return self.getOrDefault(self.mode)

    def getMaxLocalBytes(self) -> int:
        return self.getOrDefault(self.maxLocalBytes) or default_max_bytes()

    def getNumThreads(self) -> int:
        return self.getOrDefault(self.numThreads)

    def getExtraParams(self) -> dict[str, Any]:
        return dict(self.getOrDefault(self.extraParams))


class _ClassifierParams(HasProbabilityCol, HasRawPredictionCol):
    def setProbabilityCol(self, value: str):
        return self._set(probabilityCol=value)

    def setRawPredictionCol(self, value: str):
        return self._set(rawPredictionCol=value)


class SingleNodeEstimator(_SingleNodeParams, Estimator, MLReadable, MLWritable):
    """Base class: subclasses set ``task``, ``library``, ``extra`` and
    ``libraryParams`` and implement :meth:`_build`."""

    task: ClassVar[str] = ""
    library: ClassVar[str] = ""
    extra: ClassVar[str] = ""
    accepts_sparse: ClassVar[bool] = True
    distributed: ClassVar[bool] = False
    #: Param name -> the library's keyword argument.
    libraryParams: ClassVar[dict[str, str]] = {}
    model_class: ClassVar[type] = None

    def _set_kwargs(self, kwargs: dict[str, Any]) -> None:
        self._set(**{k: v for k, v in kwargs.items() if v is not None})

    # -- what subclasses provide --------------------------------------------

    @classmethod
    def _build(cls, kwargs: dict[str, Any], threads: int, seed: int) -> Any:
        """An unfitted library estimator with ``kwargs``."""
        raise NotImplementedError

    @classmethod
    def _fit_object(cls, data: TrainingSet, recipe: dict[str, Any]) -> Any:
        """Fit a library estimator on ``data`` (runs on the driver or a task)."""
        fitted = cls._build(recipe["kwargs"], recipe["threads"], recipe["seed"])
        if data.weight is None:
            fitted.fit(data.X, data.y)
        else:
            fitted.fit(data.X, data.y, sample_weight=data.weight)
        return fitted

    @classmethod
    def _trial_cost(cls, kwargs: dict[str, Any]) -> float:
        """A guess at a fit's relative cost, so the largest trials start first."""
        return 1.0

    def _fit_distributed(self, dataset: DataFrame, reason: str) -> SingleNodeModel:
        raise ConfigError(
            f"mode='distributed' is not available for {self.library}; use "
            "mode='local' (sample the table if it is too large), or a learner "
            "that scales out: XGBoost, PyTorch or a SparkML learner"
        )

    def _validate(self) -> None:
        """Check the configuration before any data moves."""

    # -- the estimator contract ---------------------------------------------

    def _library_kwargs(self) -> dict[str, Any]:
        kwargs = {
            keyword: self.getOrDefault(name)
            for name, keyword in self.libraryParams.items()
            if self.isDefined(name)
        }
        return {**kwargs, **self.getExtraParams()}

    def _recipe(self, threads: int) -> dict[str, Any]:
        return {
            "kwargs": self._library_kwargs(),
            "threads": threads,
            "seed": self.getOrDefault(self.seed),
        }

    def _fit(self, dataset: DataFrame) -> SingleNodeModel:
        mode = self.getMode()
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r}; expected one of {list(MODES)}")
        self._validate()
        if mode == "distributed":
            return self._fit_distributed(dataset, "mode='distributed' was asked for")
        try:
            data = self._collect(dataset)
        except DataError as exc:
            if mode == "auto" and self.distributed and "maxLocalBytes" in str(exc):
                logger.info("%s: fitting distributed, because %s", self.library, exc)
                return self._fit_distributed(dataset, f"too large for local: {exc}")
            raise
        classes = self._encode_labels(data)
        return self._fit_collected(data, classes, "the table fits the driver")

    def _fit_collected(self, data: TrainingSet, classes, reason) -> SingleNodeModel:
        started = time.perf_counter()
        fitted = self._fit_object(data, self._recipe(self.getNumThreads()))
        seconds = time.perf_counter() - started
        logger.info(
            "%s fitted locally on %d rows in %.2f s", self.library, data.rows, seconds
        )
        return self._model(fitted, data.width, classes, "local", reason, seconds)

    def _collect(self, dataset: DataFrame) -> TrainingSet:
        weight = self.getOrDefault(self.weightCol) if self.isSet("weightCol") else None
        return collect(
            dataset,
            features_col=self.getFeaturesCol(),
            label_col=self.getLabelCol(),
            weight_col=weight or None,
            max_bytes=self.getMaxLocalBytes(),
            accepts_sparse=self.accepts_sparse,
        )

    def _encode_labels(self, data: TrainingSet) -> list[int]:
        """Check the label; for classes, recode them to 0..k-1 in ``data.y``.

        Returns the original class indices in order (empty for regression).
        """
        column = self.getLabelCol()
        missing = int(np.isnan(data.y).sum())
        if missing:
            raise DataError(
                f"label column {column!r} is missing (null or NaN) in {missing} "
                "row(s); drop or fill them (TrainClassifier/TrainRegressor drop "
                "and count them for you)"
            )
        if self.task == "regression":
            return []
        return _encode_classes(data, column)

    def _model(self, fitted, width, classes, mode, reason, seconds) -> SingleNodeModel:
        model = self.model_class()
        model._setup(
            self,
            fitted,
            {
                "library": self.library,
                "task": self.task,
                "numFeatures": width,
                "classes": classes,
                "mode": mode,
                "modeReason": reason,
                "fitSeconds": round(seconds, 3),
            },
        )
        return model

    def fitMultiple(
        self, dataset: DataFrame, paramMaps: Sequence[dict[Param, Any]]
    ) -> Iterator[tuple[int, SingleNodeModel]]:
        """Fit one model per param map; in parallel Spark tasks where possible.

        The training set is collected once and broadcast, so each executor
        receives it once however many trials it runs. On Spark Connect, or
        with one core, the fits run one after another on the driver.
        """
        trials = [self.copy(extra) for extra in paramMaps]
        for trial in trials:
            trial._validate()
        data = self._collect(dataset)
        classes = self._encode_labels(data)
        context = spark_context(dataset.sparkSession)
        if context is None or len(trials) < 2 or context.defaultParallelism < 2:
            models = [
                trial._fit_collected(data, classes, "sequential trials")
                for trial in trials
            ]
            return iter(enumerate(models))
        return iter(enumerate(self._fit_in_tasks(context, data, trials, classes)))

    def _fit_in_tasks(self, context, data, trials, classes) -> list[SingleNodeModel]:
        threads = int(context.getConf().get("spark.task.cpus", "1"))
        recipes = [(type(t), t._recipe(t.getNumThreads() or threads)) for t in trials]
        # Spark starts tasks in partition order: costly fits first, so that a
        # core is not left with one big fit while the others sit idle.
        jobs = sorted(
            enumerate(recipes),
            key=lambda job: -job[1][0]._trial_cost(job[1][1]["kwargs"]),
        )
        shared = context.broadcast(data)
        started = time.perf_counter()
        try:
            results = (
                context.parallelize(jobs, len(jobs))
                .map(lambda job: _run_trial(shared, job))
                .collect()
            )
        finally:
            shared.unpersist()
        logger.info(
            "%d %s trials fitted as Spark tasks in %.2f s",
            len(trials),
            self.library,
            time.perf_counter() - started,
        )
        by_index = dict(results)
        return [
            trial._model(
                pickle.loads(by_index[i][0]),
                data.width,
                classes,
                "trial-parallel",
                "fitMultiple on Spark tasks",
                by_index[i][1],
            )
            for i, trial in enumerate(trials)
        ]

    def write(self) -> MLWriter:
        return _ObjectWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ObjectReader(cls)

    def _objects(self) -> dict[str, Any]:
        return {}

    def _restore_objects(self, objects: dict[str, Any], extra: dict[str, Any]) -> None:
        pass


def _run_trial(shared, job) -> tuple[int, tuple[bytes, float]]:
    index, (cls, recipe) = job
    started = time.perf_counter()
    fitted = cls._fit_object(shared.value, recipe)
    return index, (pickle.dumps(fitted), time.perf_counter() - started)


def _encode_classes(data: TrainingSet, column: str) -> list[int]:
    present = np.unique(data.y)
    if (present != np.round(present)).any() or (present < 0).any():
        odd = [v for v in present.tolist() if v != round(v) or v < 0][:5]
        raise DataError(
            f"label column {column!r} holds {odd}; a classifier here needs class "
            "indices 0, 1, 2, ... (StringIndexer makes them, and TrainClassifier "
            "takes any label as it is)"
        )
    if len(present) < 2:
        raise DataError(
            f"label column {column!r} holds one class only ({present.tolist()}); "
            "a classifier needs at least two"
        )
    data.y = np.searchsorted(present, data.y).astype(np.int64)
    return [int(v) for v in present]


class Scorer:
    """What an executor needs to score: picklable, free of Spark objects."""

    def __init__(self, fitted: Any, task: str, classes: list[int], width: int):
        self.fitted = fitted
        self.task = task
        self.classes = classes
        self.width = width
        self.dense = False

    @property
    def num_classes(self) -> int:
        return max(self.classes) + 1

    def predict(self, X) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions, and class probabilities (classes as trained)."""
        if self.task == "regression":
            return np.asarray(self.fitted.predict(X), dtype=float), None
        return None, np.asarray(self.fitted.predict_proba(X), dtype=float)

    def score(self, vectors: pa.Array) -> pa.Array:
        X = _to_matrix(vectors, dense=True if self.dense else None)
        if len(vectors) and X.shape[1] != self.width:
            raise DataError(
                f"feature vectors have {X.shape[1]} entries; the model was trained "
                f"on {self.width}. Featurize the table with the model's own stages"
            )
        if len(vectors) == 0:
            return _empty_struct(self.task)
        prediction, probability = self.predict(X)
        if self.task == "regression":
            return pa.StructArray.from_arrays(
                [pa.array(prediction)], names=["prediction"]
            )
        full = np.zeros((len(probability), self.num_classes))
        full[:, self.classes] = probability
        prediction = np.asarray(self.classes, dtype=float)[probability.argmax(axis=1)]
        return pa.StructArray.from_arrays(
            [pa.array(prediction), _list_array(full)],
            names=["prediction", "probability"],
        )


def _list_array(matrix: np.ndarray) -> pa.Array:
    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))


def _empty_struct(task: str) -> pa.Array:
    fields = [pa.array([], pa.float64())]
    names = ["prediction"]
    if task == "classification":
        fields.append(pa.array([], pa.list_(pa.float64())))
        names.append("probability")
    return pa.StructArray.from_arrays(fields, names=names)


_SCORERS: dict[str, Scorer] = {}


def _cached_scorer(key: str, payload: bytes) -> Scorer:
    """Decode a scorer once per Python worker, however many batches it scores."""
    scorer = _SCORERS.get(key)
    if scorer is None:
        _SCORERS.clear()  # keep one model per worker, not every model ever used
        scorer = _SCORERS[key] = pickle.loads(payload)
    return scorer


class SingleNodeModel(_SingleNodeParams, Model, MLReadable, MLWritable):
    """A fitted single-node learner; ``transform`` scores on the executors.

    ``transform`` keeps every input column and adds ``predictionCol``;
    classifiers also add ``probabilityCol`` and ``rawPredictionCol`` (both
    the class probabilities, so SparkML evaluators work unchanged).
    """

    def __init__(self) -> None:
        super().__init__()
        self.fitted: Any = None
        self.info: dict[str, Any] = {}

    def _setup(self, estimator: SingleNodeEstimator, fitted, info) -> None:
        for name in ("featuresCol", "labelCol", "predictionCol", "seed", "mode"):
            self._set(**{name: estimator.getOrDefault(name)})
        for name in ("probabilityCol", "rawPredictionCol"):
            if estimator.hasParam(name) and self.hasParam(name):
                self._set(**{name: estimator.getOrDefault(name)})
        self.fitted = fitted
        self.info = info

    @property
    def library(self) -> str:
        return self.info["library"]

    @property
    def numFeatures(self) -> int:
        return self.info["numFeatures"]

    @property
    def numClasses(self) -> int:
        return max(self.info["classes"]) + 1 if self.info["classes"] else 0

    @property
    def featureImportances(self) -> DenseVector:
        """Importance per feature, from the library's own measure."""
        fitted = self.fitted
        if hasattr(fitted, "feature_importances_"):
            weights = np.asarray(fitted.feature_importances_, dtype=float)
        elif hasattr(fitted, "coef_"):
            weights = np.abs(np.atleast_2d(fitted.coef_)).sum(axis=0)
        else:
            raise ConfigError(
                f"{type(fitted).__name__} has no feature importances or coefficients"
            )
        return DenseVector(weights)

    def scorer(self) -> Scorer:
        return Scorer(
            self.fitted, self.info["task"], self.info["classes"], self.numFeatures
        )

    def predictMatrix(self, X) -> np.ndarray:
        """Predictions for a NumPy/SciPy matrix on the driver, no Spark involved:
        class indices for classifiers, values for regressors."""
        scorer = self.scorer()
        prediction, probability = scorer.predict(X)
        if probability is None:
            return prediction
        return np.asarray(self.info["classes"], dtype=float)[probability.argmax(1)]

    def _transform(self, dataset: DataFrame) -> DataFrame:
        features = self.getFeaturesCol()
        if features not in dataset.columns:
            raise DataError(
                f"features column {features!r} is not in the table; it has: "
                f"{', '.join(dataset.columns)}"
            )
        task = self.info["task"]
        payload = pickle.dumps(self.scorer(), protocol=pickle.HIGHEST_PROTOCOL)
        key = uuid.uuid4().hex
        result_type = "struct<prediction:double>"
        if task == "classification":
            result_type = "struct<prediction:double,probability:array<double>>"

        @F.arrow_udf(result_type)
        def score(vectors: pa.Array) -> pa.Array:
            return _cached_scorer(key, payload).score(vectors)

        vectors = F.col(quote(features))
        if self.numFeatures < SPARSE_MIN_WIDTH:
            # Arrays of doubles reach Python workers several times faster than
            # vector structs; only narrow vectors, so wide sparse ones stay sparse.
            vectors = vector_to_array(vectors)
        scored = f"__st_scored_{key[:8]}"
        frame = dataset.withColumn(scored, score(vectors))
        outputs = {self.getPredictionCol(): F.col(f"{scored}.prediction")}
        if task == "classification":
            probability = array_to_vector(F.col(f"{scored}.probability"))
            for name in ("probabilityCol", "rawPredictionCol"):
                if self.getOrDefault(name):
                    outputs[self.getOrDefault(name)] = probability
        return frame.withColumns(outputs).drop(scored)

    def write(self) -> MLWriter:
        return _ObjectWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ObjectReader(cls)

    def _objects(self) -> dict[str, Any]:
        return {"fitted": self.fitted}

    def _restore_objects(self, objects: dict[str, Any], extra: dict[str, Any]) -> None:
        self.fitted = objects["fitted"]
        self.info = extra


class SingleNodeClassificationModel(_ClassifierParams, SingleNodeModel):
    """A fitted single-node classifier."""

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(probabilityCol="probability", rawPredictionCol="rawPrediction")


class SingleNodeClassifier(_ClassifierParams, SingleNodeEstimator):
    """Base of single-node classifiers: labels are class indices 0..k-1."""

    task = "classification"
    model_class = SingleNodeClassificationModel

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(probabilityCol="probability", rawPredictionCol="rawPrediction")


class SingleNodeRegressor(SingleNodeEstimator):
    """Base of single-node regressors."""

    task = "regression"
    model_class = SingleNodeModel


def spark_context(spark: SparkSession):
    """The classic SparkContext behind ``spark``, or None on Spark Connect."""
    try:
        return spark.sparkContext
    except Exception:  # Spark Connect raises on any access to sparkContext
        return None


class _ObjectWriter(MLWriter):
    """Params as pyspark writes them, plus Python objects pickled into a
    one-row-per-object Parquet file, so any Hadoop file system works."""

    def __init__(self, instance) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        objects = self.instance._objects()
        params = {
            p.name: value
            for p, value in self.instance._paramMap.items()
            if p.name not in objects
        }
        info = getattr(self.instance, "info", {})
        DefaultParamsWriter.saveMetadata(
            self.instance,
            path,
            self.sparkSession,
            extraMetadata={"sparktrain": info, "objects": sorted(objects)},
            paramMap=params,
        )
        if objects:
            rows = [(name, pickle.dumps(value)) for name, value in objects.items()]
            self.sparkSession.createDataFrame(
                rows, "name string, payload binary"
            ).coalesce(1).write.mode("overwrite").parquet(f"{path}/objects")


class _ObjectReader(MLReader):
    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> Any:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        instance = self.cls()
        DefaultParamsReader.getAndSetParams(instance, metadata)
        instance._resetUid(metadata["uid"])
        objects = {}
        if metadata.get("objects"):
            rows = self.sparkSession.read.parquet(f"{path}/objects").collect()
            objects = {row["name"]: pickle.loads(row["payload"]) for row in rows}
        instance._restore_objects(objects, metadata["sparktrain"])
        return instance
