"""Composition root of one KCL child process: ``python -m consumer`` (the properties' executableName).

stdout is the MultiLangDaemon's protocol channel. The real stdout is kept for amazon-kclpy only; fd 1 and
``sys.stdout`` are pointed at stderr so that no stray print or library can corrupt the protocol.

The settings are read first (a bad value: one line, exit code 2, before the protocol starts); the rest of the
processor (``consumer.wiring``: Slack, DynamoDB, ``auth.test``) is built on a thread while the protocol loop answers
the KCL's ``initialize`` (``consumer.kcl.deferred`` says why). A configuration error found there (a refused bot
token) ends the child the same way, at the next action or when the daemon closes stdin.
"""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING

from amazon_kclpy import kcl

from consumer import logs
from consumer.config import Settings, load_settings
from consumer.errors import ConfigError
from consumer.kcl.deferred import DeferredProcessor

if TYPE_CHECKING:
    from consumer.kcl.processor import AlertRecordProcessor


def protocol_channel() -> IO[str]:
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def config_error(exc: ConfigError) -> SystemExit:
    """One readable line (the daemon's log shows it), no traceback; exit code 2."""
    sys.stderr.write(f"cali consumer: {exc}\n")
    return SystemExit(2)


def build(settings: Settings) -> AlertRecordProcessor:
    from consumer import wiring  # on the build thread: its imports are most of the child's start-up time

    try:
        return wiring.build_processor(settings)
    except ConfigError as exc:
        raise config_error(exc) from None


def main() -> None:
    channel = protocol_channel()
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise config_error(exc) from None
    logs.setup(settings.log_level, worker_id=settings.worker_id, pid=str(os.getpid()))
    processor = DeferredProcessor(lambda: build(settings))
    kcl.KCLProcess(processor, input_file=sys.stdin, output_file=channel, error_file=sys.stderr).run()
    processor.wait()  # stdin closed: a failed build still ends the child with its own exit code


if __name__ == "__main__":
    main()
