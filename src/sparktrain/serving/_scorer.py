"""``Scorer``: a saved sparktrain model, scored in-process without Spark."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparktrain.errors import ConfigError, DataError, DataNotFoundError
from sparktrain.serving._errors import ExportError, RequestError
from sparktrain.serving._features import DATE_PARTS, STAGES, Batch, Select, Stage
from sparktrain.serving._files import SavedStage, pipeline_stages, read_metadata
from sparktrain.serving._learners import Learner, is_learner, load_learner
from sparktrain.serving._schema import UNSEEN_POLICIES, Schema

logger = logging.getLogger(__name__)

METADATA_FILE = "sparktrain.json"
_OUTPUT_STATEMENT = re.compile(
    r"SELECT \* EXCEPT \(.*\)(, CAST\(element_at\(.*)? FROM __THIS__"
)


@dataclass
class Predictions:
    """What :meth:`Scorer.predict` returns for a batch of records."""

    predictions: list[Any]
    probabilities: np.ndarray | None
    classes: list[Any]
    unseen: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``/predict`` response body."""
        body: dict[str, Any] = {"predictions": self.predictions}
        if self.probabilities is not None:
            body["probabilities"] = [
                dict(zip(map(str, self.classes), row.tolist(), strict=True))
                for row in self.probabilities
            ]
        body["unseen"] = self.unseen
        return body


class Scorer:
    """A model folder that ``sparktrain train`` wrote, as a NumPy pipeline.

    The fitted Spark stages are read once from their saved files (Parquet and
    JSON); scoring then runs without Spark or a JVM, and gives what Spark's
    batch scoring gives on the same rows.

    Examples
    --------
    >>> scorer = Scorer.load("runs/credit")  # doctest: +SKIP
    >>> scorer.predict([applicant]).predictions  # doctest: +SKIP
    ['good']
    >>> scorer.predict_pandas(frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        path: Path,
        metadata: dict[str, Any],
        schema: Schema,
        stages: list[Stage],
        learner: Learner,
    ) -> None:
        self.path = path
        self.metadata = metadata
        self.schema = schema
        self.stages = stages
        self.learner = learner
        self._classes = [
            _decode(c, metadata["label_type"]) for c in metadata.get("classes", [])
        ]

    @classmethod
    def load(cls, path: str | Path) -> Scorer:
        """Read the model folder ``path`` (or its ``model/`` subfolder).

        Raises ``DataNotFoundError`` when nothing is there, ``DataError``
        when it is not a sparktrain model, and :class:`ExportError` naming
        the first stage or column that has no Spark-free scorer.
        """
        folder = _model_folder(path)
        metadata = json.loads((folder / METADATA_FILE).read_text())
        featurize = read_metadata(folder / "model" / "featurize")
        schema = Schema.from_metadata(metadata, featurize["sparktrain"]["categories"])
        saved = pipeline_stages(folder / "model" / "pipeline")
        stages: list[Stage] = [_select(saved[0], featurize)]
        learner = None
        for stage in saved[1:-1]:
            if is_learner(stage):
                learner = load_learner(stage)
            elif learner is None and stage.short_name in STAGES:
                stages.append(STAGES[stage.short_name](stage))
            else:
                raise _unsupported(stage)
        if learner is None:
            raise _unsupported(saved[-2])
        _check_output(saved[-1])
        logger.info(
            "loaded %s (%d stages) from %s", metadata["learner"], len(saved), folder
        )
        return cls(
            path=folder,
            metadata=metadata,
            schema=schema,
            stages=stages,
            learner=learner,
        )

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self.metadata["task"]

    @property
    def classes(self) -> list[Any]:
        """The classes in the label's own type, in probability order."""
        return list(self._classes)

    def describe(self) -> dict[str, Any]:
        """The model and its input schema, as ``/metadata`` reports them."""
        meta = self.metadata
        return {
            "path": str(self.path),
            "task": meta["task"],
            "learner": meta["learner"],
            "label": meta["label_col"],
            "label_type": meta["label_type"],
            "classes": self.classes if self.task == "classification" else None,
            "probabilities": self.task == "classification"
            and self.learner.probabilistic,
            "sparktrain_version": meta.get("sparktrain_version"),
            "input_schema": [f.describe() for f in self.schema.fields],
            "ignored_fields": sorted(self.schema.ignored),
        }

    def predict(
        self, records: list[dict[str, Any]], *, unseen: str = "score"
    ) -> Predictions:
        """Score JSON-like records (dicts of field to value).

        ``unseen='score'`` scores an unseen category in the slot kept for
        missing and unseen values, as Spark does, and lists it in
        :attr:`Predictions.unseen`; ``'reject'`` raises instead.
        """
        if unseen not in UNSEEN_POLICIES:
            raise ConfigError(
                f"unseen={unseen!r}; expected one of {list(UNSEEN_POLICIES)}"
            )
        if not records:
            raise RequestError(
                [{"row": None, "field": None, "error": "no records to score"}]
            )
        columns, met = self.schema.columns(records, unseen=unseen)
        batch: Batch = dict(columns)
        rows = len(records)
        for stage in self.stages:
            stage.apply(batch, rows)
        prediction, probability = self.learner.predict(batch[self.learner.features])
        if self.task == "regression":
            return Predictions(prediction.tolist(), None, [], met)
        labels = [self._classes[int(i)] for i in prediction]
        return Predictions(labels, probability, self.classes, met)

    def predict_pandas(self, frame: Any) -> Any:
        """Score a pandas DataFrame: ``prediction`` and, for classifiers, one
        ``probability_<class>`` column per class."""
        import pandas as pd

        records = frame.to_dict(orient="records")
        result = self.predict(records)
        out = pd.DataFrame({"prediction": result.predictions}, index=frame.index)
        if result.probabilities is not None:
            for i, name in enumerate(result.classes):
                out[f"probability_{name}"] = result.probabilities[:, i]
        return out


