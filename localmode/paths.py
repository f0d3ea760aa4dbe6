"""Where local mode keeps things. Everything generated lives under .run/ (git-ignored)."""

from __future__ import annotations

from consumer.config import REPO_ROOT

JARS = REPO_ROOT / "jars"
LAUNCHER_JAR = JARS / "cali-kcl-launcher.jar"  # kcl-launcher/build.sh writes it
PROPERTIES = REPO_ROOT / "properties" / "cali.properties"
LOGBACK = REPO_ROOT / "properties" / "logback.xml"
LOGBACK_LOCAL = REPO_ROOT / "properties" / "logback-local.xml"
FLUENT_BIT_CONF = REPO_ROOT / "fluent-bit" / "fluent-bit.conf"
RUN = REPO_ROOT / ".run"
