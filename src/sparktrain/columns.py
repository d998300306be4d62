"""Deciding what each column of a table becomes in the baseline model.

A minimal first pass: numbers, booleans, dates and low-cardinality strings are
used; identifiers, constants and high-cardinality strings are left out with
the reason recorded.
"""

from __future__ import annotations

import difflib
import zlib
from dataclasses import asdict, dataclass

from pyspark.ml import Transformer
from pyspark.ml.feature import Imputer, OneHotEncoder, SQLTransformer, StringIndexer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktrain.errors import ColumnNotFoundError

MAX_CATEGORIES = 50
INTERNAL_PREFIX = "__st_"
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


@dataclass(frozen=True)
class ColumnDecision:
    """What was decided for one input column, and why."""

    name: str
    spark_type: str
    kind: str  # numeric, boolean, datetime, categorical, excluded
    reason: str
    distinct: int = 0
    nulls: int = 0

    @property
    def used(self) -> bool:
        return self.kind != "excluded"

    def as_dict(self) -> dict:
        return asdict(self)


def require_column(frame: DataFrame, name: str, *, role: str = "column") -> None:
    """Raise a helpful error when ``name`` is not a column of ``frame``."""
    if name in frame.columns:
        return
    close = difflib.get_close_matches(name, frame.columns, n=1, cutoff=0.5)
    folded = [c for c in frame.columns if c.lower() == name.lower()]
    suggestion = folded or close
    hint = f" Did you mean {suggestion[0]!r}?" if suggestion else ""
    raise ColumnNotFoundError(
        f"{role} {name!r} is not in the table.{hint} The columns are: "
        f"{', '.join(frame.columns)}"
    )


def decide(frame: DataFrame, *, label_col: str, rows: int) -> list[ColumnDecision]:
    """Profile ``frame`` in one pass and decide the kind of every feature column."""
    features = [f for f in frame.schema.fields if f.name != label_col]
    if not features:
        return []
    aggregates = []
    for i, f in enumerate(features):
        column = F.col(quote(f.name))
        aggregates.append(F.approx_count_distinct(column).alias(f"distinct{i}"))
        aggregates.append(F.sum(column.isNull().cast("long")).alias(f"nulls{i}"))
    profile = list(frame.agg(*aggregates).first())
    return [
        _decide_one(f, int(profile[2 * i]), int(profile[2 * i + 1] or 0), rows)
        for i, f in enumerate(features)
    ]


def _decide_one(
    field: T.StructField, distinct: int, nulls: int, rows: int
) -> ColumnDecision:
    dtype = field.dataType

    def make(kind: str, reason: str) -> ColumnDecision:
        return ColumnDecision(
            field.name, dtype.simpleString(), kind, reason, distinct, nulls
        )

    if field.name.startswith(INTERNAL_PREFIX):
        return make("excluded", f"names starting with {INTERNAL_PREFIX!r} are reserved")
    if distinct <= 1:
        return make("excluded", "constant: one value (or none) in every row")
    if isinstance(dtype, T.BooleanType):
        return make("boolean", "true/false as 1/0")
    if isinstance(dtype, _INTEGRAL) and rows > 50 and distinct >= 0.98 * rows:
        return make("excluded", "identifier: a different integer in every row")
    if isinstance(dtype, T.NumericType):
        return make("numeric", "number; missing values get the median")
    if isinstance(dtype, (T.DateType, T.TimestampType, T.TimestampNTZType)):
        return make("datetime", "date/time as a number (days or seconds since 1970)")
    if isinstance(dtype, T.StringType):
        if rows > 50 and distinct >= 0.98 * rows:
            return make("excluded", "identifier: a different string in every row")
        if distinct > MAX_CATEGORIES:
            return make(
                "excluded",
                f"{distinct} distinct strings, more than {MAX_CATEGORIES} categories",
            )
        return make("categorical", "one-hot; missing and unseen values get a slot")
    return make("excluded", f"type {dtype.simpleString()} is not used yet")


def feature_stages(
    decisions: list[ColumnDecision],
) -> tuple[list[Transformer], list[str]]:
    """Unfitted stages that turn the used columns into vectors to assemble."""
    numeric = [d for d in decisions if d.kind in ("numeric", "boolean", "datetime")]
    categorical = [d for d in decisions if d.kind == "categorical"]
    stages: list = []
    assembled: list[str] = []

    if numeric:
        casts = ", ".join(
            f"{_as_double(d)} AS {_internal('num', d.name)}" for d in numeric
        )
        stages.append(SQLTransformer(statement=f"SELECT *, {casts} FROM __THIS__"))
        imputed = [_internal("imp", d.name) for d in numeric]
        stages.append(
            Imputer(
                inputCols=[_internal("num", d.name) for d in numeric],
                outputCols=imputed,
                strategy="median",
            )
        )
        assembled += imputed

    if categorical:
        indexed = [_internal("idx", d.name) for d in categorical]
        encoded = [_internal("ohe", d.name) for d in categorical]
        stages.append(
            StringIndexer(
                inputCols=[d.name for d in categorical],
                outputCols=indexed,
                handleInvalid="keep",
                stringOrderType="frequencyDesc",
            )
        )
        stages.append(
            OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep")
        )
        assembled += encoded
    return stages, assembled


def internal_outputs(decisions: list[ColumnDecision]) -> list[str]:
    """Every helper column the feature stages add, to drop from the output."""
    names = []
    for d in decisions:
        if d.kind in ("numeric", "boolean", "datetime"):
            names += [_internal("num", d.name), _internal("imp", d.name)]
        elif d.kind == "categorical":
            names += [_internal("idx", d.name), _internal("ohe", d.name)]
    return names


def _as_double(decision: ColumnDecision) -> str:
    column = quote(decision.name)
    if decision.spark_type == "date":
        return f"CAST(unix_date({column}) AS DOUBLE)"
    if decision.spark_type.startswith("timestamp"):
        return f"CAST(unix_micros(CAST({column} AS TIMESTAMP)) / 1e6 AS DOUBLE)"
    return f"CAST({column} AS DOUBLE)"


def _internal(role: str, name: str) -> str:
    safe = "".join(ch if ch.isalnum() else "_" for ch in name)
    return f"{INTERNAL_PREFIX}{role}_{safe}_{zlib.crc32(name.encode()) % 10_000:04d}"


def quote(name: str) -> str:
    """A column name as a Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"
