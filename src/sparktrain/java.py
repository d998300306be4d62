"""Finding Java and checking that it can run Spark."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sparktrain.errors import JavaError

MINIMUM_JAVA = 17
INSTALL_HINT = (
    "install Java 17 (Debian/Ubuntu: sudo apt-get install -y "
    "openjdk-17-jre-headless; macOS: brew install openjdk@17), or set "
    "JAVA_HOME to a Java 17 or 21 installation"
)
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


@dataclass(frozen=True)
class JavaInfo:
    """The Java that Spark will start, and its feature version."""

    executable: Path
    version: int
    version_text: str


def find_java() -> JavaInfo:
    """Locate the ``java`` Spark will use and check it is new enough.

    Spark uses ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set, else the
    first ``java`` on ``PATH``; this looks in the same places.

    Raises
    ------
    JavaError
        When no Java is found, it does not run, or it is older than 17.
    """
    executable = _locate()
    text = _version_output(executable)
    match = _VERSION.search(text)
    if match is None:
        raise JavaError(
            f"could not read a version from '{executable} -version', which "
            f"printed: {text.strip()[:200]!r}; {INSTALL_HINT}"
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" means Java 8
        major = int(match.group(2))
    if major < MINIMUM_JAVA:
        raise JavaError(
            f"Spark 4 needs Java {MINIMUM_JAVA} or newer, but {executable} is "
            f"Java {major}; {INSTALL_HINT}"
        )
    return JavaInfo(executable=executable, version=major, version_text=match.group(0))


def _locate() -> Path:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if not os.access(candidate, os.X_OK):
            raise JavaError(
                f"JAVA_HOME={java_home!r} has no executable bin/java; "
                f"point JAVA_HOME at a Java installation or unset it. {INSTALL_HINT}"
            )
        return candidate
    found = shutil.which("java")
    if found is None:
        raise JavaError(
            f"Spark needs Java and none was found (JAVA_HOME is unset and there "
            f"is no 'java' on PATH); {INSTALL_HINT}"
        )
    return Path(found)


def _version_output(executable: Path) -> str:
    try:
        done = subprocess.run(
            [str(executable), "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaError(
            f"could not run '{executable} -version' ({exc}); {INSTALL_HINT}"
        ) from exc
    return done.stderr + done.stdout
