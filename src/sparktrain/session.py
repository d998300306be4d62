"""The one place that creates or returns sparktrain's SparkSession."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from sparktrain import config
from sparktrain._version import __version__
from sparktrain.errors import ClusterError, ConfigError
from sparktrain.java import find_java

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
_LOG4J = Path(__file__).with_name("log4j2.properties")


def session(
    *,
    master: str | None = None,
    remote: str | None = None,
    app_name: str | None = None,
    driver_memory: str | None = None,
    ui: bool | None = None,
    log_level: str | None = None,
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """Create or return the SparkSession that sparktrain runs on.

    With no arguments this is an embedded Spark on all local cores
    (``local[*]``), with the web UI off, quiet logs, Arrow transfers on and
    Python workers running the interpreter that called it. Each argument
    overrides the matching ``SPARKTRAIN_*`` environment variable and the
    config file (see :mod:`sparktrain.config`).

    Parameters
    ----------
    master : str, optional
        ``local[N]``, ``spark://host:port``, ``yarn`` or ``k8s://https://host``.
    remote : str, optional
        A Spark Connect URL such as ``sc://host:15002``; exclusive with master.
    app_name, driver_memory, ui, log_level : optional
        Application name, driver JVM heap (``"4g"``), whether to serve the
        web UI, and Spark's log level.
    conf : dict, optional
        Extra Spark settings, applied last.

    Returns
    -------
    pyspark.sql.SparkSession

    Examples
    --------
    >>> import sparktrain
    >>> spark = sparktrain.session()
    >>> spark.range(3).count()
    3
    """
    settings = config.resolve(
        master=master,
        remote=remote,
        app_name=app_name,
        driver_memory=driver_memory,
        ui=ui,
        log_level=log_level,
        conf=conf,
    )
    if settings.remote:
        return _connect_session(settings)
    return _classic_session(settings, master_given=master is not None)


def _connect_session(settings: config.Settings) -> SparkSession:
    assert settings.remote is not None
    check_reachable(settings.remote)
    logger.info("connecting to Spark Connect at %s", settings.remote)
    builder = SparkSession.builder.remote(settings.remote).appName(settings.app_name)
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _classic_session(settings: config.Settings, *, master_given: bool) -> SparkSession:
    assert settings.master is not None
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if master_given and running != settings.master:
            raise ConfigError(
                f"a SparkSession with master {running!r} is already running in this "
                f"process, so master={settings.master!r} cannot take effect; call "
                "spark.stop() first, or run in a new process"
            )
        return active

    find_java()
    check_reachable(settings.master)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable

    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    logger.info("starting Spark with master %s", settings.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.log_level)
    return spark


def spark_conf(settings: config.Settings) -> dict[str, str]:
    """The Spark settings a classic session starts with."""
    conf = {
        "spark.ui.enabled": str(settings.ui).lower(),
        "spark.ui.showConsoleProgress": str(settings.ui).lower(),
        "spark.driver.memory": settings.driver_memory,
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Malformed-row accounting must not depend on which columns a query reads.
        "spark.sql.csv.parser.columnPruning.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": (
            f"-Dlog4j2.configurationFile={_LOG4J.as_uri()}"
        ),
    }
    if (settings.master or "").startswith("local"):
        conf["spark.sql.shuffle.partitions"] = str(max(2 * (os.cpu_count() or 1), 4))
    conf.update(settings.conf)
    return conf


def check_reachable(url: str) -> None:
    """Fail fast when a master or Connect URL points at nothing listening.

    ``local`` masters need no check; ``yarn`` needs ``HADOOP_CONF_DIR`` or
    ``YARN_CONF_DIR``; ``spark://``, ``k8s://`` and ``sc://`` URLs must accept a
    TCP connection within a few seconds.
    """
    if url.startswith("local"):
        return
    if url == "yarn":
        if not (os.environ.get("HADOOP_CONF_DIR") or os.environ.get("YARN_CONF_DIR")):
            raise ConfigError(
                "master='yarn' needs HADOOP_CONF_DIR or YARN_CONF_DIR to point at "
                "the cluster's configuration folder; set one of them"
            )
        return
    endpoints = _endpoints(url)
    for host, port in endpoints:
        if _accepts(host, port):
            return
    tried = ", ".join(f"{h}:{p}" for h, p in endpoints)
    raise ClusterError(
        f"nothing answered at {url} (tried {tried} for {CONNECT_TIMEOUT_S:g}s); "
        "check the URL and that the server is running (for a local try: "
        "sparktrain cluster start)"
    )


def _endpoints(url: str) -> list[tuple[str, int]]:
    scheme, _, rest = url.partition("://")
    if scheme == "spark":
        hosts = rest.split("/")[0].split(",")
        return [_host_port(h, 7077, url) for h in hosts]
    if scheme == "sc":
        return [_host_port(rest.split("/")[0].split(";")[0], 15002, url)]
    if scheme == "k8s":
        inner = urlparse(rest if "://" in rest else f"https://{rest}")
        default = 443 if inner.scheme == "https" else 80
        return [(inner.hostname or "", inner.port or default)]
    raise ConfigError(
        f"master/remote {url!r} is not a URL sparktrain knows; expected local[N], "
        "spark://host:port, yarn, k8s://https://host:port or sc://host:port"
    )


def _host_port(text: str, default: int, url: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    try:
        return host.strip("[]"), int(port) if port else default
    except ValueError as exc:
        raise ConfigError(f"{url!r} has port {port!r}, which is not a number") from exc


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def info(spark: SparkSession) -> dict[str, Any]:
    """What is in effect for ``spark``: versions, master, cores and memory."""
    details: dict[str, Any] = {
        "sparktrain": __version__,
        "spark": spark.version,
        "python": sys.executable,
    }
    conf = spark.conf
    if _is_connect(spark):
        details["connection"] = "Spark Connect"
        details["server_master"] = conf.get("spark.master", None) or "(not shown)"
    else:
        context = spark.sparkContext
        jvm = context._jvm
        details["java"] = jvm.System.getProperty("java.version")
        details["master"] = context.master
        details["cores"] = context.defaultParallelism
        details["driver_memory"] = conf.get("spark.driver.memory", "1g")
        details["ui"] = context.uiWebUrl or "off"
    path = config.config_path()
    details["config_file"] = str(path) if path else "(none)"
    return details


def _is_connect(spark: SparkSession) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")
