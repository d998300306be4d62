"""Session settings resolved from arguments, environment and a config file.

Precedence, highest first: explicit arguments, ``SPARKTRAIN_*`` environment
variables, the config file, built-in defaults. The config file is the first
that exists of ``$SPARKTRAIN_CONFIG``, ``./sparktrain.toml`` and
``~/.config/sparktrain/config.toml``; its ``[session]`` table holds the same
keys as :class:`Settings`, and ``[session.conf]`` holds raw Spark settings::

    [session]
    master = "spark://127.0.0.1:7077"
    driver_memory = "4g"

    [session.conf]
    "spark.sql.shuffle.partitions" = "16"
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparktrain.errors import ConfigError

ENV_PREFIX = "SPARKTRAIN_"
_KEYS = ("master", "remote", "app_name", "driver_memory", "ui", "log_level")
_LOG_LEVELS = {"ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN"}
_MEMORY = re.compile(r"^\d+[kmgt]?$", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """What :func:`sparktrain.session` will use, and where each value came from."""

    master: str | None = "local[*]"
    remote: str | None = None
    app_name: str = "sparktrain"
    driver_memory: str = ""
    ui: bool = False
    log_level: str = "WARN"
    conf: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def default_driver_memory() -> str:
    """A quarter of the machine's memory, between 1 GiB and 8 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "2g"
    gib = total // 4 // 2**30
    return f"{min(max(gib, 1), 8)}g"


def config_path() -> Path | None:
    """The config file in effect, or None when there is none."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{ENV_PREFIX}CONFIG points to {explicit!r}, which is not a file; "
                "create it or unset the variable"
            )
        return path
    for candidate in (
        Path.cwd() / "sparktrain.toml",
        Path.home() / ".config" / "sparktrain" / "config.toml",
    ):
        if candidate.is_file():
            return candidate
    return None


def resolve(**arguments: Any) -> Settings:
    """Merge arguments, environment and config file into :class:`Settings`.

    Arguments whose value is None are treated as not given.
    """
    unknown = set(arguments) - set(_KEYS) - {"conf"}
    if unknown:
        raise ConfigError(
            f"unknown session setting(s) {sorted(unknown)}; "
            f"expected some of {list(_KEYS)}"
        )

    values: dict[str, Any] = {"driver_memory": default_driver_memory()}
    sources = dict.fromkeys(_KEYS, "default")
    conf: dict[str, str] = {}

    path = config_path()
    if path is not None:
        file_values, file_conf = _read_file(path)
        _layer(values, sources, file_values, f"config file {path}")
        conf.update(file_conf)

    env_values = {
        key: os.environ[ENV_PREFIX + key.upper()]
        for key in _KEYS
        if os.environ.get(ENV_PREFIX + key.upper())
    }
    _layer(values, sources, env_values, "environment")

    given = {k: v for k, v in arguments.items() if v is not None and k != "conf"}
    _layer(values, sources, given, "argument")
    conf.update(arguments.get("conf") or {})

    _settle_master_or_remote(values, sources)
    return Settings(**_validated(values), conf=conf, sources=sources)


def _rank(source: str) -> int:
    order = ("default", "config file", "environment", "argument")
    return next(i for i, name in enumerate(order) if source.startswith(name))


def _settle_master_or_remote(values: dict, sources: dict) -> None:
    """Keep whichever of master and remote comes from the stronger source."""
    if not values.get("remote"):
        values["remote"] = None
        values.setdefault("master", "local[*]")
        return
    if "master" not in values:
        sources["master"] = sources["remote"]
        values["master"] = None
        return
    master_rank, remote_rank = _rank(sources["master"]), _rank(sources["remote"])
    if master_rank == remote_rank:
        raise ConfigError(
            f"both master={values['master']!r} and remote={values['remote']!r} "
            f"are set by the {sources['remote']}; a session is either classic "
            "(master) or Spark Connect (remote), so set only one"
        )
    if master_rank > remote_rank:
        values["remote"] = None
    else:
        values["master"] = None
        sources["master"] = sources["remote"]


def _layer(values: dict, sources: dict, new: dict, source: str) -> None:
    for key, value in new.items():
        values[key] = value
        sources[key] = source


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc

    section = dict(document.get("session", {}))
    conf = {str(k): str(v) for k, v in section.pop("conf", {}).items()}
    unknown = set(section) - set(_KEYS)
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown key(s) {sorted(unknown)} in [session]; "
            f"expected some of {list(_KEYS)}"
        )
    return section, conf


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    out["ui"] = _as_bool(out.get("ui", False))

    level = str(out.get("log_level", "WARN")).upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(
            f"log_level={out['log_level']!r} is not a Spark log level; "
            f"expected one of {sorted(_LOG_LEVELS)}"
        )
    out["log_level"] = level

    memory = str(out["driver_memory"])
    if not _MEMORY.match(memory):
        raise ConfigError(
            f"driver_memory={memory!r} is not a JVM memory size; "
            "expected a number with an optional unit, for example '4g' or '512m'"
        )
    return out


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"ui={value!r} is not a yes/no value; expected true or false")
