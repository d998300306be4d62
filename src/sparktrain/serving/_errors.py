"""The errors of the serving layer."""

from __future__ import annotations

from sparktrain.errors import DataError, SparktrainError

#: Problems a rejected request lists at most.
MAX_PROBLEMS = 50


class ExportError(SparktrainError):
    """A saved model holds a stage or learner that cannot be served or exported
    without Spark."""


class RegistryError(SparktrainError):
    """A registered model, version or alias does not exist, or the registry
    cannot be used as asked."""


class RequestError(DataError):
    """Records sent for scoring do not match the model's input schema.

    ``problems`` holds one dict per bad field: ``row``, ``field``, ``error``.
    """

    def __init__(self, problems: list[dict]) -> None:
        self.problems = problems
        shown = "; ".join(_describe(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(shown + more)


def _describe(problem: dict) -> str:
    where = f"row {problem['row']}, " if problem.get("row") is not None else ""
    field = f"field {problem['field']!r}: " if problem.get("field") else ""
    return f"{where}{field}{problem['error']}"
