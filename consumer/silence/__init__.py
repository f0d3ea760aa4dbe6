"""Silences: "not now" for a known problem, without losing anything.

A silence matches events like a route does (``service=payment-api``, ``level=WARN``, ``message~db timeout``) for a
time. A silenced event is not alerted: it ends as a count on its silence (``silenced``), which ``python -m
consumer.silence list`` and the local Slack page show. When the silence ends (its time runs out, or ``expire``), the
next occurrence alerts as new. Silences live in DynamoDB (``<app>-silences``), shared by every shard and worker;
processors re-read them every ``CALI_SILENCE_REFRESH_SECONDS`` (``store.SilenceCache``).

This module is the pure part: the value and the decision ``silence_for``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from consumer.model import LogEvent
from consumer.pipeline.match import Match, MatchError, parse_matchers


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[str, ...]  # as given: ("service=payment-api", "message~db timeout")
    starts_at: float
    ends_at: float
    author: str
    reason: str
    silenced: int = 0  # events counted while it held (all shards, all workers)
    last_silenced_at: float | None = None
    expired_by: str | None = None  # who ended it early (``expire``)

    @property
    def match(self) -> Match:
        return _match(self.matchers)

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at


_MATCH_CACHE: dict[tuple[str, ...], Match] = {}


def _match(matchers: tuple[str, ...]) -> Match:
    found = _MATCH_CACHE.get(matchers)
    if found is None:
        found = _MATCH_CACHE[matchers] = parse_matchers(list(matchers))
    return found


def silence_for(event: LogEvent, silences: Iterable[Silence], now: float) -> Silence | None:
    """The silence that holds for ``event`` at ``now``: among the active ones that match, the oldest (then by id),
    so that every processor counts an event on the same silence. Pure."""
    found = [s for s in silences if s.active(now) and s.match.matches(event)]
    return min(found, key=lambda s: (s.starts_at, s.id)) if found else None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` -> seconds (as Alertmanager's amtool writes them)."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise MatchError(f"duration {text!r} is not like 90s, 15m, 2h, 1d or 1h30m")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise MatchError(f"duration {text!r} must be longer than zero")
    return seconds
