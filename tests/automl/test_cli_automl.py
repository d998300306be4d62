"""``sparktrain train --budget``: AutoML from the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sparktrain.cli import app

runner = CliRunner()


def run(*arguments: str):
    return runner.invoke(app, list(arguments), catch_exceptions=False)


def said(result) -> str:
    return " ".join(result.output.split())


def test_train_with_a_budget_runs_automl_then_predict_scores(
    spark, credit_csv, tmp_path
):
    out = tmp_path / "run"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trained = run(
        "train",
        str(credit_csv),
        "--label",
        "Status",
        "--budget",
        "20s",
        "--out",
        str(out),
        "--tracking-uri",
        uri,
    )
    assert trained.exit_code == 0, trained.output
    text = said(trained)
    for expected in (
        "leaderboard",
        "trials ran trial-parallel",
        "validation: ",
        "MLflow run",
    ):
        assert expected in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "roc_auc"
    assert metrics["validation_score"] > 0.8
    assert metrics["mlflow_run_id"] in text
    assert json.loads((out / "leaderboard.json").read_text())[0]["rank"] == 1

    scored = run(
        "predict", str(out), str(credit_csv), "--out", str(tmp_path / "s.parquet")
    )
    assert scored.exit_code == 0, scored.output
    assert "scored 4454 row(s)" in said(scored)


def test_resume_of_a_folder_without_a_run_is_refused(spark, credit_csv, tmp_path):
    result = run(
        "train",
        str(credit_csv),
        "--label",
        "Status",
        "--budget",
        "20",
        "--resume",
        str(tmp_path),
        "--no-tracking",
    )
    assert result.exit_code == 1
    assert "holds no AutoML run to continue" in said(result)


def test_a_budget_that_is_not_a_duration_is_refused(spark, credit_csv):
    result = run("train", str(credit_csv), "--label", "Status", "--budget", "soon")
    assert result.exit_code == 1
    assert "--budget 'soon' is not a duration" in said(result)


def test_a_metric_that_does_not_fit_is_refused(spark, credit_csv):
    result = run(
        "train",
        str(credit_csv),
        "--label",
        "Status",
        "--budget",
        "20",
        "--metric",
        "rmse",
        "--no-tracking",
    )
    assert result.exit_code == 1
    assert "metric='rmse' does not fit classification" in said(result)
