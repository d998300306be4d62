import stat

import pytest

from sparktrain.errors import JavaError
from sparktrain.java import find_java


def _fake_java(folder, version_line):
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return folder


def test_the_machine_java_is_found_and_new_enough():
    found = find_java()
    assert found.version >= 17


def test_missing_java_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaError, match=r"no 'java' on PATH.*openjdk-17-jre-headless"):
        find_java()


def test_old_java_is_refused_with_its_version(monkeypatch, tmp_path):
    home = _fake_java(tmp_path / "jdk8", 'openjdk version "1.8.0_392"')
    monkeypatch.setenv("JAVA_HOME", str(home))
    with pytest.raises(JavaError, match=r"is Java 8; install Java 17"):
        find_java()


def test_java_11_is_refused(monkeypatch, tmp_path):
    home = _fake_java(tmp_path / "jdk11", 'openjdk version "11.0.21" 2023-10-17')
    monkeypatch.setenv("JAVA_HOME", str(home))
    with pytest.raises(JavaError, match=r"needs Java 17 or newer.*Java 11"):
        find_java()


def test_java_21_is_accepted(monkeypatch, tmp_path):
    home = _fake_java(tmp_path / "jdk21", 'openjdk version "21.0.2" 2024-01-16')
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert find_java().version == 21


def test_java_home_without_java(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(JavaError, match=r"JAVA_HOME=.* has no executable bin/java"):
        find_java()
