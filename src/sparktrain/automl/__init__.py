"""Automated ML on Spark: a budgeted, parallel, multi-fidelity search.

See :class:`AutoML`. Needs the ``automl`` extra (Optuna, MLflow, LightGBM,
XGBoost).
"""

from sparktrain.automl.estimator import AutoML, AutoMLModel

__all__ = ["AutoML", "AutoMLModel"]
