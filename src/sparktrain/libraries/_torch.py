"""PyTorch and Keras multilayer perceptrons as ``pyspark.ml`` estimators.

Both train through ``pyspark.ml.torch.distributor.TorchDistributor``, in a
separate Python process, so the driver never holds the network's training
state. :class:`TorchClassifier` and :class:`TorchRegressor` also train
data-parallel: ``mode='distributed'`` starts ``numProcesses`` processes that
each fit their own shard of the rows, averaging gradients with
``DistributedDataParallel`` over gloo, on the driver (a ``local[...]``
session) or in barrier tasks on the executors (a cluster).

Features arrive unscaled: every network standardizes its inputs (and, for
regression, its target) with means and deviations learned from the training
rows and stored in the fitted model. Sparse feature matrices are densified
one batch at a time.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import math
import os
import pickle
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pyspark import cloudpickle, keyword_only
from pyspark.ml.param import TypeConverters
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy import sparse

from sparktrain import errors
from sparktrain._extras import require
from sparktrain.columns import quote, require_column
from sparktrain.errors import ConfigError, DataError, SparktrainError
from sparktrain.libraries._base import (
    SingleNodeClassifier,
    SingleNodeModel,
    SingleNodeRegressor,
    param,
    spark_context,
)
from sparktrain.libraries._boosting import _XGBoostParams
from sparktrain.libraries._matrix import TrainingSet, to_matrix

logger = logging.getLogger(__name__)

_TO_INT = TypeConverters.toInt
_TO_FLOAT = TypeConverters.toFloat
_SCORING_ROWS = 4096
_PLACEMENTS = ("auto", "driver", "executors")
_PURPOSE = {
    "torch": "TorchClassifier/TorchRegressor",
    "keras": "KerasClassifier/KerasRegressor",
}


class _NetworkParams:
    hiddenLayers = param(
        "hiddenLayers",
        "units in each hidden layer, input side first; [] fits a linear model",
        TypeConverters.toListInt,
    )
    epochs = param("epochs", "most passes over the training rows", _TO_INT)
    batchSize = param("batchSize", "rows per gradient step (per process)", _TO_INT)
    learningRate = param("learningRate", "AdamW step size", _TO_FLOAT)
    weightDecay = param("weightDecay", "AdamW decoupled weight decay", _TO_FLOAT)
    dropout = param("dropout", "share of hidden units dropped in training", _TO_FLOAT)
    batchNorm = param(
        "batchNorm",
        "batch normalization after each hidden layer",
        TypeConverters.toBoolean,
    )
    validationFraction = param(
        "validationFraction",
        "share of rows held out for early stopping; 0 trains every epoch",
        _TO_FLOAT,
    )
    patience = param(
        "patience", "epochs without a better validation loss before stopping", _TO_INT
    )

    libraryParams: ClassVar[dict[str, str]] = {
        "hiddenLayers": "hidden_layers",
        "epochs": "epochs",
        "batchSize": "batch_size",
        "learningRate": "learning_rate",
        "weightDecay": "weight_decay",
        "dropout": "dropout",
        "batchNorm": "batch_norm",
        "validationFraction": "validation_fraction",
        "patience": "patience",
    }
    _rules: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {
        "hiddenLayers": (
            lambda v: all(u >= 1 for u in v),
            "widths >= 1, e.g. [128, 64]",
        ),
        "epochs": (lambda v: v >= 1, "an integer >= 1"),
        "batchSize": (lambda v: v >= 1, "an integer >= 1"),
        "learningRate": (lambda v: 0 < v < math.inf, "a positive finite number"),
        "weightDecay": (lambda v: 0 <= v < math.inf, "a finite number >= 0"),
        "dropout": (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
        "validationFraction": (lambda v: 0 <= v <= 0.5, "a fraction in [0, 0.5]"),
        "patience": (lambda v: v >= 1, "an integer >= 1"),
        "numThreads": (lambda v: v >= 0, "an integer >= 0 (0: the library default)"),
    }
    kind: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            hiddenLayers=[128, 64],
            epochs=30,
            batchSize=256,
            learningRate=1e-3,
            weightDecay=1e-4,
            dropout=0.1,
            batchNorm=False,
            validationFraction=0.1,
            patience=5,
            numThreads=1,
        )

    def setHiddenLayers(self, value: Sequence[int]):
        return self._set(hiddenLayers=list(value))

    def setEpochs(self, value: int):
        return self._set(epochs=value)

    def setBatchSize(self, value: int):
        return self._set(batchSize=value)

    def setLearningRate(self, value: float):
        return self._set(learningRate=value)

    def setWeightDecay(self, value: float):
        return self._set(weightDecay=value)

    def setDropout(self, value: float):
        return self._set(dropout=value)

    def setBatchNorm(self, value: bool):
        return self._set(batchNorm=value)

    def setValidationFraction(self, value: float):
        return self._set(validationFraction=value)

    def setPatience(self, value: int):
        return self._set(patience=value)

    def _validate(self) -> None:
        _require_installed("torch", _PURPOSE[self.kind])
        for name, (holds, expected) in self._rules.items():
            value = self.getOrDefault(name)
            if not _holds(holds, value):
                raise ConfigError(f"{name}={value!r}; expected {expected}")

    def _recipe(self, threads: int) -> dict[str, Any]:
        recipe = super()._recipe(threads)
        kwargs = {
            kw: self.getOrDefault(name) for name, kw in self.libraryParams.items()
        }
        return {**recipe, "kwargs": kwargs, "extra": self.getExtraParams()}

    @classmethod
    def _settings(cls, recipe: dict[str, Any], outputs: int) -> dict[str, Any]:
        return {
            **recipe["kwargs"],
            "task": cls.task,
            "outputs": outputs,
            "threads": recipe["threads"],
            "seed": recipe["seed"],
            "extra": recipe.get("extra", {}),
            "builder": recipe.get("builder"),
        }

    @classmethod
    def _fit_object(cls, data: TrainingSet, recipe: dict[str, Any]) -> _Fitted:
        """Train on the driver through TorchDistributor, or in this Spark task."""
        _require_finite(data)
        outputs = int(data.y.max()) + 1 if cls.task == "classification" else 1
        settings = cls._settings(recipe, outputs)
        train = _train_torch if cls.kind == "torch" else _train_keras
        started = time.perf_counter()
        if _inside_spark_task():
            payload, place = train(_InMemory(data), settings), "Spark task"
        else:
            with _driver_shards(data, 1, settings["seed"]) as source:
                payload = _distribute(train, (source, settings), 1)
            place = "driver"
        fitted = _finish(payload, cls.kind, settings)
        _log_fit(cls.kind, fitted, 1, place, time.perf_counter() - started)
        return fitted


class _TorchParams(_NetworkParams):
    numProcesses = param(
        "numProcesses",
        "training processes in distributed mode; 0 means the session's default "
        "parallelism (its cores)",
        _TO_INT,
    )
    processesOn = param(
        "processesOn",
        "where distributed processes run: 'driver', 'executors' (barrier tasks), "
        "or 'auto' (executors on a cluster, and when the table is too large for "
        "the driver; the driver otherwise)",
        TypeConverters.toString,
    )

    _rules: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {
        **_NetworkParams._rules,
        "numProcesses": (lambda v: v >= 0, "an integer >= 0 (0: every core)"),
        "processesOn": (lambda v: v in _PLACEMENTS, f"one of {list(_PLACEMENTS)}"),
    }
    kind = "torch"
    library = "pytorch"
    extra = "torch"
    distributed = True

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(numProcesses=0, processesOn="auto")

    def setNumProcesses(self, value: int):
        return self._set(numProcesses=value)

    def setProcessesOn(self, value: str):
        return self._set(processesOn=value)

    def _validate(self) -> None:
        super()._validate()
        if self.getExtraParams():
            raise ConfigError(
                f"extraParams={self.getExtraParams()!r} is not used by "
                f"{type(self).__name__}: every setting is a Param (hiddenLayers, "
                "epochs, ...); for another architecture use a Keras learner with "
                "buildModel"
            )

    def _fit_distributed(self, dataset: DataFrame, reason: str) -> SingleNodeModel:
        """Train ``numProcesses`` data-parallel processes, each on its shard."""
        context = spark_context(dataset.sparkSession)
        if context is None:
            raise ConfigError(
                "mode='distributed' PyTorch needs a classic Spark session "
                "(TorchDistributor starts processes or barrier tasks); Spark "
                "Connect cannot. Use mode='local', or a local[...] or spark:// master"
            )
        processes = self.getOrDefault(self.numProcesses) or context.defaultParallelism
        data = self._collect_for_driver(dataset, context)
        started = time.perf_counter()
        if data is not None:
            classes = self._encode_labels(data)
            fitted = self._fit_on_driver(data, classes, processes)
            width, place = data.width, "driver"
        else:
            fitted, width, classes = self._fit_on_executors(dataset, processes, context)
            place = "executors"
        seconds = time.perf_counter() - started
        _log_fit(self.kind, fitted, processes, place, seconds)
        return self._model(fitted, width, classes, "distributed", reason, seconds)

    def _collect_for_driver(self, dataset: DataFrame, context) -> TrainingSet | None:
        """The table on the driver, or None when the processes go to executors."""
        chosen = self.getOrDefault(self.processesOn)
        if chosen == "executors" or (
            chosen == "auto" and not context.master.startswith("local")
        ):
            return None
        try:
            return self._collect(dataset)
        except DataError as exc:
            if chosen == "driver" or "maxLocalBytes" not in str(exc):
                raise
            logger.info("PyTorch: training on the executors, because %s", exc)
            return None

    def _fit_on_driver(self, data: TrainingSet, classes, processes: int) -> _Fitted:
        _require_finite(data)
        recipe = self._recipe(self.getNumThreads())
        settings = self._settings(recipe, max(1, len(classes)))
        with _driver_shards(data, processes, settings["seed"]) as source:
            payload = _distribute(_train_torch, (source, settings), processes)
        return _finish(payload, self.kind, settings)

    def _fit_on_executors(self, dataset: DataFrame, processes: int, context):
        if processes > context.defaultParallelism:
            raise ConfigError(
                f"numProcesses={processes} is more than the session's "
                f"{context.defaultParallelism} task slots; barrier training needs "
                "one slot per process: lower numProcesses or add executors"
            )
        features, label = self.getFeaturesCol(), self.getLabelCol()
        require_column(dataset, features, role="features column")
        require_column(dataset, label, role="label column")
        frame, classes = _XGBoostParams._distributed_labels(self, dataset, label)
        columns = [
            F.col(quote(features)).alias("x"),
            F.col(quote(label)).cast("double").alias("y"),
        ]
        weight = self.getOrDefault(self.weightCol) if self.isSet("weightCol") else None
        if weight:
            columns.append(F.col(quote(weight)).cast("double").alias("w"))
        frame = frame.select(*columns).repartition(processes)
        width = frame.select("x").first()[0].size
        recipe = self._recipe(self.getNumThreads())
        settings = self._settings(recipe, max(1, len(classes)))
        source = _PartitionFile(weighted=bool(weight))
        payload = _distribute(_train_torch, (source, settings), processes, frame)
        return _finish(payload, self.kind, settings), width, classes


class TorchClassifier(_TorchParams, SingleNodeClassifier):
    """A PyTorch multilayer perceptron for classes.

    Hidden layers of ReLU units (optionally batch-normalized, with dropout)
    end in one logit per class; AdamW minimizes the cross-entropy, and
    training stops early when the loss on a held-out ``validationFraction``
    of the rows has not improved for ``patience`` epochs (the best epoch's
    weights are kept). Inputs are standardized inside the model.

    ``mode='local'`` trains one process on the driver; ``mode='distributed'``
    trains ``numProcesses`` processes, each on its shard of the rows, on the
    driver or the executors (``processesOn``). Labels are class indices
    0..k-1 (``TrainClassifier`` takes any label and indexes it for you).

    Each process uses ``numThreads`` PyTorch threads, 1 by default: networks
    this small gain little from more, and lose much when processes and Spark
    tasks share the cores. 0 lets PyTorch take every core.

    Examples
    --------
    >>> net = TorchClassifier(hiddenLayers=[64, 32], epochs=20, labelCol="Status")
    >>> net.getOrDefault("batchSize")
    256
    """

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
        hiddenLayers: Sequence[int] = (128, 64),
        epochs: int = 30,
        batchSize: int = 256,
        learningRate: float = 1e-3,
        weightDecay: float = 1e-4,
        dropout: float = 0.1,
        batchNorm: bool = False,
        validationFraction: float = 0.1,
        patience: int = 5,
        numProcesses: int = 0,
        processesOn: str = "auto",
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)


class TorchRegressor(_TorchParams, SingleNodeRegressor):
    """A PyTorch multilayer perceptron for a numeric label.

    As :class:`TorchClassifier`, with one linear output and a squared-error
    loss on the standardized label (predictions are mapped back to the
    label's scale).

    Examples
    --------
    >>> TorchRegressor(mode="distributed", numProcesses=4).getMode()
    'distributed'
    """

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        weightCol: str | None = None,
        hiddenLayers: Sequence[int] = (128, 64),
        epochs: int = 30,
        batchSize: int = 256,
        learningRate: float = 1e-3,
        weightDecay: float = 1e-4,
        dropout: float = 0.1,
        batchNorm: bool = False,
        validationFraction: float = 0.1,
        patience: int = 5,
        numProcesses: int = 0,
        processesOn: str = "auto",
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)


class _KerasParams(_NetworkParams):
    buildModel = param(
        "buildModel",
        "a picklable callable (num_features, num_outputs) -> keras.Model, compiled "
        "or not; None builds an MLP from hiddenLayers, dropout and batchNorm",
    )

    kind = "keras"
    library = "keras"
    extra = "torch"

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(buildModel=None)

    def setBuildModel(self, value: Callable[[int, int], Any] | None):
        return self._set(buildModel=value)

    def _validate(self) -> None:
        super()._validate()
        _require_installed("keras", _PURPOSE[self.kind])
        builder = self.getOrDefault(self.buildModel)
        if builder is not None and not callable(builder):
            raise ConfigError(
                f"buildModel={builder!r} is not callable; pass a function "
                "(num_features, num_outputs) -> keras.Model, or None for the default"
            )
        self._builder_bytes()

    def _builder_bytes(self) -> bytes | None:
        builder = self.getOrDefault(self.buildModel)
        if builder is None:
            return None
        try:
            return _pickle_by_value(builder)
        except Exception as exc:  # cloudpickle raises many types
            raise ConfigError(
                f"buildModel={builder!r} cannot be pickled ({exc}); define it as a "
                "plain function that imports keras inside its body"
            ) from exc

    def _recipe(self, threads: int) -> dict[str, Any]:
        return {**super()._recipe(threads), "builder": self._builder_bytes()}

    def _fit_distributed(self, dataset: DataFrame, reason: str) -> SingleNodeModel:
        raise ConfigError(
            "mode='distributed' is not available for Keras: Keras 3 trains "
            "data-parallel only on its JAX backend (keras.distribution), and its "
            "fit loop does not drive PyTorch's DistributedDataParallel. Use "
            "mode='local', or TorchClassifier/TorchRegressor to train data-parallel"
        )

    def _objects(self) -> dict[str, Any]:
        builder = self._builder_bytes()
        return {} if builder is None else {"buildModel": builder}

    def _restore_objects(self, objects: dict[str, Any], extra: dict[str, Any]) -> None:
        if "buildModel" in objects:
            self._set(buildModel=cloudpickle.loads(objects["buildModel"]))


class KerasClassifier(_KerasParams, SingleNodeClassifier):
    """A Keras 3 network for classes, run on the PyTorch backend.

    ``buildModel(num_features, num_outputs)`` returns a ``keras.Model`` whose
    output is one probability per class (end it with a softmax); import keras
    inside the function, so that sparktrain can select the PyTorch backend
    first. An uncompiled model is compiled with AdamW (``learningRate``,
    ``weightDecay``) and sparse categorical cross-entropy. Without
    ``buildModel``, an MLP like :class:`TorchClassifier`'s is built.
    ``extraParams`` are passed to ``model.fit``. Inputs arrive standardized.

    Keras trains in one process: on the driver through TorchDistributor, or
    in a Spark task during parallel trials. It does not train data-parallel
    (``mode='distributed'`` is refused); use :class:`TorchClassifier` for that.

    Examples
    --------
    >>> KerasClassifier(hiddenLayers=[32], epochs=10).getOrDefault("epochs")
    10
    """

    @keyword_only
    def __init__(
        self,
        *,
        buildModel: Callable[[int, int], Any] | None = None,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        probabilityCol: str = "probability",
        rawPredictionCol: str = "rawPrediction",
        weightCol: str | None = None,
        hiddenLayers: Sequence[int] = (128, 64),
        epochs: int = 30,
        batchSize: int = 256,
        learningRate: float = 1e-3,
        weightDecay: float = 1e-4,
        dropout: float = 0.1,
        batchNorm: bool = False,
        validationFraction: float = 0.1,
        patience: int = 5,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)


class KerasRegressor(_KerasParams, SingleNodeRegressor):
    """A Keras 3 network for a numeric label, run on the PyTorch backend.

    As :class:`KerasClassifier`, with ``num_outputs=1`` and, for uncompiled
    models, a mean-squared-error loss. The label is standardized in training
    and predictions are mapped back to its scale.

    Examples
    --------
    >>> KerasRegressor(learningRate=3e-3).getOrDefault("learningRate")
    0.003
    """

    @keyword_only
    def __init__(
        self,
        *,
        buildModel: Callable[[int, int], Any] | None = None,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        weightCol: str | None = None,
        hiddenLayers: Sequence[int] = (128, 64),
        epochs: int = 30,
        batchSize: int = 256,
        learningRate: float = 1e-3,
        weightDecay: float = 1e-4,
        dropout: float = 0.1,
        batchNorm: bool = False,
        validationFraction: float = 0.1,
        patience: int = 5,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)


# -- on the driver ------------------------------------------------------------


def _holds(rule: Callable[[Any], bool], value: Any) -> bool:
    try:
        return bool(rule(value))
    except TypeError:
        return False


def _require_installed(module: str, purpose: str) -> None:
    """Check without importing: importing keras here would fix its backend."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        require(module, extra="torch", purpose=purpose)


def _pickle_by_value(function: Callable) -> bytes:
    """Pickle a user's function with its code unless it comes from an installed
    package, so that the training process and the executors need not import
    the user's own modules (a test file, a script next to a notebook)."""
    module = inspect.getmodule(function)
    path = getattr(module, "__file__", None)
    paths = sysconfig.get_paths()
    installed = tuple(paths[key] for key in ("purelib", "platlib", "stdlib"))
    if module is None or path is None or module.__name__ == "__main__":
        return cloudpickle.dumps(function)
    if path.startswith(installed):
        return cloudpickle.dumps(function)
    cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(function)
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def _inside_spark_task() -> bool:
    from pyspark import TaskContext

    return TaskContext.get() is not None


@contextmanager
def _driver_shards(data: TrainingSet, processes: int, seed: int):
    """Write one random shard per process, so each loads only its own rows."""
    directory = tempfile.mkdtemp(prefix="sparktrain-torch-")
    try:
        order = np.random.default_rng(seed).permutation(data.rows)
        paths = []
        for rank, rows in enumerate(np.array_split(order, processes)):
            paths.append(os.path.join(directory, f"shard-{rank}.pickle"))
            with open(paths[-1], "wb") as file:
                pickle.dump(_subset(data, rows), file, protocol=pickle.HIGHEST_PROTOCOL)
        yield _ShardFiles(paths)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _distribute(function, args, processes: int, frame: DataFrame | None = None):
    """Run ``function(*args)`` in TorchDistributor processes; rank 0's result."""
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(
        num_processes=processes, local_mode=frame is None, use_gpu=False
    )
    if frame is None:
        return distributor.run(function, *args)
    # The public run() would ship the rows inside the task closure; this one
    # hands each barrier task its own partition instead.
    return distributor._train_on_dataframe(function, frame, *args)


def _finish(payload: bytes, kind: str, settings: dict[str, Any]) -> _Fitted:
    result = pickle.loads(payload)
    if "error" in result:
        name, message = result["error"]
        error = getattr(errors, name, SparktrainError)
        if not (isinstance(error, type) and issubclass(error, SparktrainError)):
            error = SparktrainError
        raise error(message)
    fitted_class = _TorchNetwork if kind == "torch" else _KerasNetwork
    return fitted_class(
        result["spec"],
        result["weights"],
        result["scaling"],
        result["history"],
        settings.get("builder"),
    )


def _log_fit(kind: str, fitted: _Fitted, processes: int, place: str, seconds):
    history = fitted.history
    loss = history["valid_loss"]
    logger.info(
        "%s fitted by %d process(es) on the %s in %.1f s: %d epoch(s), best %d "
        "(validation loss %s)",
        kind,
        processes,
        place,
        seconds,
        history["epochs"],
        history["best_epoch"],
        "not measured" if loss is None else f"{loss:.4g}",
    )


# -- rows and numbers, in the training processes --------------------------------


@dataclass
class _InMemory:
    data: TrainingSet

    def load(self, rank: int, size: int) -> TrainingSet:
        return self.data


@dataclass
class _ShardFiles:
    paths: list[str]

    def load(self, rank: int, size: int) -> TrainingSet:
        with open(self.paths[rank], "rb") as file:
            return pickle.load(file)


@dataclass
class _PartitionFile:
    """This barrier task's Spark partition, written by TorchDistributor."""

    weighted: bool

    def load(self, rank: int, size: int) -> TrainingSet:
        import pyarrow as pa

        with pa.ipc.open_stream(os.environ["SPARK_PARTITION_ARROW_DATA_FILE"]) as f:
            table = f.read_all()
        weight = table.column("w").to_numpy() if self.weighted else None
        y = table.column("y").to_numpy().astype(float)
        return TrainingSet(to_matrix(table.column("x")), y, weight, len(y))


@dataclass
class _Scaling:
    """What standardizes the inputs, and the label of a regressor."""

    task: str
    mean: np.ndarray
    scale: np.ndarray
    target: tuple[float, float]


@dataclass
class _World:
    """This process's place among the data-parallel processes."""

    rank: int = 0
    size: int = 1
    local_size: int = 1

    def sum(self, values) -> np.ndarray:
        values = np.array(values, dtype=np.float64)
        if self.size == 1:
            return values
        import torch

        summed = torch.from_numpy(values)
        torch.distributed.all_reduce(summed)
        return summed.numpy()

    def max(self, value: int) -> int:
        if self.size == 1:
            return value
        import torch

        largest = torch.tensor([value], dtype=torch.int64)
        torch.distributed.all_reduce(largest, op=torch.distributed.ReduceOp.MAX)
        return int(largest.item())


def _subset(data: TrainingSet, rows: np.ndarray) -> TrainingSet:
    weight = None if data.weight is None else data.weight[rows]
    return TrainingSet(data.X[rows], data.y[rows], weight, len(rows))


def _non_finite_rows(data: TrainingSet) -> int:
    X = data.X
    if sparse.issparse(X):
        bad = np.zeros(X.shape[0], dtype=bool)
        row_of = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        bad[row_of[~np.isfinite(X.data)]] = True
    else:
        bad = ~np.isfinite(X).all(axis=1)
    bad |= ~np.isfinite(data.y)
    if data.weight is not None:
        bad |= ~np.isfinite(data.weight)
    return int(bad.sum())


def _require_finite(data: TrainingSet, world: _World | None = None) -> None:
    bad = _non_finite_rows(data)
    if world is not None:
        bad = int(world.sum([bad])[0])
    if bad:
        raise DataError(
            f"{bad} row(s) hold NaN or infinite values in the features, label or "
            "weight; a neural network cannot fit them. Impute or drop those rows "
            "(pyspark.ml.feature.Imputer, or a filter on isnan) first"
        )


def _split(data: TrainingSet, fraction: float, seed: int):
    """Training rows and held-out rows (None when nothing is held out)."""
    held = round(fraction * data.rows) if data.rows >= 10 else 0
    if held == 0:
        return data, None
    order = np.random.default_rng(seed).permutation(data.rows)
    return _subset(data, order[held:]), _subset(data, order[:held])


def _scaling(data: TrainingSet, task: str, world: _World) -> _Scaling:
    """Means and deviations of the features (and a numeric label), over every
    process's rows."""
    X, width = data.X, data.width
    squares = X.multiply(X) if sparse.issparse(X) else X * X
    y = data.y if task == "regression" else np.zeros(0)
    sums = world.sum(
        np.concatenate(
            [
                [data.rows, y.sum(), (y * y).sum()],
                np.asarray(X.sum(axis=0)).ravel(),
                np.asarray(squares.sum(axis=0)).ravel(),
            ]
        )
    )
    count = max(sums[0], 1.0)
    mean = sums[3 : 3 + width] / count
    scale = np.sqrt(np.clip(sums[3 + width :] / count - mean**2, 0, None))
    scale[scale <= 1e-8 * np.maximum(1.0, np.abs(mean))] = 1.0
    target = (0.0, 1.0)
    if task == "regression":
        y_mean = sums[1] / count
        y_scale = math.sqrt(max(sums[2] / count - y_mean**2, 0.0))
        target = (y_mean, y_scale if y_scale > 1e-8 * max(1.0, abs(y_mean)) else 1.0)
    return _Scaling(task, mean, scale, target)


def _standardize(X, scaling: _Scaling) -> np.ndarray:
    dense = X.toarray() if sparse.issparse(X) else np.asarray(X)
    return ((dense - scaling.mean) / scaling.scale).astype(np.float32)


def _targets(y: np.ndarray, scaling: _Scaling) -> np.ndarray:
    if scaling.task == "classification":
        return y.astype(np.int64)
    mean, scale = scaling.target
    return ((y - mean) / scale).astype(np.float32)


def _weights(data: TrainingSet, rows: np.ndarray) -> np.ndarray:
    if data.weight is None:
        return np.ones(len(rows), dtype=np.float32)
    return data.weight[rows].astype(np.float32)


def _spec(width: int, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": width,
        "outputs": settings["outputs"],
        "hidden": list(settings["hidden_layers"]),
        "dropout": settings["dropout"],
        "batch_norm": settings["batch_norm"],
        "task": settings["task"],
    }


def _set_threads(torch, threads: int, world: _World) -> None:
    if threads > 0:
        torch.set_num_threads(threads)
    elif world.local_size > 1:  # torchrun would leave each process one thread
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world.local_size))


