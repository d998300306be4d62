"""Reading saved Spark stages without Spark.

A saved stage is a folder: ``metadata/part-*`` holds one JSON line (class,
params), and ``data/`` (or ``treesMetadata/``, ``objects/``) Parquet files.
Vectors and matrices in those files are Spark's structs (``type`` 0 for
sparse, 1 for dense), decoded here into NumPy arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from sparktrain.serving._errors import ExportError


@dataclass
class SavedStage:
    """One stage folder: its class name, params and where its files are."""

    folder: Path
    metadata: dict[str, Any]

    @property
    def class_name(self) -> str:
        return self.metadata["class"]

    @property
    def short_name(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]

    def param(self, name: str, default: Any = None) -> Any:
        """A param as set, else its recorded default, else ``default``."""
        for key in ("paramMap", "defaultParamMap"):
            if name in self.metadata.get(key, {}):
                return self.metadata[key][name]
        return default

    def rows(self, part: str = "data") -> list[dict[str, Any]]:
        """The rows of the stage's Parquet files under ``part``."""
        return pq.read_table(self.folder / part).to_pylist()


def read_metadata(folder: Path) -> dict[str, Any]:
    """The JSON line that Spark's ``DefaultParamsWriter`` wrote for a stage."""
    parts = sorted((folder / "metadata").glob("part-*"))
    if not parts:
        raise ExportError(
            f"{str(folder)!r} holds no Spark metadata (metadata/part-*); it is "
            "not a saved Spark stage. Pass a folder that 'sparktrain train' wrote"
        )
    return json.loads(parts[0].read_text().splitlines()[0])


def pipeline_stages(folder: Path) -> list[SavedStage]:
    """The stages of a saved ``PipelineModel``, in order."""
    uids = read_metadata(folder)["paramMap"]["stageUids"]
    digits = len(str(len(uids)))  # Spark pads the index: 00_..., 01_..., 10_...
    stages = []
    for index, uid in enumerate(uids):
        stage_folder = folder / "stages" / f"{index:0{digits}d}_{uid}"
        stages.append(SavedStage(stage_folder, read_metadata(stage_folder)))
    return stages


def vector(struct: dict[str, Any]) -> np.ndarray:
    """A dense array from Spark's vector struct."""
    values = np.asarray(struct["values"], dtype=np.float64)
    if struct["type"] == 1:
        return values
    dense = np.zeros(struct["size"])
    dense[np.asarray(struct["indices"], dtype=np.int64)] = values
    return dense


def matrix(struct: dict[str, Any]) -> np.ndarray:
    """A dense 2-D array from Spark's matrix struct (column-major unless
    ``isTransposed``; sparse ones are CSC, or CSR when transposed)."""
    rows, cols = struct["numRows"], struct["numCols"]
    values = np.asarray(struct["values"], dtype=np.float64)
    transposed = struct["isTransposed"]
    if struct["type"] == 1:
        if transposed:
            return values.reshape(rows, cols)
        return values.reshape(cols, rows).T
    pointers = np.asarray(struct["colPtrs"], dtype=np.int64)
    indices = np.asarray(struct["rowIndices"], dtype=np.int64)
    dense = np.zeros((rows, cols))
    for outer in range(len(pointers) - 1):
        for k in range(pointers[outer], pointers[outer + 1]):
            if transposed:
                dense[outer, indices[k]] = values[k]
            else:
                dense[indices[k], outer] = values[k]
    return dense
