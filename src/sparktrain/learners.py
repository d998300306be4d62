"""Every learner for classification and regression, by name.

SparkML's own learners, and the single-node libraries (LightGBM, XGBoost,
scikit-learn, PyTorch, Keras) wrapped as ``pyspark.ml`` estimators. Each entry builds a
learner with sensible defaults, says whether it needs scaled features, and
whether it handles more than two classes on its own (those that do not are
wrapped in one-vs-rest).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pyspark.ml import classification as C
from pyspark.ml import regression as R

from sparktrain import libraries as L
from sparktrain.errors import ConfigError


@dataclass(frozen=True)
class Learner:
    """How to build one named SparkML learner."""

    name: str
    task: str  # "classification" or "regression"
    cls: type
    defaults: dict[str, Any] = field(default_factory=dict)
    needs_scaling: bool = False
    multiclass: bool = True
    instance: Any = None  # a user's own configured learner, copied on build
    factory: Callable[[], dict[str, Any]] | None = None  # defaults built lazily

    def build(self, seed: int) -> Any:
        """A fresh, unfitted learner with the defaults and ``seed``."""
        if self.instance is not None:
            return self.instance.copy()
        defaults = self.factory() if self.factory else self.defaults
        learner = self.cls(**defaults)
        if learner.hasParam("seed"):
            learner.setSeed(seed)
        return learner


CLASSIFIERS = {
    learner.name: learner
    for learner in (
        Learner(
            "logistic_regression",
            "classification",
            C.LogisticRegression,
            dict(maxIter=100, regParam=1e-4),
            needs_scaling=True,
        ),
        Learner(
            "decision_tree",
            "classification",
            C.DecisionTreeClassifier,
            dict(maxDepth=8),
        ),
        Learner(
            "random_forest",
            "classification",
            C.RandomForestClassifier,
            dict(numTrees=100, maxDepth=8),
        ),
        Learner(
            "gbt",
            "classification",
            C.GBTClassifier,
            dict(maxIter=50, maxDepth=5, stepSize=0.1),
            multiclass=False,
        ),
        Learner(
            "linear_svc",
            "classification",
            C.LinearSVC,
            dict(maxIter=100, regParam=1e-3),
            needs_scaling=True,
            multiclass=False,
        ),
        Learner(
            "naive_bayes", "classification", C.NaiveBayes, dict(modelType="gaussian")
        ),
        Learner(
            "multilayer_perceptron",
            "classification",
            C.MultilayerPerceptronClassifier,
            dict(maxIter=200),
            needs_scaling=True,
        ),
        Learner(
            "factorization_machines",
            "classification",
            C.FMClassifier,
            dict(factorSize=8, maxIter=100, stepSize=0.05),
            needs_scaling=True,
            multiclass=False,
        ),
        Learner("lightgbm", "classification", L.LightGBMClassifier),
        Learner("xgboost", "classification", L.XGBoostClassifier),
        Learner("torch_mlp", "classification", L.TorchClassifier),
        Learner("keras_mlp", "classification", L.KerasClassifier),
        Learner(
            "extra_trees",
            "classification",
            L.SklearnClassifier,
            factory=lambda: {"estimator": _sklearn("ExtraTreesClassifier")},
        ),
        Learner(
            "hist_gradient_boosting",
            "classification",
            L.SklearnClassifier,
            factory=lambda: {"estimator": _sklearn("HistGradientBoostingClassifier")},
        ),
        Learner(
            "knn",
            "classification",
            L.SklearnClassifier,
            factory=lambda: {"estimator": _sklearn("KNeighborsClassifier")},
            needs_scaling=True,
        ),
    )
}

REGRESSORS = {
    learner.name: learner
    for learner in (
        Learner(
            "linear_regression",
            "regression",
            R.LinearRegression,
            dict(maxIter=100, regParam=1e-4),
            needs_scaling=True,
        ),
        Learner(
            "generalized_linear_regression",
            "regression",
            R.GeneralizedLinearRegression,
            dict(family="gaussian", maxIter=50, regParam=1e-4),
            needs_scaling=True,
        ),
        Learner(
            "decision_tree", "regression", R.DecisionTreeRegressor, dict(maxDepth=8)
        ),
        Learner(
            "random_forest",
            "regression",
            R.RandomForestRegressor,
            dict(numTrees=100, maxDepth=8),
        ),
        Learner(
            "gbt",
            "regression",
            R.GBTRegressor,
            dict(maxIter=50, maxDepth=5, stepSize=0.1),
        ),
        Learner(
            "factorization_machines",
            "regression",
            R.FMRegressor,
            dict(factorSize=8, maxIter=100, stepSize=0.05),
            needs_scaling=True,
        ),
        Learner("isotonic_regression", "regression", R.IsotonicRegression),
        Learner("lightgbm", "regression", L.LightGBMRegressor),
        Learner("xgboost", "regression", L.XGBoostRegressor),
        Learner("torch_mlp", "regression", L.TorchRegressor),
        Learner("keras_mlp", "regression", L.KerasRegressor),
        Learner(
            "extra_trees",
            "regression",
            L.SklearnRegressor,
            factory=lambda: {"estimator": _sklearn("ExtraTreesRegressor")},
        ),
        Learner(
            "hist_gradient_boosting",
            "regression",
            L.SklearnRegressor,
            factory=lambda: {"estimator": _sklearn("HistGradientBoostingRegressor")},
        ),
        Learner(
            "knn",
            "regression",
            L.SklearnRegressor,
            factory=lambda: {"estimator": _sklearn("KNeighborsRegressor")},
            needs_scaling=True,
        ),
    )
}

_ALIASES = {
    "lr": "logistic_regression",
    "logistic": "logistic_regression",
    "dt": "decision_tree",
    "rf": "random_forest",
    "svc": "linear_svc",
    "svm": "linear_svc",
    "nb": "naive_bayes",
    "mlp": "multilayer_perceptron",
    "fm": "factorization_machines",
    "linear": "linear_regression",
    "glm": "generalized_linear_regression",
    "isotonic": "isotonic_regression",
    "gbm": "gbt",
    "lgbm": "lightgbm",
    "xgb": "xgboost",
    "hgb": "hist_gradient_boosting",
    "k_nearest_neighbors": "knn",
    "torch": "torch_mlp",
    "pytorch": "torch_mlp",
    "keras": "keras_mlp",
}


def learner_names(task: str) -> list[str]:
    """The learner names available for ``task``."""
    return sorted(_table(task))


def get_learner(name: str, task: str) -> Learner:
    """The learner called ``name`` (or a short alias such as ``rf``) for ``task``."""
    table = _table(task)
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    other = REGRESSORS if task == "classification" else CLASSIFIERS
    if key in other:
        hint = f" {key!r} is a {other[key].task} learner."
    raise ConfigError(
        f"model={name!r} is not a {task} learner.{hint} Expected one of "
        f"{learner_names(task)}"
    )


def _sklearn(name: str) -> Any:
    from sklearn import ensemble, neighbors

    module = neighbors if name.startswith("KNeighbors") else ensemble
    return getattr(module, name)()


def describe(instance: Any) -> Learner:
    """A registry entry for a learner instance that a user configured.

    A bare scikit-learn estimator is wrapped in :class:`SklearnClassifier` or
    :class:`SklearnRegressor`, by what it is.
    """
    if _is_sklearn(instance):
        instance = _wrap_sklearn(instance)
    if isinstance(instance, L.SingleNodeEstimator):
        return Learner(
            type(instance).__name__,
            instance.task,
            type(instance),
            instance=instance,
            needs_scaling=getattr(instance, "needs_scaling", False),
        )
    for table in (CLASSIFIERS, REGRESSORS):
        for learner in table.values():
            if type(instance) is learner.cls:
                return replace(learner, instance=instance)
    if isinstance(instance, C.Classifier | C.OneVsRest):
        return Learner(
            type(instance).__name__, "classification", type(instance), instance=instance
        )
    if isinstance(instance, R.Regressor | R.IsotonicRegression):
        return Learner(
            type(instance).__name__, "regression", type(instance), instance=instance
        )
    raise ConfigError(
        f"model={type(instance).__name__} is not a pyspark.ml classifier or "
        "regressor, nor a scikit-learn one; pass one (for example "
        "LogisticRegression() or LightGBMClassifier()) or a learner name"
    )


def _is_sklearn(instance: Any) -> bool:
    return hasattr(instance, "get_params") and hasattr(instance, "fit")


def _wrap_sklearn(instance: Any) -> Any:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(instance):
        return L.SklearnClassifier(estimator=instance)
    if is_regressor(instance):
        return L.SklearnRegressor(estimator=instance)
    raise ConfigError(
        f"model={type(instance).__name__} is a scikit-learn estimator but neither "
        "a classifier nor a regressor; pass one such as RandomForestClassifier()"
    )


def _table(task: str) -> dict[str, Learner]:
    if task == "classification":
        return CLASSIFIERS
    if task == "regression":
        return REGRESSORS
    raise ConfigError(f"task={task!r}; expected 'classification' or 'regression'")
