"""Data guardrails: what in a table may mislead a search, found before it runs.

Each finding says what was seen, on which column, and what AutoML did or
what the user can do. A likely leak (one column that alone predicts the
label almost perfectly) is excluded unless the user says otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from sparktrain.columns import ColumnDecision

logger = logging.getLogger(__name__)

IMBALANCE_RATIO = 10.0  # majority / minority rows above which a label is imbalanced
MISSING_SHARE = 0.2
LEAK_SCORE = 0.99  # ROC AUC (classes) or R² (regression) of one column alone
LEAK_SAMPLE_ROWS = 3_000
LEAK_MAX_FEATURES = 64  # columns spread over more features (text) are not probed
MIN_ROWS_PER_FOLD = 20


@dataclass(frozen=True)
class Guardrail:
    """One finding about the training table."""

    check: str
    column: str | None
    message: str
    action: str

    def as_dict(self) -> dict:
        return asdict(self)


def column_checks(decisions: list[ColumnDecision], rows: int) -> list[Guardrail]:
    """High-cardinality, constant and mostly missing columns."""
    found = []
    for d in decisions:
        if d.kind == "high_cardinality":
            found.append(
                Guardrail(
                    "high_cardinality",
                    d.name,
                    f"{d.distinct:,} distinct values in {rows:,} rows",
                    "encoded as hashed or frequency features, not one-hot",
                )
            )
        elif d.reason.startswith("constant"):
            found.append(
                Guardrail("constant", d.name, "a single value in every row", "excluded")
            )
        elif d.used and rows and d.nulls / rows >= MISSING_SHARE:
            numeric = d.kind in ("numeric", "boolean", "datetime")
            found.append(
                Guardrail(
                    "missing_values",
                    d.name,
                    f"{d.nulls / rows:.0%} of rows have no value",
                    "imputed, with an is-missing indicator feature"
                    if numeric
                    else "a missing value is a category of its own",
                )
            )
        elif d.reason.startswith("empty"):
            found.append(
                Guardrail(
                    "missing_values", d.name, "every value is missing", "excluded"
                )
            )
    return found


def label_checks(
    y: np.ndarray,
    classes: list[str],
    *,
    task: str,
    balanced: bool,
    folds: int,
) -> list[Guardrail]:
    """Class imbalance, and too few rows for the validation chosen."""
    found = []
    if task == "classification":
        counts = np.bincount(y.astype(int), minlength=len(classes))
        minority, majority = counts.argmin(), counts.argmax()
        if counts[majority] / max(counts[minority], 1) >= IMBALANCE_RATIO:
            share = counts[minority] / counts.sum()
            found.append(
                Guardrail(
                    "class_imbalance",
                    None,
                    f"class {classes[minority]!r} has {counts[minority]:,} rows "
                    f"({share:.1%}), class {classes[majority]!r} "
                    f"{counts[majority]:,}",
                    "class weights applied (classWeights='balanced')"
                    if balanced
                    else "set classWeights='balanced' (CLI: --class-weights) to "
                    "weight rows by the inverse of their class's frequency",
                )
            )
        smallest = int(counts.min())
        if smallest < MIN_ROWS_PER_FOLD // 4 * folds:
            found.append(
                Guardrail(
                    "few_rows",
                    None,
                    f"the smallest class has {smallest} rows for {folds} "
                    "validation fold(s); its scores will be noisy",
                    "add rows, or merge rare classes",
                )
            )
    if len(y) < MIN_ROWS_PER_FOLD * folds:
        found.append(
            Guardrail(
                "few_rows",
                None,
                f"{len(y)} labelled rows for {folds} validation fold(s)",
                "validation scores will be noisy; add rows if you can",
            )
        )
    return found


def find_leaks(
    X, y: np.ndarray, sources: list[str], *, task: str, seed: int
) -> dict[str, float]:
    """Columns whose features alone predict the label almost perfectly.

    A shallow tree is fitted on each column's features over a sample and
    scored on held-out rows; a score of LEAK_SCORE or more is a likely leak.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rows = np.random.default_rng(seed).permutation(len(y))[:LEAK_SAMPLE_ROWS]
    if len(rows) < 50 or (task == "classification" and len(np.unique(y[rows])) < 2):
        return {}
    train, valid = train_test_split(rows, test_size=0.3, random_state=seed)
    names = np.asarray(sources)
    leaks = {}
    for column in dict.fromkeys(sources):
        features = np.flatnonzero(names == column)
        if len(features) > LEAK_MAX_FEATURES:
            continue
        part = X[:, features]
        part = part.toarray() if hasattr(part, "toarray") else part
        tree_cls = (
            DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
        )
        tree = tree_cls(max_depth=6, random_state=seed).fit(part[train], y[train])
        value = _alone_score(tree, part[valid], y[valid], task)
        if value >= LEAK_SCORE:
            leaks[column] = round(value, 4)
    return leaks


def _alone_score(tree, X, y, task: str) -> float:
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "regression":
        return float(r2_score(y, tree.predict(X)))
    if len(np.unique(y)) < 2:
        return 0.0
    probability = tree.predict_proba(X)
    if probability.shape[1] == 2:
        return float(roc_auc_score(y, probability[:, 1]))
    if not np.array_equal(np.unique(y), tree.classes_):
        return 0.0  # a rare class missing from one side: no verdict
    return float(roc_auc_score(y, probability, multi_class="ovr"))


def leak_guardrails(
    leaks: dict[str, float], task: str, excluded: bool
) -> list[Guardrail]:
    measure = "R²" if task == "regression" else "ROC AUC"
    return [
        Guardrail(
            "leakage",
            column,
            f"the column alone predicts the label with {measure} {value:.3f}",
            "excluded from the features (excludeLeaks=False keeps it)"
            if excluded
            else "kept, as excludeLeaks=False asked",
        )
        for column, value in leaks.items()
    ]
