"""Profiling a table and deciding what each column becomes as features.

One aggregation pass measures every column (missing values, distinct values
where a decision needs them, and for strings their length and word count);
the decisions follow from that profile, the column types, and the user's
overrides.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass

from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from sparktrain.errors import ColumnNotFoundError, ConfigError

INTERNAL_PREFIX = "__st_"
KINDS = (
    "numeric",
    "boolean",
    "datetime",
    "categorical",
    "high_cardinality",
    "text",
    "vector",
    "excluded",
)
_DECLARABLE = (
    "numeric",
    "categorical",
    "high_cardinality",
    "text",
    "datetime",
    "excluded",
)
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_UNSUPPORTED = (T.MapType, T.StructType, T.BinaryType, T.ArrayType)
TEXT_MIN_AVERAGE_LENGTH = 25.0
TEXT_MIN_AVERAGE_WORDS = 4.0


@dataclass(frozen=True)
class ColumnDecision:
    """What was decided for one input column, and why."""

    name: str
    spark_type: str
    kind: str
    reason: str
    distinct: int | None = 0  # None: not counted (a number with 2+ values)
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


def quote(name: str) -> str:
    """A column name as a Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def decide(
    frame: DataFrame,
    *,
    columns: list[str],
    column_kinds: dict[str, str] | None = None,
    max_categories: int = 50,
) -> list[ColumnDecision]:
    """Profile ``columns`` of ``frame`` in one pass and decide each one's kind.

    Returns the decisions and the number of rows, counted in the same pass.
    """
    declared = dict(column_kinds or {})
    for name, kind in declared.items():
        require_column(frame, name, role="columnKinds column")
        if kind not in _DECLARABLE:
            raise ConfigError(
                f"columnKinds[{name!r}]={kind!r} is not a column kind; expected one "
                f"of {list(_DECLARABLE)}"
            )
    fields = [frame.schema[c] for c in columns]
    profile, rows = _profile(frame, fields)
    decisions = [
        _decide_one(f, profile[f.name], rows, declared.get(f.name), max_categories)
        for f in fields
    ]
    return decisions, rows


def _profile(
    frame: DataFrame, fields: list[T.StructField]
) -> tuple[dict[str, dict], int]:
    """Measure each column in one pass, and a second only where the first
    leaves a decision open.

    Distinct values are estimated (HyperLogLog, the costly part) only where a
    decision depends on their number: strings (identifier, one-hot or high
    cardinality) and, in the second pass, integers whose range is wide enough
    to hold an identifier. Other columns only need to know whether they hold
    zero, one or more values, which their minimum and maximum tell. Words are
    counted (second pass) only in strings long enough to be free text.
    """
    # Aggregates as SQL text, sent in one call: building thousands of Column
    # objects one py4j call at a time costs more than the pass on wide tables.
    aggregates = ["count(1) AS rows"]
    ranged = []
    for i, f in enumerate(fields):
        if isinstance(f.dataType, (*_UNSUPPORTED, VectorUDT)):
            continue
        column = quote(f.name)
        missing = f"{column} IS NULL"
        if isinstance(f.dataType, (T.FloatType, T.DoubleType)):
            missing = f"({missing} OR isnan({column}))"
        aggregates.append(f"sum(CAST({missing} AS BIGINT)) AS nulls{i}")
        if isinstance(f.dataType, T.StringType):
            aggregates += [
                f"approx_count_distinct({column}) AS distinct{i}",
                f"avg(length({column})) AS length{i}",
            ]
        else:
            present = f"CASE WHEN NOT {missing} THEN {column} END"
            aggregates += [f"min({present}) AS min{i}", f"max({present}) AS max{i}"]
            ranged.append(i)
    measured = frame.selectExpr(*aggregates).first().asDict()
    rows = int(measured["rows"])
    for i in ranged:
        measured[f"distinct{i}"] = _few_values(measured, i)
    second = [
        f"approx_count_distinct({quote(fields[i].name)}) AS distinct{i}"
        for i in ranged
        if isinstance(fields[i].dataType, _INTEGRAL)
        and _may_be_unique(measured, i, rows)
    ]
    for i, f in enumerate(fields):
        if (measured.get(f"length{i}") or 0) >= TEXT_MIN_AVERAGE_LENGTH:
            column = quote(f.name)
            words = rf"size(split(trim({column}), '\\s+'))"
            second.append(
                f"avg(CASE WHEN {column} IS NOT NULL THEN {words} END) AS words{i}"
            )
    if second:
        measured.update(frame.selectExpr(*second).first().asDict())
    keys = ("nulls", "length", "words")
    profile = {
        f.name: {
            "distinct": measured.get(f"distinct{i}", 0),
            **{k: measured.get(f"{k}{i}") or 0 for k in keys},
        }
        for i, f in enumerate(fields)
    }
    return profile, rows


