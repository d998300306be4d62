"""LightGBM, XGBoost and scikit-learn as pyspark.ml stages, on real tables."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator,
    RegressionEvaluator,
)
from pyspark.ml.feature import HashingTF, Tokenizer
from pyspark.ml.functions import array_to_vector
from pyspark.ml.tuning import ParamGridBuilder
from pyspark.sql import functions as F
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.svm import SVC

from sparktrain.errors import ConfigError, DataError, MissingExtraError
from sparktrain.libraries import (
    LightGBMClassifier,
    LightGBMRegressor,
    SingleNodeModel,
    SklearnClassifier,
    SklearnRegressor,
    XGBoostClassifier,
    XGBoostRegressor,
)
from sparktrain.libraries._matrix import cached_row_count

CLASSIFIERS = {
    "lightgbm": lambda: LightGBMClassifier(numIterations=100),
    "xgboost": lambda: XGBoostClassifier(numIterations=100, maxDepth=4),
    "extra_trees": lambda: SklearnClassifier(
        estimator=ExtraTreesClassifier(n_estimators=100, min_samples_leaf=3)
    ),
    "hist_gradient_boosting": lambda: SklearnClassifier(
        estimator=HistGradientBoostingClassifier()
    ),
}
REGRESSORS = {
    "lightgbm": lambda: LightGBMRegressor(numIterations=200),
    "xgboost": lambda: XGBoostRegressor(numIterations=200),
    "extra_trees": lambda: SklearnRegressor(
        estimator=ExtraTreesRegressor(n_estimators=100)
    ),
}


def auc(scored) -> float:
    return BinaryClassificationEvaluator(metricName="areaUnderROC").evaluate(scored)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_binary_classifier_on_credit(name, credit_split, tmp_path):
    train, test = credit_split
    model = CLASSIFIERS[name]().fit(train)
    scored = model.transform(test)

    assert auc(scored) > 0.75
    assert scored.count() == test.count()
    assert set(test.columns) < set(scored.columns)
    assert model.info["mode"] == "local"
    assert len(model.scorer().classes) == 2

    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = type(model).load(str(tmp_path / "model"))
    before = scored.select("probability").collect()
    assert loaded.transform(test).select("probability").collect() == before


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_multiclass_classifier_on_iris(name, iris):
    train, test = iris.randomSplit([0.7, 0.3], seed=5)
    scored = CLASSIFIERS[name]().fit(train).transform(test)

    accuracy = MulticlassClassificationEvaluator(metricName="accuracy")
    assert accuracy.evaluate(scored) > 0.85
    widths = {len(row.probability) for row in scored.select("probability").collect()}
    assert widths == {3}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor_on_diamonds(name, diamonds_split, tmp_path):
    train, test = diamonds_split
    model = REGRESSORS[name]().fit(train)
    scored = model.transform(test)

    assert RegressionEvaluator(metricName="r2").evaluate(scored) > 0.8
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = SingleNodeModel.load(str(tmp_path / "model"))
    assert loaded.transform(test).select("prediction").collect() == (
        scored.select("prediction").collect()
    )


def test_estimator_saves_and_loads(tmp_path):
    estimator = SklearnClassifier(
        estimator=LogisticRegression(C=0.5), extraParams={"max_iter": 300}
    )
    estimator.write().overwrite().save(str(tmp_path / "estimator"))
    loaded = SklearnClassifier.load(str(tmp_path / "estimator"))
    assert loaded.getEstimator().C == 0.5
    assert loaded.getExtraParams() == {"max_iter": 300}

    lgbm = LightGBMClassifier(numLeaves=7, mode="local")
    lgbm.write().overwrite().save(str(tmp_path / "lgbm"))
    again = LightGBMClassifier.load(str(tmp_path / "lgbm"))
    assert again.getOrDefault("numLeaves") == 7
    assert again.getMode() == "local"


def test_classes_missing_from_training_keep_their_slot(iris):
    """Class 1 absent from training: predictions use classes 0 and 2 only,
    and the probability vector still has a slot for each of the 3 classes."""
    train = iris.where("label != 1")
    model = LightGBMClassifier(numIterations=20).fit(train)
    scored = model.transform(iris).select("prediction", "probability").collect()

    assert {row.prediction for row in scored} <= {0.0, 2.0}
    assert all(len(row.probability) == 3 for row in scored)
    assert all(row.probability[1] == 0.0 for row in scored)


def test_wide_sparse_text_features_stay_sparse(spark, caplog):
    rows = [(f"good value word{i % 7} item{i % 13}", float(i % 2)) for i in range(400)]
    rows += [(f"bad deal word{i % 5}", 0.0) for i in range(100)]
    words = Tokenizer(inputCol="text", outputCol="words").transform(
        spark.createDataFrame(rows, ["text", "label"])
    )
    frame = HashingTF(
        inputCol="words", outputCol="features", numFeatures=1 << 16
    ).transform(words)

    with caplog.at_level("INFO", logger="sparktrain.libraries._matrix"):
        model = LightGBMClassifier(numIterations=10, minDataInLeaf=5).fit(frame)
    assert "x 65536 features to the driver (sparse" in caplog.text
    assert model.transform(frame).count() == 500


def test_fit_multiple_runs_trials_as_spark_tasks_like_sequential_fits(credit_split):
    train = credit_split[0]
    lgbm = LightGBMClassifier(numIterations=30, numThreads=1, seed=11)
    grid = (
        ParamGridBuilder()
        .addGrid(lgbm.numLeaves, [4, 8, 16, 31])
        .addGrid(lgbm.learningRate, [0.05, 0.2])
        .build()
    )

    parallel = dict(lgbm.fitMultiple(train, grid))
    sequential = [lgbm.copy(params).fit(train) for params in grid]

    assert sorted(parallel) == list(range(8))
    assert {m.info["mode"] for m in parallel.values()} == {"trial-parallel"}
    matrix = np.random.default_rng(0).normal(size=(50, 9)) * 100 + 500
    for index, model in enumerate(sequential):
        assert model.info["mode"] == "local"
        np.testing.assert_array_equal(
            parallel[index].fitted.predict_proba(matrix),
            model.fitted.predict_proba(matrix),
        )
    leaves = [parallel[i].fitted.get_params()["num_leaves"] for i in range(8)]
    assert leaves == [4, 4, 8, 8, 16, 16, 31, 31]


def test_batch_scoring_a_million_rows_collects_nothing(spark, credit_split):
    import resource

    model = LightGBMClassifier(numIterations=20).fit(credit_split[0])
    columns = [(F.rand(seed=i) * 1000).alias(f"c{i}") for i in range(9)]
    big = spark.range(1_000_000).select(
        array_to_vector(F.array(*columns)).alias("features")
    )

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    totals = model.transform(big).agg(
        F.count("prediction").alias("rows"), F.sum("prediction").alias("positives")
    )
    result = totals.first()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before

    assert result.rows == 1_000_000
    assert 0 < result.positives < 1_000_000
    assert grown_kib < 64 * 1024  # collecting 1M rows would cost far more


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize("metadata", ["recorded width", "no metadata"])
def test_too_large_for_local_is_refused_with_what_to_do(credit_split, metadata):
    train = credit_split[0]
    if metadata == "no metadata":  # the size then comes from a sample of rows
        train = train.withColumn("features", F.col("features").alias("x", metadata={}))
    with pytest.raises(DataError, match=r"maxLocalBytes=.*sample the table"):
        LightGBMClassifier(maxLocalBytes=10_000).fit(train)


def test_rows_of_a_loaded_cache_are_counted_without_a_job(spark, spark_job_ids):
    frame = spark.range(0, 1000, 1, 4).withColumn("x", F.rand(1)).cache()
    selected = frame.select(F.col("x").alias("y"))
    assert cached_row_count(selected) is None  # nothing stored yet
    frame.limit(3).collect()
    assert cached_row_count(selected) is None  # only part of the cache is stored
    frame.count()
    jobs = spark_job_ids()
    assert cached_row_count(selected) == 1000
    assert spark_job_ids() == jobs
    assert cached_row_count(frame.where("x > 0.5")) is None  # a filter drops rows
    frame.unpersist()


def test_auto_mode_goes_distributed_for_xgboost_when_too_large(credit_split):
    train, test = credit_split
    model = XGBoostClassifier(numIterations=50, maxLocalBytes=10_000, numWorkers=2)
    fitted = model.fit(train)
    assert fitted.info["mode"] == "distributed"
    assert "too large for local" in fitted.info["modeReason"]
    assert auc(fitted.transform(test)) > 0.75


def test_distributed_is_refused_for_lightgbm(credit_split):
    with pytest.raises(ConfigError, match="mode='distributed' is not available"):
        LightGBMClassifier(mode="distributed").fit(credit_split[0])


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (lambda: LightGBMClassifier(mode="cluster"), r"mode='cluster'; expected"),
        (
            lambda: SklearnClassifier(estimator=Ridge()),
            r"estimator=Ridge is not a scikit-learn classifier",
        ),
        (
            lambda: SklearnRegressor(estimator=ExtraTreesClassifier()),
            r"estimator=ExtraTreesClassifier is not a scikit-learn regressor",
        ),
        (lambda: SklearnClassifier(estimator=SVC()), "has no predict_proba"),
        (lambda: SklearnClassifier(), "estimator is not set"),
    ],
)
def test_bad_configuration(estimator, message, credit_split):
    with pytest.raises(ConfigError, match=message):
        estimator().fit(credit_split[0])


def test_label_problems_are_named(spark, credit_split):
    train = credit_split[0]
    halves = train.withColumn("label", F.col("label") / 2)
    with pytest.raises(DataError, match=r"label column 'label' holds \[0.5\]"):
        LightGBMClassifier().fit(halves)

    one_class = train.withColumn("label", F.lit(1.0))
    with pytest.raises(DataError, match="holds one class only"):
        LightGBMClassifier().fit(one_class)

    holes = train.withColumn(
        "label", F.when(F.col("Age") < 25, None).otherwise(F.col("label"))
    )
    with pytest.raises(DataError, match=r"missing \(null or NaN\) in \d+ row"):
        LightGBMRegressor().fit(holes)


def test_features_must_be_a_vector(credit_split):
    plain = credit_split[0].withColumn("features", F.col("Age"))
    with pytest.raises(DataError, match="features column 'features' has type bigint"):
        LightGBMClassifier().fit(plain)


def test_scoring_vectors_of_another_width_fails(spark, credit_split):
    model = LightGBMClassifier(numIterations=5).fit(credit_split[0])
    narrow = spark.range(3).select(
        array_to_vector(F.array(F.lit(1.0))).alias("features")
    )
    with pytest.raises(Exception, match="the model was trained on 9"):
        model.transform(narrow).collect()


def test_scoring_vectors_of_mixed_widths_fails(spark, credit_split):
    model = LightGBMClassifier(numIterations=5).fit(credit_split[0])
    width = F.when(F.col("id") == 1, F.array(F.lit(1.0))).otherwise(
        F.array(*[F.lit(1.0)] * 9)
    )
    mixed = spark.range(3).select(array_to_vector(width).alias("features"))
    with pytest.raises(Exception, match=r"feature vectors differ in length \(\[1, 9\]"):
        model.transform(mixed).collect()


def test_missing_library_names_the_extra(monkeypatch, credit_split):
    import sys

    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'sparktrain\[boost\]'"):
        LightGBMClassifier().fit(credit_split[0])
