"""Spark-free scoring gives what Spark's batch scoring gives, row by row."""

from __future__ import annotations

import numpy as np
import pytest
from parity_models import SPARK_CLASSIFIERS, SPARK_REGRESSORS, spark_scores
from pyspark.ml.classification import (
    FMClassifier,
    LinearSVC,
    MultilayerPerceptronClassifier,
    NaiveBayes,
)
from pyspark.ml.regression import (
    FMRegressor,
    GeneralizedLinearRegression,
    IsotonicRegression,
)
from pyspark.sql import functions as F
from sklearn.ensemble import ExtraTreesClassifier

from sparktrain.libraries import (
    LightGBMClassifier,
    LightGBMRegressor,
    TorchClassifier,
    XGBoostClassifier,
)
from sparktrain.serving import RequestError, Scorer
from sparktrain.serving._features import to_dense

PARITY_ROWS = 1000

# Small models: the parity of the arithmetic is what is tested, not quality.
CLASSIFIERS = {
    **SPARK_CLASSIFIERS,
    "lightgbm": lambda: LightGBMClassifier(numIterations=30, numThreads=1),
    "xgboost": lambda: XGBoostClassifier(numIterations=30, numThreads=1, mode="local"),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=20, random_state=0),
    "linear_svc": lambda: LinearSVC(maxIter=10),
    "naive_bayes": lambda: NaiveBayes(modelType="gaussian"),
    "factorization_machines": lambda: FMClassifier(maxIter=10, stepSize=0.05),
    "multilayer_perceptron": lambda: MultilayerPerceptronClassifier(maxIter=20),
    "torch_mlp": lambda: TorchClassifier(hiddenLayers=[16], epochs=3),
}
REGRESSORS = {
    **SPARK_REGRESSORS,
    "factorization_machines": lambda: FMRegressor(maxIter=10, stepSize=0.05),
    "glm_gaussian": lambda: GeneralizedLinearRegression(maxIter=10),
    "glm_poisson": lambda: GeneralizedLinearRegression(family="poisson", maxIter=10),
    "glm_gamma_log": lambda: GeneralizedLinearRegression(
        family="gamma", link="log", maxIter=10
    ),
    "glm_tweedie": lambda: GeneralizedLinearRegression(
        family="tweedie", variancePower=1.5, maxIter=10
    ),
    "isotonic_regression": lambda: IsotonicRegression(),
    "lightgbm": lambda: LightGBMRegressor(numIterations=30, numThreads=1),
}


def _check_parity(fitted, folder, frame, label):
    rows = frame.limit(PARITY_ROWS).cache()
    records = [r.asDict() for r in rows.drop(label).collect()]
    assert len(records) == PARITY_ROWS
    expected, expected_probability = spark_scores(fitted, rows)

    served = Scorer.load(folder).predict(records)

    if not fitted.classes:
        np.testing.assert_allclose(served.predictions, expected, rtol=1e-9, atol=1e-6)
    elif expected_probability is None:  # one-vs-rest: Spark gives none either
        assert served.predictions == expected
        assert served.probabilities is None
    else:
        assert served.predictions == expected
        np.testing.assert_allclose(
            served.probabilities, expected_probability, rtol=0, atol=1e-6
        )
    rows.unpersist()


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_parity_on_credit(name, credit_frame, fit_and_save):
    fitted, folder = fit_and_save(
        credit_frame,
        label="Status",
        model=CLASSIFIERS[name](),
        task="classification",
        name=f"credit-{name}",
    )
    _check_parity(fitted, folder, credit_frame, "Status")


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_regressor_parity_on_credit(name, credit_frame, fit_and_save):
    frame = credit_frame.where(F.col("Amount").isNotNull())
    fitted, folder = fit_and_save(
        frame,
        label="Amount",
        model=REGRESSORS[name](),
        task="regression",
        name=f"credit-amount-{name}",
    )
    _check_parity(fitted, folder, frame, "Amount")


TEXT_CLASSIFIERS = {
    **CLASSIFIERS,
    # term counts: what the multinomial and complement models are for
    "naive_bayes_multinomial": lambda: NaiveBayes(modelType="multinomial"),
    "naive_bayes_complement": lambda: NaiveBayes(modelType="complement"),
}


@pytest.mark.parametrize(
    "name",
    [
        "gbt",
        "lightgbm",
        "logistic_regression",
        "naive_bayes_multinomial",
        "naive_bayes_complement",
    ],
)
def test_parity_with_text_and_categories(name, tweets_frame, fit_and_save):
    fitted, folder = fit_and_save(
        tweets_frame,
        label="source",
        model=TEXT_CLASSIFIERS[name](),
        task="classification",
        name=f"tweets-{name}",
    )
    kinds = {d.name: d.kind for d in fitted.featurizeModel.decisions}
    assert kinds["text"] == "text"
    assert kinds["weekday"] == "categorical"
    assert kinds["month"] == "high_cardinality"
    assert kinds["day"] == "datetime"
    _check_parity(fitted, folder, tweets_frame, "source")


