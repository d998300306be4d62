"""Models kept for the life of a Python worker, loaded once on first use.

Spark reuses its Python workers across tasks (``spark.python.worker.reuse``),
so a model held here is loaded once per worker process, not per batch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)

_models: dict[Hashable, Any] = {}
_lock = threading.Lock()
loads = 0  # how many models this process loaded; the tests read it


def model(key: Hashable, load: Callable[[], Any]) -> Any:
    """The model stored under ``key``, loading it with ``load`` the first time."""
    global loads
    found = _models.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _models:
            offline()
            started = time.perf_counter()
            _models[key] = load()
            loads += 1
            logger.info(
                "loaded %s in %.1fs (pid %s)",
                key,
                time.perf_counter() - started,
                os.getpid(),
            )
        return _models[key]


def offline() -> None:
    """Keep Hugging Face libraries from reaching for the network."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
