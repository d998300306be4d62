"""Greedy ensemble selection, and the blended estimator it produces.

Selection follows Caruana et al. (2004): start empty, and at each step add
(with replacement) the trial whose out-of-fold predictions most improve the
averaged ensemble's validation score. The result is a weight per trial; the
ensemble is kept only when it beats the best single trial.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

from sparktrain.automl.validation import maximize, score

logger = logging.getLogger(__name__)

ROUNDS = 25
MIN_GAIN = 1e-4  # relative improvement an ensemble must bring to be kept


def select(
    predictions: dict[int, np.ndarray], y: np.ndarray, metric: str
) -> tuple[dict[int, float], float]:
    """Weights per trial number, and the ensemble's validation score."""
    better = (lambda a, b: a > b) if maximize(metric) else (lambda a, b: a < b)
    chosen: list[int] = []
    total = None
    best_score = None
    for _ in range(ROUNDS):
        round_best = None
        for number, predicted in predictions.items():
            trial_total = predicted if total is None else total + predicted
            value = score(metric, y, trial_total / (len(chosen) + 1))
            if round_best is None or better(value, round_best[1]):
                round_best = (number, value)
        if best_score is not None and not better(round_best[1], best_score):
            break
        number, best_score = round_best
        chosen.append(number)
        predicted = predictions[number]
        total = predicted.astype(float) if total is None else total + predicted
    counts = Counter(chosen)
    return {n: c / len(chosen) for n, c in counts.items()}, float(best_score)


def worth_keeping(ensemble: float, single: float, metric: str) -> bool:
    """Whether the ensemble beats the best single trial by a real margin."""
    gain = (ensemble - single) if maximize(metric) else (single - ensemble)
    return gain > MIN_GAIN * max(abs(single), 1e-12)


class _Blend(BaseEstimator):
    """Weighted average of fitted scikit-learn estimators' predictions."""

    def __init__(self, members=(), weights=()):
        self.members = members
        self.weights = weights

    def _fit_members(self, X, y, sample_weight):
        fitted = []
        for member in self.members:
            estimator = clone(member)
            if sample_weight is None:
                estimator.fit(X, y)
            else:
                estimator.fit(X, y, model__sample_weight=sample_weight)
            fitted.append(estimator)
        self.members_ = fitted
        return self

    @property
    def feature_importances_(self) -> np.ndarray:
        """Members' importances (or absolute coefficients), each scaled to sum
        to one, averaged with the ensemble weights."""
        total = None
        from sparktrain.automl.space import final_step

        for member, weight in zip(self.members_, self.weights, strict=True):
            model = final_step(member)
            if hasattr(model, "feature_importances_"):
                values = np.asarray(model.feature_importances_, dtype=float)
            elif hasattr(model, "coef_"):
                values = np.abs(np.atleast_2d(model.coef_)).sum(axis=0)
            else:
                raise AttributeError(f"{type(model).__name__} has no importances")
            values = values / max(values.sum(), 1e-12) * weight
            total = values if total is None else total + values
        return total


class BlendClassifier(ClassifierMixin, _Blend):
    """Soft-voting blend of classifiers trained on labels 0..k-1."""

    @classmethod
    def fitted(cls, members, weights, classes) -> Self:
        """A blend of members already fitted."""
        blend = cls(members, weights)
        blend.members_ = list(members)
        blend.classes_ = np.asarray(classes)
        return blend

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.unique(y)
        return self._fit_members(X, y, sample_weight)

    def predict_proba(self, X) -> np.ndarray:
        total = np.zeros((X.shape[0], len(self.classes_)))
        for member, weight in zip(self.members_, self.weights, strict=True):
            columns = np.searchsorted(self.classes_, member.classes_)
            total[:, columns] += weight * member.predict_proba(X)
        return total / sum(self.weights)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class BlendRegressor(RegressorMixin, _Blend):
    """Weighted average of regressors."""

    @classmethod
    def fitted(cls, members, weights, classes=None) -> Self:
        blend = cls(members, weights)
        blend.members_ = list(members)
        return blend

    def fit(self, X, y, sample_weight=None):
        return self._fit_members(X, y, sample_weight)

    def predict(self, X) -> np.ndarray:
        total = sum(
            weight * member.predict(X)
            for member, weight in zip(self.members_, self.weights, strict=True)
        )
        return total / sum(self.weights)
