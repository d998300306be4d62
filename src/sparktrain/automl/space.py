"""What AutoML searches: learners, their hyperparameters, and preprocessing.

Every candidate is a scikit-learn-compatible estimator (LightGBM, XGBoost and
scikit-learn's own), so one trial is one single-node fit that can run inside
a Spark task. A configuration is plain data::

    {"learner": "lightgbm", "scaler": "none", "params": {"num_leaves": 31, ...}}

and :func:`build_estimator` turns it into an unfitted scikit-learn pipeline.
Optuna samples configurations through :func:`suggest`; the first trials of a
run are each learner's defaults (:func:`default_configs`), cheapest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparktrain.errors import ConfigError

SCALERS = ("none", "standard", "minmax", "robust", "maxabs")
#: Regression targets: as they are, or log(1 + y) for non-negative labels.
TARGETS = ("none", "log")
_SPARSE_SCALERS = ("none", "standard", "robust", "maxabs")  # keep sparsity


@dataclass(frozen=True)
class Candidate:
    """One learner AutoML can try."""

    name: str
    tasks: tuple[str, ...]
    library: str
    #: the keyword arguments of the learner's first, default trial
    defaults: Callable[[str], dict[str, Any]]
    #: Optuna trial, task -> sampled keyword arguments
    sample: Callable[[Any, str], dict[str, Any]]
    scaled: bool = False  # the learner's result depends on feature scale
    #: relative cost of one default fit, to order the first trials
    cost: float = 1.0


def _lightgbm_sample(trial, task: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("lightgbm.n_estimators", 16, 800, log=True),
        "num_leaves": trial.suggest_int("lightgbm.num_leaves", 4, 256, log=True),
        "learning_rate": trial.suggest_float(
            "lightgbm.learning_rate", 0.01, 0.3, log=True
        ),
        "min_child_samples": trial.suggest_int(
            "lightgbm.min_child_samples", 2, 100, log=True
        ),
        "colsample_bytree": trial.suggest_float("lightgbm.colsample_bytree", 0.4, 1.0),
        "subsample": trial.suggest_float("lightgbm.subsample", 0.5, 1.0),
        "subsample_freq": 1,
        "reg_lambda": trial.suggest_float("lightgbm.reg_lambda", 1e-3, 10.0, log=True),
    }


def _xgboost_sample(trial, task: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("xgboost.n_estimators", 16, 800, log=True),
        "max_depth": trial.suggest_int("xgboost.max_depth", 2, 10),
        "learning_rate": trial.suggest_float(
            "xgboost.learning_rate", 0.01, 0.3, log=True
        ),
        "min_child_weight": trial.suggest_float(
            "xgboost.min_child_weight", 0.5, 20.0, log=True
        ),
        "subsample": trial.suggest_float("xgboost.subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("xgboost.colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("xgboost.reg_lambda", 1e-3, 10.0, log=True),
    }


def _forest_sample(prefix: str) -> Callable[[Any, str], dict[str, Any]]:
    def sample(trial, task: str) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int(
                f"{prefix}.n_estimators", 32, 400, log=True
            ),
            "max_features": trial.suggest_float(f"{prefix}.max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int(
                f"{prefix}.min_samples_leaf", 1, 32, log=True
            ),
        }

    return sample


def _forest_defaults(task: str) -> dict[str, Any]:
    return {
        "n_estimators": 100,
        "max_features": "sqrt" if task != "regression" else 1.0,
    }


def _linear_sample(trial, task: str) -> dict[str, Any]:
    if task == "regression":
        return {"alpha": trial.suggest_float("linear.alpha", 1e-4, 100.0, log=True)}
    return {"C": trial.suggest_float("linear.C", 1e-3, 100.0, log=True)}


def _linear_defaults(task: str) -> dict[str, Any]:
    return {"alpha": 1.0} if task == "regression" else {"C": 1.0}


CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate(
            "linear",
            ("classification", "regression"),
            "scikit-learn",
            _linear_defaults,
            _linear_sample,
            scaled=True,
            cost=0.2,
        ),
        Candidate(
            "lightgbm",
            ("classification", "regression"),
            "lightgbm",
            lambda task: {
                "n_estimators": 100,
                "num_leaves": 31,
                "learning_rate": 0.1,
                "min_child_samples": 20,
                "colsample_bytree": 1.0,
                "subsample": 1.0,
                "subsample_freq": 1,
                "reg_lambda": 1e-3,
            },
            _lightgbm_sample,
            cost=0.5,
        ),
        Candidate(
            "xgboost",
            ("classification", "regression"),
            "xgboost",
            lambda task: {
                "n_estimators": 100,
                "max_depth": 6,
                "learning_rate": 0.3,
                "min_child_weight": 1.0,
                "subsample": 1.0,
                "colsample_bytree": 1.0,
                "reg_lambda": 1.0,
            },
            _xgboost_sample,
            cost=0.8,
        ),
        Candidate(
            "random_forest",
            ("classification", "regression"),
            "scikit-learn",
            _forest_defaults,
            _forest_sample("random_forest"),
            cost=2.0,
        ),
        Candidate(
            "extra_trees",
            ("classification", "regression"),
            "scikit-learn",
            _forest_defaults,
            _forest_sample("extra_trees"),
            cost=1.5,
        ),
    )
}


def candidate_names(task: str) -> list[str]:
    """The learners AutoML can search for ``task``, in the order their
    defaults are tried: the usual winner first, then by cost."""
    chosen = [c for c in CANDIDATES.values() if task in c.tasks]
    return [
        c.name for c in sorted(chosen, key=lambda c: (c.name != "lightgbm", c.cost))
    ]


def choose_candidates(
    task: str, allow: list[str], deny: list[str], installed: Callable[[str], bool]
) -> list[str]:
    """The learners to search: ``allow`` (or all) minus ``deny``, installed ones."""
    known = candidate_names(task)
    for name in [*allow, *deny]:
        if name not in known:
            raise ConfigError(
                f"learner {name!r} is not one AutoML searches for {task}; "
                f"expected some of {known}"
            )
    chosen = [n for n in known if (not allow or n in allow) and n not in deny]
    missing = [n for n in chosen if not installed(CANDIDATES[n].library)]
    chosen = [n for n in chosen if n not in missing]
    if not chosen:
        raise ConfigError(
            f"no learner is left to search (allowed {allow or known}, denied "
            f"{deny}, not installed {missing}); allow at least one of {known} "
            "and install its library (pip install 'sparktrain[automl]')"
        )
    return chosen


def scalers_for(candidate: str, sparse: bool) -> tuple[str, ...]:
    """The scaling choices worth trying for a learner on this feature matrix.

    Trees split on order alone, so they are always fitted unscaled; min-max
    scaling would densify a sparse matrix, so it is left out there.
    """
    if not CANDIDATES[candidate].scaled:
        return ("none",)
    return _SPARSE_SCALERS if sparse else SCALERS


def default_configs(
    task: str, names: list[str], sparse: bool, targets: tuple[str, ...] = ("none",)
) -> list[dict]:
    """One robust default configuration per learner, in the order given, and
    the first learner again on a log target where one is worth trying."""
    configs = []
    for name in names:
        scaler = "standard" if CANDIDATES[name].scaled else "none"
        configs.append(
            {
                "learner": name,
                "scaler": scaler,
                "target": "none",
                "params": CANDIDATES[name].defaults(task),
            }
        )
    if "log" in targets and configs:
        configs.insert(1, {**configs[0], "target": "log"})
    return configs


def suggest(
    trial,
    task: str,
    names: list[str],
    sparse: bool,
    targets: tuple[str, ...] = ("none",),
) -> dict[str, Any]:
    """A configuration sampled by an Optuna trial (define-by-run)."""
    name = trial.suggest_categorical("learner", names)
    scalers = scalers_for(name, sparse)
    scaler = (
        trial.suggest_categorical(f"{name}.scaler", scalers)
        if len(scalers) > 1
        else "none"
    )
    target = (
        trial.suggest_categorical("target", targets) if len(targets) > 1 else "none"
    )
    return {
        "learner": name,
        "scaler": scaler,
        "target": target,
        "params": CANDIDATES[name].sample(trial, task),
    }


def targets_for(task: str, y) -> tuple[str, ...]:
    """Target transforms worth trying: log(1 + y) for a non-negative,
    right-skewed regression label."""

    if task != "regression" or len(y) < 3 or y.min() < 0:
        return ("none",)
    centred = y - y.mean()
    spread = centred.std()
    skew = float((centred**3).mean() / spread**3) if spread > 0 else 0.0
    return ("none", "log") if skew > 0.75 else ("none",)


def optuna_params(config: dict[str, Any]) -> dict[str, Any]:
    """The Optuna parameter names and values that ``config`` corresponds to,
    for enqueueing a fixed configuration as a trial."""
    name = config["learner"]
    values = {"learner": name, "target": config.get("target", "none")}
    if CANDIDATES[name].scaled:
        values[f"{name}.scaler"] = config["scaler"]
    for key, value in config["params"].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[f"{name}.{key}"] = value
    return values


def build_estimator(
    config: dict[str, Any], task: str, *, threads: int, seed: int
) -> Any:
    """An unfitted scikit-learn pipeline (scaler, learner) for ``config``."""
    from sklearn.pipeline import Pipeline

    name = config["learner"]
    if name not in CANDIDATES:
        raise ConfigError(
            f"learner {name!r} is unknown; expected one of {list(CANDIDATES)}"
        )
    model = _BUILDERS[name](task, dict(config["params"]), threads, seed)
    pipeline = Pipeline([("scale", _scaler(config["scaler"])), ("model", model)])
    if config.get("target", "none") == "none":
        return pipeline
    import numpy as np
    from sklearn.compose import TransformedTargetRegressor

    return TransformedTargetRegressor(
        regressor=pipeline, func=np.log1p, inverse_func=np.expm1, check_inverse=False
    )


def final_step(estimator: Any) -> Any:
    """The fitted learner inside what :func:`build_estimator` made."""
    pipeline = getattr(estimator, "regressor_", estimator)
    return pipeline[-1]


def _scaler(name: str) -> Any:
    from sklearn import preprocessing as P

    if name == "none":
        return "passthrough"
    if name == "standard":
        return P.StandardScaler(with_mean=False)
    if name == "minmax":
        return P.MinMaxScaler()
    if name == "robust":
        return P.RobustScaler(with_centering=False)
    if name == "maxabs":
        return P.MaxAbsScaler()
    raise ConfigError(f"scaler={name!r}; expected one of {list(SCALERS)}")


def _build_lightgbm(task, params, threads, seed):
    import lightgbm

    cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    return cls(**params, n_jobs=threads, random_state=seed, verbose=-1)


def _build_xgboost(task, params, threads, seed):
    import xgboost

    cls = xgboost.XGBRegressor if task == "regression" else xgboost.XGBClassifier
    return cls(**params, n_jobs=threads, random_state=seed, tree_method="hist")


def _build_linear(task, params, threads, seed):
    from sklearn import linear_model

    if task == "regression":
        return linear_model.Ridge(**params, random_state=seed)
    return linear_model.LogisticRegression(**params, max_iter=300, random_state=seed)


def _build_forest(kind: str):
    def build(task, params, threads, seed):
        from sklearn import ensemble

        suffix = "Regressor" if task == "regression" else "Classifier"
        cls = getattr(ensemble, kind + suffix)
        return cls(**params, n_jobs=threads, random_state=seed)

    return build


_BUILDERS = {
    "linear": _build_linear,
    "lightgbm": _build_lightgbm,
    "xgboost": _build_xgboost,
    "random_forest": _build_forest("RandomForest"),
    "extra_trees": _build_forest("ExtraTrees"),
}
