import json
import socket

import pandas as pd
import pytest
from typer.testing import CliRunner

from sparktrain import __version__
from sparktrain.cli import app

runner = CliRunner()


def run(*arguments: str):
    return runner.invoke(app, list(arguments), catch_exceptions=False)


def said(result) -> str:
    """Everything the command printed, with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sparktrain {__version__}"


def test_info_prints_what_is_in_effect(spark):
    result = run("info")
    assert result.exit_code == 0
    for key in ("spark", "java", "master", "cores", "driver_memory"):
        assert key in result.stdout


def test_train_then_predict_on_csv(spark, credit_csv, tmp_path):
    run_dir = tmp_path / "run"
    trained = run("train", str(credit_csv), "--label", "Status", "--out", str(run_dir))
    assert trained.exit_code == 0, trained.output
    assert "holdout: accuracy" in said(trained)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["rows"]["read"] == 4454
    assert metrics["rows"]["malformed_skipped"] == 0

    scored_path = tmp_path / "scored.csv"
    scored = run("predict", str(run_dir), str(credit_csv), "--out", str(scored_path))
    assert scored.exit_code == 0, scored.output
    assert "scored 4454 row(s)" in said(scored)

    frame = pd.concat(pd.read_csv(p) for p in sorted(scored_path.glob("part-*.csv")))
    assert len(frame) == 4454
    assert {
        "Status",
        "Income",
        "prediction",
        "probability_bad",
        "probability_good",
    } <= set(frame.columns)
    assert (
        frame[["probability_bad", "probability_good"]].sum(axis=1).round(6).eq(1).all()
    )

    again = run("predict", str(run_dir), str(credit_csv), "--out", str(scored_path))
    assert again.exit_code == 2
    assert "exists; pass --overwrite" in said(again)


def test_predict_writes_parquet_by_default(spark, credit_model, credit_csv, tmp_path):
    out = tmp_path / "scored"
    result = run("predict", str(credit_model), str(credit_csv), "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 4454
    assert frame["prediction"].isin(["bad", "good"]).all()


def test_predict_writes_rejected_rows_aside_with_their_reason(
    spark, credit_model, credit_pdf, tmp_path
):
    path = tmp_path / "new.csv"
    complete = credit_pdf.dropna().head(20)
    complete.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    short = "good,9"
    mistyped = lines[1].split(",")
    mistyped[credit_pdf.columns.get_loc("Age")] = "forty"
    path.write_text("\n".join([*lines, short, ",".join(mistyped)]) + "\n")
    out = tmp_path / "scored.parquet"

    result = run("predict", str(credit_model), str(path), "--out", str(out))

    assert result.exit_code == 0, result.output
    assert "scored 20 row(s)" in said(result)
    assert "2 rejected row(s)" in said(result)
    assert len(pd.read_parquet(out)) == 20
    aside = pd.concat(
        pd.read_csv(p) for p in (tmp_path / "scored.parquet.rejected").glob("*.csv")
    )
    reasons = dict(zip(aside["line"], aside["reason"], strict=True))
    assert len(reasons) == 2
    columns = len(credit_pdf.columns)
    assert reasons[short] == f"2 field(s) where the header has {columns}"
    reason = reasons[",".join(mistyped)]
    assert reason == "values that do not parse as their column's type: Age"


def test_malformed_rows_are_reported_and_strict_fails(spark, credit_model, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n")
    lenient = run("train", str(path), "--label", "b", "--out", str(tmp_path / "r"))
    assert "1 malformed row(s) skipped" in said(lenient)
    assert "malformed: '3'" in said(lenient)

    strict = run("train", str(path), "--label", "b", "--strict")
    assert strict.exit_code == 1
    assert "1 malformed row(s)" in said(strict)
    assert "the first is '3'" in said(strict)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "nope.csv", "--label", "y"], "no file or folder at 'nope.csv'"),
        (["train", "CREDIT", "--label", "state"], "Did you mean 'Status'?"),
        (
            ["train", "CREDIT", "--label", "Status", "--format", "xml"],
            "format='xml' is not supported",
        ),
        (["predict", "nowhere", "CREDIT", "--out", "x.csv"], "no model folder at"),
    ],
)
def test_bad_input_exits_with_a_message(spark, credit_csv, arguments, message):
    arguments = [str(credit_csv) if a == "CREDIT" else a for a in arguments]
    result = run(*arguments)
    assert result.exit_code == 1
    assert message in said(result)


def test_bad_task_is_a_usage_error(spark, credit_csv):
    result = run("train", str(credit_csv), "--label", "Status", "--task", "ranking")
    assert result.exit_code == 2
    assert "expected classification or regression" in said(result)


def test_cluster_status_when_none_runs(tmp_path):
    result = run("cluster", "status", "--state-dir", str(tmp_path))
    assert result.exit_code == 3
    assert '"running": false' in result.stdout


def test_cluster_stop_when_none_runs(tmp_path):
    result = run("cluster", "stop", "--state-dir", str(tmp_path))
    assert result.exit_code == 0
    assert "no cluster was running" in result.stdout


def test_cluster_start_on_a_busy_port_says_so(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(
            "cluster", "start", "--port", str(port), "--state-dir", str(tmp_path)
        )
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in said(result)


def test_train_with_a_named_model_then_evaluate(spark, credit_csv, tmp_path):
    run_dir = tmp_path / "lr"
    trained = run(
        "train",
        str(credit_csv),
        "--label",
        "Status",
        "--model",
        "logistic_regression",
        "--out",
        str(run_dir),
    )
    assert trained.exit_code == 0, trained.output
    assert json.loads((run_dir / "metrics.json").read_text())["learner"] == (
        "logistic_regression"
    )

    stats_path = tmp_path / "stats.json"
    evaluated = run(
        "evaluate", str(run_dir), str(credit_csv), "--json", str(stats_path)
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "confusion matrix" in said(evaluated)
    stats = json.loads(stats_path.read_text())
    assert stats["rows"] == 4454
    assert stats["roc_auc"] > 0.75


def test_unknown_model_name(spark, credit_csv):
    result = run("train", str(credit_csv), "--label", "Status", "--model", "catboost")
    assert result.exit_code == 1
    assert "model='catboost' is not a classification learner" in said(result)


def test_train_lightgbm_reports_where_it_fitted_then_predicts(
    spark, credit_csv, tmp_path
):
    run_dir = tmp_path / "lgbm"
    trained = run(
        "train",
        str(credit_csv),
        "--label",
        "Status",
        "--model",
        "lgbm",
        "--out",
        str(run_dir),
    )
    assert trained.exit_code == 0, trained.output
    assert "learner lightgbm, fitted local: the table fits the driver" in said(trained)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["fit"]["mode"] == "local"
    assert metrics["holdout"]["roc_auc"] > 0.8

    scored_dir = tmp_path / "scored"
    predicted = run("predict", str(run_dir), str(credit_csv), "--out", str(scored_dir))
    assert predicted.exit_code == 0, predicted.output
    scored = pd.read_parquet(scored_dir)
    assert len(scored) == 4454
    assert set(scored["prediction"]) <= {"good", "bad"}
    assert {"probability_good", "probability_bad"} <= set(scored.columns)
