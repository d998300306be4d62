"""Categories unseen in training: scored in the reserved slot, and counted
while the scoring itself runs (no pass of their own)."""

import pandas as pd
import pytest
from pyspark.sql import functions as F
from typer.testing import CliRunner

import sparktrain
from sparktrain.cli import app
from sparktrain.featurize import Featurize


@pytest.fixture(scope="module")
def credit_frame(spark, credit_pdf):
    return spark.createDataFrame(credit_pdf.head(400))


@pytest.fixture(scope="module")
def featurizer(credit_frame):
    return Featurize(labelCol="Status").fit(credit_frame)


def test_observed_counts_fill_during_the_callers_own_action(
    spark_job_ids, featurizer, credit_frame
):
    odd = credit_frame.withColumn(
        "Home",
        F.when(F.monotonically_increasing_id() % 4 == 0, F.lit("castle")).otherwise(
            F.col("Home")
        ),
    ).withColumn("Job", F.lit("astronaut"))
    expected = featurizer.countUnseen(odd)
    assert expected["Job"] == 400
    assert 0 < expected["Home"] < 400
    jobs_before = spark_job_ids()

    watched, unseen = featurizer.observeUnseen(odd)
    rows = featurizer.transform(watched).select("features").collect()

    assert len(rows) == 400
    assert unseen.get == expected
    assert unseen.get["Marital"] == 0
    # the counts came with the collect: no job was added for them
    assert len(spark_job_ids() - jobs_before) == 1


def test_a_model_without_categories_observes_nothing(spark):
    frame = spark.createDataFrame(
        [(float(i), i % 2) for i in range(60)], ["x", "label"]
    )
    featurizer = Featurize(labelCol="label").fit(frame)
    watched, unseen = featurizer.observeUnseen(frame)
    assert unseen is None
    assert watched is frame
    assert featurizer.countUnseen(frame) == {}


def test_saved_model_knows_its_training_categories(credit_model):
    categories = sparktrain.load_model(credit_model).categories
    assert set(categories) == {"Home", "Marital", "Records", "Job"}
    assert {"owner", "rent"} <= set(categories["Home"])


def test_predict_and_evaluate_report_unseen_categories(
    spark, credit_model, credit_pdf, tmp_path
):
    new = credit_pdf.head(30).copy()
    new.loc[:4, "Home"] = "castle"
    new.loc[:1, "Job"] = "astronaut"
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    out = tmp_path / "scored"
    runner = CliRunner()

    result = runner.invoke(
        app, ["predict", str(credit_model), str(path), "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "categories not seen in training" in said
    assert "Home 5, Job 2" in said
    assert len(pd.read_parquet(out)) == 30

    result = runner.invoke(app, ["evaluate", str(credit_model), str(path)])
    assert result.exit_code == 0, result.output
    assert "Home 5, Job 2" in " ".join(result.output.split())


def test_predict_says_nothing_when_every_category_was_seen(
    spark, credit_model, credit_csv, tmp_path
):
    result = CliRunner().invoke(
        app,
        ["predict", str(credit_model), str(credit_csv), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 0, result.output
    assert "not seen in training" not in result.output
