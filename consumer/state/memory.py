"""AlertState in one process's memory."""

from __future__ import annotations

from consumer.pipeline.throttle import WINDOW_SECONDS, admit


class MemoryState:
    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self._limit = limit
        self._window = window
        self._sent: dict[str, list[float]] = {}
        self._fingerprints: dict[str, tuple[float, str]] = {}
        self._delivered: dict[str, str] = {}

    def try_acquire(self, webhook: str, now: float) -> bool:
        admitted = admit(self._sent.get(webhook, []), now, self._limit, self._window)
        if admitted is None:
            return False
        self._sent[webhook] = admitted
        return True

    def claim_fingerprint(self, fingerprint: str, owner: str, now: float, window: float) -> bool:
        claim = self._fingerprints.get(fingerprint)
        if claim is not None and now - claim[0] < window and claim[1] != owner:
            return False
        self._fingerprints[fingerprint] = (now, owner)
        return True

    def release_fingerprint(self, fingerprint: str, owner: str) -> None:
        claim = self._fingerprints.get(fingerprint)
        if claim is not None and claim[1] == owner:
            del self._fingerprints[fingerprint]

    def delivered_through(self, key: str) -> str | None:
        return self._delivered.get(key)

    def mark_delivered(self, key: str, now: float, through: str) -> None:
        self._delivered[key] = through
