"""A batch of records -> ended events: the executor of ``consumer.decision``.

Per batch: parse every record, keep the alert levels, group them by fingerprint (first appearance order). For each
group, ``decide`` (pure) names what happens, and the alerter carries it out:
- ALERT: one message for the group. ``begin`` (budget slot + fingerprint + send claim, one transaction; the
  batch's alerts all in one, ``begin_all``, each with a slot of its own), post, ``end`` (one transaction; the
  batch's posted alerts together, ``end_all``, not between one post and the next: see ``_end``). Webhook mode: an
  alert saying "n times". Web API mode: an incident's root message.
- REPEAT: webhook mode: into the digest; Web API mode: counted into the open incident, the batch's repeats all
  together (``add_repeats``: one round trip; with the groups for the digest, ``add_counts``: one for both).
  Showing them is the incidents' upkeep (``consumer.incidents``, on a worker thread): the root updated in place at
  most once per ``update_interval``, new message texts in its thread (bounded per minute), "quiet since ..." after
  ``resolve_after``.
- OVER_BUDGET: into the application-wide digest of the destination's current interval (one per interval for the
  whole application, sent by whichever processor gets to it first once the interval closed; the budget limits
  alerts, not this one message per interval). The batch's groups for every destination are added at its end,
  all in one ``add_to_digest`` (one round trip).

``safe_through`` is the one position the KCL adapter may checkpoint: every event up to it has ended.
Web API incidents with no repeat for ``resolve_after`` seconds are updated to "quiet since ..."; a repeat after that
opens a new incident (a new root message), as a new problem would.

Accounting (``Stats``): alerted_events + repeat_events + digested_events + already_delivered
+ dropped["slack_permanent_error"] + silenced_events + held == the ERROR/WARN events read.

Routes (``routes.yaml``, ``consumer/routes.py``): with ``routes``, ``senders`` are keyed by route name and each
event goes to its route's sender, whose name is the route's budget and digest destination; incidents and dedup are
per route too (the route is part of the fingerprint key). Silences (``consumer/silence``): a group under an active
silence is decided SILENCED and counted on it; after a silence over an event ended, the silence's id becomes part of
the event's fingerprint key, so its next occurrence alerts as new.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from consumer.decision import Mode, Reason, bucket_closes_at, decide, digest_bucket
from consumer.deliver import Sender, threaded
from consumer.deliver.slack import Posted
from consumer.errors import PermanentDelivery, RetryableDelivery
from consumer.incidents import SAMPLES_PER_MINUTE, Incidents, Touch, Upkeep, candidates
from consumer.model import Alert, Dropped, Level, LogEvent, Position, RecordRef, position
from consumer.pipeline.decode import decode
from consumer.pipeline.fingerprint import fingerprint, template
from consumer.pipeline.parse import parse_line
from consumer.pipeline.render import incident_payload, render_alert, render_digest
from consumer.retry import patiently
from consumer.routes import Routes, route_for
from consumer.silence.apply import Silencer
from consumer.slack_status import SlackStatus
from consumer.state import Added, AlertState, Begun, Claim, Contribution, Ending, Incident, Repeated, Verdict
from consumer.timing import (
    BACKOFF_MAX_SECONDS,
    BUSY_POLL_SECONDS,
    SEND_STALE_SECONDS,
    UPKEEP_GAP_SECONDS,
    WAITING_CLAIM_REFRESH_SECONDS,
    WEBHOOK_END_WITHIN_SECONDS,
)

log = logging.getLogger("cali.alerter")

SEAL_GRACE_SECONDS = 1.0  # a closed interval's digest waits this long for contributions in flight
DRAIN_SECONDS = 30.0


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
    repeat_events: int = 0  # Web API: counted into an open incident's root
    updates_sent: int = 0
    samples_sent: int = 0
    already_delivered: int = 0
    digests_sent: int = 0
    digested_events: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    uncertain: int = 0  # posts whose outcome was unknown (no answer, reset, 5xx)
    decisions: Counter[str] = field(default_factory=Counter)  # events per decision reason
    notes: Counter[str] = field(default_factory=Counter)
    silenced_events: int = 0
    silenced: Counter[str] = field(default_factory=Counter)  # by silence id

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "events": dict(self.events), "alerts_sent": self.alerts_sent,
                "alerted_events": self.alerted_events, "repeat_events": self.repeat_events,
                "updates_sent": self.updates_sent, "samples_sent": self.samples_sent,
                "already_delivered": self.already_delivered, "digests_sent": self.digests_sent,
                "digested_events": self.digested_events, "dropped": dict(self.dropped), "retries": self.retries,
                "uncertain": self.uncertain, "decisions": dict(self.decisions), "notes": dict(self.notes),
                "silenced_events": self.silenced_events, "silenced": dict(self.silenced)}


@dataclass
class _Group:
    alerts: list[Alert] = field(default_factory=list)

    @property
    def first(self) -> Alert:
        return self.alerts[0]

    @property
    def last(self) -> Alert:
        return self.alerts[-1]

    @property
    def count(self) -> int:
        return len(self.alerts)

    def after(self, through: str) -> _Group:
        done = position(through)
        return _Group([a for a in self.alerts if a.ref.position > done])


@dataclass(frozen=True)
class _Alerting:
    """A group decided ALERT, with the budget slot it takes."""

    fp: str
    group: _Group
    sender: Sender
    slot: int


@dataclass
class _Pending:
    """A digest bucket holding events of this processor."""

    destination: str
    index: int
    held_since: Position | None  # every event of this processor up to here ended before the bucket got any
    events: int = 0


class Alerter:
    def __init__(
        self,
        *,
        levels: Set[str],
        state: AlertState,
        senders: Mapping[Level, Sender] | Mapping[str, Sender],
        display_tz: ZoneInfo,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        dedup_window: float = 300.0,
        digest_interval: float = 60.0,
        owner: str | None = None,
        send_stale_after: float = SEND_STALE_SECONDS,
        retry_max: float = BACKOFF_MAX_SECONDS,
        mode: Mode = Mode.WEBHOOK,
        update_interval: float = 10.0,
        resolve_after: float = 900.0,
        samples_per_minute: int = SAMPLES_PER_MINUTE,
        routes: Routes | None = None,
        silencer: Silencer | None = None,
        background_upkeep: bool = False,
        upkeep_gap: float = UPKEEP_GAP_SECONDS,
    ) -> None:
        self._levels = levels
        self._keep = frozenset(Level(x) for x in levels if x in Level.__members__)
        self._state = state
        self._senders: dict[str, Sender] = {str(k): v for k, v in senders.items()}  # by route name with ``routes``,
        # else by level (ERROR is the fallback)
        self._by_name = {sender.name: sender for sender in senders.values()}
        self._routes = routes
        self._silencer = silencer
        self._tz = display_tz
        self._clock = clock
        self._sleep = sleep
        self._dedup_window = dedup_window
        self._digest_interval = digest_interval
        self._owner = owner or uuid.uuid4().hex
        self._stale_after = send_stale_after
        self._retry_max = retry_max
        self._mode = mode
        self._high_water: dict[str, tuple[int, int, int] | None] = {}
        self._pending: dict[str, _Pending] = {}
        self._not_before: dict[str, int] = {}  # destination -> first digest index still open to additions
        self._ending: list[Ending] = []  # alerts and digests posted, not yet ended
        self._ending_since = 0.0  # when the first of them was
        self._claimed: list[str] = []  # claimed together (a batch's alerts, the digests due), not posted yet
        self._last: Position | None = None
        self._batch_start: Position | None = None
        self.stats = Stats()
        self.slack = SlackStatus(since=clock())  # the heartbeat's Slack state (consumer/slack_status.py)
        incidents = Incidents(state=state, senders=[s for s in map(threaded, self._by_name.values()) if s],
                              counts=self.stats, display_tz=display_tz, clock=clock, sleep=sleep, retry_max=retry_max,
                              update_interval=update_interval, resolve_after=resolve_after,
                              samples_per_minute=samples_per_minute, pace=lambda: self.upkeep.pace())
        self.upkeep = Upkeep(incidents, self.stats, background=background_upkeep,
                             gap=upkeep_gap)  # Web API incidents' upkeep (consumer/incidents.py)

    # -- what the KCL adapter sees ------------------------------------------------------------------------------
    @property
    def held(self) -> int:
        """Events of this processor waiting in unsent digests."""
        return sum(p.events for p in self._pending.values())

    @property
    def safe_through(self) -> Position | None:
        """The last record whose events have all ended (None: none yet)."""
        if not self._pending:
            return self._last
        marks = [p.held_since for p in self._pending.values()]
        if any(mark is None for mark in marks):
            return None
        return min((mark for mark in marks if mark is not None), key=lambda mark: mark.order)

    def handle_batch(self, records: Sequence[RecordIn]) -> None:
        self._batch_start = self._last
        self.tick()  # older, held-back events go first
        if self._silencer is not None:
            self._silencer.refresh()
        groups: dict[tuple[str, str | None], _Group] = {}
        for record in records:
            for alert in self._alerts_in(record):
                groups.setdefault(self._group_key(alert.event), _Group()).alerts.append(alert)
        over: dict[str, list[_Group]] = {}  # destination -> its groups for the digest; all added in one round trip
        waiting = [(fp, self._not_yet_delivered(group), silence) for (fp, silence), group in groups.items()]
        closed: set[str] = set()  # refused as repeats: no open incident (decided as such in the next round)
        while waiting:  # (a group whose claim was refused, or not counted after all, is decided again)
            alerts: list[_Alerting] = []  # begun together (one round trip)
            repeats: list[tuple[str, _Group, Sender]] = []  # counted together (one round trip)
            for fp, group, silence in waiting:
                self._handle(fp, group, silence, over, alerts, repeats, closed=fp in closed)
            again, closed = self._count_repeats(repeats, over)
            waiting = [(fp, rest, None) for fp, rest in [*self._alert_all(alerts), *again]]
        self._end_posted()
        if over:
            self._to_digest(over)
        if records:
            self._last = Position(records[-1].sequence_number, records[-1].sub_sequence_number)

    def tick(self, *, force: bool = False) -> None:
        """Send the digests whose interval closed (``force``: all of them now), update incidents. Called for
        every batch, empty ones included."""
        now = self._clock()
        due = [(bucket, pending) for bucket, pending in sorted(self._pending.items(), key=lambda item: item[1].index)
               if force or now >= bucket_closes_at(pending.index, self._digest_interval) + SEAL_GRACE_SECONDS]
        if due:
            self._send_digests(due)
        if self._mode is Mode.WEB_API:
            self.upkeep.tend()

    def close(self) -> None:
        """The processor stops: the incidents' upkeep ends after its step in hand (nothing of it is an outcome)."""
        self.upkeep.close()

    def drain(self, deadline_seconds: float = DRAIN_SECONDS) -> None:
        """At shard end: send every held digest now, over budget if need be, so nothing stays behind SHARD_END."""
        end = self._clock() + deadline_seconds
        while self._pending and self._clock() < end:
            self.tick(force=True)
            if self._pending:
                self._sleep(BUSY_POLL_SECONDS)
        if self._pending:
            log.warning("%d events still wait in a digest another processor is sending", self.held)

    # -- parsing ------------------------------------------------------------------------------------------------
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
            self.stats.events[parsed.level] += 1  # a StrEnum: counted under its name
            if parsed.flaw is not None:
                self.stats.notes[parsed.flaw] += 1
            if parsed.level in self._keep:  # (consumer.pipeline.filter.is_alert, without the lookups)
                ref = RecordRef(record.shard_id, record.sequence_number, record.sub_sequence_number, index)
                alerts.append(Alert(parsed, ref))
        return alerts

    # -- one group: decide, then carry it out ---------------------------------------------------------------------
    def _group_key(self, event: LogEvent) -> tuple[str, str | None]:
        """(fingerprint key, the id of the silence holding the event). The key is the fingerprint, per route, and
        marked with the last silence over the event that ended (its next occurrence is a new problem)."""
        fp = fingerprint(event)
        if self._routes is not None:
            fp = f"{route_for(event, self._routes).name}/{fp}"
        if self._silencer is None:
            return fp, None
        ended = self._silencer.ended_over(event)
        holding = self._silencer.holding(event)
        return (fp if ended is None else f"{fp}~{ended.id}"), (holding.id if holding is not None else None)

    def _handle(self, fp: str, group: _Group, silence: str | None, over: dict[str, list[_Group]],
                alerts: list[_Alerting], repeats: list[tuple[str, _Group, Sender]], *, closed: bool = False) -> None:
        if not group.alerts:
            return
        sender = self._sender(group.first.event)
        promised = {a.slot for a in alerts if a.sender.name == sender.name}  # (slots of this round's alerts)
        view = self._state.view(sender.name, fp, self._clock(), group.first.ref.key, promised)
        if closed:
            view = replace(view, fingerprint_open=False)
        decision = decide(view, silenced=silence is not None)
        if decision.reason is Reason.ALERT:
            assert decision.slot is not None
            alerts.append(_Alerting(fp, group, sender, decision.slot))
        elif decision.reason is Reason.REPEAT and self._mode is Mode.WEB_API:
            repeats.append((fp, group, sender))
        elif decision.reason is Reason.SILENCED:
            assert silence is not None and self._silencer is not None
            self._count(decision.reason, group.count)
            self._silencer.count(silence, group.alerts)
            self.stats.silenced_events += group.count
            self.stats.silenced[silence] += group.count
        else:
            self._count(decision.reason, group.count)
            over.setdefault(sender.name, []).append(group)

    def _count(self, reason: Reason, events: int) -> None:
        self.stats.decisions[reason.value] += events

    def _not_yet_delivered(self, group: _Group) -> _Group:
        """Drop what an earlier message or digest already covered: a re-read after a restart or a lease move. Only
        events up to the shard's high-water mark (read once per shard) can have been covered."""
        shard = group.first.ref.shard_id
        if shard not in self._high_water:
            mark = self._state.ended_through(shard)
            self._high_water[shard] = position(mark) if mark else None
        high_water = self._high_water[shard]
        while group.alerts:
            if high_water is None or group.first.ref.position > high_water:
                return group
            ended = self._state.delivered(group.first.ref.key)
            if ended is None:
                return group
            rest = group.after(ended.through) if ended.through else _Group()
            covered = group.count - rest.count
            if ended.bucket:
                self._rejoin(ended.bucket, covered)
            else:
                self.stats.already_delivered += covered
            group = rest
        return group

    def _alert_all(self, alerts: Sequence[_Alerting]) -> list[tuple[str, _Group]]:
        """Begin the round's alerts together (``begin_all``), post each one taken; what is left to decide again
        (a refused claim's group, or the events after those another processor ended)."""
        if not alerts:
            return []
        now = self._clock()
        web_api = self._mode is Mode.WEB_API
        claims = [Claim(key=a.group.first.ref.key, owner=self._owner, now=now, budget=a.sender.name, slot=a.slot,
                        stale_after=self._stale_after, fingerprint=a.fp, dedup_window=self._dedup_window,
                        incident_events=a.group.count if web_api else 0, shard=a.group.first.ref.shard_id,
                        through=a.group.last.ref.key) for a in alerts]
        begun = self._state.begin_all(claims)
        taken = [(a, b) for a, b in zip(alerts, begun, strict=True) if b.verdict is Verdict.TAKEN]
        self._claimed = [a.group.first.ref.key for a, _ in taken]
        fresh, last_post = now, 0.0
        for alerting, began in taken:
            self._claimed.remove(alerting.group.first.ref.key)
            fresh = self._keep_fresh(fresh)
            self._end_if_due(last_post)
            started = self._clock()
            self._post_alert(alerting, began, now)
            last_post = self._clock() - started
        again = []
        for alerting, began in zip(alerts, begun, strict=True):
            if began.verdict is not Verdict.TAKEN:
                rest = self._not_taken(began, alerting.group, alerting.group.first.ref.key)
                if rest.alerts:
                    again.append((alerting.fp, rest))
        return again

    def _keep_fresh(self, since: float) -> float:
        """Claims taken together wait for the posts before theirs: after a slow post they are refreshed, so that
        no other processor takes them over as stale (``timing``). When they were last fresh."""
        now = self._clock()
        if now - since < WAITING_CLAIM_REFRESH_SECONDS:
            return since
        for key in self._claimed:
            self._state.keep_sending(key, self._owner, now)
        return now

    def _post_alert(self, alerting: _Alerting, begun: Begun, now: float) -> None:
        """One message for the group: an alert (webhook: "n times"), or an incident's root (Web API)."""
        fp, group, sender = alerting.fp, alerting.group, alerting.sender
        key, through = group.first.ref.key, group.last.ref.key
        web_api = self._mode is Mode.WEB_API
        self._count(Reason.ALERT, group.count)
        if web_api:
            base = render_alert(group.first, self._tz)
            payload = incident_payload(base, group.count, self._seen(group.last, now), self._tz)
        else:
            payload = render_alert(group.first, self._tz, repeat=group.count)
        posted = self._deliver(payload, sender, key, since=begun.since or now, uncertain=begun.takeover)
        if posted is None:
            self._end(Ending(key, self._owner, self._clock(), through, refused=True, release=fp))
            self.stats.dropped["slack_permanent_error"] += group.count
            return
        root = None
        if web_api:
            root = Incident(fp, group.count, now, posted.channel, posted.ts, shown_count=group.count,
                            root=json.dumps(base))
            self.upkeep.touch(fp, Touch(now, opened=group.first.event.message))
        self._end(Ending(key, self._owner, self._clock(), through, root=root))
        self.stats.alerts_sent += 1
        self.stats.alerted_events += group.count

    def _end(self, ending: Ending) -> None:
        """The ends of a batch's alerts go together (``_end_posted``: one round trip for all), so that an alert's
        post does not wait for the one before it to end. Until then a crash leaves their send claims, which a
        re-read takes over once stale. Web API mode looks each up in Slack (no duplicate), so its ends wait for the
        batch's end; webhook mode, where nothing can be looked up, ends the alerts posted before the next post once
        the oldest waited ``WEBHOOK_END_WITHIN_SECONDS`` or a post took that long (``_end_if_due``): a crash in that
        window may post them again, as one while an alert's own end is in flight may."""
        if not self._ending:
            self._ending_since = self._clock()
        self._ending.append(ending)

    def _end_if_due(self, last_post: float) -> None:
        """Webhook mode, before a post: end the alerts posted before it, if they waited long enough (see ``_end``)."""
        due = max(last_post, self._clock() - self._ending_since) >= WEBHOOK_END_WITHIN_SECONDS
        if self._mode is Mode.WEBHOOK and self._ending and due:
            self._end_posted()

    def _end_posted(self) -> None:
        if self._ending:
            ending, self._ending = self._ending, []
            self._state.end_all(ending)

    def _not_taken(self, begun: Begun, group: _Group, key: str) -> _Group:
        if begun.verdict is Verdict.ENDED:
            assert begun.ended is not None
            through = begun.ended.through
            rest = group.after(through) if through else _Group()
            done = group.count - rest.count
            if through is not None:  # another processor of this shard (a zombie) ended it meanwhile
                done_at = position(through)
                mark = self._high_water.get(group.first.ref.shard_id)
                self._high_water[group.first.ref.shard_id] = done_at if mark is None else max(mark, done_at)
            self.stats.already_delivered += done
            return rest
        if begun.verdict is Verdict.BUSY:
            log.info("message %s is being posted by another processor; waiting for it", key)
            self._sleep(BUSY_POLL_SECONDS)
        return group  # CONFLICT: the view was refreshed; decide again

    def _seen(self, alert: Alert, now: float) -> datetime:
        return alert.event.timestamp or datetime.fromtimestamp(now, UTC)

    # -- Web API incidents ----------------------------------------------------------------------------------------
    def _count_repeats(self, repeats: Sequence[tuple[str, _Group, Sender]],
                       over: dict[str, list[_Group]]) -> tuple[list[tuple[str, _Group]], set[str]]:
        """Count the batch's repeats into their open incidents (``add_repeats``), with the groups decided for the
        digest so far (``add_counts``: one round trip for both; ``over`` keeps the ones to add to a later bucket);
        what is left to decide again (no open incident after all, or a re-read's events after those counted
        before), and which of them have no open incident (a quiet one, or a webhook mode's dedup claim: not a
        repeat, whatever the view says)."""
        if not repeats:
            return [], set()
        now = self._clock()
        counting = [Repeated(fp, g.first.ref.shard_id, g.first.ref.key, g.last.ref.key, g.count)
                    for fp, g, _ in repeats]
        if over:
            digesting = _flat(over)
            over.clear()
            buckets, by_bucket = self._digest_buckets(digesting, now)
            counted, added = self._state.add_counts(counting, by_bucket, now)
            for destination, group in self._digested(digesting, buckets, added):
                over.setdefault(destination, []).append(group)
        else:
            counted = self._state.add_repeats(counting, now)
        again, closed = [], set()
        for (fp, group, sender), repeat in zip(repeats, counted, strict=True):
            if not repeat.open:
                again.append((fp, group))
                closed.add(fp)
            elif repeat.counted_through is not None:  # a re-read: some were counted before
                self.upkeep.touch(fp, Touch(now, repeated=True))
                rest = group.after(repeat.counted_through)
                self.stats.already_delivered += group.count - rest.count
                if rest.alerts:
                    again.append((fp, rest))
            else:
                self._count(Reason.REPEAT, group.count)
                self.stats.repeat_events += group.count
                self.upkeep.touch(fp, Touch(now, repeated=True, sender=threaded(sender),
                                            alerts=candidates(group.alerts)))
        return again, closed

    # -- digests --------------------------------------------------------------------------------------------------
    def _to_digest(self, over: Mapping[str, list[_Group]]) -> None:
        """The batch's groups for every destination's digest: one ``add_to_digest`` for all of them."""
        waiting = _flat(over)
        while waiting:
            now = self._clock()
            buckets, by_bucket = self._digest_buckets(waiting, now)
            waiting = self._digested(waiting, buckets, self._state.add_to_digest(by_bucket, now))

    def _digest_buckets(self, groups: Sequence[tuple[str, _Group]], now: float) -> tuple[
            dict[str, tuple[str, int]], dict[str, list[Contribution]]]:
        """Each destination's current bucket (name, index), and the groups' contributions by bucket."""
        buckets = {destination: digest_bucket(destination, now, self._digest_interval,
                                              self._not_before.get(destination, 0)) for destination, _ in groups}
        by_bucket: dict[str, list[Contribution]] = {}
        for destination, group in groups:
            by_bucket.setdefault(buckets[destination][0], []).append(self._contribution(group))
        return buckets, by_bucket

    def _digested(self, groups: Sequence[tuple[str, _Group]], buckets: Mapping[str, tuple[str, int]],
                  added: Mapping[str, Sequence[tuple[Added, str | None]]]) -> list[tuple[str, _Group]]:
        """The groups' events held in their buckets (or ended, a re-read's); the ones whose bucket was sealed (for
        a later bucket)."""
        results = {bucket: iter(outcomes) for bucket, outcomes in added.items()}
        sealed = []
        for destination, group in groups:
            bucket, index = buckets[destination]
            outcome, where = next(results[bucket])
            if outcome is Added.SEALED:
                sealed.append((destination, group))
                self._not_before[destination] = index + 1  # being sent: join the next one
            elif outcome is Added.ALREADY and where is not None:
                self._rejoin(where, group.count)
            else:
                self._hold(bucket, group.count)
        return sealed

    @staticmethod
    def _contribution(group: _Group) -> Contribution:
        event = group.first.event  # one fingerprint: one service, level and template for the whole group
        lines = {(event.level.value, event.service or "unknown", template(event.message)[:300]): group.count}
        return Contribution(group.first.ref.key, group.last.ref.key, lines)

    def _hold(self, bucket: str, events: int) -> None:
        destination, _, index = bucket.rpartition("#")
        pending = self._pending.setdefault(bucket, _Pending(destination, int(index), self._batch_start))
        pending.events += events

    def _rejoin(self, bucket: str, events: int) -> None:
        """Events re-read that went into ``bucket`` before: ended if it was sent, else held again."""
        if self._state.delivered(f"digest/{bucket}") is not None:
            self.stats.already_delivered += events
        else:
            self._hold(bucket, events)

    def _send_digests(self, due: Sequence[tuple[str, _Pending]]) -> None:
        """One digest per destination and interval for the whole application: outside the alert budget (what
        THROTTLE_MAX_PER_MINUTE limits is alerts), so held events wait at most an interval and a grace. The digests
        due now (one per destination, often) are claimed, sealed and read together, posted one by one and ended
        together: four round trips for all of them."""
        now = self._clock()
        claims = [Claim(key=f"digest/{bucket}", owner=self._owner, now=now, budget=pending.destination, slot=-1,
                        stale_after=self._stale_after) for bucket, pending in due]
        taken = []
        for (bucket, pending), (begun, contents) in zip(due, self._state.open_digests(claims), strict=True):
            if begun.verdict is Verdict.ENDED:
                assert begun.ended is not None
                self._digest_ended(bucket, refused=begun.ended.refused)
            elif begun.verdict is Verdict.TAKEN and contents is not None:
                taken.append((bucket, pending, begun, contents))
            # BUSY: another processor sends it
        self._claimed = [f"digest/{bucket}" for bucket, _, _, _ in taken]
        posted_digests: list[tuple[str, bool]] = []
        fresh = now
        for bucket, pending, begun, contents in taken:
            key = f"digest/{bucket}"
            self._claimed.remove(key)
            fresh = self._keep_fresh(fresh)
            self._not_before[pending.destination] = max(self._not_before.get(pending.destination, 0),
                                                        pending.index + 1)
            posted = self._deliver(render_digest(contents.lines, self._digest_interval),
                                   self._by_name[pending.destination], key, since=begun.since or now,
                                   uncertain=begun.takeover)
            self._end(Ending(key, self._owner, self._clock(), None, refused=posted is None))
            posted_digests.append((bucket, posted is None))
            if posted is not None:
                self.stats.digests_sent += 1
        self._end_posted()
        for bucket, refused in posted_digests:
            self._digest_ended(bucket, refused=refused)

    def _digest_ended(self, bucket: str, *, refused: bool) -> None:
        pending = self._pending.pop(bucket)
        if refused:
            self.stats.dropped["slack_permanent_error"] += pending.events
        else:
            self.stats.digested_events += pending.events

    # -- Slack ----------------------------------------------------------------------------------------------------
    def _sender(self, event: LogEvent) -> Sender:
        if self._routes is not None:
            return self._senders[route_for(event, self._routes).name]
        return self._senders.get(event.level) or self._senders[Level.ERROR]

    def _deliver(self, payload: Mapping[str, Any], sender: Sender, key: str, *, since: float,
                 uncertain: bool) -> Posted | None:
        """Posted once Slack took it; None on a permanent refusal. Transient trouble is retried by the one policy
        (consumer.retry), without end: an outage must not move the checkpoint past undelivered alerts. The send
        claim is kept fresh between attempts; an uncertain outcome makes the sender look before posting again."""
        unknown = uncertain

        def attempt() -> Posted:
            posted = sender.post(payload, key=key, since=since, uncertain=unknown)
            self.slack.delivered(self._clock())
            return posted

        def on_retry(problem: BaseException) -> None:
            nonlocal unknown
            self.slack.failed(self._clock(), f"{sender.name} unavailable: {problem}")
            self.stats.retries += 1
            if isinstance(problem, RetryableDelivery) and problem.uncertain:
                unknown = True
                self.stats.uncertain += 1
            self._end_posted()  # while Slack is in trouble, the messages posted before it do not wait
            for held in (key, *self._claimed):  # (the others claimed together wait their turn)
                self._state.keep_sending(held, self._owner, self._clock())

        try:
            return patiently(attempt, self._sleep, f"slack {sender.name}", on_retry, cap=self._retry_max)
        except PermanentDelivery as exc:
            self.slack.failed(self._clock(), f"{sender.name} refused: {exc}")
            log.error("slack %s refused a message permanently (%s): counted as dropped", sender.name, exc)
            return None


def _flat(over: Mapping[str, Sequence[_Group]]) -> list[tuple[str, _Group]]:
    """(destination, group) of each group decided for a destination's digest."""
    return [(destination, group) for destination, groups in over.items() for group in groups]
