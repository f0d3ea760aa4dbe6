"""Is Slack taking our posts? One small object the alerter's delivery path updates; the heartbeat carries it.

``failing`` means the last delivery attempt failed (refused or unreachable) and none succeeded since; ``since`` is
the epoch second of the last change of state; ``error`` is one line, without the webhook (the delivery errors
never carry it; see consumer/deliver/slack.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ERROR_LIMIT = 200


@dataclass
class SlackStatus:
    state: Literal["ok", "failing"] = "ok"
    since: float = 0.0
    error: str = ""
    on_change: Callable[[], None] | None = field(default=None, repr=False)

    def delivered(self, now: float) -> None:
        self._set("ok", now, "")

    def failed(self, now: float, error: str) -> None:
        self._set("failing", now, " ".join(error.split())[:ERROR_LIMIT])

    def _set(self, state: Literal["ok", "failing"], now: float, error: str) -> None:
        changed = state != self.state
        if changed:
            self.state, self.since = state, now
        self.error = error
        if changed and self.on_change is not None:
            self.on_change()

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since, "error": self.error}
