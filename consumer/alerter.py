"""From one record's bytes to ended events: each ERROR/WARN is delivered, digested, or dropped with a reason.

The alerter owns no I/O of its own: the throttle, the senders, the clock and the sleep are handed in.
``held_back`` tells the KCL adapter whether events are waiting in an unsent digest (then the checkpoint must
not pass them).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from consumer.errors import PermanentDelivery, RetryableDelivery
from consumer.model import Alert, Dropped, Level, RecordRef
from consumer.pipeline.decode import decode
from consumer.pipeline.digest import Digest
from consumer.pipeline.filter import is_alert
from consumer.pipeline.parse import parse_line
from consumer.pipeline.render import render_alert, render_digest
from consumer.pipeline.throttle import WINDOW_SECONDS, Throttle

log = logging.getLogger("cali.alerter")

BACKOFF_START_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0


class Sender(Protocol):
    name: str

    def post(self, payload: Mapping[str, Any]) -> None: ...


@dataclass
class Stats:
    records: int = 0
    events: Counter[str] = field(default_factory=Counter)
    alerts_sent: int = 0
    digests_sent: int = 0
    digested_events: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    notes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "events": dict(self.events), "alerts_sent": self.alerts_sent,
                "digests_sent": self.digests_sent, "digested_events": self.digested_events,
                "dropped": dict(self.dropped), "retries": self.retries, "notes": dict(self.notes)}


class Alerter:
    def __init__(
        self,
        *,
        levels: Set[str],
        throttle: Throttle,
        senders: Mapping[Level, Sender],
        display_tz: ZoneInfo,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._levels = levels
        self._throttle = throttle
        self._senders = senders
        self._tz = display_tz
        self._clock = clock
        self._sleep = sleep
        self._digest = Digest()
        self.stats = Stats()

    @property
    def held_back(self) -> bool:
        return self._digest.total > 0

    def handle_record(self, data: bytes, shard_id: str, sequence_number: str, sub_sequence_number: int) -> None:
        self.stats.records += 1
        decoded = decode(data)
        if decoded.invalid_utf8:
            self.stats.notes["invalid_utf8"] += 1  # the bytes are replaced; the event still flows
            log.info("record %s has invalid UTF-8; replaced", sequence_number)
        if decoded.truncated:
            self.stats.notes["oversized_record"] += 1
            log.warning("record %s over %d bytes; cut", sequence_number, len(data))
        for index, line in enumerate(decoded.lines):
            parsed = parse_line(line)
            if isinstance(parsed, Dropped):
                self.stats.dropped[parsed.reason] += 1
                continue
            self.stats.events[parsed.level.value] += 1
            if is_alert(parsed, self._levels):
                self._alert(Alert(parsed, RecordRef(shard_id, sequence_number, sub_sequence_number, index)))

    def tick(self) -> None:
        """Send the digest once the throttle allows. Called after every batch, empty ones included."""
        if self._digest.total and self._throttle.try_acquire():
            self._send_digest()

    def drain(self, deadline_seconds: float = WINDOW_SECONDS + 5) -> None:
        """Wait (bounded) for the throttle to allow the pending digest; used at shard end."""
        end = self._clock() + deadline_seconds
        while self._digest.total and self._clock() < end:
            self.tick()
            if self._digest.total:
                self._sleep(1.0)

    def _alert(self, alert: Alert) -> None:
        self.tick()  # older, held-back events go first
        if self._digest.total or not self._throttle.try_acquire():
            self._digest.add(alert, self._clock())
            self.stats.digested_events += 1
            return
        if self._deliver(render_alert(alert, self._tz), alert.event.level):
            self.stats.alerts_sent += 1
        else:
            self.stats.dropped["slack_permanent_error"] += 1

    def _send_digest(self) -> None:
        digest, self._digest = self._digest, Digest()
        window = self._clock() - (digest.started_at or self._clock())
        payload = render_digest(digest.total, digest.top(), max(window, WINDOW_SECONDS))
        if self._deliver(payload, Level.ERROR):
            self.stats.digests_sent += 1
        else:
            self.stats.dropped["slack_permanent_error"] += digest.total

    def _deliver(self, payload: Mapping[str, Any], level: Level) -> bool:
        """True once delivered; False on a permanent error. Retryable errors are retried with backoff, forever:
        an outage must not move the checkpoint past undelivered alerts."""
        sender = self._senders.get(level) or self._senders[Level.ERROR]
        delay = BACKOFF_START_SECONDS
        while True:
            try:
                sender.post(payload)
                return True
            except PermanentDelivery as exc:
                log.error("slack %s refused an alert permanently (%s): counted as dropped", sender.name, exc)
                return False
            except RetryableDelivery as exc:
                self.stats.retries += 1
                log.warning("slack %s unavailable (%s); retrying in %.1fs", sender.name, exc, delay)
                self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