def _model_folder(path: str | Path) -> Path:
    folder = Path(path)
    if folder.name == "model" and (folder.parent / METADATA_FILE).is_file():
        folder = folder.parent
    if not folder.exists():
        raise DataNotFoundError(f"no model folder at {str(path)!r}; check the path")
    if (
        not (folder / METADATA_FILE).is_file()
        or not (folder / "model" / "featurize").is_dir()
    ):
        raise DataError(
            f"{str(path)!r} is not a sparktrain model folder (it needs "
            f"{METADATA_FILE} and model/featurize); pass the folder that "
            "'sparktrain train --out' wrote"
        )
    return folder


def _select(saved: SavedStage, featurize: dict[str, Any]) -> Select:
    """Featurize's SQL step, rebuilt from its column decisions and checked
    against the saved statement, so a hand-edited pipeline is refused."""
    from sparktrain.columns import ColumnDecision
    from sparktrain.featurize import _Plan

    decisions = [ColumnDecision(**d) for d in featurize["sparktrain"]["decisions"]]
    params = {**featurize.get("defaultParamMap", {}), **featurize["paramMap"]}
    plan = _Plan(decisions, _SavedParams(params), {})
    expected = f"SELECT *, {', '.join(plan.selects)} FROM __THIS__"
    if saved.short_name != "SQLTransformer" or saved.param("statement") != expected:
        raise ExportError(
            f"stage {saved.short_name!r} is not the SQL step sparktrain's Featurize "
            "writes for these columns; a hand-edited pipeline has no Spark-free scorer"
        )
    types = {d.name: d.spark_type for d in decisions}
    steps = []
    for helper in plan.numeric:
        source = plan.origin[helper]
        steps.append((_number_step(helper), helper, source, types[source]))
    for helper in plan.numeric_flags:
        flagged = "__st_" + helper[len("__st_miss") :]
        steps.append(("flag", helper, flagged, types[plan.origin[helper]]))
    for helper in [*plan.categorical, *plan.high]:
        source = plan.origin[helper]
        steps.append(("string", helper, source, types[source]))
    for helper in plan.text:
        source = plan.origin[helper]
        steps.append(("text", helper, source, types[source]))
    return Select(steps)


def _number_step(helper: str) -> str:
    """``number`` for ``__st_num3``, the date part for ``__st_dtmonth_3``."""
    if helper.startswith("__st_num"):
        return "number"
    part = helper[len("__st_dt") :].rsplit("_", 1)[0]
    if part not in DATE_PARTS:
        raise ExportError(
            f"date part {part!r} of feature {helper!r} has no Spark-free scorer; "
            f"supported: {', '.join(DATE_PARTS)}"
        )
    return part


class _SavedParams:
    """Featurize's saved params, read the way ``_Plan`` reads them."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def getOrDefault(self, name: str) -> Any:
        return self.params[name]


def _check_output(saved: SavedStage) -> None:
    statement = saved.param("statement") or ""
    if saved.short_name != "SQLTransformer" or not _OUTPUT_STATEMENT.fullmatch(
        statement
    ):
        raise ExportError(
            f"last stage {saved.short_name!r} is not the decoding step sparktrain "
            "writes; a hand-edited pipeline has no Spark-free scorer"
        )


def _unsupported(saved: SavedStage) -> ExportError:
    from sparktrain.serving._learners import SUPPORTED

    return ExportError(
        f"stage {saved.short_name!r} has no Spark-free scorer; supported: "
        f"{', '.join([*STAGES, *SUPPORTED])}. Score this model on Spark with "
        "'sparktrain predict'"
    )


def _decode(text: str, label_type: str) -> Any:
    if label_type == "boolean":
        return text == "true"
    if label_type in ("tinyint", "smallint", "int", "bigint"):
        return int(text)
    if label_type in ("float", "double") or label_type.startswith("decimal"):
        return float(text)
    return text
