"""Single-node libraries (LightGBM, XGBoost, scikit-learn, PyTorch, Keras) as
``pyspark.ml`` estimators: fitted locally, in parallel trials, or distributed,
and scored on the executors."""

from sparktrain.libraries._base import (
    SingleNodeClassificationModel,
    SingleNodeClassifier,
    SingleNodeEstimator,
    SingleNodeModel,
    SingleNodeRegressor,
)
from sparktrain.libraries._boosting import (
    LightGBMClassifier,
    LightGBMRegressor,
    XGBoostClassifier,
    XGBoostRegressor,
)
from sparktrain.libraries._sklearn import SklearnClassifier, SklearnRegressor
from sparktrain.libraries._torch import (
    KerasClassifier,
    KerasRegressor,
    TorchClassifier,
    TorchRegressor,
)

__all__ = [
    "KerasClassifier",
    "KerasRegressor",
    "LightGBMClassifier",
    "LightGBMRegressor",
    "SingleNodeClassificationModel",
    "SingleNodeClassifier",
    "SingleNodeEstimator",
    "SingleNodeModel",
    "SingleNodeRegressor",
    "SklearnClassifier",
    "SklearnRegressor",
    "TorchClassifier",
    "TorchRegressor",
    "XGBoostClassifier",
    "XGBoostRegressor",
]
