"""An AutoML run as ``sparktrain train --budget`` does it: fit, save, track.

The run folder holds ``model/`` (the :class:`AutoMLModel`, loadable by
:func:`sparktrain.load_model` and by ``AutoMLModel.load``), ``sparktrain.json``
(what was decided for each column), ``metrics.json`` (validation score,
guardrails, where it ran), ``leaderboard.json``, and ``automl/`` (the Optuna
study and predictions a resumed run continues from).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

from sparktrain.automl.estimator import AutoML, AutoMLModel
from sparktrain.automl.tracking import log_model
from sparktrain.errors import ConfigError
from sparktrain.run import model_metadata

STATE_FOLDER = "automl"
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"5m"``, ``"1.5h"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not match:
        raise ConfigError(
            f"--budget {text!r} is not a duration; write seconds (300), or a "
            "number with s, m or h (90s, 5m, 1h)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def run(
    frame: DataFrame,
    *,
    label: str,
    out_dir: str | Path,
    resume: bool = False,
    on_trial=None,
    **params: Any,
) -> AutoMLModel:
    """Fit :class:`AutoML` on ``frame`` and write the run folder ``out_dir``.

    ``params`` are AutoML Params by name (``timeBudget=300``, ``metric=...``).
    """
    out = Path(out_dir).resolve()
    if resume and not (out / STATE_FOLDER / "optuna.db").is_file():
        raise ConfigError(
            f"--resume {str(out_dir)!r}: that folder holds no AutoML run to "
            "continue; pass the --out folder of an earlier 'sparktrain train "
            "--budget' run"
        )
    automl = AutoML(
        labelCol=label, runDir=str(out / STATE_FOLDER), resume=resume, **params
    )
    automl.setOnTrial(on_trial)
    model = automl.fit(frame)
    save(model, out)
    return model


def save(model: AutoMLModel, out: Path) -> Path:
    """Write the model and what the run found under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.write().overwrite().save(str(out / "model"))
    summary = model.summary
    info = model.info
    metadata = model_metadata(model)
    metrics = {
        "task": info["task"],
        "label": info["labelCol"],
        "learner": info["learner"],
        "metric": summary["metric"],
        "validation_score": summary["best"]["score"],
        "ensemble": summary["ensemble"],
        "best": summary["best"],
        "validation": summary["validation"],
        "execution": summary["execution"],
        "guardrails": summary["guardrails"],
        "rows": info["rows"],
        "trials": len(summary["leaderboard"]),
        "mlflow_run_id": summary["mlflow_run_id"],
        "tracking_uri": summary["tracking_uri"],
        "seconds": summary["seconds"],
    }
    (out / "sparktrain.json").write_text(json.dumps(metadata, indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    (out / "leaderboard.json").write_text(
        json.dumps(summary["leaderboard"], indent=2, default=str)
    )
    if summary.get("mlflow_run_id"):
        log_model(summary["tracking_uri"], summary["mlflow_run_id"], out / "model")
    return out
