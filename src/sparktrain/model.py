"""Loading a saved sparktrain model and scoring tables with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparktrain.columns import quote
from sparktrain.errors import DataError, DataNotFoundError
from sparktrain.train import score, typed_columns

METADATA_FILE = "sparktrain.json"


@dataclass
class SavedModel:
    """A model written by ``sparktrain train`` (or :func:`sparktrain.save_model`)."""

    path: Path
    pipeline: PipelineModel
    metadata: dict[str, Any]

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def classes(self) -> list[str]:
        return list(self.metadata.get("classes", []))

    @property
    def input_types(self) -> dict[str, str]:
        """The Spark type each input column had in training (for reading new
        CSV/JSON tables the same way)."""
        return {
            c["name"]: c["spark_type"]
            for c in self.metadata.get("columns", [])
            if c["name"] in self.metadata["input_columns"]
        }

    @property
    def categories(self) -> dict[str, list[str]]:
        """Input column -> the categories seen in training."""
        from sparktrain.columns import ColumnDecision
        from sparktrain.featurize import training_categories

        decisions = [ColumnDecision(**c) for c in self.metadata.get("columns", [])]
        return training_categories(self.pipeline, decisions)

    def transform(self, frame: DataFrame) -> DataFrame:
        """Score ``frame``: every input column kept, ``prediction`` added.

        Classifiers also add ``probability``, a vector in the order of
        :attr:`classes`; predictions have the label's original type.
        """
        return score(
            self.pipeline,
            frame,
            self.metadata["input_columns"],
            self.classes,
            typed_columns(self.metadata.get("columns", [])),
        )


def load_model(path: str | Path, *, tracking_uri: str | None = None) -> SavedModel:
    """Load the model folder that ``sparktrain train --out`` wrote.

    ``path`` may also be a registry URI, ``models:/NAME@ALIAS`` or
    ``models:/NAME/VERSION``, looked up in the MLflow registry at
    ``tracking_uri`` (default: ``MLFLOW_TRACKING_URI``, else ``mlflow.db`` in
    the working folder).

    Examples
    --------
    >>> model = sparktrain.load_model("runs/credit")  # doctest: +SKIP
    >>> model = sparktrain.load_model("models:/credit@champion")  # doctest: +SKIP
    >>> scored = model.transform(spark.read.parquet("new.parquet"))  # doctest: +SKIP
    """
    if str(path).startswith("models:/"):
        from sparktrain.serving.registry import resolve

        path, _ = resolve(str(path), tracking_uri=tracking_uri)
    folder = Path(path)
    if folder.name == "model" and (folder.parent / METADATA_FILE).is_file():
        folder = folder.parent
    if not folder.exists():
        raise DataNotFoundError(f"no model folder at {str(path)!r}; check the path")
    meta_file = folder / METADATA_FILE
    if not meta_file.is_file():
        raise DataError(
            f"{str(path)!r} is not a sparktrain model folder (it has no "
            f"{METADATA_FILE}); pass the folder that 'sparktrain train --out' wrote"
        )
    metadata = json.loads(meta_file.read_text())
    # The native pipeline alone loads anywhere Spark runs, Spark Connect included.
    pipeline = PipelineModel.load(str((folder / "model" / "pipeline").resolve()))
    return SavedModel(path=folder, pipeline=pipeline, metadata=metadata)


def flatten_for_output(frame: DataFrame, classes: list[str]) -> DataFrame:
    """Make a scored table writable to any file format.

    The probability vector becomes one ``probability_<class>`` column per
    class and the raw scores are left out: vectors cannot go to CSV and read
    awkwardly from Parquet in other tools.
    """
    frame = frame.drop("rawPrediction")
    if "probability" not in frame.columns or not classes:
        return frame
    from pyspark.ml.functions import vector_to_array

    array = vector_to_array(F.col("probability"))
    flat = [array[i].alias(f"probability_{c}") for i, c in enumerate(classes)]
    return frame.select(
        *[F.col(quote(c)) for c in frame.columns if c != "probability"], *flat
    )
