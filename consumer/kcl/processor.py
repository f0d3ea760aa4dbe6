"""amazon-kclpy v3 RecordProcessor: hands records to the alerter and checkpoints what has ended.

An unexpected exception ends the child. amazon-kclpy would catch it, print it and report the action done, and the
next batch would checkpoint past records whose events never ended; instead the failure is counted (in the shard's
heartbeat, carried over to the next child), logged once with the shard and the batch's sequence numbers, and the
child exits without a checkpoint. The MultiLangDaemon then stops (it exits when a child dies), and its restart
(local mode's supervisor, compose's ``restart:``) reads again from the last checkpoint.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amazon_kclpy.v3 import processor

from consumer import health
from consumer.alerter import Alerter, RecordIn
from consumer.kcl.checkpoint import Position, checkpoint, should_checkpoint

log = logging.getLogger("cali.processor")

STATS_INTERVAL_SECONDS = 30.0
EXIT_ON_FAILURE = 70  # EX_SOFTWARE; the daemon logs "Child process exited with value: 70"

_Action = Callable[["AlertRecordProcessor", Any], None]


def _exit_on_failure(action: _Action) -> _Action:
    """Anything an action raises ends the child (see the module's docstring); SystemExit passes as it is."""

    @functools.wraps(action)
    def guarded(self: AlertRecordProcessor, action_input: Any) -> None:
        try:
            action(self, action_input)
        except Exception as exc:
            self._abandon(action.__name__, action_input, exc)

    return guarded


class AlertRecordProcessor(processor.RecordProcessorBase):  # type: ignore[misc]
    def __init__(self, make_alerter: Callable[[str], Alerter], clock: Callable[[], float],
                 checkpoint_interval: float, health_dir: Path | None = None) -> None:
        self._health_dir = health_dir
        self._make_alerter = make_alerter
        self._clock = clock
        self._interval = checkpoint_interval
        self.shard_id = "unknown"
        self.alerter: Alerter | None = None
        self._checkpointed: Position | None = None
        self._checkpointed_at = 0.0
        self._stats_at = 0.0
        self._millis_behind = 0
        self._beat_at = 0.0
        self._failed_batches = 0
        self._shutting_down = False

    @_exit_on_failure
    def initialize(self, initialize_input: Any) -> None:
        self.shard_id = initialize_input.shard_id
        self._failed_batches = self._previous_failures()
        self.alerter = self._make_alerter(self.shard_id)
        self.alerter.slack.on_change = self._beat  # a Slack outage shows at once, though the batch is blocked
        self._checkpointed_at = self._stats_at = self._clock()
        log.info("processing shard %s from %s", self.shard_id, initialize_input.sequence_number)

    @_exit_on_failure
    def process_records(self, process_records_input: Any) -> None:
        alerter = self._require_alerter()
        self._millis_behind = process_records_input.millis_behind_latest or 0
        records = [RecordIn(r.binary_data, self.shard_id, r.sequence_number, r.sub_sequence_number or 0)
                   for r in process_records_input.records]
        alerter.handle_batch(records)
        alerter.tick()
        self._maybe_checkpoint(process_records_input.checkpointer)
        self._maybe_log_stats()
        self._maybe_beat()

    @_exit_on_failure
    def lease_lost(self, lease_lost_input: Any) -> None:
        if self.alerter is not None:
            self.alerter.close()
        if self._health_dir is not None:
            health.remove_heartbeat(self._health_dir, self.shard_id)
        if self._shutting_down:  # a worker's own shutdown ends with leaseLost after shutdownRequested (KCL 3.1.3)
            log.info("shard %s released: this worker is stopping; the lease and its checkpoint stay for the next "
                     "start with the same worker id", self.shard_id)
        else:
            log.info("lease lost for shard %s (taken over, or not renewed in time); whoever holds it next reads "
                     "from the last checkpoint", self.shard_id)
        self._log_stats()

    @_exit_on_failure
    def shard_ended(self, shard_ended_input: Any) -> None:
        alerter = self._require_alerter()
        alerter.drain()
        alerter.close()
        log.info("shard %s ended; checkpointing at SHARD_END", self.shard_id)
        checkpoint(shard_ended_input.checkpointer, None)
        self._log_stats()

    @_exit_on_failure
    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        self._shutting_down = True
        self._require_alerter().close()
        # No Slack call here: events held in a digest stay in the shared state, and whoever re-reads them (or any
        # other contributor) sends it. Checkpoint only what ended.
        safe = self._require_alerter().safe_through
        if safe is not None and safe != self._checkpointed:
            checkpoint(shutdown_requested_input.checkpointer, safe)
        log.info("shutdown requested for shard %s; checkpointed at %s", self.shard_id, safe)
        self._log_stats()

    def _abandon(self, action: str, action_input: Any, exc: Exception) -> None:
        records = list(getattr(action_input, "records", None) or [])
        batch = f"records {records[0].sequence_number}..{records[-1].sequence_number}" if records else "no records"
        self._failed_batches += 1
        held = self._checkpointed.sequence_number if self._checkpointed else "where this child started"
        log.error("%s failed on shard %s (%s; the checkpoint stays at %s): %s: %s; the child exits so that the KCL "
                  "reads again from the last checkpoint", action, self.shard_id, batch, held,
                  type(exc).__name__, exc, exc_info=exc, extra={"failed_batches": self._failed_batches})
        self._beat()
        self._log_stats()
        raise SystemExit(EXIT_ON_FAILURE)

    def _previous_failures(self) -> int:
        if self._health_dir is None:
            return 0
        beat = health.read_heartbeats(self._health_dir).get(self.shard_id, {})
        return int(beat.get("failed_batches", 0))

    def _require_alerter(self) -> Alerter:
        if self.alerter is None:
            raise RuntimeError("process_records before initialize")
        return self.alerter

    def _maybe_checkpoint(self, checkpointer: Any) -> None:
        now = self._clock()
        safe = self._require_alerter().safe_through
        due = should_checkpoint(safe=safe, last=self._checkpointed, seconds_since=now - self._checkpointed_at,
                                interval=self._interval)
        if due and checkpoint(checkpointer, safe):
            self._checkpointed, self._checkpointed_at = safe, now

    def _maybe_beat(self) -> None:
        if self._clock() - self._beat_at >= health.BEAT_EVERY_SECONDS:
            self._beat()

    def _beat(self) -> None:
        """The heartbeat file: liveness for the health check, and the figures the status line shows."""
        self._beat_at = self._clock()
        if self._health_dir is None:
            return
        details: dict[str, Any] = {"millis_behind_latest": self._millis_behind, "failed_batches": self._failed_batches}
        if self.alerter is not None:
            details["stats"] = self._stats()
            details["slack"] = self.alerter.slack.as_dict()
        try:
            health.write_heartbeat(self._health_dir, self.shard_id, time.time(), details)
        except OSError as exc:
            log.warning("could not write the heartbeat: %s", exc)

    def _maybe_log_stats(self) -> None:
        if self._clock() - self._stats_at >= STATS_INTERVAL_SECONDS:
            self._log_stats()

    def _log_stats(self) -> None:
        self._stats_at = self._clock()
        log.info("stats", extra={"stats": self._stats(), "millis_behind_latest": self._millis_behind})

    def _stats(self) -> dict[str, Any]:
        return {**self.alerter.stats.as_dict(), "held": self.alerter.held} if self.alerter else {}
