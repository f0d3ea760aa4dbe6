"""When to checkpoint, and doing it safely. Checkpoints only ever name a record whose events have all ended."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amazon_kclpy.checkpoint_error import CheckpointError

log = logging.getLogger("cali.checkpoint")

THROTTLED_RETRIES = 5


@dataclass(frozen=True)
class Position:
    sequence_number: str
    sub_sequence_number: int


def should_checkpoint(*, safe: Position | None, last: Position | None, delivered_since: bool,
                      seconds_since: float, interval: float) -> bool:
    """A new safe position exists, and either an alert went out since (so a restart must not resend it) or the
    interval passed (bounds re-reading after a crash without a checkpoint per batch)."""
    if safe is None or safe == last:
        return False
    return delivered_since or seconds_since >= interval


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
