"""The throttle decision: a sliding-window log of send times.

At most ``limit`` messages in ANY ``window`` seconds (a fixed per-minute counter would let 2 x limit through
around a minute boundary; a token bucket lets limit + refill through in a window). The state is just the
send times inside the window, at most ``limit`` floats, so it fits one DynamoDB item when shared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

WINDOW_SECONDS = 60.0


def admit(sent: Sequence[float], now: float, limit: int, window: float = WINDOW_SECONDS) -> list[float] | None:
    """The new send log if one more message may go out at ``now``; None if the budget is spent."""
    recent = [t for t in sent if now - t < window]
    if len(recent) >= limit:
        return None
    return [*recent, now]


def next_opening(sent: Sequence[float], now: float, limit: int, window: float = WINDOW_SECONDS) -> float:
    """Seconds until ``admit`` would say yes (0 if it already would)."""
    recent = sorted(t for t in sent if now - t < window)
    if len(recent) < limit:
        return 0.0
    return recent[len(recent) - limit] + window - now


class Throttle(Protocol):
    def try_acquire(self) -> bool: ...


class LocalThrottle:
    """Per-process throttle (one KCL child = one shard)."""

    def __init__(self, limit: int, clock: Callable[[], float], window: float = WINDOW_SECONDS) -> None:
        self._limit = limit
        self._clock = clock
        self._window = window
        self._sent: list[float] = []

    def try_acquire(self) -> bool:
        admitted = admit(self._sent, self._clock(), self._limit, self._window)
        if admitted is None:
            return False
        self._sent = admitted
        return True
