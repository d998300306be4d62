"""Serving sparktrain models without Spark.

:class:`Scorer` rebuilds a saved model's fitted stages in NumPy;
:func:`create_app` serves it over HTTP; :mod:`~sparktrain.serving.registry`
names, versions and aliases models in MLflow's registry; :func:`export_model`
writes a Spark pipeline or an MLflow pyfunc model.
"""

from sparktrain.serving import registry
from sparktrain.serving._errors import ExportError, RegistryError, RequestError
from sparktrain.serving._export import export_model
from sparktrain.serving._scorer import Predictions, Scorer
from sparktrain.serving._server import create_app

__all__ = [
    "ExportError",
    "Predictions",
    "RegistryError",
    "RequestError",
    "Scorer",
    "create_app",
    "export_model",
    "registry",
]
