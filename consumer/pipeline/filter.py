"""Which events become alerts."""

from __future__ import annotations

from collections.abc import Set

from consumer.model import LogEvent


def is_alert(event: LogEvent, levels: Set[str]) -> bool:
    return event.level.value in levels
