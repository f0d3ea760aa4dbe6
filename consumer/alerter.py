"""A batch of records -> ended events: each ERROR/WARN is delivered, counted into a digest, or dropped with a reason.

Per batch: parse every record, keep the alert levels, group them by fingerprint (first appearance order), then
for each group of n events:
  1. its fingerprint alerted within the dedup window (any shard, any worker)  -> digest n
  2. the webhook's budget is spent (application-wide throttle)              -> digest n
  3. otherwise one alert saying "n times"; recorded under an idempotency key once Slack said ok
The digest collects for ``digest_interval`` seconds, then goes out as soon as the budget allows. ``held_back`` tells
the KCL adapter that events wait in an unsent digest: the checkpoint must not pass them.

Accounting: alerted_events + digested_events + already_delivered + dropped["slack_permanent_error"] + held
== the ERROR/WARN events read.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from consumer.errors import PermanentDelivery, RetryableDelivery
from consumer.model import Alert, Dropped, Level, RecordRef, position
from consumer.pipeline.decode import decode
from consumer.pipeline.digest import Digest
from consumer.pipeline.filter import is_alert
from consumer.pipeline.fingerprint import fingerprint
from consumer.pipeline.parse import parse_line
from consumer.pipeline.render import render_alert, render_digest
from consumer.pipeline.throttle import WINDOW_SECONDS
from consumer.slack_status import SlackStatus
from consumer.state import AlertState

log = logging.getLogger("cali.alerter")

BACKOFF_START_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 15.0
# A send claim (see AlertState.begin_send) not refreshed for this long belongs to a dead processor. It must exceed
# one post's worst case (slack.py: ~4 attempts of 5 s, a Retry-After of 20 s) plus one backoff sleep.
SEND_STALE_SECONDS = 75.0
BUSY_POLL_SECONDS = 2.0


class Sender(Protocol):
    name: str

    def post(self, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class RecordIn:
    data: bytes
    shard_id: str
    sequence_number: str
    sub_sequence_number: int = 0


@dataclass
class Stats:
    records: int = 0
    events: Counter[str] = field(default_factory=Counter)
    alerts_sent: int = 0
    alerted_events: int = 0
    already_delivered: int = 0
    digests_sent: int = 0
    digested_events: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    notes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "events": dict(self.events), "alerts_sent": self.alerts_sent,
                "alerted_events": self.alerted_events, "already_delivered": self.already_delivered,
                "digests_sent": self.digests_sent, "digested_events": self.digested_events,
                "dropped": dict(self.dropped), "retries": self.retries, "notes": dict(self.notes)}


@dataclass
class _Group:
    alerts: list[Alert] = field(default_factory=list)

    @property
    def first(self) -> Alert:
        return self.alerts[0]

    @property
    def count(self) -> int:
        return len(self.alerts)


class Alerter:
    def __init__(
        self,
        *,
        levels: Set[str],
        state: AlertState,
        senders: Mapping[Level, Sender],
        display_tz: ZoneInfo,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        dedup_window: float = 300.0,
        digest_interval: float = WINDOW_SECONDS,
        owner: str | None = None,
        send_stale_after: float = SEND_STALE_SECONDS,
    ) -> None:
        self._levels = levels
        self._keep = frozenset(Level(x) for x in levels if x in Level.__members__)
        self._state = state
        self._senders = senders
        self._tz = display_tz
        self._clock = clock
        self._sleep = sleep
        self._dedup_window = dedup_window
        self._digest_interval = digest_interval
        self._owner = owner or uuid.uuid4().hex
        self._stale_after = send_stale_after
        self._digest = Digest()
        self._high_water: dict[str, tuple[int, int, int] | None] = {}
        self._digests_ended = 0
        self.stats = Stats()
        self.slack = SlackStatus(since=clock())  # the heartbeat's Slack state (consumer/slack_status.py)

    @property
    def held_back(self) -> bool:
        return self._digest.total > 0

    @property
    def held(self) -> int:
        return self._digest.total

    @property
    def digests_ended(self) -> int:
        """How many digests ended (sent, refused, or found already sent): the KCL adapter's cue that the events
        held before this batch are no longer held."""
        return self._digests_ended

    def _digest_due(self, now: float) -> bool:
        started = self._digest.started_at
        return started is not None and now - started >= self._digest_interval

    def handle_batch(self, records: Sequence[RecordIn]) -> None:
        self.tick()  # older, held-back events go first
        groups: dict[str, _Group] = {}
        for record in records:
            for alert in self._alerts_in(record):
                groups.setdefault(fingerprint(alert.event), _Group()).alerts.append(alert)
        for fp, group in groups.items():
            self._alert(fp, group)

    def tick(self, *, early: bool = False) -> None:
        """Send the digest once it is ``digest_interval`` old (or ``early``) and the budget allows. Called for every
        batch, empty ones included."""
        if not self._digest.total:
            return
        due = early or self._digest_due(self._clock())
        if due and self._state.try_acquire(self._sender(Level.ERROR).name, self._clock()):
            self._send_digest()

    def drain(self, deadline_seconds: float = WINDOW_SECONDS + 5) -> None:
        """At shard end: wait (bounded) for the budget, then send the digest regardless, so nothing is lost when
        the checkpoint moves to SHARD_END."""
        end = self._clock() + deadline_seconds
        while self._digest.total and self._clock() < end:
            self.tick(early=True)
            if self._digest.total:
                self._sleep(1.0)
        if self._digest.total:
            log.warning("sending the digest over budget: the shard ended")
            self._send_digest()

    def _alerts_in(self, record: RecordIn) -> list[Alert]:
        self.stats.records += 1
        decoded = decode(record.data)
        if decoded.invalid_utf8:
            self.stats.notes["invalid_utf8"] += 1  # bytes replaced; the event still flows
        if decoded.truncated:
            self.stats.notes["oversized_record"] += 1
            log.warning("record %s over 1 MiB; cut", record.sequence_number)
        alerts = []
        for index, line in enumerate(decoded.lines):
            parsed = parse_line(line, self._keep)
            if isinstance(parsed, Dropped):
                self.stats.dropped[parsed.reason] += 1
                if parsed.reason != "empty":
                    log.info("dropped a line of record %s: %s", record.sequence_number, parsed.reason)
                continue
            self.stats.events[parsed.level.value] += 1
            if parsed.flaw is not None:
                self.stats.notes[parsed.flaw] += 1
            if is_alert(parsed, self._levels):
                ref = RecordRef(record.shard_id, record.sequence_number, record.sub_sequence_number, index)
                alerts.append(Alert(parsed, ref))
        return alerts

    def _alert(self, fp: str, group: _Group) -> None:
        now = self._clock()
        sender = self._sender(group.first.event.level)
        group = self._not_yet_delivered(group)
        if not group.alerts:
            return
        key = group.first.ref.key
        if self._digest_due(now):
            self.tick()  # a due digest takes the next budget slot, before this alert
            if self._digest.total:  # no slot for it: none for this alert either
                self._digest.add(group.first, now, group.count)
                return
        if not self._state.has_budget(sender.name, now):
            self._digest.add(group.first, now, group.count)  # over budget (known without asking DynamoDB)
            return
        if not self._state.claim_fingerprint(fp, key, now, self._dedup_window):
            self._digest.add(group.first, now, group.count)  # the same problem alerted recently
            return
        if not self._state.try_acquire(sender.name, now):
            self._state.release_fingerprint(fp, key)
            self._digest.add(group.first, now, group.count)  # over budget
            return
        through = self._begin(key)
        if through is not None:  # another processor of this shard (a zombie) ended it meanwhile
            done = position(through)
            mark = self._high_water.get(group.first.ref.shard_id)
            self._high_water[group.first.ref.shard_id] = done if mark is None else max(mark, done)
            rest = [a for a in group.alerts if a.ref.position > done]
            self.stats.already_delivered += group.count - len(rest)
            if rest:
                self._alert(fp, _Group(rest))
            return
        delivered = self._deliver(render_alert(group.first, self._tz, repeat=group.count), sender, key)
        self._state.end_send(key, self._owner, self._clock(), group.alerts[-1].ref.key)
        if delivered:
            self.stats.alerts_sent += 1
            self.stats.alerted_events += group.count
        else:
            self._state.release_fingerprint(fp, key)
            self.stats.dropped["slack_permanent_error"] += group.count

    def _not_yet_delivered(self, group: _Group) -> _Group:
        """Drop what an earlier message already covered: a re-read after a restart or a lease move. Only events up
        to the shard's high-water mark (read once per shard) can have been covered."""
        shard = group.first.ref.shard_id if group.alerts else ""
        if shard not in self._high_water:
            mark = self._state.ended_through(shard)
            self._high_water[shard] = position(mark) if mark else None
        high_water = self._high_water[shard]
        while group.alerts:
            if high_water is None or group.first.ref.position > high_water:
                return group
            through = self._state.delivered_through(group.first.ref.key)
            if through is None:
                return group
            rest = [a for a in group.alerts if a.ref.position > position(through)]
            self.stats.already_delivered += group.count - len(rest)
            group = _Group(rest)
        return group

    def _begin(self, key: str) -> str | None:
        """Take the send claim for ``key``: None when this processor may post; else the ended message's ``through``.
        Waits while another live processor holds the claim (until it ends the message or its claim goes stale)."""
        waited = False
        while True:
            started, through = self._state.begin_send(key, self._owner, self._clock(), self._stale_after)
            if started or through is not None:
                return through
            if not waited:
                log.info("message %s is being posted by another processor; waiting for it", key)
                waited = True
            self._sleep(BUSY_POLL_SECONDS)

    def _send_digest(self) -> None:
        digest, self._digest = self._digest, Digest()
        self._digests_ended += 1
        now = self._clock()
        key = f"digest/{digest.first_key}"
        # A digest keeps counts, not events: a re-read that rebuilds one with the same first event is taken as the
        # same digest (its count may differ if the batches split differently; nothing is posted twice).
        if self._state.delivered_through(key) is not None or self._begin(key) is not None:
            self.stats.already_delivered += digest.total
            return
        payload = render_digest(digest.total, digest.top(), max(now - (digest.started_at or now), WINDOW_SECONDS))
        delivered = self._deliver(payload, self._sender(Level.ERROR), key)
        self._state.end_send(key, self._owner, self._clock(), digest.last_key)
        if delivered:
            self.stats.digests_sent += 1
            self.stats.digested_events += digest.total
        else:
            self.stats.dropped["slack_permanent_error"] += digest.total

    def _sender(self, level: Level) -> Sender:
        return self._senders.get(level) or self._senders[Level.ERROR]

    def _deliver(self, payload: Mapping[str, Any], sender: Sender, key: str) -> bool:
        """True once delivered; False on a permanent error. Retryable errors are retried with backoff, without
        end: an outage must not move the checkpoint past undelivered alerts. The send claim is kept fresh."""
        delay = BACKOFF_START_SECONDS
        while True:
            try:
                sender.post(payload)
                self.slack.delivered(self._clock())
                return True
            except PermanentDelivery as exc:
                self.slack.failed(self._clock(), f"{sender.name} refused: {exc}")
                log.error("slack %s refused a message permanently (%s): counted as dropped", sender.name, exc)
                return False
            except RetryableDelivery as exc:
                self.slack.failed(self._clock(), f"{sender.name} unavailable: {exc}")
                self.stats.retries += 1
                log.warning("slack %s unavailable (%s); retrying in %.1fs", sender.name, exc, delay)
                self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                self._state.keep_sending(key, self._owner, self._clock())
