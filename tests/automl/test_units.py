"""AutoML's parts on their own: metrics, folds, the space, ensembling,
guardrails, and the search loop driven by a stand-in runner."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
from sklearn import metrics as M

from sparktrain.automl import ensemble, guardrails, space, tracking, validation
from sparktrain.automl.job import parse_budget
from sparktrain.automl.runner import Evaluation, Payload, evaluate
from sparktrain.automl.search import Clock, Search
from sparktrain.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def _binary(rows=600):
    X = RNG.normal(size=(rows, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] + RNG.normal(scale=0.5, size=rows) > 0).astype(float)
    return X, y


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss", "accuracy", "f1_macro"])
def test_classification_metrics_equal_scikit_learn(metric):
    y = RNG.integers(0, 2, 200).astype(float)
    p1 = np.clip(y * 0.6 + RNG.uniform(size=200) * 0.4, 0, 1)
    probability = np.column_stack([1 - p1, p1])
    expected = {
        "roc_auc": M.roc_auc_score(y, p1),
        "log_loss": M.log_loss(y, probability),
        "accuracy": M.accuracy_score(y, p1 > 0.5),
        "f1_macro": M.f1_score(y, p1 > 0.5, average="macro"),
    }[metric]
    assert validation.score(metric, y, probability) == pytest.approx(expected)


def test_regression_metrics_equal_scikit_learn():
    y = RNG.normal(size=100)
    predicted = y + RNG.normal(scale=0.3, size=100)
    assert validation.score("rmse", y, predicted) == pytest.approx(
        M.root_mean_squared_error(y, predicted)
    )
    assert validation.score("r2", y, predicted) == pytest.approx(
        M.r2_score(y, predicted)
    )


@pytest.mark.parametrize(
    ("metric", "task", "classes", "match"),
    [
        ("rmse", "classification", 2, "metric='rmse' does not fit classification"),
        ("roc_auc", "regression", 0, "it is a classification metric"),
        ("auc", "classification", 2, "expected one of"),
        ("pr_auc", "classification", 3, "needs two classes"),
    ],
)
def test_metric_that_does_not_fit_the_task_is_refused(metric, task, classes, match):
    with pytest.raises(ConfigError, match=match):
        validation.check_metric(metric, task, classes)


def test_small_tables_get_stratified_kfold_large_ones_a_holdout():
    y = np.r_[np.zeros(900), np.ones(100)]
    small = validation.plan(
        y, task="classification", validation="auto", num_folds=5, seed=1
    )
    assert small.kind == "kfold"
    assert len(small.folds) == 5
    for _, valid in small.folds:
        assert y[valid].mean() == pytest.approx(0.1, abs=0.01)  # stratified
    assert sorted(small.validated.tolist()) == list(range(1000))

    big = np.tile(y, 21)
    large = validation.plan(
        big, task="classification", validation="auto", num_folds=5, seed=1
    )
    assert large.kind == "holdout"
    assert len(large.folds) == 1
    assert len(large.validated) == pytest.approx(0.2 * len(big), abs=1)
    assert large.rungs == [1 / 9, 1 / 3, 1.0]


def test_time_column_orders_the_folds():
    order = RNG.permutation(1000).astype(float)
    y = RNG.normal(size=1000)
    plan = validation.plan(
        y, task="regression", validation="kfold", num_folds=3, seed=1, order=order
    )
    for train, valid in plan.folds:
        assert order[train].max() < order[valid].min()
    assert "ordered by time" in plan.reason


def test_a_class_of_one_row_is_refused():
    y = np.r_[np.zeros(50), np.ones(50), [2.0]]
    with pytest.raises(
        DataError, match=r"the label has class\(es\) \[2\] with a single row"
    ):
        validation.plan(
            y, task="classification", validation="auto", num_folds=5, seed=1
        )


def test_rungs_grow_by_three_and_end_at_all_rows():
    assert validation.rungs(800) == [1.0]
    assert validation.rungs(3_500) == [1 / 3, 1.0]
    assert validation.rungs(10**7)[-1] == 1.0
    assert len(validation.rungs(10**7)) == 4


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("1.5h", 5400)]
)
def test_budget_parses_durations(text, seconds):
    assert parse_budget(text) == seconds


def test_budget_that_is_not_a_duration_is_refused():
    with pytest.raises(ConfigError, match="--budget 'soon' is not a duration"):
        parse_budget("soon")


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", list(space.CANDIDATES))
def test_every_candidate_default_fits_and_scores(name, task):
    X, y = _binary()
    if task == "regression":
        y = X[:, 0] * 3 + RNG.normal(size=len(y))
    plan = validation.plan(y, task=task, validation="kfold", num_folds=3, seed=1)
    payload = Payload(
        X, y, None, plan, task, 2, "roc_auc" if task != "regression" else "r2", 1
    )
    (config,) = space.default_configs(task, [name], sparse=False)
    result = evaluate(payload, config, 1.0, threads=1)
    assert result.score > (0.8 if task == "classification" else 0.5)
    assert result.predictions.shape[0] == len(y)


def test_unknown_or_missing_learners_are_refused():
    with pytest.raises(ConfigError, match="learner 'svm' is not one AutoML searches"):
        space.choose_candidates("classification", ["svm"], [], lambda lib: True)
    with pytest.raises(ConfigError, match="no learner is left to search"):
        space.choose_candidates(
            "regression", ["lightgbm"], [], lambda lib: lib != "lightgbm"
        )


def test_trees_are_never_scaled_and_sparse_tables_keep_their_zeros():
    assert space.scalers_for("lightgbm", sparse=False) == ("none",)
    assert "minmax" in space.scalers_for("linear", sparse=False)
    assert "minmax" not in space.scalers_for("linear", sparse=True)


def test_greedy_selection_weights_complementary_trials():
    y = np.r_[np.zeros(100), np.ones(100)]
    good_on_first = np.where(np.arange(200) < 100, 0.1, 0.45)
    good_on_second = np.where(np.arange(200) < 100, 0.55, 0.9)
    predictions = {
        1: np.column_stack([1 - good_on_first, good_on_first]),
        2: np.column_stack([1 - good_on_second, good_on_second]),
    }
    weights, value = ensemble.select(predictions, y, "log_loss")
    singles = [validation.score("log_loss", y, p) for p in predictions.values()]
    assert set(weights) == {1, 2}
    assert value < min(singles)
    assert ensemble.worth_keeping(value, min(singles), "log_loss")
    assert not ensemble.worth_keeping(min(singles), min(singles), "log_loss")


def test_a_leaked_column_is_found_and_honest_ones_are_not():
    X, y = _binary(2000)
    leaked = np.column_stack([X, y + RNG.normal(scale=0.01, size=len(y))])
    sources = ["a", "b", "c", "d", "e", "copy_of_label"]
    found = guardrails.find_leaks(leaked, y, sources, task="classification", seed=1)
    assert list(found) == ["copy_of_label"]


def test_imbalance_and_few_rows_are_reported():
    y = np.r_[np.zeros(990), np.ones(10)]
    found = guardrails.label_checks(
        y, ["no", "yes"], task="classification", balanced=False, folds=5
    )
    checks = {g.check: g for g in found}
    assert "class 'yes' has 10 rows (1.0%)" in checks["class_imbalance"].message
    assert "classWeights='balanced'" in checks["class_imbalance"].action
    assert "few_rows" in checks


class _StandIn:
    """A runner whose trials fail or succeed by learner, with no Spark."""

    def __init__(self, failing: dict[str, str]) -> None:
        self.failing = failing

    def evaluate(self, config, share, allowance):
        if config["learner"] in self.failing:
            raise ValueError(self.failing[config["learner"]])
        return Evaluation(
            score=0.7 + RNG.uniform() / 10, seconds=0.01, predictions=None
        )


def _search(tmp_path, failing, names=("linear", "lightgbm")):
    y = np.r_[np.zeros(50), np.ones(50)]
    plan = validation.plan(
        y, task="classification", validation="kfold", num_folds=2, seed=1
    )
    study = optuna.create_study(direction="maximize")
    return Search(
        study,
        _StandIn(failing),
        task="classification",
        names=list(names),
        sparse=False,
        plan=plan,
        clock=Clock(30),
        max_trials=6,
        parallelism=2,
        predictions_dir=tmp_path,
    )


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    records = _search(tmp_path, {"linear": "singular matrix"}).run()
    failed = [r for r in records if r.state == "failed"]
    assert failed
    assert all(r.reason == "singular matrix" for r in failed)
    assert any(r.state == "complete" and r.learner == "lightgbm" for r in records)
    assert len(records) == 6


def test_every_trial_failing_lists_the_distinct_reasons(tmp_path):
    from sparktrain.automl.estimator import best_partial

    search = _search(tmp_path, {"linear": "singular matrix", "lightgbm": "bad label"})
    search.run()
    with pytest.raises(
        DataError,
        match=r"6 trial\(s\) failed; the distinct reasons: bad label; singular matrix",
    ):
        best_partial(search, "roc_auc")


def test_a_budget_with_no_room_for_a_trial_says_the_minimum(tmp_path):
    from sparktrain.automl.estimator import best_partial

    search = _search(tmp_path, {})
    search.clock = Clock(0.1)
    search.run()
    with pytest.raises(
        ConfigError, match=r"too small to fit even one trial .* pass at least \d+ s"
    ):
        best_partial(search, "roc_auc")


def test_a_trial_never_runs_into_the_time_kept_for_the_refit(tmp_path):
    from sparktrain.automl.search import FINISH_SECONDS, TrialRecord

    search = _search(tmp_path, {})
    forest = {"learner": "random_forest", "scaler": "none", "params": {}}
    # Two folds measured at 8 s: refitting on every row costs about 4 s x 1.3.
    search.costs.add(forest, 1.0, 8.0)
    search.records.append(TrialRecord.of(0, forest, "complete", score=0.8))
    refit = 4.0 * 1.3
    assert search.reserve() == pytest.approx(FINISH_SECONDS + 1.5 * refit)

    linear = {"learner": "linear", "scaler": "none", "params": {}}
    allowance = search._allowance(linear, 1.0)
    assert allowance <= search.clock.remaining() - search.reserve() + 0.01
    assert allowance < search.clock.remaining() - 1.5 * refit

    # Two members refit side by side on two slots; four take two rounds.
    assert search.finish_seconds([forest, forest]) == pytest.approx(search.reserve())
    assert search.finish_seconds([forest] * 4) == pytest.approx(
        FINISH_SECONDS + 1.5 * 2 * refit
    )


def test_workers_are_warmed_only_where_they_do_not_slow_the_driver(monkeypatch):
    from sparktrain.automl import runner

    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    assert not runner._workers_have_room("local[2]")
    assert not runner._workers_have_room("local[*]")
    assert runner._workers_have_room("spark://10.0.0.1:7077")
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 8)
    assert runner._workers_have_room("local[*]")


def test_slow_tracking_does_not_hold_the_run_past_its_deadline(monkeypatch, tmp_path):
    logged = []

    def slow_finish(self, metrics, artifacts):
        time.sleep(1.5)
        logged.append(metrics)

    monkeypatch.setattr(tracking.Tracker, "_open", lambda self, *a: "run-1")
    monkeypatch.setattr(tracking.Tracker, "_finish", slow_finish)
    tracker = tracking.Tracker(f"sqlite:///{tmp_path}/m.db", "x", enabled=True)
    tracker.start(None, "run", {})
    started = time.monotonic()
    tracker.finish({"best": 1.0}, {}, wait=0.2)
    assert time.monotonic() - started < 1.0
    assert logged == []
    tracking.flush()
    assert logged == [{"best": 1.0}]


class _Slow:
    """LightGBM needs 8 s (simulated) for 100 trees on every row."""

    def __init__(self) -> None:
        self.allowances: list[float] = []

    def evaluate(self, config, share, allowance):
        from sparktrain.automl.runner import TrialStopped

        self.allowances.append(allowance)
        needs = 8.0 * share * config["params"]["n_estimators"] / 100
        if allowance < needs:
            raise TrialStopped(f"stopped after its allowance of {allowance:.1f} s")
        return Evaluation(score=0.9, seconds=needs, predictions=None)


def test_a_learner_stopped_at_its_allowance_gets_more_next_time(tmp_path):
    from sparktrain.automl.runner import TrialStopped

    search = _search(tmp_path, {})
    search.runner = slow = _Slow()
    search.clock = Clock(60)
    # Only a linear model measured: LightGBM's first cost is a guess from it.
    linear = {"learner": "linear", "scaler": "none", "params": {}}
    search.costs.add(linear, 1.0, 0.01)
    lightgbm = {
        "learner": "lightgbm",
        "scaler": "none",
        "params": {"n_estimators": 100},
    }

    with pytest.raises(TrialStopped):
        search._run_trial(search.study.ask(), lightgbm)
    state, *_ = search._run_trial(search.study.ask(), lightgbm)

    assert state == "complete"
    assert slow.allowances[0] < 8.0 <= slow.allowances[-1]
