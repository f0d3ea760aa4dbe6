"""State shared by the request handlers, and the control actions (``POST /_control/...``) on it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consumer.silence.store import SilenceStore

from .channels import Channel
from .faults import FaultPlan, parse_faults, parse_outage
from .workspace import Workspace

MAX_ATTEMPT_LOG = 10_000


@dataclass
class ReceiverState:
    """Everything the handlers share. ``sleep`` and ``wall_clock`` are injectable for tests."""

    workspace: Workspace
    token: str
    faults: FaultPlan = field(default_factory=FaultPlan)
    sleep: Callable[[float], None] = time.sleep
    wall_clock: Callable[[], float] = time.time
    attempts: int = 0
    attempt_log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_ATTEMPT_LOG))
    lock: threading.Lock = field(default_factory=threading.Lock)
    silences: SilenceStore | None = None  # CALI's silences table, for the /silences page (None: not reachable)
    silences_problem: str = "no silences table configured"
    operator: str = "slack-page"

    def count_attempt(self) -> None:
        with self.lock:
            self.attempts += 1

    def log_attempt(self, at: float, path: str, status: int) -> None:
        with self.lock:
            self.attempt_log.append({"at": at, "path": path, "status": status})

    def snapshot(self, channel: Channel | None = None) -> dict[str, Any]:
        with self.lock:
            attempts, log = self.attempts, list(self.attempt_log)
        return {"messages": self.workspace.views(channel), "attempts": attempts, "attempt_log": log,
                "channels": self.channels()}

    def channels(self) -> list[dict[str, str]]:
        return [{"id": ch.id, "name": ch.name} for ch in self.workspace.directory.channels]

    def reset(self) -> None:
        with self.lock:
            self.workspace.reset()
            self.attempts = 0
            self.attempt_log.clear()


def _set_faults(state: ReceiverState, data: Any) -> dict[str, Any]:
    if isinstance(data, dict) and "outage_seconds" in data:  # {"outage_seconds": N, ...} shorthand
        state.faults.start_outage(parse_outage(data, seconds_key="outage_seconds"))
    else:
        state.faults.queue(parse_faults(data))
    return state.faults.status()


def _set_outage(state: ReceiverState, data: Any) -> dict[str, Any]:
    state.faults.start_outage(parse_outage(data))
    return state.faults.status()


def _reset(state: ReceiverState, data: Any) -> dict[str, Any]:
    state.reset()
    return {"ok": True}


CONTROL_POSTS: dict[str, Callable[[ReceiverState, Any], dict[str, Any]]] = {
    "/_control/faults": _set_faults,
    "/_control/outage": _set_outage,
    "/_control/reset": _reset,
}
