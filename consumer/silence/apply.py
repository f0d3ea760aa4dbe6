"""Silences in the alert path: which silence holds an event now, counting what it silenced, and the "epoch" that
makes an event's next occurrence after a silence alert as new.

A silenced event ends as a count on its silence: in the table (exact across re-reads, see ``store``) and in the
processor's stats; it is not alerted and goes into no digest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from consumer.model import Alert, LogEvent, sortable_position
from consumer.silence import Silence, silence_for
from consumer.silence.store import SilenceCache, SilenceStore


class Silencer:
    def __init__(self, cache: SilenceCache, store: SilenceStore, clock: Callable[[], float]) -> None:
        self._cache = cache
        self._store = store
        self._clock = clock
        self.counts: Counter[str] = Counter()  # events silenced by this processor, by silence id

    def refresh(self) -> None:
        """Re-read the silences if their refresh interval passed (every batch, empty ones included: a new silence
        holds, and is logged, within seconds even while nothing matches it)."""
        self._cache.current()

    def holding(self, event: LogEvent) -> Silence | None:
        """The silence that holds ``event`` now (the same one on every processor), or None."""
        return silence_for(event, self._cache.current(), self._clock())

    def count(self, silence_id: str, alerts: Sequence[Alert]) -> None:
        """Count ``alerts`` (of one shard, in order) on the silence; a re-read is not counted twice in the table."""
        if alerts:
            self._store.count(silence_id, alerts[0].ref.shard_id,
                              [sortable_position(a.ref.key) for a in alerts], self._clock())
            self.counts[silence_id] += len(alerts)

    def ended_over(self, event: LogEvent) -> Silence | None:
        """The silence over ``event`` that ended last (None: none did). Its id marks the event's fingerprint, so that
        the next occurrence after a silence alerts as new (a new alert or incident), not as a repeat of the one from
        before the silence."""
        now = self._clock()
        ended = [s for s in self._cache.current() if s.ends_at <= now and s.match.matches(event)]
        return max(ended, key=lambda s: (s.ends_at, s.id), default=None)