def _error(exc: SparktrainError) -> dict[str, Any]:
    return {"error": (type(exc).__name__, str(exc))}


def _nan_loss(epoch: int, settings: dict[str, Any]) -> DataError:
    return DataError(
        f"the training loss became NaN or infinite in epoch {epoch} of "
        f"{settings['epochs']}; lower learningRate (now "
        f"{settings['learning_rate']:g}), and check the features and label for "
        "extreme values"
    )


# -- PyTorch ------------------------------------------------------------------


def _import_torch():
    return require("torch", extra="torch", purpose=_PURPOSE["torch"])


def _train_torch(source, settings: dict[str, Any]) -> bytes:
    """Train in one TorchDistributor process (or Spark task); rank 0's result,
    pickled, identical in every process."""
    torch = _import_torch()
    world = _World(
        size=int(os.environ.get("WORLD_SIZE", "1")),
        local_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
    )
    if world.size > 1:
        torch.distributed.init_process_group("gloo")
        world.rank = torch.distributed.get_rank()
    try:
        try:
            result = _fit_network(torch, source, settings, world)
        except SparktrainError as exc:
            result = _error(exc)
        payload = [pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)]
        if world.size > 1:  # every rank writes its output to the same file
            torch.distributed.broadcast_object_list(payload, src=0)
        return payload[0]
    finally:
        if world.size > 1:
            torch.distributed.destroy_process_group()


