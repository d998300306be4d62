"""PyTorch and Keras networks as pyspark.ml stages, on real tables.

Each fit starts TorchDistributor processes, which import PyTorch (and Keras)
afresh: seconds each, so the tests share fitted models where they can. The
networks keep their default settings.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator,
    RegressionEvaluator,
)
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.tuning import ParamGridBuilder
from pyspark.sql import functions as F

from sparktrain.errors import ConfigError, DataError, MissingExtraError
from sparktrain.libraries import (
    KerasClassifier,
    KerasRegressor,
    SingleNodeClassificationModel,
    TorchClassifier,
    TorchRegressor,
)


def auc(scored) -> float:
    return BinaryClassificationEvaluator(metricName="areaUnderROC").evaluate(scored)


def r2(scored) -> float:
    return RegressionEvaluator(metricName="r2").evaluate(scored)


def regression_net(num_features: int, num_outputs: int):
    """A user's own compiled Keras model, pickled by value into the trainer."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(num_features,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(num_outputs),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mean_squared_error")
    return model


@pytest.fixture(scope="module")
def torch_credit(credit_split):
    return TorchClassifier().fit(credit_split[0])


@pytest.fixture(scope="module")
def keras_credit(credit_split):
    return KerasClassifier().fit(credit_split[0])


def test_torch_classifier_on_credit(torch_credit, credit_split, tmp_path):
    test = credit_split[1]
    scored = torch_credit.transform(test)

    assert auc(scored) > 0.75
    assert scored.count() == test.count()
    assert scored.first().probability.size == 2
    assert torch_credit.info["mode"] == "local"
    assert 1 <= torch_credit.fitted.history["best_epoch"] <= 30

    torch_credit.write().overwrite().save(str(tmp_path / "model"))
    loaded = SingleNodeClassificationModel.load(str(tmp_path / "model"))
    before = scored.select("probability").collect()
    assert loaded.transform(test).select("probability").collect() == before


def test_two_processes_on_the_driver_reach_the_same_quality(torch_credit, credit_split):
    train, test = credit_split
    model = TorchClassifier(mode="distributed", numProcesses=2).fit(train)

    assert model.info["mode"] == "distributed"
    distributed, local = auc(model.transform(test)), auc(torch_credit.transform(test))
    assert distributed > 0.75
    assert abs(distributed - local) < 0.03


def test_torch_regressor_on_diamonds(diamonds_split):
    train, test = diamonds_split
    model = TorchRegressor().fit(train)

    assert r2(model.transform(test)) > 0.85


def test_barrier_tasks_on_the_executors_fit_three_classes(iris):
    train, test = iris.randomSplit([0.7, 0.3], seed=5)
    net = TorchClassifier(
        mode="distributed",
        processesOn="executors",
        numProcesses=2,
        epochs=60,
        batchSize=16,
        learningRate=3e-3,
    )
    scored = net.fit(train).transform(test)

    accuracy = MulticlassClassificationEvaluator(metricName="accuracy")
    assert accuracy.evaluate(scored) > 0.85
    widths = {len(row.probability) for row in scored.select("probability").collect()}
    assert widths == {3}


def test_parallel_trials_train_inside_spark_tasks(credit_split):
    net = TorchClassifier()
    grid = ParamGridBuilder().addGrid(net.learningRate, [1e-3, 3e-3]).build()

    models = dict(net.fitMultiple(credit_split[0], grid))

    assert sorted(models) == [0, 1]
    assert {m.info["mode"] for m in models.values()} == {"trial-parallel"}
    # The log loss of always predicting the majority class is 0.59.
    assert max(m.fitted.history["valid_loss"] for m in models.values()) < 0.52


def test_a_diverging_loss_stops_training_with_what_to_do(diamonds_split):
    net = TorchRegressor(learningRate=1e6, epochs=5)
    with pytest.raises(DataError, match=r"NaN or infinite in epoch 1 of 5; lower lea"):
        net.fit(diamonds_split[0])


