"""Events held back (throttled, or repeats of a fingerprint that already alerted), counted for one digest."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from consumer.model import Alert
from consumer.pipeline.fingerprint import template

TOP_N = 10


@dataclass
class Digest:
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    started_at: float | None = None
    first_key: str = ""
    last_key: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, alert: Alert, now: float, count: int = 1) -> None:
        event = alert.event
        self.counts[(event.level.value, event.service or "unknown", template(event.message)[:300])] += count
        if self.started_at is None:
            self.started_at, self.first_key = now, alert.ref.key
        self.last_key = alert.ref.key

    def top(self, n: int = TOP_N) -> list[tuple[str, str, str, int]]:
        """(level, service, message, count), most frequent first, grouped by service in the rendering."""
        ranked = self.counts.most_common(n)
        return [(level, service, message, count) for (level, service, message), count in ranked]
