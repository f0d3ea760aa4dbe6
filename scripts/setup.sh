#!/usr/bin/env bash
# Set-up, idempotent: the KCL MultiLangDaemon jars (Maven, jars/pom.xml) and CALI's launcher of it (kcl-launcher/),
# a venv with the pinned Python packages, and the project itself. `scripts/setup.sh run` installs what running needs
# (requirements.txt); `scripts/setup.sh test` adds the test toolchain (requirements-dev.txt). Re-runs are fast (stamp
# files). Says what it does while it does it, and what it did at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-run}
case "$MODE" in
  run) REQUIREMENTS=requirements.txt ;;
  test) REQUIREMENTS=requirements-dev.txt ;;
  *) echo "setup: unknown mode '$MODE' (run or test)" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
VENV=.venv
M2_REPO=${M2_REPO:-$HOME/.m2/repository}
started=$SECONDS
did=()

# One sentence and exit 2 for what the machine lacks (as `make run` does for bad configuration).
need() { command -v "$1" >/dev/null || { echo "setup: '$1' is not on PATH: $2" >&2; exit 2; }; }
need "$PYTHON" "CALI needs Python 3.11+ (or set PYTHON=/path/to/python3.11)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: $("$PYTHON" --version) is too old: CALI needs Python 3.11+ (set PYTHON=...)" >&2; exit 2; }
need java "the KCL MultiLangDaemon runs on Java 17 (e.g. apt-get install openjdk-17-jdk-headless)"
need javac "CALI's KCL launcher (kcl-launcher/) needs a Java 17 JDK (e.g. apt-get install openjdk-17-jdk-headless)"
need mvn "Maven fetches the KCL jars from Maven Central (e.g. apt-get install maven)"

stamp() { cat "$@" | sha256sum | cut -c1-16; }
step() { echo "setup [$1/5] $2"; }

# pip's own lines, one per package, instead of pages of resolver output: progress that fits a terminal.
# Everything pip says is kept in $VENV/pip.log.
pip_install() {
  set +e
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off "$@" 2>&1 | tee -a "$VENV/pip.log" \
    | grep --line-buffered -E '^(Collecting|Successfully installed|ERROR)' \
    | sed -u -e 's/^Collecting /  collecting /' -e 's/ (from .*)$//'
  local code=${PIPESTATUS[0]}
  set -e
  [ "$code" = 0 ] || echo "setup: pip failed (exit $code); its whole output is in $VENV/pip.log" >&2
  return "$code"
}

# 1. KCL jars: the daemon and its dependency tree into jars/ (and ~/.m2, where amazon-kclpy's installer finds them)
jar_stamp=$(stamp jars/pom.xml)
if [ "$(cat jars/.stamp 2>/dev/null)" != "$jar_stamp" ] || ! ls jars/amazon-kinesis-client-multilang-*.jar >/dev/null 2>&1; then
  step 1 "fetching the KCL jars with Maven (jars/pom.xml; ~/.m2 is reused)"
  rm -f jars/*.jar
  (cd jars && mvn -B -q -Dmaven.repo.local="$M2_REPO" dependency:copy-dependencies)
  echo "$jar_stamp" > jars/.stamp
  did+=("fetched $(ls jars/*.jar | wc -l) KCL jars")
else
  step 1 "KCL jars: up to date"
fi

# 2. CALI's KCL launcher: the MultiLangDaemon plus one property, compiled against those jars into jars/
launcher_stamp=$(stamp jars/.stamp kcl-launcher/build.sh $(find kcl-launcher -name '*.java' | sort))
if [ "$(cat jars/.launcher-stamp 2>/dev/null)" != "$launcher_stamp" ] || [ ! -f jars/cali-kcl-launcher.jar ]; then
  step 2 "compiling CALI's KCL launcher (kcl-launcher/)"
  kcl-launcher/build.sh jars
  echo "$launcher_stamp" > jars/.launcher-stamp
  did+=("compiled the KCL launcher")
else
  step 2 "KCL launcher: up to date"
fi

# 3. Python: a venv with the pinned packages of this mode
if [ ! -x "$VENV/bin/python" ]; then
  step 3 "creating $VENV"
  "$PYTHON" -m venv "$VENV"
  did+=("created $VENV")
else
  step 3 "$VENV exists"
fi

# 4. Packages: requirements.txt for run, requirements-dev.txt (which includes it) for test
py_stamp=$(stamp "$REQUIREMENTS" requirements.txt pyproject.toml jars/pom.xml)
stamp_file="$VENV/.cali-stamp-$MODE"
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$py_stamp" ]; then
  step 4 "installing the pinned packages of $REQUIREMENTS into $VENV (the first time takes a few minutes)"
  pip_install --upgrade pip
  # amazon-kclpy's setup.py downloads the jars of its pom.xml at build time; point it at the Maven repository
  # that step 1 filled (same versions: jars/pom.xml is amazon-kclpy's own dependency list).
  KCL_MVN_REPO_SEARCH_URL="file://$M2_REPO/" pip_install -r "$REQUIREMENTS"
  pip_install --no-deps -e .
  echo "$py_stamp" > "$stamp_file"
  did+=("installed $REQUIREMENTS")
else
  step 4 "packages of $REQUIREMENTS: up to date"
fi

# 5. The KCL daemon's classes, archived by a training run (localmode/cds.py): the JVM then starts in a third of the
#    CPU time. Once per set of jars and JVM; a failed run is not retried until they change (the daemon runs without).
#    The JVM checks each jar's path, size and modification time against the archive: so does the stamp.
cds_stamp=$(stamp <(stat -c '%n %s %Y' jars/*.jar) <(java -version 2>&1))
if [ "$(cat jars/.cds-stamp 2>/dev/null)" != "$cds_stamp" ]; then
  step 5 "archiving the KCL daemon's classes for a faster start (a training run of the daemon, ~20 s)"
  if "$VENV/bin/python" -m localmode.cds; then did+=("archived the KCL daemon's classes"); fi
  echo "$cds_stamp" > jars/.cds-stamp
else
  step 5 "KCL class archive: up to date"
fi

summary=$(IFS=';'; echo "${did[*]:-nothing to do}")
echo "setup: done in $((SECONDS - started))s (${summary//;/, }): $("$VENV/bin/python" --version)," \
  "$(java -version 2>&1 | head -1 | cut -d'"' -f2 | sed 's/^/Java /'), $(ls jars/*.jar | wc -l) jars," \
  "$VENV $(du -sh "$VENV" | cut -f1)"
[ "$MODE" = run ] && echo "setup: the test toolchain (pytest, linters, awscli, compose checks) comes with \`make test\`"
exit 0
