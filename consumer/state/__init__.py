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

    def has_budget(self, webhook: str, now: float) -> bool:
        """A cheap, possibly optimistic, look: False only when the budget is known to be spent (no I/O then)."""
        ...

    def ended_through(self, shard_id: str) -> str | None:
        """The shard's high-water mark: the last event covered by any message that ended (``end_send``). Events
        after it cannot have been posted by anyone, so a re-read only checks messages up to it."""
        ...

    def claim_fingerprint(self, fingerprint: str, owner: str, now: float, window: float) -> bool:
        """True if no other alert claimed this fingerprint in the last ``window`` seconds; the caller alerts.
        ``owner`` is the alert's idempotency key: the same alert re-read after a crash gets its claim back."""
        ...

    def release_fingerprint(self, fingerprint: str, owner: str) -> None:
        """Give a claim back when its alert did not go out (throttled, or refused by Slack)."""
        ...

    def delivered_through(self, key: str) -> str | None:
        """If a message keyed ``key`` ended (reached Slack, or was refused for good): its last event's key."""
        ...

    def begin_send(self, key: str, owner: str, now: float, stale_after: float) -> tuple[bool, str | None]:
        """Claim the right to post message ``key`` (conditional write before posting).

        (True, None): post it. (False, through): it already ended. (False, None): another live processor is
        posting it (a zombie after a lease move, or a crashed one whose claim is not ``stale_after`` old yet).
        """
        ...

    def keep_sending(self, key: str, owner: str, now: float) -> None:
        """Refresh the claim while retrying, so that nobody takes it over as stale."""
        ...

    def end_send(self, key: str, owner: str, now: float, through: str) -> None:
        """The message ended: delivered, or refused for good. ``through``: the last event it covered."""
        ...
