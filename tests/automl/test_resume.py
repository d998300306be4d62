"""A run killed with SIGKILL mid-search resumes from its Optuna study: no
finished trial runs again, and the model is at least as good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

import sparktrain
from sparktrain.automl import AutoML
from sparktrain.errors import ConfigError

KILL_AFTER_COMPLETE = 4
#: New trials the resumed run may add: enough to show it searches on.
NEW_TRIALS = 4


def _finished(database) -> dict[int, tuple]:
    if not database.is_file():
        return {}
    try:
        study = optuna.load_study(study_name="automl", storage=f"sqlite:///{database}")
    except KeyError:  # the study is not created yet
        return {}
    return {
        t.number: (t.value, t.datetime_complete, t.params)
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE
    }


def _trial_count(database) -> int:
    storage = f"sqlite:///{database}"
    return len(optuna.load_study(study_name="automl", storage=storage).trials)


def test_killed_run_resumes_without_rerunning_finished_trials(
    spark, credit_csv, tmp_path
):
    run_dir = tmp_path / "run"
    script = f"""
import sparktrain
from sparktrain.automl import AutoML
spark = sparktrain.session(master="local[2]")
frame = sparktrain.read_table({str(credit_csv)!r}, spark=spark).frame
run_dir = {str(run_dir)!r}
AutoML(labelCol="Status", timeBudget=600, tracking=False, runDir=run_dir).fit(frame)
"""
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    database = run_dir / "optuna.db"
    deadline = time.monotonic() + 240
    try:
        while len(_finished(database)) < KILL_AFTER_COMPLETE:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run finished too few trials"
            time.sleep(0.5)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    before = _finished(database)
    trials_at_kill = _trial_count(database)
    best_before = max(value for value, _, _ in before.values())

    frame = sparktrain.read_table(credit_csv, spark=spark).frame
    model = AutoML(
        labelCol="Status",
        timeBudget=25,
        maxTrials=trials_at_kill + NEW_TRIALS,
        tracking=False,
        runDir=str(run_dir),
        resume=True,
    ).fit(frame)

    after = _finished(database)
    for number, trial in before.items():
        assert after[number] == trial  # kept as it was, never run again
    new = {n: t for n, t in after.items() if n not in before}
    repeated = [n for n, t in new.items() if t[2] in [b[2] for b in before.values()]]
    assert not repeated, f"trials {repeated} repeat a configuration already finished"
    defaults = [r for r in model.summary["leaderboard"] if r["trial"] in before]
    assert len(defaults) == len(before)
    assert _trial_count(database) > trials_at_kill, "the resumed run added no trial"
    assert model.bestConfig["score"] >= best_before


def test_resume_without_an_earlier_run_is_refused(spark, credit_csv, tmp_path):
    frame = sparktrain.read_table(credit_csv, spark=spark).frame
    automl = AutoML(
        labelCol="Status",
        timeBudget=20,
        tracking=False,
        runDir=str(tmp_path),
        resume=True,
    )
    with pytest.raises(ConfigError, match="holds no AutoML run"):
        automl.fit(frame)
