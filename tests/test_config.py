import pytest

from sparktrain import config
from sparktrain.errors import ConfigError


def test_defaults_without_any_source(isolated_config):
    settings = config.resolve()
    assert settings.master == "local[*]"
    assert settings.remote is None
    assert settings.ui is False
    assert settings.log_level == "WARN"
    assert settings.driver_memory.endswith("g")
    assert settings.sources["master"] == "default"


def test_argument_beats_environment_beats_file(isolated_config, monkeypatch):
    (isolated_config / "sparktrain.toml").write_text(
        '[session]\nmaster = "local[1]"\napp_name = "from-file"\n'
        'log_level = "error"\n[session.conf]\n"spark.x" = 3\n'
    )
    monkeypatch.setenv("SPARKTRAIN_MASTER", "local[2]")
    monkeypatch.setenv("SPARKTRAIN_APP_NAME", "from-env")

    settings = config.resolve(app_name="from-arg")

    assert settings.app_name == "from-arg"
    assert settings.master == "local[2]"
    assert settings.log_level == "ERROR"
    assert settings.conf == {"spark.x": "3"}
    assert settings.sources["app_name"] == "argument"
    assert settings.sources["master"] == "environment"
    assert settings.sources["log_level"].startswith("config file")


def test_explicit_config_file_from_environment(isolated_config, monkeypatch):
    path = isolated_config / "elsewhere.toml"
    path.write_text('[session]\ndriver_memory = "3g"\nui = true\n')
    monkeypatch.setenv("SPARKTRAIN_CONFIG", str(path))
    settings = config.resolve()
    assert settings.driver_memory == "3g"
    assert settings.ui is True


def test_remote_from_stronger_source_wins_over_master(isolated_config, monkeypatch):
    (isolated_config / "sparktrain.toml").write_text(
        '[session]\nmaster = "spark://h:7077"\n'
    )
    monkeypatch.setenv("SPARKTRAIN_REMOTE", "sc://h:15002")
    settings = config.resolve()
    assert settings.remote == "sc://h:15002"
    assert settings.master is None


def test_master_argument_beats_remote_from_environment(isolated_config, monkeypatch):
    monkeypatch.setenv("SPARKTRAIN_REMOTE", "sc://h:15002")
    settings = config.resolve(master="local[1]")
    assert settings.master == "local[1]"
    assert settings.remote is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"log_level": "LOUD"}, r"log_level='LOUD' is not a Spark log level"),
        ({"driver_memory": "lots"}, r"driver_memory='lots' is not a JVM memory size"),
        ({"ui": "maybe"}, r"ui='maybe' is not a yes/no value"),
        ({"master": "local[1]", "remote": "sc://h"}, r"both master='local\[1\]'"),
        ({"colour": "red"}, r"unknown session setting\(s\) \['colour'\]"),
    ],
)
def test_bad_settings_are_named(isolated_config, arguments, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve(**arguments)


def test_config_file_errors(isolated_config, monkeypatch):
    (isolated_config / "sparktrain.toml").write_text("[session]\nmastr = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['mastr'\]"):
        config.resolve()

    (isolated_config / "sparktrain.toml").write_text("[session\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        config.resolve()

    monkeypatch.setenv("SPARKTRAIN_CONFIG", str(isolated_config / "missing.toml"))
    with pytest.raises(
        ConfigError, match=r"SPARKTRAIN_CONFIG points to .*missing\.toml"
    ):
        config.resolve()
