"""AlertState in one process's memory."""

from __future__ import annotations

from consumer.pipeline.throttle import WINDOW_SECONDS, admit


class MemoryState:
    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self._limit = limit
        self._window = window
        self._sent: dict[str, list[float]] = {}
        self._fingerprints: dict[str, float] = {}
        self._delivered: set[str] = set()

    def try_acquire(self, webhook: str, now: float) -> bool:
        admitted = admit(self._sent.get(webhook, []), now, self._limit, self._window)
        if admitted is None:
            return False
        self._sent[webhook] = admitted
        return True

    def claim_fingerprint(self, fingerprint: str, now: float, window: float) -> bool:
        last = self._fingerprints.get(fingerprint)
        if last is not None and now - last < window:
            return False
        self._fingerprints[fingerprint] = now
        return True

    def was_delivered(self, key: str) -> bool:
        return key in self._delivered

    def mark_delivered(self, key: str, now: float) -> None:
        self._delivered.add(key)
