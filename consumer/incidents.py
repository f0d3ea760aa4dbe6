"""Web API incidents' upkeep: root updates (coalesced), thread samples and "quiet since ...", off the record path.

None of this is an outcome. A repeat is counted into its incident (``AlertState.add_repeat``) on the record path,
before the checkpoint may pass it; what is left is showing it:
- the root's count and last-seen time, updated in place at most once per ``update_interval`` per incident (by
  whichever processor claims the update);
- new message texts as thread replies, ``samples_per_minute`` per incident (each one claimed);
- "quiet since ..." once nothing came for ``resolve_after`` (claimed; that update shows the count so far).

Each of these is a claim (a DynamoDB round trip) and a Slack call. With thirty incidents open, a catch-up paid for
them on every batch, so ``Upkeep`` hands them to one worker thread, which does them while the next batch is read.
The record path only leaves a note per incident (``touch``), merged with any note not taken yet, so the work waiting
is bounded by the number of incidents, whatever the rate. The worker makes one request (a claim or a Slack call) per
``gap`` seconds (``timing.UPKEEP_GAP_SECONDS``): Slack allows about one post per second per channel and ~50
``chat.update`` a minute (https://api.slack.com/docs/rate-limits), the state table is the record path's too (a
storm's claims, one per incident and update interval on every processor, slowed the alerts' own round trips), and
nothing the worker does is urgent (the alerts are). In a storm of many incidents, updates come later and the thread
samples fewer; the counts stay exact. The record path counts repeats without reading their incidents: the worker
reads the ones whose threads may get samples, all in one request (``read``), and a thread sample takes its claim with
the others of the same incident in one request (``claim_samples``).
``Upkeep(background=False)`` does the work at once, on the caller's thread (unit tests with a fake clock).

A stop drops the work not done yet: counts not shown are shown by the incident's next update (by any processor), or
at the latest by its "quiet since ..." update.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from consumer.deliver import ThreadedSender
from consumer.deliver.slack import Posted
from consumer.errors import DeliveryError, PermanentDelivery
from consumer.model import Alert
from consumer.pipeline.render import incident_payload, render_sample
from consumer.retry import patiently
from consumer.state import AlertState, Incident

log = logging.getLogger("cali.incidents")

SAMPLES_PER_MINUTE = 3
SAMPLE_MEMORY = 50  # message texts remembered per incident, not to post the same sample twice


class Counts(Protocol):
    updates_sent: int
    samples_sent: int
    notes: Counter[str]


@dataclass
class _Known:
    """An incident this processor took part in."""

    last_seen: float
    dirty_at: float | None = None  # counts of ours may not be shown yet; try to update the root from then on
    sampled: set[str] = field(default_factory=set)
    unsampled: list[Alert] = field(default_factory=list)  # repeats seen while the root's post was in flight (no ts
    # yet): thread samples once the root is known
    samples_spent: int | None = None  # the minute whose thread samples are all taken (no claim asked again in it)


@dataclass
class Touch:
    """What the record path saw of one incident since the worker last looked."""

    seen: float  # when (the latest)
    opened: str | None = None  # this processor posted a new root for it, with this message text
    repeated: bool = False  # repeats were counted into it (by us, or before a re-read)
    sender: ThreadedSender | None = None  # repeats were counted into it by us (None: a re-read's)
    alerts: list[Alert] = field(default_factory=list)  # candidates for thread samples, one per message text

    def merge(self, later: Touch) -> None:
        self.seen = max(self.seen, later.seen)
        if later.opened is not None:  # a new root: what came before it belonged to the incident it replaced
            self.opened, self.repeated, self.alerts = later.opened, False, []
        self.repeated = self.repeated or later.repeated
        self.sender = later.sender or self.sender
        texts = {alert.event.message for alert in self.alerts}
        self.alerts += [alert for alert in later.alerts if alert.event.message not in texts][
            :max(0, SAMPLE_MEMORY - len(self.alerts))]


def candidates(alerts: Sequence[Alert]) -> list[Alert]:
    """One alert per message text, at most ``SAMPLE_MEMORY`` (what a note may carry to the worker)."""
    first: dict[str, Alert] = {}
    for alert in alerts:
        first.setdefault(alert.event.message, alert)
        if len(first) >= SAMPLE_MEMORY:
            break
    return list(first.values())


class Incidents:
    """The upkeep itself, on one thread at a time (the worker's, or the caller's)."""

    def __init__(self, *, state: AlertState, senders: Sequence[ThreadedSender], counts: Counts, display_tz: ZoneInfo,
                 clock: Callable[[], float], sleep: Callable[[float], None], retry_max: float,
                 update_interval: float, resolve_after: float, samples_per_minute: int = SAMPLES_PER_MINUTE,
                 pace: Callable[[], None] = lambda: None) -> None:
        self._state = state
        self._senders = senders
        self._counts = counts
        self._tz = display_tz
        self._clock = clock
        self._sleep = sleep
        self._retry_max = retry_max
        self._update_interval = update_interval
        self._resolve_after = resolve_after
        self._samples_per_minute = samples_per_minute
        self._pace = pace  # called before each request (a claim or a Slack call)
        self._known: dict[str, _Known] = {}

    def read(self, notes: Mapping[str, Touch]) -> dict[str, Incident]:
        """The incidents whose threads may get samples from these notes (their root's channel and ts): one request
        for all of them, none when no note has a new message text to show."""
        minute = int(self._clock() // 60)
        wanted = [fp for fp, touch in notes.items() if touch.sender is not None and self._may_sample(
            self._known.get(fp), touch, minute)]
        if not wanted:
            return {}
        self._pace()
        return self._state.incidents(wanted)

    @staticmethod
    def _may_sample(known: _Known | None, touch: Touch, minute: int) -> bool:
        if known is None:
            return bool(touch.alerts)
        return known.samples_spent != minute and any(a.event.message not in known.sampled for a in touch.alerts)

    def apply(self, fp: str, touch: Touch, incident: Incident | None = None) -> None:
        """One note; ``incident`` as ``read`` found it (None: not read, no sample to post)."""
        if touch.opened is not None:
            self._known[fp] = _Known(last_seen=touch.seen, sampled={touch.opened})
        if not touch.repeated:
            return
        known = self._known.setdefault(fp, _Known(last_seen=touch.seen))
        known.last_seen = max(known.last_seen, touch.seen)
        known.dirty_at = known.dirty_at or touch.seen  # (after a re-read too: the processor that counted them may
        # be dead)
        if touch.sender is not None:
            now = self._clock()
            self._maybe_update(fp, known, touch.sender, now)
            if incident is not None:
                self._post_samples(fp, touch.alerts, known, incident, touch.sender, now)

    def tend(self) -> None:
        """Update the roots whose counts are not shown yet (their interval passed); "quiet since ..." for the
        incidents without repeats for ``resolve_after``."""
        if not self._senders:
            return
        sender = self._senders[0]  # the root's channel is in the incident
        now = self._clock()
        for fp, known in list(self._known.items()):
            self._maybe_update(fp, known, sender, now)
            if now - known.last_seen < self._resolve_after:
                continue
            self._pace()
            claimed, incident = self._state.claim_quiet(fp, now, self._resolve_after)
            if claimed and incident is not None:
                self._update_root(incident, sender, quiet=True)
                del self._known[fp]
            elif incident is not None and incident.open and incident.last_seen > known.last_seen:
                known.last_seen = incident.last_seen  # someone saw more meanwhile
            else:
                del self._known[fp]

    def _maybe_update(self, fp: str, known: _Known, sender: ThreadedSender, now: float) -> None:
        if known.dirty_at is None or now < known.dirty_at:
            return
        self._pace()
        claimed, incident = self._state.claim_update(fp, now, self._update_interval)
        if incident is None or not incident.open:
            known.dirty_at = None
            return
        if known.unsampled and incident.ts is not None:
            self._post_samples(fp, [], known, incident, sender, now)
        if not claimed:  # shown already, or updated within the interval: look again when it has passed
            known.dirty_at = None if incident.shown_count >= incident.count else \
                incident.shown_at + self._update_interval
            return
        known.dirty_at = None
        self._update_root(incident, sender, quiet=False)

    def _update_root(self, incident: Incident, sender: ThreadedSender, *, quiet: bool) -> None:
        if incident.ts is None or incident.root is None:
            return
        payload = incident_payload(json.loads(incident.root), incident.count,
                                   datetime.fromtimestamp(incident.last_seen, UTC), self._tz, quiet=quiet)
        self._pace()
        try:
            patiently(lambda: sender.update(Posted(incident.channel, incident.ts), payload), self._sleep,
                      f"slack {sender.name} update", cap=self._retry_max)
            self._counts.updates_sent += 1
        except PermanentDelivery as exc:
            log.error("slack %s refused an update (%s)", sender.name, exc)
            self._counts.notes["update_refused"] += 1

    def _post_samples(self, fp: str, alerts: Sequence[Alert], known: _Known, incident: Incident,
                      sender: ThreadedSender, now: float) -> None:
        if incident.ts is None:  # the root is being posted (by another processor, or its end waits for the batch's)
            texts = {alert.event.message for alert in known.unsampled} | known.sampled
            for alert in alerts:
                if len(known.unsampled) < self._samples_per_minute and alert.event.message not in texts:
                    known.unsampled.append(alert)
                    texts.add(alert.event.message)
            return
        alerts, known.unsampled = [*known.unsampled, *alerts], []
        minute = int(now // 60)
        first: dict[str, Alert] = {}  # the first alert of each text not sampled yet
        for alert in alerts:
            if alert.event.message not in known.sampled:
                first.setdefault(alert.event.message, alert)
        new = list(first.values())[:max(0, min(self._samples_per_minute, SAMPLE_MEMORY - len(known.sampled)))]
        if not new or known.samples_spent == minute:
            return
        self._pace()
        granted = self._state.claim_samples(fp, now, self._samples_per_minute, len(new))
        if granted < len(new):
            known.samples_spent = minute
        for alert in new[:granted]:
            known.sampled.add(alert.event.message)
            self._pace()
            try:  # a sample is a courtesy, not an outcome: one attempt
                sender.reply(Posted(incident.channel, incident.ts), render_sample(alert, self._tz),
                             key=alert.ref.key)
                self._counts.samples_sent += 1
            except DeliveryError as exc:
                log.info("a thread sample was not posted (%s)", exc)
                self._counts.notes["sample_not_posted"] += 1


class _Stopped(Exception):
    """The upkeep was closed while a step waited for its pace."""


class Upkeep:
    """Takes the record path's notes and does ``Incidents``' work: on a worker thread (``background``), or at once.

    The worker's failures are its own: logged in one line and counted (``upkeep_failed``), never the batch's."""

    def __init__(self, incidents: Incidents, counts: Counts, *, background: bool, gap: float = 0.0) -> None:
        self._incidents = incidents
        self._counts = counts
        self._background = background
        self._gap = gap  # seconds between the worker's Slack calls (real time: the worker's own pace)
        self._next_call = 0.0
        self._notes: dict[str, Touch] = {}  # fingerprint -> what happened since the worker last looked
        self._tend = False
        self._busy = False
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def touch(self, fp: str, touch: Touch) -> None:
        if not self._background:
            self._incidents.apply(fp, touch, self._incidents.read({fp: touch}).get(fp))
            return
        with self._changed:
            if fp in self._notes:
                self._notes[fp].merge(touch)
            else:
                self._notes[fp] = touch
            self._wake()

    def tend(self) -> None:
        if not self._background:
            self._incidents.tend()
            return
        with self._changed:
            self._tend = True
            self._wake()

    def idle(self, timeout: float) -> bool:
        """Wait until the worker has nothing left to do (tests, benches); whether it got there in ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: not (self._notes or self._tend or self._busy), timeout)

    def close(self) -> None:
        """No more work: the worker ends after the step in hand (the rest is dropped, see the module's note)."""
        with self._changed:
            self._closed = True
            dropped = len(self._notes)
            self._notes.clear()
            self._changed.notify_all()
        if dropped:
            log.info("incident upkeep stopped with %d incidents' updates not done; their next update shows them",
                     dropped)

    def pace(self) -> None:
        """Before each request of the worker (a claim or a Slack call): wait until ``gap`` seconds passed since its
        last (a stop ends the wait, and the step)."""
        if not self._background or self._gap <= 0:
            return
        with self._changed:
            delay = self._next_call - time.monotonic()
            if delay > 0:
                self._changed.wait_for(lambda: self._closed, delay)
            if self._closed:
                raise _Stopped
            self._next_call = time.monotonic() + self._gap

    def _wake(self) -> None:  # (holding ``_changed``)
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="incident-upkeep", daemon=True)
            self._thread.start()
        self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._closed or bool(self._notes) or self._tend)
                if self._closed:
                    return
                notes, self._notes = self._notes, {}
                tend, self._tend = self._tend, False
                self._busy = True
            found: dict[str, Incident] = {}
            self._step(lambda: found.update(self._incidents.read(notes)))  # noqa: B023 (called at once)
            for fp, touch in notes.items():
                if self._closed:
                    return
                self._step(lambda: self._incidents.apply(fp, touch, found.get(fp)))  # noqa: B023 (called at once)
            if tend and not self._closed:
                self._step(self._incidents.tend)

    def _step(self, work: Callable[[], None]) -> None:
        try:
            work()
        except _Stopped:
            pass
        except Exception as exc:  # a courtesy failed (DynamoDB or Slack gave up): the next note tries again
            log.error("incident upkeep failed: %s: %s", type(exc).__name__, exc)
            self._counts.notes["upkeep_failed"] += 1

