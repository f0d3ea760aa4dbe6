#!/usr/bin/env bash
# Everything local mode and the tests need, idempotent: a venv with the pinned Python packages, the KCL
# MultiLangDaemon jars (Maven, jars/pom.xml), and the project itself. Re-runs are fast (stamp files).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
M2_REPO=${M2_REPO:-$HOME/.m2/repository}

need() { command -v "$1" >/dev/null || { echo "setup: '$1' is required ($2)" >&2; exit 1; }; }
need "$PYTHON" "Python 3.11+"
need java "Java 17 runs the KCL MultiLangDaemon"
need mvn "Maven fetches the KCL jars from Maven Central"

stamp() { cat "$@" | sha256sum | cut -c1-16; }

# 1. KCL jars: the daemon and its dependency tree into jars/ (and ~/.m2, where amazon-kclpy's installer finds them)
jar_stamp=$(stamp jars/pom.xml)
if [ "$(cat jars/.stamp 2>/dev/null)" != "$jar_stamp" ] || ! ls jars/amazon-kinesis-client-multilang-*.jar >/dev/null 2>&1; then
  echo "setup: fetching KCL jars with Maven (jars/pom.xml)"
  rm -f jars/*.jar
  (cd jars && mvn -B -q -Dmaven.repo.local="$M2_REPO" dependency:copy-dependencies)
  echo "$jar_stamp" > jars/.stamp
fi

# 2. Python: a venv with the pinned packages
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
py_stamp=$(stamp requirements.txt requirements-dev.txt pyproject.toml jars/pom.xml)
if [ "$(cat "$VENV/.cali-stamp" 2>/dev/null)" != "$py_stamp" ]; then
  echo "setup: installing pinned Python packages into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # amazon-kclpy's setup.py downloads the jars of its pom.xml at build time; point it at the Maven repository
  # that step 1 filled (same versions: jars/pom.xml is amazon-kclpy's own dependency list).
  KCL_MVN_REPO_SEARCH_URL="file://$M2_REPO/" "$VENV/bin/pip" install -q -r requirements-dev.txt
  "$VENV/bin/pip" install -q --no-deps -e .
  echo "$py_stamp" > "$VENV/.cali-stamp"
fi
echo "setup: ready ($("$VENV/bin/python" --version), $(java -version 2>&1 | head -1), $(ls jars/*.jar | wc -l) jars)"
