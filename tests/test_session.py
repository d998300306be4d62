import sys
import time

import pandas as pd
import pytest
from pyspark.sql.functions import pandas_udf

import sparktrain
from sparktrain import config
from sparktrain.cluster import free_port
from sparktrain.errors import ClusterError, ConfigError
from sparktrain.session import check_reachable, spark_conf


def test_embedded_session_defaults(isolated_config):
    conf = spark_conf(config.resolve())
    assert conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert "log4j2.properties" in conf["spark.driver.extraJavaOptions"]


def test_user_conf_is_applied_last(isolated_config):
    settings = config.resolve(conf={"spark.ui.enabled": "true"})
    assert spark_conf(settings)["spark.ui.enabled"] == "true"


def test_session_returns_the_running_one(spark):
    assert sparktrain.session() is spark


def test_asking_for_another_master_in_process_is_refused(spark):
    with pytest.raises(ConfigError, match=r"already running.*spark.stop\(\)"):
        sparktrain.session(master="local[1]")


def test_python_workers_run_this_interpreter(spark):
    @pandas_udf("string")
    def interpreter(values: pd.Series) -> pd.Series:
        return pd.Series([sys.executable] * len(values))

    seen = spark.range(2).select(interpreter("id").alias("python")).first()["python"]
    assert seen == sys.executable


def test_info_reports_versions_master_cores_and_memory(spark):
    details = sparktrain.info(spark)
    assert details["spark"].startswith("4.")
    assert details["java"].startswith(("17", "21"))
    assert details["master"] == "local[2]"
    assert details["cores"] == 2
    assert details["driver_memory"]


def test_unreachable_master_fails_fast_naming_the_url():
    url = f"spark://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ClusterError, match=rf"nothing answered at {url}"):
        check_reachable(url)
    assert time.monotonic() - started < 10


def test_unreachable_connect_server_fails_fast():
    url = f"sc://127.0.0.1:{free_port()}"
    with pytest.raises(ClusterError, match="nothing answered at sc://"):
        sparktrain.session(remote=url)


@pytest.mark.parametrize(
    ("url", "error", "message"),
    [
        ("yarn", ConfigError, "HADOOP_CONF_DIR or YARN_CONF_DIR"),
        ("mesos://h:5050", ConfigError, "is not a URL sparktrain knows"),
        ("spark://h:port", ConfigError, "has port 'port'"),
    ],
)
def test_master_url_errors(monkeypatch, url, error, message):
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    with pytest.raises(error, match=message):
        check_reachable(url)
