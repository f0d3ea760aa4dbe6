"""When to checkpoint, and doing it safely. Checkpoints only ever name a record whose events have all ended."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from amazon_kclpy.checkpoint_error import CheckpointError

from consumer.model import Position

__all__ = ["Position", "checkpoint", "should_checkpoint"]

log = logging.getLogger("cali.checkpoint")

THROTTLED_RETRIES = 5


def should_checkpoint(*, safe: Position | None, last: Position | None, seconds_since: float, interval: float) -> bool:
    """A new safe position exists and the interval passed. The interval bounds what a crash makes the KCL read
    again; what was already delivered is then skipped through the idempotency records, not the checkpoint."""
    if safe is None or safe == last:
        return False
    return seconds_since >= interval


def checkpoint(checkpointer: Any, position: Position | None, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Checkpoint at ``position`` (or at the end of the shard when None). False if the lease is gone."""
    for attempt in range(THROTTLED_RETRIES):
        try:
            if position is None:
                checkpointer.checkpoint()
            else:
                checkpointer.checkpoint(position.sequence_number, position.sub_sequence_number)
            return True
        except CheckpointError as exc:
            error = exc.value
            if error == "ThrottlingException" and attempt + 1 < THROTTLED_RETRIES:
                sleep(0.2 * 2**attempt)
                continue
            if error == "ShutdownException":
                log.info("checkpoint refused: the lease moved on (%s)", error)
                return False
            log.error("checkpoint at %s failed: %s", position, error)
            return False
    return False