def _network(torch, spec: dict[str, Any]):
    nn = torch.nn
    layers, width = [], spec["inputs"]
    for units in spec["hidden"]:
        layers.append(nn.Linear(width, units))
        if spec["batch_norm"]:
            layers.append(nn.BatchNorm1d(units))
        layers.append(nn.ReLU())
        if spec["dropout"] > 0:
            layers.append(nn.Dropout(spec["dropout"]))
        width = units
    layers.append(nn.Linear(width, spec["outputs"]))
    return nn.Sequential(*layers)


def _fit_network(torch, source, settings: dict[str, Any], world: _World):
    _set_threads(torch, settings["threads"], world)
    torch.manual_seed(settings["seed"])
    data = source.load(world.rank, world.size)
    _require_finite(data, world)

    train, valid = _split(data, settings["validation_fraction"], settings["seed"])
    scaling = _scaling(data, settings["task"], world)
    spec = _spec(data.width, settings)
    network = _network(torch, spec)
    weights, history = _epochs(torch, network, train, valid, scaling, settings, world)
    return {"spec": spec, "weights": weights, "scaling": scaling, "history": history}


def _epochs(torch, network, train, valid, scaling, settings, world: _World):
    """The training loop: the same number of steps in every process, and the
    same early-stopping decision from losses summed over all of them."""
    model = network
    if world.size > 1:
        model = torch.nn.parallel.DistributedDataParallel(network)
    optimizer = torch.optim.AdamW(
        network.parameters(),
        lr=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
    )
    rng = np.random.default_rng(settings["seed"] + world.rank)
    steps = world.max(math.ceil(train.rows / settings["batch_size"]))
    best, best_epoch, kept, epoch = math.inf, 0, None, 0
    for epoch in range(1, settings["epochs"] + 1):
        batches = _batches(train.rows, settings["batch_size"], steps, rng)
        loss = _train_epoch(torch, model, optimizer, train, batches, scaling, world)
        valid_loss = _evaluate(torch, network, valid, scaling, world)
        if not math.isfinite(loss) or not math.isfinite(valid_loss or 0.0):
            raise _nan_loss(epoch, settings)
        if valid_loss is None:
            best, best_epoch = None, epoch
        elif valid_loss < best - 1e-4 * abs(best) or kept is None:
            best, best_epoch, kept = valid_loss, epoch, _snapshot(network)
        elif epoch - best_epoch >= settings["patience"]:
            break
    network.load_state_dict(kept or network.state_dict())
    weights = {k: v.detach().cpu().numpy() for k, v in network.state_dict().items()}
    history = {"epochs": epoch, "best_epoch": best_epoch, "valid_loss": best}
    return weights, history