@pytest.mark.parametrize(
    "name",
    [
        "logistic_regression",
        "random_forest",
        "lightgbm",
        "gbt",
        "naive_bayes",
        "multilayer_perceptron",
        "linear_svc",
    ],
)
def test_multiclass_parity(name, diamonds_frame, fit_and_save):
    fitted, folder = fit_and_save(
        diamonds_frame,
        label="cut",
        model=CLASSIFIERS[name](),
        task="classification",
        name=f"diamonds-{name}",
    )
    assert len(fitted.classes) == 5
    if name in ("gbt", "linear_svc"):  # binary only: wrapped in one-vs-rest
        assert type(fitted.learnerModel).__name__ == "OneVsRestModel"
    _check_parity(fitted, folder, diamonds_frame, "cut")


def test_automl_model_parity(credit_frame, tmp_path):
    from sparktrain.automl.job import run

    best = run(
        credit_frame,
        label="Status",
        out_dir=tmp_path / "auto",
        timeBudget=90,  # a ceiling on a busy machine; maxTrials ends it sooner
        maxTrials=3,
        learners=["linear", "lightgbm"],
        tracking=False,
    )

    _check_parity(best, tmp_path / "auto", credit_frame, "Status")


@pytest.fixture
def new_york(spark):
    """Train and score in a zone with daylight saving, so hour and day differ
    from UTC's."""
    zone = "spark.sql.session.timeZone"
    before = spark.conf.get(zone)
    spark.conf.set(zone, "America/New_York")
    yield
    spark.conf.set(zone, before)


def test_timestamps_are_scored_in_the_training_time_zone(
    credit_frame, new_york, tmp_path
):
    from pyspark.ml.classification import GBTClassifier

    from sparktrain.run import TrainResult, save
    from sparktrain.train import TrainClassifier

    # 200 days from 2016-03-01: across the spring change of clocks, before
    # the autumn one (whose repeated hour a time without an offset cannot name)
    spread = (F.coalesce("Amount", F.lit(0)) * 7919 + F.col("Age") * 3607) % 17_280_000
    frame = credit_frame.withColumn(
        "applied", F.timestamp_seconds(F.lit(1_456_790_400) + spread)
    )
    fitted = TrainClassifier(
        model=GBTClassifier(maxIter=5, maxDepth=3), labelCol="Status", seed=5
    ).fit(frame)
    kinds = {d.name: d.kind for d in fitted.featurizeModel.decisions}
    assert kinds["applied"] == "datetime"
    save(TrainResult(model=fitted, metrics={"holdout": {}}), tmp_path / "m")
    scorer = Scorer.load(tmp_path / "m")
    assert scorer.metadata["time_zone"] == "America/New_York"

    rows = frame.limit(300).cache()
    expected, expected_probability = spark_scores(fitted, rows)
    featurizer = fitted.featurizeModel
    column = featurizer.getOrDefault("outputCol")
    spark_features = np.array(
        [r[0].toArray() for r in featurizer.transform(rows).select(column).collect()]
    )
    for pattern in ("yyyy-MM-dd'T'HH:mm:ssXXX", "yyyy-MM-dd HH:mm:ss"):
        as_text = rows.withColumn("applied", F.date_format("applied", pattern))
        records = [r.asDict() for r in as_text.drop("Status").collect()]
        # every feature, the timestamp's year to hour and epoch among them
        batch = dict(scorer.schema.columns(records)[0])
        for stage in scorer.stages:
            stage.apply(batch, len(records))
        np.testing.assert_allclose(
            to_dense(batch[scorer.learner.features]), spark_features, atol=1e-9
        )
        served = scorer.predict(records)
        assert served.predictions == expected, pattern
        np.testing.assert_allclose(
            served.probabilities, expected_probability, rtol=0, atol=1e-6
        )
    rows.unpersist()


def test_vector_columns_score_as_lists_or_spark_vectors(credit_frame, fit_and_save):
    from pyspark.ml.feature import VectorAssembler

    frame = (
        VectorAssembler(
            inputCols=["Time", "Age", "Expenses"],
            outputCol="wealth",
            handleInvalid="keep",
        )
        .transform(credit_frame)
        .drop("Time", "Age", "Expenses")
    )
    fitted, folder = fit_and_save(
        frame,
        label="Status",
        model=CLASSIFIERS["logistic_regression"](),
        task="classification",
        name="credit-vector",
    )
    kinds = {d.name: d.kind for d in fitted.featurizeModel.decisions}
    assert kinds["wealth"] == "vector"
    rows = frame.limit(300).cache()
    expected, expected_probability = spark_scores(fitted, rows)
    scorer = Scorer.load(folder)
    records = [r.asDict() for r in rows.drop("Status").collect()]
    as_lists = [{**r, "wealth": r["wealth"].toArray().tolist()} for r in records]
    for sent in (records, as_lists):
        served = scorer.predict(sent)
        assert served.predictions == expected
        np.testing.assert_allclose(
            served.probabilities, expected_probability, rtol=0, atol=1e-6
        )
    rows.unpersist()

    short = {**as_lists[0], "wealth": [1.0, 2.0]}
    with pytest.raises(
        RequestError, match=r"field 'wealth': a vector of 2 numbers; the model takes 3"
    ):
        scorer.predict([as_lists[1], short])
    with pytest.raises(RequestError, match=r"expected a vector as a list of numbers"):
        scorer.predict([{**as_lists[0], "wealth": ["1", "2", "3"]}])
