"""Feature vectors between Spark and the single-node libraries.

Spark hands ``pyspark.ml`` vectors to Arrow as a struct of ``type`` (0 sparse,
1 dense), ``size``, ``indices`` and ``values``. Both training (a table brought
to the driver) and scoring (Arrow batches in a UDF) turn that struct into a
NumPy or SciPy matrix here, without building one Python object per row.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from py4j.protocol import Py4JError
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy import sparse

from sparktrain.columns import quote, require_column
from sparktrain.errors import DataError

logger = logging.getLogger(__name__)

SPARSE_MIN_WIDTH = 1000  # narrower tables are always handed over dense
SPARSE_MAX_DENSITY = 0.25
_SAMPLE_ROWS = 1000


@dataclass
class TrainingSet:
    """A featurized table on the driver: ``X`` (dense or CSR), ``y``, weights."""

    X: Any
    y: np.ndarray | None
    weight: np.ndarray | None
    rows: int

    @property
    def width(self) -> int:
        return self.X.shape[1]

    @property
    def nbytes(self) -> int:
        if sparse.issparse(self.X):
            return self.X.data.nbytes + self.X.indices.nbytes + self.X.indptr.nbytes
        return self.X.nbytes


def to_matrix(vectors: pa.Array | pa.ChunkedArray, *, dense: bool | None = None):
    """A row-per-vector matrix from an Arrow column of Spark vectors.

    ``dense=None`` picks: dense for narrow or mostly filled vectors, CSR for
    wide sparse ones (hashed text features, big one-hot blocks).
    """
    if isinstance(vectors, pa.ChunkedArray):
        vectors = (
            vectors.combine_chunks()
            if vectors.num_chunks
            else pa.array([], type=vectors.type)
        )
    if len(vectors) == 0:
        return np.zeros((0, 0))
    if vectors.null_count:
        raise DataError(
            f"{vectors.null_count} row(s) have no feature vector (null); "
            "drop or fill them before fitting or scoring"
        )
    if pa.types.is_list(vectors.type) or pa.types.is_large_list(vectors.type):
        return _dense_rows(vectors)
    kinds = vectors.field("type").to_numpy(zero_copy_only=False)
    values = vectors.field("values")
    lengths = np.diff(values.offsets.to_numpy())
    width = _width(vectors, kinds, lengths)
    flat = values.flatten().to_numpy(zero_copy_only=False)
    if (kinds == 1).all() and dense is not False:
        return flat.reshape(len(kinds), width)

    starts = values.offsets.to_numpy()[:-1]
    columns = np.arange(len(flat)) - np.repeat(starts, lengths)
    in_sparse_row = np.repeat(kinds == 0, lengths)
    if in_sparse_row.any():
        columns[in_sparse_row] = _sparse_indices(vectors, kinds)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    matrix = sparse.csr_matrix((flat, columns, indptr), shape=(len(kinds), width))
    if dense is None:
        density = matrix.nnz / max(1, matrix.shape[0] * width)
        dense = width < SPARSE_MIN_WIDTH or density > SPARSE_MAX_DENSITY
    return matrix.toarray() if dense else matrix


def _dense_rows(arrays: pa.ListArray) -> np.ndarray:
    """A matrix from arrays of doubles (``vector_to_array`` of the vectors)."""
    lengths = np.diff(arrays.offsets.to_numpy())
    _same_widths(lengths)
    flat = arrays.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float64, copy=False).reshape(len(lengths), int(lengths[0]))


def _width(vectors: pa.StructArray, kinds: np.ndarray, lengths: np.ndarray) -> int:
    sizes = vectors.field("size").fill_null(-1).to_numpy(zero_copy_only=False)
    return _same_widths(np.where(kinds == 0, sizes, lengths))


def _same_widths(widths: np.ndarray) -> int:
    if (widths != widths[0]).any():
        raise DataError(
            "feature vectors differ in length "
            f"({sorted(set(widths.tolist()))[:5]}); every row needs the same "
            "number of features"
        )
    return int(widths[0])


def _sparse_indices(vectors: pa.StructArray, kinds: np.ndarray) -> np.ndarray:
    indices = vectors.field("indices")
    offsets = indices.offsets.to_numpy()
    flat = indices.values.to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(kinds == 0)
    return np.concatenate([flat[offsets[r] : offsets[r + 1]] for r in rows])


def collect(
    frame: DataFrame,
    *,
    features_col: str,
    label_col: str | None,
    weight_col: str | None = None,
    max_bytes: int,
    accepts_sparse: bool = True,
) -> TrainingSet:
    """Bring a featurized table to the driver, refusing one that will not fit.

    The size is estimated before anything large is collected (from the
    vectors' recorded width, else from a sample of rows), so an oversized
    table fails in seconds with a message saying what to do. The row count
    comes from a fully loaded cache when the table is one (no Spark job), else
    from ``count()``.
    """
    require_column(frame, features_col, role="features column")
    columns = [F.col(quote(features_col)).alias("x")]
    if label_col:
        require_column(frame, label_col, role="label column")
        columns.append(F.col(quote(label_col)).cast("double").alias("y"))
    if weight_col:
        require_column(frame, weight_col, role="weight column")
        columns.append(F.col(quote(weight_col)).cast("double").alias("w"))
    selected = frame.select(*columns)
    _require_vectors(frame, features_col)

    rows = cached_row_count(selected)
    if rows is None:
        rows = selected.count()
    width = vector_width(frame, features_col)
    estimate = _estimate_bytes(selected, rows, accepts_sparse, width)
    if estimate > max_bytes:
        raise DataError(
            f"the training set ({rows:,} rows) needs about {_gib(estimate)} on the "
            f"driver, over maxLocalBytes={_gib(max_bytes)}; sample the table "
            "(frame.sample(fraction=...)), raise maxLocalBytes if the driver has "
            "the memory, or use a distributed learner (XGBoost with "
            "mode='distributed', or a SparkML learner such as 'gbt')"
        )
    table = selected.toArrow()
    rows = table.num_rows
    X = to_matrix(table.column("x"), dense=None if accepts_sparse else True)
    y = table.column("y").to_numpy() if label_col else None
    w = table.column("w").to_numpy() if weight_col else None
    logger.info(
        "collected %d rows x %d features to the driver (%s, %s)",
        rows,
        X.shape[1] if rows else 0,
        "sparse" if sparse.issparse(X) else "dense",
        _gib(TrainingSet(X, y, w, rows).nbytes),
    )
    return TrainingSet(X, y, w, rows)


def cached_row_count(frame: DataFrame) -> int | None:
    """The rows of a frame that only selects columns of a fully loaded cache.

    Spark records the row count of a cached table once every partition is
    stored, so it costs no job. ``None`` when the frame is not such a
    projection, when part of the cache is not loaded (a ``show()`` fills only
    some partitions) and on Spark Connect, whose frames have no JVM plan here.
    """
    jdf = getattr(frame, "_jdf", None)
    if jdf is None:
        return None
    try:
        plan = jdf.queryExecution().optimizedPlan()
        while plan.nodeName() == "Project":
            plan = plan.child()
        if plan.nodeName() != "InMemoryRelation":
            return None
        if not plan.cacheBuilder().isCachedColumnBuffersLoaded():
            return None
        count = plan.stats().rowCount()
        return int(count.get()) if count.isDefined() else None
    except Py4JError:  # a plan shape or Spark version without these methods
        logger.debug("no cached row count for this plan", exc_info=True)
        return None


def _require_vectors(frame: DataFrame, column: str) -> None:
    dtype = frame.schema[column].dataType
    if type(dtype).__name__ != "VectorUDT":
        raise DataError(
            f"features column {column!r} has type {dtype.simpleString()}; expected "
            "a vector column (use Featurize or VectorAssembler, or TrainClassifier/"
            "TrainRegressor, which featurize for you)"
        )


def vector_width(frame: DataFrame, column: str) -> int | None:
    """The vectors' length as their ML attribute metadata records it, if it does.

    ``VectorAssembler``, ``Featurize`` and most feature stages record it.
    """
    attributes = frame.schema[column].metadata.get("ml_attr", {})
    if "num_attrs" in attributes:
        return int(attributes["num_attrs"])
    groups = attributes.get("attrs")
    if groups:
        return sum(len(group) for group in groups.values())
    return None


def _estimate_bytes(
    selected: DataFrame, rows: int, accepts_sparse: bool, width: int | None = None
) -> int:
    if rows == 0:
        return 0
    if width is not None and (not accepts_sparse or width < SPARSE_MIN_WIDTH):
        # Handed over dense: the size follows from the width, no sample needed.
        return int(2 * rows * 8 * width)
    sample = selected.select("x").limit(_SAMPLE_ROWS).toArrow().column("x")
    if len(sample) == 0:
        return 0
    matrix = to_matrix(sample, dense=False)
    width = matrix.shape[1]
    per_row_sparse = 12 * matrix.nnz / matrix.shape[0] + 8
    per_row_dense = 8 * width
    densify = not accepts_sparse or width < SPARSE_MIN_WIDTH
    # Arrow's copy and the matrix briefly live side by side.
    return int(2 * rows * (per_row_dense if densify else per_row_sparse))


def default_max_bytes() -> int:
    """A quarter of the driver machine's memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 << 30
    return total // 4


def _gib(size: float) -> str:
    if size >= 1 << 30:
        return f"{size / (1 << 30):.1f} GiB"
    return f"{size / (1 << 20):.1f} MiB"