def _snapshot(network) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def _batches(rows: int, size: int, steps: int, rng) -> list[np.ndarray]:
    """``steps`` batches of shuffled rows; a process with fewer rows than the
    others goes round its rows again, so all processes step together."""
    order = rng.permutation(rows)
    chunks = [order[start : start + size] for start in range(0, rows, size)]
    if len(chunks) > 1 and len(chunks[-1]) < 2:  # batch norm needs 2 rows
        chunks[-2:] = [np.concatenate(chunks[-2:])]
    return [chunks[step % len(chunks)] for step in range(steps)]


def _tensors(torch, data: TrainingSet, rows, scaling: _Scaling):
    x = torch.from_numpy(_standardize(data.X[rows], scaling))
    y = torch.from_numpy(_targets(data.y[rows], scaling))
    return x, y, torch.from_numpy(_weights(data, rows))


def _losses(torch, outputs, y, scaling: _Scaling):
    if scaling.task == "classification":
        return torch.nn.functional.cross_entropy(outputs, y, reduction="none")
    return (outputs[:, 0] - y) ** 2


def _train_epoch(torch, model, optimizer, data, batches, scaling, world) -> float:
    model.train()
    total = weight = 0.0
    for rows in batches:
        x, y, w = _tensors(torch, data, rows, scaling)
        optimizer.zero_grad(set_to_none=True)
        losses = _losses(torch, model(x), y, scaling) * w
        (losses.sum() / w.sum()).backward()
        optimizer.step()
        total += float(losses.detach().sum())
        weight += float(w.sum())
    total, weight = world.sum([total, weight])
    return float(total / weight)


