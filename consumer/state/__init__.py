"""Alert state shared by every processor of the application: throttle budget, fingerprints, delivered alerts.

``AlertState`` is the one interface; ``MemoryState`` holds it in one process (tests, single-shard runs),
``DynamoState`` in the DynamoDB table Terraform declares (``<app>-state``) so that it holds across shards and
workers.
"""

from __future__ import annotations

from typing import Protocol


class AlertState(Protocol):
    def try_acquire(self, webhook: str, now: float) -> bool:
        """Take one message from the webhook's budget (sliding window), or say no."""
        ...

    def claim_fingerprint(self, fingerprint: str, now: float, window: float) -> bool:
        """True if no alert for this fingerprint went out in the last ``window`` seconds; the caller alerts."""
        ...

    def was_delivered(self, key: str) -> bool: ...

    def mark_delivered(self, key: str, now: float) -> None: ...
