"""Alert state shared by every processor of the application, behind one interface (``AlertState``).

``MemoryState`` holds it in one process (unit tests, benches); ``DynamoState`` in the DynamoDB table Terraform
declares (``<app>-state``), so that it holds across shards and workers. tests/test_consumer_state_contract.py runs one
suite over both.

What is kept:
- a **budget** per destination: ``limit`` slots, each holding its last send time; a message takes a slot that is
  free (its last use is a window old), so at most ``limit`` messages leave in any window (a sliding window);
- a **fingerprint** item: in webhook mode the dedup claim (who alerted it, when); in Web API mode the incident
  (open or quiet, its root message, the count shown and the count so far, per-shard positions already counted);
- a **send record** per message, keyed by its first event (idempotency across re-reads and zombies): ``sending``
  (claimed before posting) then ``done`` with the last event it covers;
- a **digest bucket** per destination and interval: counts per (level, service, template), sealed when sent; the
  groups of one batch go in as one **part** (their counts, and where each group's events start and end: a re-read's
  look-up by the group's first event, as for send records);
- a **high-water mark** per shard: the last event covered by any ended message or digest contribution.

One alert costs two sequential round trips: ``begin`` (budget slot + fingerprint + send claim, one transaction)
and ``end`` (send record + incident root + high-water mark, one transaction). A batch's alerts begin together
(``begin_all``: one transaction for up to ``BEGINS_PER_TRANSACTION`` of them) and end together after their posts
(``end_all``: one for up to ``ENDS_PER_TRANSACTION``; webhook mode within a bound, ``consumer.alerter``), so an
alert costs a share of one round trip before its post and a share of one after. A batch's repeats into open
incidents cost one, whatever their number (``add_repeats``: one transaction; what they show is read by the
incidents' upkeep, off the record path: ``incidents``). The over-budget groups of one batch cost one, every
destination's: ``add_to_digest`` (the part + each bucket's list of parts + the shard's chain of parts + high-water
mark), whatever the number of groups. A batch with both costs one too: ``add_counts``, the same items in one
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

DigestLine = tuple[str, str, str]  # (level, service, template)
CONTRIBUTIONS_PER_PART = 500  # a part's JSON stays well under DynamoDB's 400 KB item (a line's template <= 300 chars)
BEGINS_PER_TRANSACTION = 33  # three items each (budget slot, fingerprint, send claim): a transaction holds 100
ENDS_PER_TRANSACTION = 48  # DynamoDB transactions hold 100 items: 2 per end (send record, root or release), the marks


class Verdict(StrEnum):
    TAKEN = "taken"  # the caller posts
    ENDED = "ended"  # the message already ended (a re-read, or a zombie's twin): skip what it covered
    BUSY = "busy"  # another live processor is posting it: wait
    CONFLICT = "conflict"  # the fingerprint or the budget slot was taken meanwhile: decide again (view refreshed)


@dataclass(frozen=True)
class Claim:
    key: str  # the message's idempotency key (its first event, or "digest/<bucket>")
    owner: str  # this processor
    now: float
    budget: str  # the destination whose budget it spends
    slot: int
    stale_after: float
    fingerprint: str | None = None  # webhook: the dedup claim; Web API: the incident opened by a root message
    dedup_window: float = 0.0
    incident_events: int = 0  # Web API: events the root message counts
    shard: str = ""
    through: str = ""  # the last event the message covers (for the incident's per-shard position)


@dataclass(frozen=True)
class Ended:
    through: str | None  # the last event it covered (None for digests)
    refused: bool = False  # Slack refused it for good (counted as dropped)
    bucket: str | None = None  # a digest contribution: the bucket holding the events


@dataclass(frozen=True)
class Ending:
    """One message's end: what ``AlertState.end`` takes, for ``end_all``."""

    key: str
    owner: str
    now: float
    through: str | None
    refused: bool = False
    release: str | None = None
    root: Incident | None = None


@dataclass(frozen=True)
class Begun:
    verdict: Verdict
    ended: Ended | None = None
    takeover: bool = False  # took over a stale claim: an earlier attempt's outcome is unknown
    since: float | None = None  # on a takeover: when the first claim was taken (look the post up from there)


@dataclass(frozen=True)
class View:
    """What this processor knows without asking DynamoDB: the input of the pure decision."""

    fingerprint_open: bool  # webhook: alerted within the dedup window; Web API: its incident is open
    free_slot: int | None  # a budget slot known to be free, None when the budget is known to be spent


@dataclass(frozen=True)
class Incident:
    fingerprint: str
    count: int
    last_seen: float
    channel: str | None = None
    ts: str | None = None
    shown_count: int = 0
    shown_at: float = 0.0
    open: bool = True
    root: str | None = None  # the root message's first rendering (JSON), for updates by any processor


@dataclass(frozen=True)
class Repeated:
    """Web API: events of one shard (``first``..``last``) to count into the fingerprint's open incident."""

    fingerprint: str
    shard: str
    first: str
    last: str
    events: int


@dataclass(frozen=True)
class Repeat:
    open: bool  # False: no open incident (decide again)
    counted_through: str | None = None  # some events were counted before (a re-read): those up to here

    @property
    def counted(self) -> bool:
        return self.open and self.counted_through is None


