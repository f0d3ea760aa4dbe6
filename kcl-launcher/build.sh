#!/bin/sh
# Compile CALI's KCL launcher (the MultiLangDaemon plus one property, see CaliMultiLangDaemon.java) against the KCL
# jars in JARS_DIR into JARS_DIR/cali-kcl-launcher.jar, where the daemon's `-cp JARS_DIR/*` finds it. Needs a JDK
# 17 (javac, jar). Run by scripts/setup.sh (`make setup`) and by docker/consumer.Dockerfile.
set -eu
JARS_DIR=${1:?usage: kcl-launcher/build.sh JARS_DIR}
SOURCES=$(dirname "$0")
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
# shellcheck disable=SC2046  # the source paths have no spaces
javac --release 17 -Xlint:all -Werror -cp "$JARS_DIR/*" -d "$classes" $(find "$SOURCES" -name '*.java')
jar --create --file "$JARS_DIR/cali-kcl-launcher.jar" -C "$classes" .