def _evaluate(torch, network, data, scaling, world) -> float | None:
    """The loss on the held-out rows of every process; None when none are."""
    network.eval()
    total = weight = 0.0
    rows = 0 if data is None else data.rows
    with torch.no_grad():
        for start in range(0, rows, _SCORING_ROWS):
            batch = np.arange(start, min(start + _SCORING_ROWS, rows))
            x, y, w = _tensors(torch, data, batch, scaling)
            total += float((_losses(torch, network(x), y, scaling) * w).sum())
            weight += float(w.sum())
    total, weight = world.sum([total, weight])
    return float(total / weight) if weight > 0 else None


# -- Keras ----------------------------------------------------------------------


def _import_keras():
    """Keras on the PyTorch backend, or an error if it already runs another."""
    keras = sys.modules.get("keras")
    if keras is None:
        if os.environ.get("KERAS_BACKEND", "torch") != "torch":
            logger.info(
                "KERAS_BACKEND=%s replaced by torch", os.environ["KERAS_BACKEND"]
            )
        os.environ["KERAS_BACKEND"] = "torch"
        keras = require("keras", extra="torch", purpose=_PURPOSE["keras"])
    backend = keras.backend.backend()
    if backend != "torch":
        raise ConfigError(
            f"keras was imported with the {backend!r} backend before sparktrain "
            "could choose 'torch'; set the environment variable KERAS_BACKEND=torch "
            "before anything imports keras"
        )
    return keras


