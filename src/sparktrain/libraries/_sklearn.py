"""Any scikit-learn classifier or regressor as a ``pyspark.ml`` estimator."""

from __future__ import annotations

from typing import Any

from pyspark import keyword_only
from pyspark.ml.param import Param

from sparktrain.errors import ConfigError
from sparktrain.libraries._base import (
    SingleNodeClassifier,
    SingleNodeRegressor,
    param,
)

_NO_SCALING_MODULES = ("sklearn.ensemble", "sklearn.tree")


class _SklearnParams:
    estimator: Param = param(
        "estimator", "an unfitted scikit-learn estimator, cloned for every fit"
    )
    library = "scikit-learn"
    extra = "core"

    def getEstimator(self) -> Any:
        return self.getOrDefault(self.estimator)

    @property
    def accepts_sparse(self) -> bool:  # type: ignore[override]
        return self._accepts_sparse(self.getEstimator())

    @staticmethod
    def _accepts_sparse(estimator: Any) -> bool:
        try:
            return bool(estimator.__sklearn_tags__().input_tags.sparse)
        except AttributeError:
            return False

    @property
    def needs_scaling(self) -> bool:
        """Trees do not care about feature scale; everything else may."""
        module = type(self.getEstimator()).__module__
        return not module.startswith(_NO_SCALING_MODULES)

    def _validate(self) -> None:
        from sklearn.base import is_classifier, is_regressor

        if not self.isDefined(self.estimator):
            raise ConfigError(
                "estimator is not set; pass one, for example "
                "SklearnClassifier(estimator=ExtraTreesClassifier())"
            )
        estimator = self.getEstimator()
        if self.task == "classification":
            fits_task, kind, other = is_classifier, "classifier", "SklearnRegressor"
        else:
            fits_task, kind, other = is_regressor, "regressor", "SklearnClassifier"
        if not fits_task(estimator):
            raise ConfigError(
                f"estimator={type(estimator).__name__} is not a scikit-learn "
                f"{kind}; pass one, or use {other}"
            )
        if self.task == "classification" and not hasattr(estimator, "predict_proba"):
            raise ConfigError(
                f"estimator={type(estimator).__name__} has no predict_proba; wrap it "
                "in sklearn.calibration.CalibratedClassifierCV to get probabilities"
            )

    def _recipe(self, threads: int) -> dict[str, Any]:
        recipe = super()._recipe(threads)
        return {**recipe, "estimator": self.getEstimator()}

    @classmethod
    def _fit_object(cls, data, recipe):
        from sklearn.base import clone

        estimator = clone(recipe["estimator"]).set_params(**recipe["kwargs"])
        names = estimator.get_params()
        if recipe["threads"] and "n_jobs" in names:
            estimator.set_params(n_jobs=recipe["threads"])
        if "random_state" in names and names["random_state"] is None:
            estimator.set_params(random_state=recipe["seed"])
        if data.weight is None:
            return estimator.fit(data.X, data.y)
        return estimator.fit(data.X, data.y, sample_weight=data.weight)

    def _objects(self) -> dict[str, Any]:
        if not self.isDefined(self.estimator):
            return {}
        return {"estimator": self.getEstimator()}

    def _restore_objects(self, objects, extra) -> None:
        if "estimator" in objects:
            self._set(estimator=objects["estimator"])


class SklearnClassifier(_SklearnParams, SingleNodeClassifier):
    """A scikit-learn classifier fitted on the featurized table.

    ``extraParams`` are applied with ``set_params`` to a clone of
    ``estimator``, so a param grid can vary them. Labels are class indices
    0..k-1; the estimator needs ``predict_proba``.

    Examples
    --------
    >>> from sklearn.ensemble import ExtraTreesClassifier
    >>> SklearnClassifier(estimator=ExtraTreesClassifier(n_estimators=50))
    SklearnClassifier_...
    """

    @keyword_only
    def __init__(
        self,
        *,
        estimator: Any = None,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        probabilityCol: str = "probability",
        rawPredictionCol: str = "rawPrediction",
        weightCol: str | None = None,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)


class SklearnRegressor(_SklearnParams, SingleNodeRegressor):
    """A scikit-learn regressor fitted on the featurized table.

    Params as for :class:`SklearnClassifier`.
    """

    @keyword_only
    def __init__(
        self,
        *,
        estimator: Any = None,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        weightCol: str | None = None,
        extraParams: dict[str, Any] | None = None,
        mode: str = "auto",
        maxLocalBytes: int = 0,
        numThreads: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self._set_kwargs(self._input_kwargs)
