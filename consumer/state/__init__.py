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

    def claim_fingerprint(self, fingerprint: str, owner: str, now: float, window: float) -> bool:
        """True if no other alert claimed this fingerprint in the last ``window`` seconds; the caller alerts.
        ``owner`` is the alert's idempotency key: the same alert re-read after a crash gets its claim back."""
        ...

    def release_fingerprint(self, fingerprint: str, owner: str) -> None:
        """Give a claim back when its alert did not go out (throttled, or refused by Slack)."""
        ...

    def delivered_through(self, key: str) -> str | None:
        """If a message keyed ``key`` reached Slack: the key of the last event it covered."""
        ...

    def mark_delivered(self, key: str, now: float, through: str) -> None: ...