def _train_keras(source, settings: dict[str, Any]) -> bytes:
    """Train a Keras model in this process; the result, pickled."""
    try:
        result = _fit_keras(source, settings)
    except SparktrainError as exc:
        result = _error(exc)
    return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


def _fit_keras(source, settings: dict[str, Any]) -> dict[str, Any]:
    keras = _import_keras()
    keras.config.disable_interactive_logging()  # messages to logging, not stdout
    _set_threads(_import_torch(), settings["threads"], _World())
    keras.utils.set_random_seed(settings["seed"])
    data = source.load(0, 1)
    _require_finite(data)

    train, valid = _split(data, settings["validation_fraction"], settings["seed"])
    scaling = _scaling(data, settings["task"], _World())
    spec = _spec(data.width, settings)
    model = _keras_model(keras, spec, settings["builder"])
    if not getattr(model, "compiled", False):
        model.compile(
            optimizer=keras.optimizers.AdamW(
                learning_rate=settings["learning_rate"],
                weight_decay=settings["weight_decay"],
            ),
            loss="sparse_categorical_crossentropy"
            if spec["task"] == "classification"
            else "mean_squared_error",
        )
    history = _keras_fit(keras, model, train, valid, scaling, settings)
    weights = [np.asarray(w) for w in model.get_weights()]
    return {"spec": spec, "weights": weights, "scaling": scaling, "history": history}


