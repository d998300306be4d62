"""Save and load for Python stages that hold fitted Spark stages inside.

A stage's Params and extra JSON go to ``path/metadata`` the way pyspark's own
Python stages write them; each inner stage goes to ``path/<name>`` with its own
writer, so the folder loads back with the stage's ``load``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pyspark.ml.util import (
    DefaultParamsReader,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)


class CompositeWritable(MLWritable):
    """Mixin: implement ``_state`` and ``_from_state`` to get save/load."""

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """JSON-able extra metadata, and the inner pipeline models by name."""
        raise NotImplementedError

    def _restore(self, extra: dict[str, Any], inner: dict[str, Any]) -> None:
        raise NotImplementedError

    def write(self) -> MLWriter:
        return _CompositeWriter(self)


class CompositeReadable(MLReadable):
    @classmethod
    def read(cls) -> MLReader:
        return _CompositeReader(cls)


class _CompositeWriter(MLWriter):
    def __init__(self, instance: CompositeWritable) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        extra, inner = self.instance._state()
        extra = {**extra, "inner": sorted(inner)}
        # Params holding objects (a learner) are saved as inner stages.
        params = {
            p.name: value
            for p, value in self.instance._paramMap.items()
            if _is_json(value)
        }
        DefaultParamsWriter.saveMetadata(
            self.instance,
            path,
            self.sparkSession,
            extraMetadata={"sparktrain": extra},
            paramMap=params,
        )
        for name, stage in inner.items():  # any pyspark.ml stage
            stage.write().overwrite().save(os.path.join(path, name))


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


class _CompositeReader(MLReader):
    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> Any:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        instance = self.cls()
        DefaultParamsReader.getAndSetParams(instance, metadata)
        instance._resetUid(metadata["uid"])
        extra = metadata["sparktrain"]
        inner = {
            name: DefaultParamsReader.loadParamsInstance(
                os.path.join(path, name), self.sparkSession
            )
            for name in extra["inner"]
        }
        instance._restore(extra, inner)
        return instance
