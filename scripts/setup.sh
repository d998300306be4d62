#!/usr/bin/env bash
# Set up sparktrain on a fresh machine that has Python 3.11:
#   - Java 17 from the system packages when no Java 17+ is found,
#   - a virtual environment in .venv,
#   - sparktrain installed into it in editable mode, with the extras given
#     as the first argument (for example: scripts/setup.sh dev).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
extras=${1:-}

java_major() {
    local java=java
    [ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"
    command -v "$java" >/dev/null 2>&1 || { echo 0; return; }
    "$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -1
}

if [ "$(java_major)" -lt 17 ] 2>/dev/null || [ -z "$(java_major)" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "setup: installing Java 17 (openjdk-17-jre-headless)"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless
    else
        echo "setup: Spark needs Java 17 or 21; install it (macOS: brew install" \
             "openjdk@17) or set JAVA_HOME, then run this again" >&2
        exit 1
    fi
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
echo "setup: done ($(.venv/bin/sparktrain --version), Java $(java_major))"
