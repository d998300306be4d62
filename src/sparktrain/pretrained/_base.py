"""What every pretrained transformer shares: params, checks and the pandas UDF.

Each transformer names a *runner*: a module-level function that takes a list
of input values (``None`` for a null or empty input) and the transformer's
options, and returns one ``(result, error)`` pair per value. The runner runs
inside a Python worker, where it fetches its model from :mod:`._cache`, so the
model is loaded once per worker and reused by every batch and task after that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, StructField, StructType

from sparktrain._extras import require
from sparktrain.errors import ColumnNotFoundError, DataError
from sparktrain.pretrained import _cache

logger = logging.getLogger(__name__)

Outcome = tuple[Any, str | None]
Runner = Callable[[list[Any], dict[str, Any]], list[Outcome]]

_RESULT = "result"
_ERROR = "error"


def quote(name: str) -> str:
    """A column name as Spark SQL reads it, whatever characters it holds."""
    return "`" + name.replace("`", "``") + "`"


def failure(exc: BaseException) -> str:
    """The text kept in the error column for a row that failed."""
    return f"{type(exc).__name__}: {exc}"


def each_row(values: list[Any], work: Callable[[Any], Any]) -> list[Outcome]:
    """Run ``work`` on every non-null value, keeping each row's failure apart."""
    outcomes: list[Outcome] = []
    for value in values:
        if value is None:
            outcomes.append((None, None))
            continue
        try:
            outcomes.append((work(value), None))
        except Exception as exc:  # one bad row must not fail the job
            outcomes.append((None, failure(exc)))
    return outcomes


class PretrainedTransformer(
    Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable
):
    """Base class: a pretrained model applied to one column, row by row.

    Subclasses set :attr:`extra`, :attr:`modules`, :attr:`purpose`,
    :meth:`_result_type`, :meth:`_runner` and :meth:`_options`.
    """

    errorCol: Param[str] = Param(
        Params._dummy(),
        "errorCol",
        "column for the error text of rows that failed; default <outputCol>_error",
        typeConverter=TypeConverters.toString,
    )

    extra = "text"
    modules: tuple[str, ...] = ()
    purpose = "a pretrained transformer"

    def setInputCol(self, value: str) -> PretrainedTransformer:
        """Set the column to read."""
        return self._set(inputCol=value)

    def setOutputCol(self, value: str) -> PretrainedTransformer:
        """Set the column to write the result to."""
        return self._set(outputCol=value)

    def setErrorCol(self, value: str) -> PretrainedTransformer:
        """Set the column to write each failed row's error text to."""
        return self._set(errorCol=value)

    def getErrorCol(self) -> str:
        """The error column: ``errorCol`` if set, else ``<outputCol>_error``."""
        if self.isSet(self.errorCol):
            return self.getOrDefault(self.errorCol)
        return f"{self.getOutputCol()}_error"

    def _set_given(self, kwargs: dict[str, Any]) -> None:
        """Set the constructor's arguments, leaving those given as None unset."""
        self._set(
            **{name: value for name, value in kwargs.items() if value is not None}
        )

    # What subclasses provide ------------------------------------------------

    def _result_type(self) -> DataType:
        raise NotImplementedError

    def _runner(self) -> Runner:
        raise NotImplementedError

    def _options(self) -> dict[str, Any]:
        return {}

    def _check_input_type(self, data_type: DataType) -> None:
        if not isinstance(data_type, StringType):
            raise DataError(
                f"{type(self).__name__} reads text, but column "
                f"{self.getInputCol()!r} is {data_type.simpleString()}; cast it "
                "to string or pick a text column with setInputCol"
            )

    def _finish(self, result: Column) -> Column:
        """The output column built from the UDF's result field."""
        return result

    # The transform ----------------------------------------------------------

    def _check_input(self, dataset: DataFrame, input_col: str) -> None:
        if input_col not in dataset.columns:
            raise ColumnNotFoundError(
                f"{type(self).__name__}: input column {input_col!r} is not in the "
                f"table; its columns are {dataset.columns}; set inputCol to one "
                "of them"
            )
        self._check_input_type(dataset.schema[input_col].dataType)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        input_col = self.getInputCol()
        output_col = self.getOutputCol()
        error_col = self.getErrorCol()
        self._check_input(dataset, input_col)
        if error_col == output_col:
            raise ValueError(
                f"errorCol and outputCol are both {output_col!r}; give the error "
                "column another name, or leave errorCol unset for "
                f"{output_col + '_error'!r}"
            )
        options = self._options()
        _cache.offline()
        for module in self.modules:
            require(module, extra=self.extra, purpose=self.purpose)

        struct_in = isinstance(dataset.schema[input_col].dataType, StructType)
        udf = _pandas_udf(
            self._runner(), options, self._result_type(), struct_in=struct_in
        )
        temp = f"__sparktrain_{output_col}"
        applied = dataset.withColumn(temp, udf(F.col(quote(input_col))))
        result = self._finish(F.col(f"{quote(temp)}.{_RESULT}"))
        return (
            applied.withColumn(output_col, result)
            .withColumn(error_col, F.col(f"{quote(temp)}.{_ERROR}"))
            .drop(temp)
        )


def _pandas_udf(
    runner: Runner, options: dict[str, Any], result_type: DataType, *, struct_in: bool
):
    """A pandas UDF returning ``struct<result, error>`` for each input row."""
    schema = StructType(
        [StructField(_RESULT, result_type), StructField(_ERROR, StringType())]
    )

    def outcomes(values: pd.Series | pd.DataFrame) -> pd.DataFrame:
        pairs = runner(_python_values(values), options)
        return pd.DataFrame(
            {
                _RESULT: [result for result, _ in pairs],
                _ERROR: [error for _, error in pairs],
            }
        )

    # pandas_udf reads the argument's type hint: a struct arrives as a frame.
    def from_structs(values: pd.DataFrame) -> pd.DataFrame:
        return outcomes(values)

    def from_values(values: pd.Series) -> pd.DataFrame:
        return outcomes(values)

    return F.pandas_udf(from_structs if struct_in else from_values, schema)


def _python_values(values: pd.Series | pd.DataFrame) -> list[Any]:
    """Plain Python values, ``None`` for nulls and empty inputs."""
    if isinstance(values, pd.DataFrame):  # a struct column; null when all fields are
        records = values.to_dict("records")
        return [None if all(map(_is_missing, r.values())) else r for r in records]
    return [None if _is_missing(v) else v for v in values.tolist()]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN, pandas' null
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, bytes | bytearray):
        return not value
    return False


def check_positive(name: str, value: float) -> None:
    """Refuse a setting that must be above zero, naming it."""
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value!r}")
