"""A model registry on MLflow: names, versions and aliases for model folders.

``register`` copies a model folder into an MLflow run's artifacts and makes
it a new version of a registered model; aliases (``champion``,
``challenger``) then point at versions. ``models:/NAME@ALIAS`` and
``models:/NAME/VERSION`` resolve to a local folder that every command takes
in place of a path. The store is the one AutoML tracks to: SQLite in the
working folder unless ``MLFLOW_TRACKING_URI`` or ``tracking_uri`` says
otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sparktrain._extras import require
from sparktrain.serving._errors import RegistryError
from sparktrain.serving._scorer import METADATA_FILE, _model_folder

logger = logging.getLogger(__name__)

EXPERIMENT = "sparktrain-models"
ARTIFACT_PATH = "sparktrain-model"
_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))")


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``mlflow.db`` in the working folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{Path('mlflow.db').resolve()}"
    )


def is_model_uri(text: str | os.PathLike) -> bool:
    return str(text).startswith("models:/")


def _client(tracking_uri: str | None):
    mlflow = require("mlflow", extra="automl", purpose="The model registry")
    uri = tracking_uri or default_uri()
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def register(
    folder: str | Path, *, name: str, tracking_uri: str | None = None
) -> dict[str, Any]:
    """Register the model folder ``folder`` as a new version of ``name``.

    Returns the name, the new version, its run and where its files are.
    """
    model = _model_folder(folder)
    metadata = json.loads((model / METADATA_FILE).read_text())
    client, uri = _client(tracking_uri)
    run_id = _log_run(client, uri, model, metadata)
    if not client.search_registered_models(filter_string=f"name = '{_quote(name)}'"):
        client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/{ARTIFACT_PATH}"
    version = client.create_model_version(
        name,
        source,
        run_id=run_id,
        tags={"learner": metadata["learner"], "task": metadata["task"]},
        description=f"{metadata['learner']} predicting {metadata['label_col']!r}",
    )
    logger.info("registered %s as %s version %s", model, name, version.version)
    return {
        "name": name,
        "version": int(version.version),
        "run_id": run_id,
        "source": source,
    }


def _log_run(client, uri: str, model: Path, metadata: dict[str, Any]) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(EXPERIMENT, artifact_location=_artifacts(uri))
    )
    run = client.create_run(experiment_id, run_name=f"register-{model.name}")
    run_id = run.info.run_id
    for key in ("task", "learner", "label_col", "label_type"):
        client.log_param(run_id, key, metadata[key])
    for key, value in _holdout(model).items():
        client.log_metric(run_id, key, value)
    client.log_artifacts(run_id, str(model), ARTIFACT_PATH)
    client.set_terminated(run_id)
    return run_id


def _holdout(model: Path) -> dict[str, float]:
    metrics = model / "metrics.json"
    if not metrics.is_file():
        return {}
    scores = json.loads(metrics.read_text()).get("holdout", {})
    return {k: float(v) for k, v in scores.items() if isinstance(v, int | float)}


def _artifacts(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    return None


def list_models(*, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Every registered model: its latest version and its aliases."""
    client, _ = _client(tracking_uri)
    found = []
    for model in client.search_registered_models(order_by=["name ASC"]):
        versions = client.search_model_versions(f"name = '{_quote(model.name)}'")
        found.append(
            {
                "name": model.name,
                "latest_version": max((int(v.version) for v in versions), default=None),
                "versions": len(versions),
                "aliases": {a: int(v) for a, v in (model.aliases or {}).items()},
            }
        )
    return found


def show(name: str, *, tracking_uri: str | None = None) -> dict[str, Any]:
    """One registered model: its aliases and every version."""
    client, _ = _client(tracking_uri)
    model = _registered(client, name)
    aliases = {a: int(v) for a, v in (model.aliases or {}).items()}
    versions = sorted(
        client.search_model_versions(f"name = '{_quote(name)}'"),
        key=lambda v: int(v.version),
    )
    return {
        "name": name,
        "aliases": aliases,
        "versions": [
            {
                "version": int(v.version),
                "aliases": sorted(a for a, n in aliases.items() if n == int(v.version)),
                "created": datetime.fromtimestamp(
                    v.creation_timestamp / 1000, UTC
                ).isoformat(timespec="seconds"),
                "learner": v.tags.get("learner"),
                "task": v.tags.get("task"),
                "run_id": v.run_id,
                "source": v.source,
            }
            for v in versions
        ],
    }


def promote(
    name: str, version: int, *, alias: str, tracking_uri: str | None = None
) -> int | None:
    """Point ``alias`` at ``version`` of ``name``; returns the version it
    pointed at before, if any."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", alias):
        raise RegistryError(
            f"alias {alias!r} is not a valid alias; use letters, digits, '_' and "
            "'-', starting with a letter (for example champion)"
        )
    client, _ = _client(tracking_uri)
    model = _registered(client, name)
    _version(client, name, version)
    before = (model.aliases or {}).get(alias)
    client.set_registered_model_alias(name, alias, str(version))
    return int(before) if before is not None else None


def resolve(
    uri: str, *, tracking_uri: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """The local model folder behind ``models:/NAME@ALIAS`` or
    ``models:/NAME/VERSION``, and the name and version it is."""
    match = _URI.fullmatch(uri)
    if match is None:
        raise RegistryError(
            f"model URI {uri!r} is not models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    client, uri_used = _client(tracking_uri)
    name = match["name"]
    model = _registered(client, name)
    if match["alias"]:
        aliases = model.aliases or {}
        if match["alias"] not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise RegistryError(
                f"registered model {name!r} has no alias {match['alias']!r} (aliases: "
                f"{known}); set one with 'sparktrain models promote {name} VERSION "
                f"--alias {match['alias']}'"
            )
        version = int(aliases[match["alias"]])
    else:
        version = int(match["version"])
    _version(client, name, version)
    folder = _local(client, name, version, uri_used)
    return folder, {"name": name, "version": version, "alias": match["alias"]}


def _local(client, name: str, version: int, tracking_uri: str) -> Path:
    source = client.get_model_version_download_uri(name, str(version))
    parsed = urlparse(source)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source, tracking_uri=tracking_uri
        )
    )


def _registered(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        names = [m.name for m in client.search_registered_models()]
        raise RegistryError(
            f"no registered model {name!r} (registered: {', '.join(names) or 'none'}); "
            "register one with 'sparktrain models register RUN_FOLDER --name NAME'"
        ) from exc


def _version(client, name: str, version: int):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        known = sorted(
            int(v.version)
            for v in client.search_model_versions(f"name = '{_quote(name)}'")
        )
        raise RegistryError(
            f"registered model {name!r} has no version {version} (versions: "
            f"{', '.join(map(str, known)) or 'none'})"
        ) from exc


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