@dataclass
class DigestContents:
    lines: dict[DigestLine, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.lines.values())


@dataclass(frozen=True)
class Contribution:
    """One group's events for a digest bucket, recorded under its first event (a re-read's look-up)."""

    key: str  # the group's first event
    through: str  # its last event
    lines: Mapping[DigestLine, int]


class Added(StrEnum):
    ADDED = "added"
    SEALED = "sealed"  # the bucket is being sent: add to a later one
    ALREADY = "already"  # these events were added before (a re-read)


class AlertState(Protocol):
    def view(self, budget: str, fingerprint: str, now: float, key: str = "",
             promised: Set[int] = frozenset()) -> View:
        """What is known locally (no I/O). A fingerprint claimed by ``key`` itself (a re-read after a crash) is not
        open: that alert gets its claim back. ``promised``: the budget's slots other alerts of the same
        ``begin_all`` take (not free)."""
        ...

    def ended_through(self, shard_id: str) -> str | None:
        """The shard's high-water mark (read once per shard): events after it cannot have ended anywhere."""
        ...

    def delivered(self, key: str) -> Ended | None:
        """The ended message or digest contribution keyed ``key`` (a re-read's look-up), or None."""
        ...

    def begin(self, claim: Claim) -> Begun:
        """Budget slot + fingerprint + send claim, all or nothing (one round trip)."""
        ...

    def begin_all(self, claims: Sequence[Claim]) -> list[Begun]:
        """``begin`` of each (a batch's alerts: other fingerprints, other slots), in order: one round trip for up to
        ``BEGINS_PER_TRANSACTION`` of them, one more when some are refused (the rest go again)."""
        ...

    def keep_sending(self, key: str, owner: str, now: float) -> None:
        """Refresh the send claim between attempts, so that nobody takes it over as stale."""
        ...

    def end(self, key: str, owner: str, now: float, through: str | None, *, refused: bool = False,
            release: str | None = None, root: Incident | None = None) -> None:
        """The message ended (one round trip): ``release`` gives a fingerprint claim back (Slack refused the
        alert); ``root`` records an incident's root message (channel, ts, the count it shows)."""
        ...

    def end_all(self, endings: Sequence[Ending]) -> None:
        """``end`` of each, in order, in one round trip (one per ``ENDS_PER_TRANSACTION``)."""
        ...

    def add_repeat(self, fingerprint: str, shard: str, first: str, last: str, events: int, now: float) -> Repeat:
        """Web API: count ``events`` (``first``..``last`` of one shard) into the open incident (one round trip).
        Refused: no open incident, or (a re-read) the shard's events up to ``counted_through`` were counted before."""
        ...

    def add_repeats(self, repeats: Sequence[Repeated], now: float) -> list[Repeat]:
        """``add_repeat`` of each (a batch's, one per fingerprint), in order: one round trip for any number of them
        (one more when some are refused). Nothing is read: showing the counts is the incidents' upkeep's."""
        ...

    def incidents(self, fingerprints: Sequence[str]) -> dict[str, Incident]:
        """Web API: the incidents of these fingerprints, as they are, without their ``root`` (``claim_update``
        gives it): one round trip for any number of them."""
        ...

    def claim_update(self, fingerprint: str, now: float, interval: float) -> tuple[bool, Incident | None]:
        """Web API: the right to update the root now (none in the last ``interval``, new counts exist). Refused:
        the incident as it is (None if gone), so the caller knows whether its counts are shown already."""
        ...

    def claim_quiet(self, fingerprint: str, now: float, after: float) -> tuple[bool, Incident | None]:
        """Web API: mark the incident quiet if nothing came for ``after`` seconds; the caller updates the root.
        Refused: the incident as it is (None if gone)."""
        ...

    def claim_samples(self, fingerprint: str, now: float, per_minute: int, wanted: int) -> int:
        """Web API: up to ``wanted`` of the incident's ``per_minute`` thread samples for this minute, in one round
        trip: how many were granted (0 once the minute's are taken)."""
        ...

    def add_to_digest(self, contributions: Mapping[str, Sequence[Contribution]],
                      now: float) -> dict[str, list[tuple[Added, str | None]]]:
        """Count the contributions (groups of one shard, by digest bucket) into their buckets, each recorded under
        its key: one round trip for all of them (one per ``CONTRIBUTIONS_PER_PART``). One result per contribution,
        in order, by bucket; ALREADY comes with the bucket they went to."""
        ...

    def add_counts(self, repeats: Sequence[Repeated], contributions: Mapping[str, Sequence[Contribution]],
                   now: float) -> tuple[list[Repeat], dict[str, list[tuple[Added, str | None]]]]:
        """``add_repeats`` and ``add_to_digest`` (one shard's) in one round trip, as one transaction (one more when
        some are refused, as for each alone): a Web API batch's counts."""
        ...

    def open_digests(self, claims: Sequence[Claim]) -> list[tuple[Begun, DigestContents | None]]:
        """Digests whose interval closed (``claims`` keyed ``digest/<bucket>``): claim the send of each, as ``begin``
        does, and seal and read the ones taken (their contents; None for the others): a few round trips for any
        number of them."""
        ...
