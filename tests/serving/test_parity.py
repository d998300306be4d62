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
from pyspark.ml.regression import FMRegressor
from pyspark.sql import functions as F
from sklearn.ensemble import ExtraTreesClassifier

from sparktrain.libraries import (
    LightGBMClassifier,
    LightGBMRegressor,
    XGBoostClassifier,
)
from sparktrain.serving import Scorer

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
}
REGRESSORS = {
    **SPARK_REGRESSORS,
    "factorization_machines": lambda: FMRegressor(maxIter=10, stepSize=0.05),
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
