"""Export a model folder: the native Spark pipeline, an MLflow pyfunc model
that scores with the Spark-free :class:`Scorer`, or an ONNX graph."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from sparktrain._extras import require
from sparktrain._version import __version__
from sparktrain.serving._errors import ExportError
from sparktrain.serving._scorer import Scorer, _model_folder

logger = logging.getLogger(__name__)

FORMATS = ("spark", "mlflow", "onnx")
_SPARK_MODEL_DATA = "sparkml"  # the folder name MLflow's spark flavour uses
_MLFLOW_TYPES = {
    "integer": "long",
    "number": "double",
    "boolean": "boolean",
    "string": "string",
}


def export_model(folder: str | Path, out: str | Path, *, format: str) -> Path:
    """Write the model in ``folder`` to the new folder ``out``.

    ``format='spark'`` copies the native ``PipelineModel`` (load it with
    ``PipelineModel.load(out)``); ``'mlflow'`` writes an MLflow model with
    two flavours: pyfunc (``mlflow.pyfunc.load_model(out).predict(frame)``),
    which scores without Spark, and spark (``mlflow.spark.load_model(out)``),
    the native pipeline; ``'onnx'`` writes the single file ``out``, an ONNX graph
    with one input per raw column and the outputs ``label`` and, for
    classifiers, ``probabilities`` (see :mod:`sparktrain.serving._onnx` for
    what it covers; anything else raises :class:`ExportError`).
    """
    if format not in FORMATS:
        raise ExportError(f"format={format!r}; expected one of {list(FORMATS)}")
    model = _model_folder(folder)
    target = Path(out)
    if target.exists():
        kind = "file" if format == "onnx" else "folder"
        raise ExportError(f"{str(out)!r} exists; choose a new {kind} to export to")
    if format == "spark":
        shutil.copytree(model / "model" / "pipeline", target)
    elif format == "mlflow":
        _export_mlflow(model, target)
    else:
        _export_onnx(model, target)
    logger.info("exported %s as %s to %s", model, format, target)
    return target


def _export_mlflow(model: Path, target: Path) -> None:
    mlflow = require("mlflow", extra="automl", purpose="Export to MLflow")
    from sparktrain.serving._pyfunc import SparktrainPyfunc

    scorer = Scorer.load(model)  # refuses a model with no Spark-free scorer
    mlflow.pyfunc.save_model(
        path=str(target),
        python_model=SparktrainPyfunc(),
        artifacts={"sparktrain_model": str(model)},
        signature=_signature(scorer),
        pip_requirements=[f"sparktrain=={__version__}"],
        metadata={
            "sparktrain_version": __version__,
            "learner": scorer.metadata["learner"],
            "task": scorer.task,
        },
    )
    _add_spark_flavour(mlflow, model, target)


def _add_spark_flavour(mlflow, model: Path, target: Path) -> None:
    """The native pipeline beside the pyfunc, as MLflow's spark flavour lays
    it out, so ``mlflow.spark.load_model`` returns a ``PipelineModel``."""
    import pyspark

    shutil.copytree(model / "model" / "pipeline", target / _SPARK_MODEL_DATA)
    description = mlflow.models.Model.load(str(target))
    description.add_flavor(
        "spark",
        pyspark_version=pyspark.__version__,
        model_data=_SPARK_MODEL_DATA,
        model_class="pyspark.ml.pipeline.PipelineModel",
        code=None,
    )
    description.save(str(target / "MLmodel"))


def _export_onnx(model: Path, target: Path) -> None:
    from sparktrain.serving._onnx import write_onnx

    scorer = Scorer.load(model)  # refuses a model with no Spark-free scorer
    target.parent.mkdir(parents=True, exist_ok=True)
    write_onnx(scorer, target)


def _signature(scorer: Scorer) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec(_MLFLOW_TYPES[f.json_type], f.name, required=not f.nullable)
            for f in scorer.schema.fields
        ]
    )
    outputs = [ColSpec(_label_type(scorer.metadata), "prediction")]
    if scorer.task == "classification" and scorer.learner.probabilistic:
        outputs += [ColSpec("double", f"probability_{c}") for c in scorer.classes]
    return ModelSignature(inputs=inputs, outputs=Schema(outputs))


def _label_type(metadata: dict[str, Any]) -> str:
    if metadata["task"] == "regression":
        return "double"
    label = metadata["label_type"]
    if label in ("tinyint", "smallint", "int", "bigint"):
        return "long"
    if label in ("boolean", "string"):
        return label
    return "double"
