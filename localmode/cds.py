"""``python -m localmode.cds``: archive the KCL daemon's classes for a faster JVM start (Java 17 dynamic AppCDS).

A training run starts a private pipeline (emulator, stream with one record, local Slack receiver, the daemon with
``-XX:ArchiveClassesAtExit``), waits until the processor has its first records, and stops the daemon with SIGTERM:
the JVM writes every class it loaded into the archive as it exits. Later starts map the archive
(``localmode.daemon.class_archive_flags``) instead of loading and verifying the classes from the jars. The archive
is only valid for the JVM that made it and for the same jars: the JVM checks both and ignores it otherwise (one
warning line in the daemon's log), so a stale or missing archive costs start-up time, never correctness.
``make setup`` runs this once per set of jars (``scripts/setup.sh``); ``make clean`` removes it with the jars.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from generator.fluentbit import fluent_bit_record
from generator.lines import make_line
from localmode.daemon import CLASS_ARCHIVE
from localmode.stack import Stack, private_env
from localmode.supervisor import wait_for

log = logging.getLogger("cali.cds")

TIMEOUT_SECONDS = 180.0
# The training daemon's only difference: it exits ~3 s after SIGTERM instead of waiting out the 10 s failover time
# for its processors' final shutdown (KCL 3.1.3). Same classes either way.
OVERRIDES = {"failoverTimeMillis": "3000"}


def training_env() -> dict[str, str]:
    """A private stack of one shard with the local receiver as Slack and no routes."""
    name = f"cali-cds-{uuid.uuid4().hex[:8]}"
    return private_env(name, CALI_ROUTES_FILE="none", CALI_WORKER_ID=name, CALI_STREAM_SHARDS="1",
                       CALI_RESOURCES="python")


def train(target: Path = CLASS_ARCHIVE) -> Path:
    """Make ``target`` from a training run; a failed run leaves no archive (an existing one is removed first)."""
    target.unlink(missing_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory(prefix="cali-cds-") as run_dir:
        stack = Stack(env=training_env(), run_dir=Path(run_dir))
        try:
            stack.start_emulator()
            stack.create_resources(owners=[stack.settings.worker_id])
            line = make_line("ERROR", "cali-cds", "training the KCL daemon's class archive")
            stack.client("kinesis").put_record(StreamName=stack.settings.stream_name, PartitionKey="cds",
                                               Data=fluent_bit_record(line))
            stack.start_receiver()
            daemon = stack.start_daemon(overrides=OVERRIDES, jvm_flags=[f"-XX:ArchiveClassesAtExit={partial}"])
            log_dir = stack.supervisor.log_dir
            wait_for(lambda: "".join(p.read_text(errors="replace") for p in log_dir.glob("kcl-*.log")),
                     lambda text: "processing shard" in text, TIMEOUT_SECONDS, "the processor's first records")
            stack.supervisor.stop(daemon)  # SIGTERM: the JVM writes the archive on its way out
        finally:
            stack.stop()
    if not partial.is_file():
        raise RuntimeError(f"the JVM wrote no archive at {partial} (its log: java's -Xlog:cds)")
    partial.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localmode.cds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=CLASS_ARCHIVE, help=f"default {CLASS_ARCHIVE}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="cds: %(message)s")
    started = time.monotonic()
    try:
        archive = train(args.archive)
    except (OSError, RuntimeError, TimeoutError) as exc:
        sys.stderr.write(f"cds: no class archive ({exc}); the KCL daemon starts without it\n")
        raise SystemExit(1) from None
    size = archive.stat().st_size / 1e6
    sys.stderr.write(f"cds: {archive} ({size:.0f} MB) from a training run of {time.monotonic() - started:.0f} s\n")


if __name__ == "__main__":
    main()