def _keras_model(keras, spec: dict[str, Any], builder: bytes | None):
    inputs, outputs = spec["inputs"], spec["outputs"]
    if builder is None:
        return _default_keras_model(keras, spec)
    try:
        model = cloudpickle.loads(builder)(inputs, outputs)
    except Exception as exc:  # the user's code may raise anything
        raise ConfigError(
            f"buildModel({inputs}, {outputs}) raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"buildModel returned {type(model).__name__}; expected a keras.Model"
        )
    if not model.built:
        model.build((None, inputs))
    _check_outputs(keras, model, spec)
    return model


def _check_outputs(keras, model, spec: dict[str, Any]) -> None:
    probe = np.zeros((2, spec["inputs"]), dtype=np.float32)
    seen = keras.ops.convert_to_numpy(model(probe, training=False))
    if seen.ndim != 2 or seen.shape[1] != spec["outputs"]:
        raise ConfigError(
            f"buildModel's model outputs shape {tuple(seen.shape)} for 2 rows; "
            f"expected (2, {spec['outputs']}): num_outputs is the class count, or 1 "
            "for a regressor"
        )
    sums = seen.sum(axis=1)
    if spec["task"] == "classification" and not np.allclose(sums, 1.0, atol=1e-3):
        raise ConfigError(
            f"buildModel's classifier outputs rows summing to {sums[0]:.3g}, not 1; "
            "end it with a softmax (keras.layers.Dense(num_outputs, "
            "activation='softmax')) so it outputs class probabilities"
        )


