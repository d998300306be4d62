"""Featurization stages in NumPy: the same arithmetic as the fitted Spark stages.

A batch is a dict from column name to a column: a float array (NaN for
null), a list of strings or token lists, a dense 2-D array or a CSR matrix
(vectors). Each stage reads its input columns and adds its outputs, as its
Spark counterpart adds columns to a DataFrame.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from scipy import sparse

from sparktrain.serving._errors import MAX_PROBLEMS, ExportError, RequestError
from sparktrain.serving._files import SavedStage, vector
from sparktrain.serving._murmur import bucket

Batch = dict[str, Any]
_HASH_CACHE_SIZE = 200_000


class Stage:
    """A fitted stage: ``apply`` adds its output columns to ``batch``."""

    name = ""

    def apply(self, batch: Batch, rows: int) -> None:
        raise NotImplementedError


class Select(Stage):
    """Featurize's first SQL step: numbers cast to double (NaN and infinities
    become null), parts of dates, "is missing" flags, strings, and text with
    null as ``''``.

    Steps are ``(operation, output column, input column, spark type)``; a
    flag's input is the helper column it flags, computed before it.
    """

    name = "SQLTransformer"

    def __init__(self, steps: list[tuple[str, str, str, str]]) -> None:
        self.steps = steps

    def apply(self, batch: Batch, rows: int) -> None:
        for operation, output, source, spark_type in self.steps:
            values = batch[source]
            if operation == "number":
                batch[output] = _clean_doubles(values)
            elif operation in DATE_PARTS:
                batch[output] = np.array(
                    [np.nan if v is None else DATE_PARTS[operation](v) for v in values],
                    dtype=np.float64,
                )
            elif operation == "flag":
                batch[output] = np.isnan(values).astype(np.float64)
            elif operation == "string":
                batch[output] = [spark_string(v, spark_type) for v in values]
            else:
                batch[output] = [
                    "" if v is None else spark_string(v, spark_type) for v in values
                ]


_EPOCH = date(1970, 1, 1)


def _epoch(value: date) -> float:
    """``unix_date`` of a date (days), ``unix_seconds`` of a timestamp
    (whole seconds, rounded down)."""
    if isinstance(value, datetime):
        return float(math.floor(value.timestamp()))
    return float((value - _EPOCH).days)


#: Spark's date functions: ``dayofweek`` counts from Sunday = 1. Timestamps
#: arrive as aware datetimes in the training session's zone (see _schema).
DATE_PARTS = {
    "year": lambda d: float(d.year),
    "month": lambda d: float(d.month),
    "dayofmonth": lambda d: float(d.day),
    "dayofweek": lambda d: float(d.isoweekday() % 7 + 1),
    "hour": lambda d: float(d.hour),
    "epoch": _epoch,
}


def _clean_doubles(values: list[Any]) -> np.ndarray:
    doubles = np.array(
        [np.nan if v is None else float(v) for v in values], dtype=np.float64
    )
    doubles[np.isinf(doubles)] = np.nan
    return doubles


def spark_string(value: Any, spark_type: str) -> str | None:
    """``CAST(value AS STRING)`` as Spark writes it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and spark_type in ("double", "float"):
        return java_double(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def java_double(value: float) -> str:
    """Java's ``Double.toString``: plain between 1e-3 and 1e7, else ``1.0E10``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else f"{text}.0"
    _, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    power = len(digits) + exponent - 1
    tail = "".join(map(str, digits[1:])) or "0"
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[0]}.{tail}E{power}"


class Imputer(Stage):
    name = "ImputerModel"

    def __init__(self, saved: SavedStage) -> None:
        self.inputs = saved.param("inputCols")
        self.outputs = saved.param("outputCols")
        surrogates = saved.rows()[0]
        self.values = [float(surrogates[c]) for c in self.inputs]
        missing = saved.param("missingValue", "NaN")
        if missing != "NaN" and not (
            isinstance(missing, float) and math.isnan(missing)
        ):
            raise ExportError(
                f"stage 'ImputerModel' has missingValue={missing!r}; only NaN "
                "(what sparktrain's Featurize uses) has a Spark-free scorer"
            )

    def apply(self, batch: Batch, rows: int) -> None:
        for source, output, value in zip(
            self.inputs, self.outputs, self.values, strict=True
        ):
            column = batch[source]
            batch[output] = np.where(np.isnan(column), value, column)


class StringIndexer(Stage):
    """Labels to indices; null and unseen values go to the extra index
    ``len(labels)`` (``handleInvalid='keep'``)."""

    name = "StringIndexerModel"

    def __init__(self, saved: SavedStage) -> None:
        if saved.param("handleInvalid") != "keep":
            raise ExportError(
                "stage 'StringIndexerModel' has handleInvalid="
                f"{saved.param('handleInvalid')!r}; only 'keep' has a Spark-free "
                "scorer"
            )
        self.inputs = saved.param("inputCols") or [saved.param("inputCol")]
        self.outputs = saved.param("outputCols") or [saved.param("outputCol")]
        labels = saved.rows()[0]["labelsArray"]
        self.indices = [{label: i for i, label in enumerate(ls)} for ls in labels]

    def apply(self, batch: Batch, rows: int) -> None:
        for source, output, index in zip(
            self.inputs, self.outputs, self.indices, strict=True
        ):
            unseen = float(len(index))
            batch[output] = np.array(
                [index.get(v, unseen) for v in batch[source]], dtype=np.float64
            )


class OneHotEncoder(Stage):
    name = "OneHotEncoderModel"

    def __init__(self, saved: SavedStage) -> None:
        self.inputs = saved.param("inputCols") or [saved.param("inputCol")]
        self.outputs = saved.param("outputCols") or [saved.param("outputCol")]
        self.keep = saved.param("handleInvalid") == "keep"
        self.drop_last = bool(saved.param("dropLast", True))
        if saved.param("handleInvalid") not in ("keep", "error"):
            raise ExportError(
                "stage 'OneHotEncoderModel' has handleInvalid="
                f"{saved.param('handleInvalid')!r}; expected 'keep' or 'error'"
            )
        self.sizes = [int(s) for s in saved.rows()[0]["categorySizes"]]

    def _width(self, size: int) -> int:
        if self.keep and not self.drop_last:
            return size + 1
        if self.drop_last and not self.keep:
            return size - 1
        return size

    def apply(self, batch: Batch, rows: int) -> None:
        for source, output, size in zip(
            self.inputs, self.outputs, self.sizes, strict=True
        ):
            width = self._width(size)
            index = batch[source].astype(np.int64)
            invalid = (index < 0) | (index >= size)
            if invalid.any() and not self.keep:
                raise ExportError(
                    f"category index {index[invalid][0]} of {source!r} is outside "
                    f"0..{size - 1} and the encoder has handleInvalid='error'"
                )
            slot = np.where(invalid, width - 1 if self.keep else 0, index)
            encoded = np.zeros((rows, width))
            inside = slot < width
            encoded[np.flatnonzero(inside), slot[inside]] = 1.0
            batch[output] = encoded


class _HashIndex:
    """Strings to vector slots, remembered: words repeat across requests."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        slot = self.cache.get(text)
        if slot is None:
            if len(self.cache) >= _HASH_CACHE_SIZE:
                self.cache.clear()
            slot = self.cache[text] = bucket(text, self.size)
        return slot


class FeatureHasher(Stage):
    """``column=value`` hashed to a slot with 1.0; numeric columns hash their
    name and add their value. Nulls add nothing."""

    name = "FeatureHasher"

    def __init__(self, saved: SavedStage) -> None:
        self.inputs = saved.param("inputCols")
        self.categorical = set(saved.param("categoricalCols") or [])
        self.output = saved.param("outputCol")
        self.index = _HashIndex(int(saved.param("numFeatures")))

    def apply(self, batch: Batch, rows: int) -> None:
        cells: list[dict[int, float]] = [{} for _ in range(rows)]
        for column in self.inputs:
            values = batch[column]
            is_string = isinstance(values, list)
            for row, value in enumerate(values):
                if value is None or (not is_string and np.isnan(value)):
                    continue
                if is_string or column in self.categorical:
                    text = value if is_string else java_double(float(value))
                    slot, amount = self.index(f"{column}={text}"), 1.0
                else:
                    slot, amount = self.index(column), float(value)
                cells[row][slot] = cells[row].get(slot, 0.0) + amount
        batch[self.output] = _csr(cells, self.index.size)


class RegexTokenizer(Stage):
    """Lower-cased text split on the pattern; Java's ``\\w`` is ASCII-only,
    so the pattern is compiled with ``re.ASCII``."""

    name = "RegexTokenizer"

    def __init__(self, saved: SavedStage) -> None:
        self.input = saved.param("inputCol")
        self.output = saved.param("outputCol")
        self.pattern = re.compile(saved.param("pattern", r"\s+"), re.ASCII)
        self.gaps = bool(saved.param("gaps", True))
        self.lower = bool(saved.param("toLowercase", True))
        self.min_length = int(saved.param("minTokenLength", 1))

    def apply(self, batch: Batch, rows: int) -> None:
        batch[self.output] = [self._tokens(text) for text in batch[self.input]]

    def _tokens(self, text: str) -> list[str]:
        text = text.lower() if self.lower else text
        pieces = self.pattern.split(text) if self.gaps else self.pattern.findall(text)
        return [p for p in pieces if len(p) >= self.min_length]


class StopWordsRemover(Stage):
    name = "StopWordsRemover"

    def __init__(self, saved: SavedStage) -> None:
        self.input = saved.param("inputCol")
        self.output = saved.param("outputCol")
        self.case_sensitive = bool(saved.param("caseSensitive", False))
        words = saved.param("stopWords") or []
        self.words = set(words if self.case_sensitive else (w.lower() for w in words))

    def apply(self, batch: Batch, rows: int) -> None:
        fold = (lambda w: w) if self.case_sensitive else str.lower
        batch[self.output] = [
            [t for t in tokens if fold(t) not in self.words]
            for tokens in batch[self.input]
        ]


class HashingTF(Stage):
    name = "HashingTF"

    def __init__(self, saved: SavedStage) -> None:
        self.input = saved.param("inputCol")
        self.output = saved.param("outputCol")
        self.binary = bool(saved.param("binary", False))
        self.index = _HashIndex(int(saved.param("numFeatures", 1 << 18)))

    def apply(self, batch: Batch, rows: int) -> None:
        cells: list[dict[int, float]] = []
        for tokens in batch[self.input]:
            counts: dict[int, float] = {}
            for token in tokens:
                slot = self.index(token)
                counts[slot] = 1.0 if self.binary else counts.get(slot, 0.0) + 1.0
            cells.append(counts)
        batch[self.output] = _csr(cells, self.index.size)


class IDF(Stage):
    name = "IDFModel"

    def __init__(self, saved: SavedStage) -> None:
        self.input = saved.param("inputCol")
        self.output = saved.param("outputCol")
        self.idf = vector(saved.rows()[0]["idf"])

    def apply(self, batch: Batch, rows: int) -> None:
        tf = batch[self.input].copy()
        tf.data = tf.data * self.idf[tf.indices]
        batch[self.output] = tf


class VectorSizeHint(Stage):
    """A vector column's rows as one matrix of the size the model was trained
    on; a missing vector is all NaN, as the assembler keeps it."""

    name = "VectorSizeHint"

    def __init__(self, saved: SavedStage) -> None:
        self.column = saved.param("inputCol")
        self.size = int(saved.param("size"))

    def apply(self, batch: Batch, rows: int) -> None:
        values = batch[self.column]
        wrong = [
            {
                "row": row,
                "field": self.column,
                "error": f"a vector of {len(v)} numbers; the model takes {self.size}",
            }
            for row, v in enumerate(values)
            if v is not None and len(v) != self.size
        ]
        if wrong:
            raise RequestError(wrong[:MAX_PROBLEMS])
        block = np.full((rows, self.size), np.nan)
        for row, v in enumerate(values):
            if v is not None:
                block[row] = v
        batch[self.column] = block


class VectorAssembler(Stage):
    name = "VectorAssembler"

    def __init__(self, saved: SavedStage) -> None:
        self.inputs = saved.param("inputCols")
        self.output = saved.param("outputCol")

    def apply(self, batch: Batch, rows: int) -> None:
        blocks = []
        for column in self.inputs:
            value = batch[column]
            blocks.append(value.reshape(-1, 1) if value.ndim == 1 else value)
        if any(sparse.issparse(b) for b in blocks):
            batch[self.output] = _hstack_csr(blocks, rows)
        else:
            batch[self.output] = np.hstack(blocks)


def _hstack_csr(blocks: list[Any], rows: int) -> sparse.csr_matrix:
    """Blocks side by side as one CSR matrix, zeros left out as Spark's
    assembler leaves them out. scipy's ``hstack`` does the same, but costs a
    millisecond per call, most of a one-row request."""
    parts, width = [], 0
    for block in blocks:
        if sparse.issparse(block):
            counts = np.diff(block.indptr)
            parts.append((counts, block.indices + width, block.data))
        else:
            filled = block != 0
            parts.append(
                (filled.sum(axis=1), np.nonzero(filled)[1] + width, block[filled])
            )
        width += block.shape[1]
    totals = np.sum([counts for counts, _, _ in parts], axis=0)
    indptr = np.concatenate([[0], np.cumsum(totals)]).astype(np.int64)
    indices = np.empty(indptr[-1], dtype=np.int64)
    data = np.empty(indptr[-1], dtype=np.float64)
    before = np.zeros(rows, dtype=np.int64)  # entries already placed per row
    for counts, part_indices, part_data in parts:
        row_of = np.repeat(np.arange(rows), counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        local = np.arange(len(part_indices)) - np.repeat(starts, counts)
        position = indptr[row_of] + before[row_of] + local
        indices[position] = part_indices
        data[position] = part_data
        before += counts
    return sparse.csr_matrix((data, indices, indptr), shape=(rows, width))


class StandardScaler(Stage):
    """Spark multiplies by ``1 / std`` (0 where std is 0), and does not
    divide, so the same rounding is kept."""

    name = "StandardScalerModel"

    def __init__(self, saved: SavedStage) -> None:
        self.input = saved.param("inputCol")
        self.output = saved.param("outputCol")
        row = saved.rows()[0]
        std = vector(row["std"])
        self.with_std = bool(saved.param("withStd", True))
        self.with_mean = bool(saved.param("withMean", False))
        self.scale = np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
        self.mean = vector(row["mean"])

    def apply(self, batch: Batch, rows: int) -> None:
        features = batch[self.input]
        if self.with_mean:
            features = to_dense(features) - self.mean
        if self.with_std:
            if sparse.issparse(features):
                features = features.multiply(self.scale).tocsr()
            else:
                features = features * self.scale
        batch[self.output] = features


def to_dense(features: Any) -> np.ndarray:
    return features.toarray() if sparse.issparse(features) else np.asarray(features)


def _csr(cells: list[dict[int, float]], width: int) -> sparse.csr_matrix:
    indptr = np.zeros(len(cells) + 1, dtype=np.int64)
    indices, data = [], []
    for row, counts in enumerate(cells):
        for slot in sorted(counts):
            indices.append(slot)
            data.append(counts[slot])
        indptr[row + 1] = len(indices)
    return sparse.csr_matrix(
        (
            np.asarray(data, dtype=np.float64),
            np.asarray(indices, dtype=np.int64),
            indptr,
        ),
        shape=(len(cells), width),
    )


STAGES: dict[str, type[Stage]] = {
    cls.name: cls
    for cls in (
        Imputer,
        StringIndexer,
        OneHotEncoder,
        FeatureHasher,
        RegexTokenizer,
        StopWordsRemover,
        HashingTF,
        IDF,
        VectorSizeHint,
        VectorAssembler,
        StandardScaler,
    )
}
