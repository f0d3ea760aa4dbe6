"""AlertState in one process's memory."""

from __future__ import annotations

from consumer.model import position
from consumer.pipeline.throttle import WINDOW_SECONDS, admit


class MemoryState:
    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self._limit = limit
        self._window = window
        self._sent: dict[str, list[float]] = {}
        self._fingerprints: dict[str, tuple[float, str]] = {}
        self._sends: dict[str, tuple[str, str, float, str]] = {}  # key -> (status, owner, at, through)
        self._high_water: dict[str, str] = {}

    def try_acquire(self, webhook: str, now: float) -> bool:
        admitted = admit(self._sent.get(webhook, []), now, self._limit, self._window)
        if admitted is None:
            return False
        self._sent[webhook] = admitted
        return True

    def has_budget(self, webhook: str, now: float) -> bool:
        return admit(self._sent.get(webhook, []), now, self._limit, self._window) is not None

    def ended_through(self, shard_id: str) -> str | None:
        return self._high_water.get(shard_id)

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
        send = self._sends.get(key)
        return send[3] if send is not None and send[0] == "done" else None

    def begin_send(self, key: str, owner: str, now: float, stale_after: float) -> tuple[bool, str | None]:
        send = self._sends.get(key)
        if send is not None and send[0] == "done":
            return False, send[3]
        if send is not None and send[1] != owner and now - send[2] < stale_after:
            return False, None
        self._sends[key] = ("sending", owner, now, "")
        return True, None

    def keep_sending(self, key: str, owner: str, now: float) -> None:
        send = self._sends.get(key)
        if send is not None and send[:2] == ("sending", owner):
            self._sends[key] = ("sending", owner, now, "")

    def end_send(self, key: str, owner: str, now: float, through: str) -> None:
        self._sends[key] = ("done", owner, now, through)
        shard = through.rsplit("/", 3)[0]
        mark = self._high_water.get(shard)
        if mark is None or position(mark) < position(through):
            self._high_water[shard] = through