def test_keras_classifier_on_credit(keras_credit, credit_split, tmp_path):
    test = credit_split[1]
    scored = keras_credit.transform(test)

    assert auc(scored) > 0.75
    assert scored.count() == test.count()
    assert keras_credit.library == "keras"

    keras_credit.write().overwrite().save(str(tmp_path / "model"))
    loaded = SingleNodeClassificationModel.load(str(tmp_path / "model"))
    before = scored.select("probability").collect()
    assert loaded.transform(test).select("probability").collect() == before


def test_keras_regressor_with_the_users_own_model(diamonds_split, tmp_path):
    train, test = diamonds_split
    net = KerasRegressor(buildModel=regression_net, batchSize=64)
    model = net.fit(train)

    assert r2(model.transform(test)) > 0.85
    assert model.fitted.history["epochs"] <= 30

    net.write().overwrite().save(str(tmp_path / "estimator"))
    loaded = KerasRegressor.load(str(tmp_path / "estimator"))
    assert loaded.getOrDefault("buildModel").__name__ == "regression_net"


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (lambda: TorchClassifier(epochs=0), r"epochs=0; expected an integer >= 1"),
        (lambda: TorchClassifier(hiddenLayers=[64, 0]), r"hiddenLayers=\[64, 0\]"),
        (lambda: TorchClassifier(dropout=1.0), r"dropout=1.0; expected a fraction"),
        (lambda: TorchRegressor(learningRate=0.0), r"learningRate=0.0; expected a"),
        (lambda: TorchRegressor(batchSize=0), r"batchSize=0; expected"),
        (lambda: TorchRegressor(validationFraction=0.9), r"validationFraction=0.9"),
        (lambda: TorchRegressor(processesOn="gpu"), r"processesOn='gpu'; expected"),
        (lambda: TorchRegressor(numProcesses=-1), r"numProcesses=-1; expected"),
        (lambda: TorchClassifier(numThreads=-2), r"numThreads=-2; expected"),
        (
            lambda: TorchClassifier().setExtraParams({"lr": 0.1}),
            r"extraParams=\{'lr': 0.1\} is not used by TorchClassifier",
        ),
        (lambda: KerasClassifier(buildModel="mlp"), r"buildModel='mlp' is not call"),
        (
            lambda: KerasClassifier(mode="distributed"),
            r"not available for Keras: .* only on its JAX backend",
        ),
    ],
)
def test_bad_configuration(estimator, message, credit_split):
    with pytest.raises(ConfigError, match=message):
        estimator().fit(credit_split[0])


def test_more_processes_than_task_slots_is_refused(credit_split):
    net = TorchClassifier(mode="distributed", processesOn="executors", numProcesses=9)
    with pytest.raises(ConfigError, match=r"numProcesses=9 is more than the .* 2 task"):
        net.fit(credit_split[0])


def test_infinite_features_are_refused_before_training(credit_split):
    values = vector_to_array("features")
    infinite = F.transform(values, lambda v: v * float("inf"))
    extreme = credit_split[0].withColumn(
        "features",
        array_to_vector(F.when(F.col("Age") < 25, infinite).otherwise(values)),
    )
    with pytest.raises(DataError, match=r"\d+ row\(s\) hold NaN or infinite values"):
        TorchClassifier().fit(extreme)


@pytest.mark.parametrize(
    ("module", "estimator"), [("torch", TorchRegressor), ("keras", KerasRegressor)]
)
def test_missing_library_names_the_extra(monkeypatch, module, estimator, credit_split):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"pip install 'sparktrain\[torch\]'"):
        estimator().fit(credit_split[0])


def test_keras_running_another_backend_is_named(keras_credit, monkeypatch):
    other = SimpleNamespace(backend=SimpleNamespace(backend=lambda: "jax"))
    monkeypatch.setitem(sys.modules, "keras", other)
    keras_credit.fitted._network = None
    with pytest.raises(ConfigError, match=r"imported with the 'jax' backend .* KERAS_"):
        keras_credit.predictMatrix(np.zeros((2, 9)))
