"""The KCL MultiLangDaemon command line and its rendered properties file."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from consumer.config import Settings
from localmode import paths
from localmode.preflight import require_java
from localmode.properties import render

# The KCL's MultiLangDaemon with one more property (shardConsumerDispatchPollIntervalMillis), compiled by `make
# setup` from kcl-launcher/ into the jars directory.
MAIN_CLASS = "software.amazon.kinesis.multilang.CaliMultiLangDaemon"
HEAP = "-Xmx256m"  # the JVM's heap is bounded by this, not by the machine
# Start-up (bench/RESULTS.md, 8b): without C2 the JVM's CPU to a running worker falls by a third (C2 compiles
# compete with the start on a small machine); the serial collector suits a 256 MB heap and needs no GC threads.
START_UP = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
# The daemon's classes, archived by a training run (``python -m localmode.cds``, run by ``make setup``): loading
# and verifying them is most of the JVM's start. The JVM ignores an archive made by another JVM or for other jars.
CLASS_ARCHIVE = paths.JARS / "kcl.jsa"


def class_archive_flags(archive: Path = CLASS_ARCHIVE) -> list[str]:
    return [f"-XX:SharedArchiveFile={archive}"] if archive.is_file() else []


def property_values(settings: Settings, python: str = sys.executable) -> dict[str, str]:
    return {
        "CALI_PYTHON": python,
        "KINESIS_STREAM_NAME": settings.stream_name,
        "CALI_APP_NAME": settings.app_name,
        "CALI_WORKER_ID": settings.worker_id,
        "AWS_REGION": settings.region,
        "LOCALSTACK_ENDPOINT": settings.endpoint_url or "",
    }


def write_properties(settings: Settings, target: Path, overrides: Mapping[str, str] | None = None) -> Path:
    text = render(paths.PROPERTIES.read_text(), property_values(settings))
    for key, value in (overrides or {}).items():
        text += f"{key} = {value}\n"  # later keys win in java.util.Properties
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def command(properties_file: Path, cbor: bool, log_file: Path | None = None,
            jvm_flags: Sequence[str] | None = None) -> list[str]:
    """``cbor=False`` for moto, which cannot read the CBOR the Java SDK sends to Kinesis by default.

    ``log_file``: the KCL's own log goes to this file, rolled over by size (``properties/logback-local.xml``);
    without it, to stderr (``properties/logback.xml``: containers, where the runtime keeps the logs).
    ``jvm_flags``: instead of the class archive's (the training run that makes it)."""
    require_java()
    flags = [*START_UP, *(class_archive_flags() if jvm_flags is None else jvm_flags)]
    if not cbor:
        flags.append("-Daws.cborEnabled=false")
    logging = ["--log-configuration", str(paths.LOGBACK)]
    if log_file is not None:
        flags.append(f"-Dcali.kcl.log={log_file}")
        logging = ["--log-configuration", str(paths.LOGBACK_LOCAL)]
    return ["java", HEAP, *flags, "-cp", f"{paths.JARS}/*", MAIN_CLASS, "--properties-file", str(properties_file),
            *logging]
