"""Fault plan: decides how the fake Slack answers the next webhook post or Web API call.

Pure logic, no I/O. The server asks :meth:`FaultPlan.next_response` once per request (naming the surface:
``"webhook"`` or the Web API method, e.g. ``"chat.postMessage"``) and then sleeps, answers and stores
accordingly. An item may say which requests it is for (``"on": "webhook" | "api" | "<method>"``); items for
other requests stay queued, in order. The clock is injectable so tests need no real waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# Bodies Slack's incoming webhooks use for these statuses; used when a fault item gives a status but no body.
DEFAULT_BODIES: Mapping[int, str] = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "channel_not_found",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
    503: "service_unavailable",
}
# The ``error`` the Web API answers with for these statuses (``{"ok": false, "error": ...}``).
API_ERRORS: Mapping[int, str] = {
    400: "invalid_arguments",
    403: "access_denied",
    404: "unknown_method",
    429: "ratelimited",
    500: "internal_error",
    503: "service_unavailable",
}
OUTAGE_STATUS = 503  # body defaults to DEFAULT_BODIES[503]
WEBHOOK = "webhook"
API = "api"


@dataclass(frozen=True)
class Fault:
    """How to answer one request.

    ``status is None`` means "behave like Slack" (validate, store, answer), after sleeping ``delay``
    seconds. Otherwise answer ``status`` without storing the message: the webhook's body is ``body``
    (default: Slack's for that status), the Web API's ``error`` is ``body`` (default: the API's name).
    ``on`` limits the fault to one surface or one API method (``None``: the next request of any kind).
    """

    status: int | None = None
    body: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    on: str | None = None

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(math.ceil(self.retry_after))}

    def webhook_body(self) -> str:
        return self.body if self.body is not None else DEFAULT_BODIES.get(self.status or 0, "error")

    def api_error(self) -> str:
        return self.body if self.body is not None else API_ERRORS.get(self.status or 0, "internal_error")


NORMAL = Fault()


@dataclass(frozen=True)
class Outage:
    """Every request (that ``fault.on`` matches) fails with ``fault`` for ``seconds`` from its start."""

    seconds: float
    fault: Fault


def applies(on: str | None, target: str) -> bool:
    """Whether an item for ``on`` answers a request for ``target`` (``"webhook"`` or an API method)."""
    if on is None or on == target:
        return True
    return on == API and target != WEBHOOK


def _number(obj: Mapping[str, object], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key!r} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{key!r} must be >= 0, got {value!r}")
    return float(value)


def _error_fault(obj: Mapping[str, object], default_status: int | None) -> Fault:
    status = obj.get("status", default_status)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"'status' must be an integer 400..599, got {status!r}")
    body = obj.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"'body' must be a string, got {body!r}")
    return Fault(status, body, _number(obj, "retry_after"), _number(obj, "delay") or 0.0, _target(obj))


def _target(obj: Mapping[str, object]) -> str | None:
    on = obj.get("on")
    if on is not None and (not isinstance(on, str) or not on):
        raise ValueError(f"'on' must be \"webhook\", \"api\" or a Web API method name, got {on!r}")
    return on


def _check_keys(obj: Mapping[str, object], allowed: set[str]) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def parse_outage(obj: object, seconds_key: str = "seconds") -> Outage:
    """``{"seconds": N, "status": 503, "body": "service_unavailable", "retry_after": S, "on": ...}``."""
    if not isinstance(obj, dict):
        raise ValueError(f"outage must be a JSON object, got {obj!r}")
    _check_keys(obj, {seconds_key, "status", "body", "retry_after", "on"})
    seconds = _number(obj, seconds_key)
    if seconds is None:
        raise ValueError(f"outage needs {seconds_key!r}")
    return Outage(seconds, _error_fault(obj, OUTAGE_STATUS))


def parse_fault(obj: object) -> Fault | Outage:
    """One item of the ``/_control/faults`` list (see the package docstring for the forms)."""
    if not isinstance(obj, dict):
        raise ValueError(f"fault item must be a JSON object, got {obj!r}")
    if "outage_seconds" in obj:
        return parse_outage(obj, seconds_key="outage_seconds")
    if "status" in obj:
        _check_keys(obj, {"status", "body", "retry_after", "delay", "on"})
        return _error_fault(obj, None)
    _check_keys(obj, {"delay", "on"})
    delay = _number(obj, "delay")
    if delay is None:
        raise ValueError("fault item needs 'status', 'delay' or 'outage_seconds'")
    return Fault(delay=delay, on=_target(obj))


def parse_faults(obj: object) -> list[Fault | Outage]:
    if not isinstance(obj, list):
        raise ValueError("faults must be a JSON list")
    return [parse_fault(item) for item in obj]


class FaultPlan:
    """Thread-safe queue of scripted responses plus an optional outage window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: deque[Fault | Outage] = deque()
        self._outage_until = -math.inf
        self._outage_fault = NORMAL

    def queue(self, items: Iterable[Fault | Outage]) -> int:
        """Append ``items`` after any still pending; returns how many are pending now."""
        with self._lock:
            self._queue.extend(items)
            return len(self._queue)

    def start_outage(self, outage: Outage) -> None:
        with self._lock:
            self._start_outage_locked(outage)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._outage_until = -math.inf

    def status(self) -> dict[str, float]:
        with self._lock:
            remaining = max(0.0, self._outage_until - self._clock())
            return {"pending": len(self._queue), "outage_remaining": remaining}

    def next_response(self, target: str = WEBHOOK) -> Fault:
        """Decide the answer to the next request for ``target`` (consumes the first queued item for it)."""
        with self._lock:
            if self._clock() < self._outage_until and applies(self._outage_fault.on, target):
                return self._outage_fault
            item = next((i for i in self._queue if applies(_on(i), target)), None)
            if item is None:
                return NORMAL
            self._queue.remove(item)
            if isinstance(item, Outage):
                self._start_outage_locked(item)
                return item.fault
            return item

    def _start_outage_locked(self, outage: Outage) -> None:
        self._outage_until = self._clock() + outage.seconds
        self._outage_fault = outage.fault


def _on(item: Fault | Outage) -> str | None:
    return item.fault.on if isinstance(item, Outage) else item.on
