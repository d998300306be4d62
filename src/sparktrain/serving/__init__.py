"""Serving sparktrain models without Spark: a NumPy scorer built from the
fitted stages, a REST server, a model registry on MLflow, and export."""

from sparktrain.serving._errors import ExportError, RegistryError, RequestError
from sparktrain.serving._scorer import Predictions, Scorer

__all__ = ["ExportError", "Predictions", "RegistryError", "RequestError", "Scorer"]