def _few_values(measured: dict, i: int) -> int | None:
    """0 or 1 distinct values, from the minimum and maximum; None for more."""
    low, high = measured[f"min{i}"], measured[f"max{i}"]
    if low is None:
        return 0
    return 1 if low == high else None


def _may_be_unique(measured: dict, i: int, rows: int) -> bool:
    """Whether an integer column's range leaves room for a value per row."""
    low, high = measured[f"min{i}"], measured[f"max{i}"]
    return low is not None and _unique(high - low + 1, measured[f"nulls{i}"], rows)


def _decide_one(
    field: T.StructField,
    profile: dict,
    rows: int,
    declared: str | None,
    max_categories: int,
) -> ColumnDecision:
    dtype = field.dataType
    distinct, nulls = profile["distinct"], int(profile["nulls"])

    def make(kind: str, reason: str) -> ColumnDecision:
        return ColumnDecision(
            field.name, dtype.simpleString(), kind, reason, distinct, nulls
        )

    if isinstance(dtype, VectorUDT):
        return make("vector", "vector column, used as it is")
    if isinstance(dtype, _UNSUPPORTED):
        if declared and declared != "excluded":
            raise ConfigError(
                f"columnKinds[{field.name!r}]={declared!r}, but the column has type "
                f"{dtype.simpleString()}, which cannot be featurized; exclude it or "
                "flatten it into simple columns first"
            )
        return make("excluded", f"type {dtype.simpleString()} is not featurized")
    if declared:
        return _declared(make, field, declared)
    if field.name.startswith(INTERNAL_PREFIX):
        return make("excluded", f"names starting with {INTERNAL_PREFIX!r} are reserved")
    if distinct == 0:
        return make("excluded", "empty: every value is missing")
    if distinct == 1:
        return make("excluded", "constant: a single value in every row")
    if isinstance(dtype, T.BooleanType):
        return make("boolean", "true/false as 1/0")
    if (
        isinstance(dtype, _INTEGRAL)
        and distinct is not None
        and _unique(distinct, nulls, rows)
    ):
        return make("excluded", "identifier: a different integer in every row")
    if isinstance(dtype, T.NumericType):
        return make("numeric", "number; missing values imputed")
    if isinstance(dtype, (T.DateType, T.TimestampType, T.TimestampNTZType)):
        return make("datetime", "year, month, day, weekday, hour and epoch")
    return _decide_string(make, profile, rows, max_categories)


def _decide_string(make, profile: dict, rows: int, max_categories: int):
    distinct, nulls = int(profile["distinct"]), int(profile["nulls"])
    if (
        profile["length"] >= TEXT_MIN_AVERAGE_LENGTH
        and profile["words"] >= TEXT_MIN_AVERAGE_WORDS
    ):
        return make(
            "text",
            f"free text (about {profile['words']:.0f} words a row): "
            "TF-IDF of hashed words",
        )
    if _unique(distinct, nulls, rows):
        return make("excluded", "identifier: a different string in every row")
    if distinct > max_categories:
        return make(
            "high_cardinality",
            f"{distinct} categories, more than maxCategories={max_categories}",
        )
    return make("categorical", "one-hot; missing and unseen values get a slot")


def _declared(make, field: T.StructField, declared: str) -> ColumnDecision:
    dtype = field.dataType
    if declared == "numeric" and not isinstance(dtype, (T.NumericType, T.BooleanType)):
        raise ConfigError(
            f"columnKinds[{field.name!r}]='numeric', but the column has type "
            f"{dtype.simpleString()}; cast it to a number first or declare it "
            "'categorical'"
        )
    if declared == "datetime" and not isinstance(
        dtype, (T.DateType, T.TimestampType, T.TimestampNTZType)
    ):
        raise ConfigError(
            f"columnKinds[{field.name!r}]='datetime', but the column has type "
            f"{dtype.simpleString()}; convert it with to_date/to_timestamp first"
        )
    if declared == "excluded":
        return make("excluded", "excluded as asked")
    return make(declared, "declared in columnKinds")


def _unique(distinct: int, nulls: int, rows: int) -> bool:
    present = rows - nulls
    return present > 50 and distinct >= 0.95 * present
