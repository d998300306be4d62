"""Exceptions raised by sparktrain.

Every error names the thing that was wrong (a column, a path, a parameter),
the value seen, and what to do about it.
"""

from __future__ import annotations


class SparktrainError(Exception):
    """Base class of every error that sparktrain raises on purpose."""


class ConfigError(SparktrainError, ValueError):
    """A setting, from an argument, the environment or the config file, is invalid."""


class JavaError(SparktrainError):
    """Java is missing or too old to run Spark."""


class ClusterError(SparktrainError):
    """A Spark master, worker or Connect server could not be started or reached."""


class DataError(SparktrainError, ValueError):
    """The input table cannot be read or used as given."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The input path does not exist or holds no data files."""


class MalformedRowsError(DataError):
    """A CSV or JSON source holds rows that do not parse, and strict mode is on."""


class ColumnNotFoundError(DataError, KeyError):
    """A column named by the user is not in the table."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class MissingExtraError(SparktrainError, ImportError):
    """An optional dependency is not installed."""