def _default_keras_model(keras, spec: dict[str, Any]):
    layers = [keras.Input(shape=(spec["inputs"],))]
    for units in spec["hidden"]:
        layers.append(keras.layers.Dense(units))
        if spec["batch_norm"]:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation("relu"))
        if spec["dropout"] > 0:
            layers.append(keras.layers.Dropout(spec["dropout"]))
    last = "softmax" if spec["task"] == "classification" else None
    layers.append(keras.layers.Dense(spec["outputs"], activation=last))
    return keras.Sequential(layers)


def _keras_fit(keras, model, train, valid, scaling, settings) -> dict[str, Any]:
    callbacks = [keras.callbacks.TerminateOnNaN()]
    validation = None
    if valid is not None:
        validation = _keras_batches(keras, valid, scaling, settings, shuffle=False)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                patience=settings["patience"], restore_best_weights=True
            )
        )
    options = {
        "epochs": settings["epochs"],
        "verbose": 0,
        "callbacks": callbacks,
        "validation_data": validation,
        **settings["extra"],
    }
    fit = model.fit(
        _keras_batches(keras, train, scaling, settings, shuffle=True), **options
    )
    losses = fit.history.get("loss", [])
    valid_losses = fit.history.get("val_loss", [])
    for epoch, loss in enumerate(losses, start=1):
        if not math.isfinite(loss) or not math.isfinite(
            valid_losses[epoch - 1] if valid_losses else 0.0
        ):
            raise _nan_loss(epoch, settings)
    best = int(np.argmin(valid_losses)) + 1 if valid_losses else len(losses)
    best_loss = float(valid_losses[best - 1]) if valid_losses else None
    return {"epochs": len(losses), "best_epoch": best, "valid_loss": best_loss}


def _keras_batches(keras, data: TrainingSet, scaling, settings, *, shuffle: bool):
    """Batches densified one at a time, reshuffled every epoch."""
    size = settings["batch_size"]
    rng = np.random.default_rng(settings["seed"])

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.order = rng.permutation(data.rows) if shuffle else np.arange(data.rows)

        def __len__(self) -> int:
            return math.ceil(data.rows / size)

        def __getitem__(self, index: int):
            rows = self.order[index * size : (index + 1) * size]
            x = _standardize(data.X[rows], scaling)
            y = _targets(data.y[rows], scaling)
            if data.weight is None:
                return x, y
            return x, y, _weights(data, rows)

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = rng.permutation(data.rows)

    return Batches()


# -- the fitted networks, scored on the driver or the executors -----------------


class _Fitted:
    """A trained network as plain arrays; rebuilt lazily wherever it scores."""

    def __init__(self, spec, weights, scaling: _Scaling, history, builder=None):
        self.spec = spec
        self.weights = weights
        self.scaling = scaling
        self.history = history
        self.builder = builder
        self._network = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_network": None}

    def predict_proba(self, X) -> np.ndarray:
        return self._probabilities(self._outputs(X))

    def predict(self, X) -> np.ndarray:
        outputs = self._outputs(X)
        if self.spec["task"] == "classification":
            return outputs.argmax(axis=1)
        mean, scale = self.scaling.target
        return outputs[:, 0] * scale + mean

    def _outputs(self, X) -> np.ndarray:
        if self._network is None:
            self._network = self._load()
        chunks = [
            self._forward(_standardize(X[start : start + _SCORING_ROWS], self.scaling))
            for start in range(0, X.shape[0], _SCORING_ROWS)
        ]
        if not chunks:
            return np.zeros((0, self.spec["outputs"]))
        return np.concatenate(chunks).astype(np.float64)

    def _load(self):
        raise NotImplementedError

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return outputs


class _TorchNetwork(_Fitted):
    def _load(self):
        torch = _import_torch()
        _score_with_task_cpus(torch)
        network = _network(torch, self.spec)
        network.load_state_dict(
            {k: torch.from_numpy(v) for k, v in self.weights.items()}
        )
        return network.eval()

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self._network(torch.from_numpy(x)).numpy()

    def _probabilities(self, outputs: np.ndarray) -> np.ndarray:
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


class _KerasNetwork(_Fitted):
    def _load(self):
        keras = _import_keras()
        _score_with_task_cpus(_import_torch())
        model = _keras_model(keras, self.spec, self.builder)
        model.set_weights(self.weights)
        return model

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import keras

        return keras.ops.convert_to_numpy(self._network(x, training=False))


def _score_with_task_cpus(torch) -> None:
    """In a Spark task, use the task's cores rather than every core."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is not None:
        torch.set_num_threads(max(1, context.cpus()))
