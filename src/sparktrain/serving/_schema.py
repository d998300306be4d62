"""The input schema of a saved model, and checking records against it.

Fields are the columns the model uses, with the Spark type they had in
training. A field may be null only if training saw it null (the model then
learned what to do with a gap); NaN and infinities count as null, as
featurization treats them (and pandas writes a missing string as NaN).
Columns the training table had but the model does not use (the label,
identifiers, constants) are accepted and ignored; any other name is refused.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from sparktrain.serving._errors import MAX_PROBLEMS, ExportError, RequestError
from sparktrain.serving._features import spark_string

_INTEGRAL = ("tinyint", "smallint", "int", "bigint")
_FRACTIONAL = ("float", "double")
UNSEEN_POLICIES = ("score", "reject")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?"
    r"([Zz]|[+-]\d{2}:\d{2})?"
)


@dataclass(frozen=True)
class Field:
    """One input column the model reads."""

    name: str
    spark_type: str
    kind: str
    nullable: bool
    categories: tuple[str, ...] = ()
    #: The training session's time zone, for timestamps.
    zone: str | None = None

    @property
    def json_type(self) -> str:
        if self.spark_type in ("date", "timestamp", "vector"):
            return self.spark_type
        if self.spark_type in _INTEGRAL:
            return "integer"
        if self.spark_type == "boolean":
            return "boolean"
        if self.spark_type == "string":
            return "string"
        return "number"

    def describe(self) -> dict[str, Any]:
        described = {
            "name": self.name,
            "type": self.json_type,
            "spark_type": self.spark_type,
            "kind": self.kind,
            "nullable": self.nullable,
        }
        if self.categories:
            described["categories"] = list(self.categories)
        return described


class Schema:
    """Checks records and turns them into columns for the stages."""

    def __init__(self, fields: list[Field], ignored: list[str]) -> None:
        self.fields = fields
        self.ignored = set(ignored)
        self.known = {f.name for f in fields} | self.ignored
        self._sets = {f.name: set(f.categories) for f in fields if f.categories}

    @classmethod
    def from_metadata(
        cls, metadata: dict[str, Any], categories: dict[str, list[str]]
    ) -> Schema:
        fields, ignored = [], [metadata["label_col"]]
        for column in metadata["columns"]:
            if column["kind"] == "excluded":
                ignored.append(column["name"])
                continue
            if not _supported(column):
                # A timestamp used as a category needs Spark's CAST to string;
                # until then such models score on Spark only.
                raise ExportError(
                    f"column {column['name']!r} ({column['spark_type']}, used as "
                    f"{column['kind']}) has no Spark-free scorer yet; numbers, "
                    "booleans, dates, timestamps (as dates), categories, text and "
                    "vectors do. Score this model on Spark with 'sparktrain predict'"
                )
            zone = metadata.get("time_zone")
            if column["spark_type"] == "timestamp" and not zone:
                raise ExportError(
                    f"column {column['name']!r} is a timestamp, but the model's "
                    "sparktrain.json does not record the time zone it was trained "
                    "in (models saved before timestamps were scored without Spark "
                    "do not); save the model again, or score it on Spark with "
                    "'sparktrain predict'"
                )
            fields.append(
                Field(
                    name=column["name"],
                    spark_type=_base_type(column["spark_type"]),
                    kind=column["kind"],
                    nullable=column["nulls"] > 0,
                    categories=tuple(categories.get(column["name"], ())),
                    zone=zone,
                )
            )
        return cls(fields, ignored)

    def columns(
        self, records: list[Any], *, unseen: str = "score"
    ) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
        """Columns of checked values, and the unseen categories met.

        Raises :class:`RequestError` listing every bad field (up to
        ``MAX_PROBLEMS``).
        """
        problems: list[dict[str, Any]] = []
        columns: dict[str, list[Any]] = {f.name: [] for f in self.fields}
        met: list[dict[str, Any]] = []
        for row, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append(
                    _problem(row, None, f"expected a JSON object, got {_kind(record)}")
                )
                continue
            for name in record:
                if name not in self.known:
                    problems.append(
                        _problem(
                            row,
                            name,
                            "unknown field; the model's fields are "
                            + ", ".join(f.name for f in self.fields),
                        )
                    )
            for field in self.fields:
                value, error = self._value(field, record)
                if error:
                    problems.append(_problem(row, field.name, error))
                    continue
                columns[field.name].append(value)
                if field.name in self._sets and value is not None:
                    text = spark_string(value, field.spark_type)
                    if text not in self._sets[field.name]:
                        met.append({"row": row, "field": field.name, "value": value})
            if len(problems) >= MAX_PROBLEMS:
                break
        if unseen == "reject":
            problems += [
                _problem(
                    m["row"],
                    m["field"],
                    f"unseen category {m['value']!r}; expected one of "
                    + ", ".join(self._sets[m["field"]]),
                )
                for m in met
            ]
        if problems:
            raise RequestError(problems[:MAX_PROBLEMS])
        return columns, met

    def _value(self, field: Field, record: dict[str, Any]) -> tuple[Any, str | None]:
        if field.name not in record:
            return None, f"missing; expected {_expected(field)}"
        value = record[field.name]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None  # pandas' null, and what featurization makes of NaN
        if isinstance(value, datetime) and value != value:
            value = None  # pandas' NaT
        if value is None:
            if field.nullable:
                return None, None
            return None, (
                f"null, but the model never saw it missing in training; expected "
                f"{_expected(field)}"
            )
        return _checked(field, value)


def _checked(field: Field, value: Any) -> tuple[Any, str | None]:
    wanted = field.json_type
    if wanted == "date":
        return _date(field, value)
    if wanted == "timestamp":
        return _timestamp(field, value)
    if wanted == "vector":
        return _vector(field, value)
    if wanted == "boolean":
        ok = isinstance(value, bool)
    elif wanted == "string":
        ok = isinstance(value, str)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        ok = False
    elif wanted == "integer" and isinstance(value, float):
        ok = value.is_integer()
        value = int(value) if ok else value
    else:
        ok = True
    if ok:
        return value, None
    return None, f"expected {_expected(field)}, got {_kind(value)} {value!r}"[:300]


def _date(field: Field, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value, None
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value), None
        except ValueError:
            pass
    return None, f"expected {_expected(field)}, got {_kind(value)} {value!r}"[:300]


def _timestamp(field: Field, value: Any) -> tuple[Any, str | None]:
    """An aware datetime in the training zone, as Spark's CAST reads it: a
    value without an offset is a time in that zone."""
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(text)
    if moment is None:
        return None, f"expected {_expected(field)}, got {_kind(value)} {value!r}"[:300]
    zone = ZoneInfo(field.zone)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone), None
    return moment.astimezone(zone), None


def _vector(field: Field, value: Any) -> tuple[Any, str | None]:
    """A 1-D float array from a list of numbers, a NumPy array or a Spark
    vector; its size is checked by the model's VectorSizeHint stage."""
    if hasattr(value, "toArray"):
        return value.toArray().astype(np.float64), None
    if isinstance(value, (list, tuple, np.ndarray)) and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
        for v in value
    ):
        return np.asarray(value, dtype=np.float64).reshape(-1), None
    return None, f"expected {_expected(field)}, got {_kind(value)} {value!r}"[:300]


def _expected(field: Field) -> str:
    nullable = " or null" if field.nullable else ""
    if field.json_type == "date":
        return f"a date as 'YYYY-MM-DD'{nullable}"
    if field.json_type == "vector":
        return f"a vector as a list of numbers{nullable}"
    if field.json_type == "timestamp":
        return (
            "a timestamp as 'YYYY-MM-DD HH:MM:SS' (or ISO 8601 'T'), with an "
            f"offset such as '+01:00' or 'Z', else in {field.zone}{nullable}"
        )
    article = "an" if field.json_type == "integer" else "a"
    return f"{article} {field.json_type}{nullable}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _problem(row: int | None, field: str | None, error: str) -> dict[str, Any]:
    return {"row": row, "field": field, "error": error}


def _base_type(spark_type: str) -> str:
    return "double" if spark_type.startswith("decimal") else spark_type


def _supported(column: dict[str, Any]) -> bool:
    base = _base_type(column["spark_type"])
    if base == "timestamp":
        return column["kind"] == "datetime"
    if base == "vector":
        return column["kind"] == "vector"
    return base in (*_INTEGRAL, *_FRACTIONAL, "boolean", "string", "date")
