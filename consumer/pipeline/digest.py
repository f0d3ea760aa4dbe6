"""What the throttle held back, counted until it can be reported in one digest message."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from consumer.model import Alert

TOP_N = 10


@dataclass
class Digest:
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    started_at: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, alert: Alert, now: float) -> None:
        event = alert.event
        self.counts[(event.level.value, event.service or "unknown", event.message[:300])] += 1
        if self.started_at is None:
            self.started_at = now

    def top(self, n: int = TOP_N) -> list[tuple[str, str, str, int]]:
        return [(level, service, message, count) for (level, service, message), count in self.counts.most_common(n)]
