"""How AutoML measures a configuration: metrics, folds and data fidelities.

Everything here works on NumPy arrays on the driver or in a Spark task, so a
trial's score is computed where it was fitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sparktrain.errors import ConfigError, DataError

#: Tables with at most this many labelled rows are validated by k-fold
#: cross-validation; larger ones by one holdout split.
KFOLD_MAX_ROWS = 20_000
HOLDOUT_FRACTION = 0.2
#: The smallest training sample a low-fidelity trial fits on.
MIN_RUNG_ROWS = 1_000
MAX_RUNGS = 4
REDUCTION = 3

_MAXIMIZE = {"roc_auc", "pr_auc", "accuracy", "f1_macro", "f1_weighted", "r2"}
_MINIMIZE = {"log_loss", "rmse", "mae"}
METRICS = {
    "classification": (
        "roc_auc",
        "pr_auc",
        "log_loss",
        "accuracy",
        "f1_macro",
        "f1_weighted",
    ),
    "regression": ("rmse", "mae", "r2"),
}
VALIDATIONS = ("auto", "kfold", "holdout")


def default_metric(task: str, num_classes: int) -> str:
    """ROC AUC for two classes, log loss for more, RMSE for regression."""
    if task == "regression":
        return "rmse"
    return "roc_auc" if num_classes == 2 else "log_loss"


def check_metric(metric: str, task: str, num_classes: int) -> None:
    """Refuse a metric that does not fit the task."""
    allowed = METRICS[task]
    if metric not in allowed:
        other = "regression" if task == "classification" else "classification"
        where = f" (it is a {other} metric)" if metric in METRICS[other] else ""
        raise ConfigError(
            f"metric={metric!r} does not fit {task}{where}; expected one of "
            f"{list(allowed)}"
        )
    if metric == "pr_auc" and num_classes > 2:
        raise ConfigError(
            f"metric='pr_auc' needs two classes; the label has {num_classes}. "
            "Use 'log_loss', 'roc_auc' (one-vs-rest) or 'f1_macro'"
        )


def maximize(metric: str) -> bool:
    return metric in _MAXIMIZE


def score(metric: str, y: np.ndarray, predicted: np.ndarray) -> float:
    """``metric`` of predictions (probabilities per class, or values)."""
    from sklearn import metrics as M

    if metric == "rmse":
        return float(np.sqrt(np.mean((y - predicted) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(y - predicted)))
    if metric == "r2":
        return float(M.r2_score(y, predicted))
    labels = np.arange(predicted.shape[1])
    if metric == "log_loss":
        return float(M.log_loss(y, np.clip(predicted, 1e-15, 1), labels=labels))
    if metric in ("roc_auc", "pr_auc"):
        if len(np.unique(y)) < 2:
            return float("nan")
        if predicted.shape[1] == 2:
            scorer = (
                M.roc_auc_score if metric == "roc_auc" else M.average_precision_score
            )
            return float(scorer(y, predicted[:, 1]))
        return float(M.roc_auc_score(y, predicted, multi_class="ovr", labels=labels))
    chosen = predicted.argmax(axis=1)
    if metric == "accuracy":
        return float(np.mean(chosen == y))
    average = metric.split("_")[1]
    return float(M.f1_score(y, chosen, average=average, labels=labels, zero_division=0))


@dataclass
class Plan:
    """The folds and sample sizes every trial of a run uses.

    ``folds`` holds (train, valid) row indices; ``validated`` the rows that
    get an out-of-fold prediction, in the order predictions are stored.
    ``rungs`` are the training-sample shares of successive halving, smallest
    first, the last 1.0.
    """

    kind: str
    folds: list[tuple[np.ndarray, np.ndarray]]
    rungs: list[float]
    reason: str
    validated: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.validated = np.concatenate([valid for _, valid in self.folds])

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "folds": len(self.folds),
            "rungs": self.rungs,
            "reason": self.reason,
            "validated_rows": len(self.validated),
        }


def plan(
    y: np.ndarray,
    *,
    task: str,
    validation: str,
    num_folds: int,
    seed: int,
    order: np.ndarray | None = None,
) -> Plan:
    """Choose and build the validation folds and fidelities for ``y``.

    ``order``, when given, holds each row's time: folds then respect it
    (every validation row comes after every row it was trained on).
    """
    if validation not in VALIDATIONS:
        raise ConfigError(
            f"validation={validation!r}; expected one of {list(VALIDATIONS)}"
        )
    if num_folds < 2:
        raise ConfigError(f"numFolds={num_folds}; expected at least 2")
    rows = len(y)
    kind = validation
    if kind == "auto":
        kind = "kfold" if rows <= KFOLD_MAX_ROWS else "holdout"
        reason = (
            f"{rows:,} rows {'<=' if kind == 'kfold' else '>'} {KFOLD_MAX_ROWS:,}: "
            f"{'k-fold' if kind == 'kfold' else 'one holdout split'}"
        )
    else:
        reason = f"validation={validation!r} was asked for"
    if task == "classification":
        require_class_rows(y, num_folds if kind == "kfold" else 2)
    if order is not None:
        folds = _time_folds(order, kind, num_folds)
        reason += "; ordered by time"
    else:
        folds = _random_folds(y, task, kind, num_folds, seed)
    train_rows = min(len(train) for train, _ in folds)
    return Plan(kind, folds, rungs(train_rows), reason)


def rungs(train_rows: int) -> list[float]:
    """Training shares for successive halving: 1/9, 1/3, 1 and so on, the
    smallest still holding at least MIN_RUNG_ROWS rows."""
    if train_rows <= MIN_RUNG_ROWS:
        return [1.0]
    count = 1 + int(math.log(train_rows / MIN_RUNG_ROWS, REDUCTION))
    count = max(1, min(MAX_RUNGS, count))
    return [REDUCTION ** -(count - 1 - r) for r in range(count)]


def subsample(
    train: np.ndarray, share: float, y: np.ndarray, task: str, seed: int
) -> np.ndarray:
    """A reproducible share of ``train`` (stratified for classes)."""
    if share >= 1.0:
        return train
    from sklearn.model_selection import train_test_split

    size = max(2, round(len(train) * share))
    strata = (
        y[train] if task == "classification" and _stratifiable(y[train], size) else None
    )
    chosen, _ = train_test_split(
        train, train_size=size, random_state=seed, stratify=strata
    )
    return np.sort(chosen)


def _stratifiable(y: np.ndarray, size: int) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and size >= len(counts)


def require_class_rows(
    y: np.ndarray, needed: int, classes: list[str] | None = None, label: str = ""
) -> None:
    """Refuse a label with a class of a single row (``y`` holds class indices;
    ``classes`` their values, to name them)."""
    values, counts = np.unique(y, return_counts=True)
    if counts.min() >= 2:
        return
    lonely = values[counts < 2].astype(int).tolist()
    named = [classes[i] for i in lonely] if classes else lonely
    where = f"label column {label!r}" if label else "the label"
    raise DataError(
        f"{where} has class(es) {named} with a single row; a class needs at "
        f"least 2 rows to be both learned and validated ({needed} for this "
        "validation). Drop those rows, merge the class into another, or add data"
    )


def _random_folds(y, task, kind, num_folds, seed):
    from sklearn import model_selection as S

    index = np.arange(len(y))
    classes = task == "classification"
    if kind == "kfold":
        splitter_cls = S.StratifiedKFold if classes else S.KFold
        splitter = splitter_cls(n_splits=num_folds, shuffle=True, random_state=seed)
        return list(splitter.split(index, y))
    train, valid = S.train_test_split(
        index,
        test_size=HOLDOUT_FRACTION,
        random_state=seed,
        stratify=y if classes else None,
    )
    return [(np.sort(train), np.sort(valid))]


def _time_folds(order: np.ndarray, kind: str, num_folds: int):
    if np.isnan(order).any():
        raise DataError(
            f"the time column is missing in {int(np.isnan(order).sum())} row(s); "
            "fill or drop them, or run without timeCol"
        )
    ranked = np.argsort(order, kind="stable")
    if kind == "holdout":
        cut = int(len(ranked) * (1 - HOLDOUT_FRACTION))
        return [(np.sort(ranked[:cut]), np.sort(ranked[cut:]))]
    from sklearn.model_selection import TimeSeriesSplit

    return [
        (np.sort(ranked[train]), np.sort(ranked[valid]))
        for train, valid in TimeSeriesSplit(n_splits=num_folds).split(ranked)
    ]
