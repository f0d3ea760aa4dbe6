"""Answer the KCL's ``initialize`` at once; build the real processor on a thread meanwhile.

Building the processor takes about a second (botocore and slack-sdk imports, the DynamoDB client's service model,
``auth.test`` in Web API mode). The KCL's scheduler moves each shard consumer one state per pass
(``shardConsumerDispatchPollIntervalMillis``: the KCL's default 1000 ms, 200 ms in properties/cali.properties, set
by CALI's launcher, kcl-launcher/): a child that answers ``initialize`` after the next pass delays the shard by a
pass, cold start and restart alike. Records come two passes after the answer (the consumer turns PROCESSING, then
subscribes); the first action after ``initialize`` waits for the build (with 200 ms passes the build, not the
passes, sets when the first records are processed).

Nothing is answered for work not done: ``initialize`` only hands over the shard id, and every later action runs on
the real processor, after its own ``initialize``. A build that fails ends the child at that action (or when the
daemon closes stdin first) with ``SystemExit``, which amazon-kclpy lets through: raising anything else there would
be caught by amazon-kclpy and the action reported done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from amazon_kclpy.v3 import processor

log = logging.getLogger("cali.processor")

BUILD_FAILED = 1  # an unexpected error while building: the exit code an uncaught exception would have given


class DeferredProcessor(processor.RecordProcessorBase):  # type: ignore[misc]
    """The KCL-facing processor; ``build`` runs on a daemon thread, started by ``initialize`` (or ``wait``)."""

    def __init__(self, build: Callable[[], processor.RecordProcessorBase]) -> None:
        self._build = build
        self._built: Future[processor.RecordProcessorBase] | None = None
        self._real: processor.RecordProcessorBase | None = None
        self._initialize_input: Any = None

    def _start(self) -> Future[processor.RecordProcessorBase]:
        if self._built is None:
            built: Future[processor.RecordProcessorBase] = Future()

            def run() -> None:
                try:
                    built.set_result(self._build())
                except BaseException as exc:  # SystemExit included: raised again where the protocol loop runs
                    built.set_exception(exc)

            self._built = built
            threading.Thread(target=run, name="build-processor", daemon=True).start()
        return self._built

    def wait(self) -> processor.RecordProcessorBase:
        """The built processor; a failed build raises ``SystemExit`` (its own, or ``BUILD_FAILED`` after logging)."""
        built = self._start()
        try:
            return built.result()
        except SystemExit:
            raise
        except Exception as exc:
            log.error("building the record processor failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
            raise SystemExit(BUILD_FAILED) from None

    def _ready(self) -> processor.RecordProcessorBase:
        if self._real is None:
            real = self.wait()
            if self._initialize_input is not None:  # else the real processor refuses the action itself
                real.initialize(self._initialize_input)
            self._real = real
        return self._real

    def initialize(self, initialize_input: Any) -> None:
        """Started here rather than at construction: the build's imports would compete with this answer."""
        self._initialize_input = initialize_input
        self._start()

    def process_records(self, process_records_input: Any) -> None:
        self._ready().process_records(process_records_input)

    def lease_lost(self, lease_lost_input: Any) -> None:
        self._ready().lease_lost(lease_lost_input)

    def shard_ended(self, shard_ended_input: Any) -> None:
        self._ready().shard_ended(shard_ended_input)

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        self._ready().shutdown_requested(shutdown_requested_input)
