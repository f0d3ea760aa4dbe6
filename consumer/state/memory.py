"""AlertState in one process's memory: the same contract as DynamoState (tests/test_consumer_state_contract.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace

from consumer.model import position
from consumer.state import (
    Added,
    Begun,
    Claim,
    Contribution,
    DigestContents,
    DigestLine,
    Ended,
    Ending,
    Incident,
    Repeat,
    Repeated,
    Verdict,
    View,
)

OPEN_FOR_EVER = float("inf")


@dataclass
class _Fingerprint:
    owner: str
    until: float  # open (dedup claim or incident) until then
    incident: Incident | None = None
    counted: dict[str, str] = field(default_factory=dict)  # shard -> last event counted
    samples: Counter[int] = field(default_factory=Counter)  # minute -> samples posted


@dataclass
class _Send:
    status: str
    owner: str
    at: float
    ended: Ended | None = None
    started: float = 0.0  # the first claim's time: posts of every attempt are younger


class MemoryState:
    def __init__(self, limit: int, window: float = 60.0, limits: Mapping[str, int] | None = None) -> None:
        self._limit = limit
        self._limits = dict(limits or {})  # per budget (a route's); others: ``limit``
        self._window = window
        self._slots: dict[str, dict[int, float]] = {}  # budget -> slot -> its last use
        self._fingerprints: dict[str, _Fingerprint] = {}
        self._sends: dict[str, _Send] = {}
        self._high_water: dict[str, str] = {}
        self._digests: dict[str, tuple[Counter[DigestLine], bool]] = {}

    def view(self, budget: str, fingerprint: str, now: float, key: str = "",
             promised: Set[int] = frozenset()) -> View:
        claim = self._fingerprints.get(fingerprint)
        return View(fingerprint_open=claim is not None and now < claim.until and claim.owner != key,
                    free_slot=self._free_slot(budget, now, promised))

    def _free_slot(self, budget: str, now: float, promised: Set[int] = frozenset()) -> int | None:
        used = self._slots.get(budget, {})
        return next((slot for slot in range(self._limits.get(budget, self._limit))
                     if slot not in promised and self._slot_free(used, slot, now)), None)

    def _slot_free(self, used: Mapping[int, float], slot: int, now: float) -> bool:
        return slot not in used or now - used[slot] >= self._window

    def ended_through(self, shard_id: str) -> str | None:
        return self._high_water.get(shard_id)

    def delivered(self, key: str) -> Ended | None:
        send = self._sends.get(key)
        return send.ended if send is not None and send.status == "done" else None

    def begin(self, claim: Claim) -> Begun:
        send = self._sends.get(claim.key)
        if send is not None and send.status == "done":
            return Begun(Verdict.ENDED, send.ended)
        takeover = send is not None and send.owner != claim.owner
        if takeover and send is not None and claim.now - send.at < claim.stale_after:
            return Begun(Verdict.BUSY)
        used = self._slots.setdefault(claim.budget, {})
        slot_free = claim.slot < 0 or (claim.slot < self._limits.get(claim.budget, self._limit)
                                       and self._slot_free(used, claim.slot, claim.now))
        fingerprint = self._fingerprints.get(claim.fingerprint) if claim.fingerprint else None
        fingerprint_free = fingerprint is None or claim.now >= fingerprint.until or fingerprint.owner == claim.key or (
            claim.incident_events > 0 and fingerprint.incident is None)  # (a webhook mode's dedup claim)
        if not (slot_free and fingerprint_free):
            return Begun(Verdict.CONFLICT)
        if claim.slot >= 0:
            used[claim.slot] = claim.now
        retake = takeover and fingerprint is not None and fingerprint.owner == claim.key
        if claim.fingerprint and not (retake and claim.incident_events):  # a retaken incident keeps its counts
            self._claim_fingerprint(claim, fingerprint)
        started = send.started if takeover and send is not None else claim.now
        self._sends[claim.key] = _Send("sending", claim.owner, claim.now, started=started)
        return Begun(Verdict.TAKEN, takeover=takeover, since=started if takeover else None)

    def _claim_fingerprint(self, claim: Claim, old: _Fingerprint | None) -> None:
        assert claim.fingerprint is not None
        if not claim.incident_events:
            self._fingerprints[claim.fingerprint] = _Fingerprint(claim.key, claim.now + claim.dedup_window)
            return
        incident = Incident(claim.fingerprint, claim.incident_events, claim.now)
        counted = dict(old.counted) if old is not None else {}
        counted[claim.shard] = claim.through
        self._fingerprints[claim.fingerprint] = _Fingerprint(claim.key, OPEN_FOR_EVER, incident, counted)

    def begin_all(self, claims: Sequence[Claim]) -> list[Begun]:
        return [self.begin(claim) for claim in claims]

    def keep_sending(self, key: str, owner: str, now: float) -> None:
        send = self._sends.get(key)
        if send is not None and send.status == "sending" and send.owner == owner:
            send.at = now

    def end(self, key: str, owner: str, now: float, through: str | None, *, refused: bool = False,
            release: str | None = None, root: Incident | None = None) -> None:
        self._sends[key] = _Send("done", owner, now, Ended(through, refused))
        if through:
            self._raise_high_water(through)
        claim = self._fingerprints.get(release) if release else None
        if release and claim is not None and claim.owner == key:
            del self._fingerprints[release]
        held = self._fingerprints.get(root.fingerprint) if root is not None else None
        if root is not None and held is not None and held.incident is not None:
            held.incident = replace(held.incident, channel=root.channel, ts=root.ts, shown_count=root.shown_count,
                                    shown_at=now, root=root.root)

    def end_all(self, endings: Sequence[Ending]) -> None:
        for e in endings:
            self.end(e.key, e.owner, e.now, e.through, refused=e.refused, release=e.release, root=e.root)

    def _raise_high_water(self, through: str) -> None:
        shard = through.rsplit("/", 3)[0]
        mark = self._high_water.get(shard)
        if mark is None or position(mark) < position(through):
            self._high_water[shard] = through

    def add_repeat(self, fingerprint: str, shard: str, first: str, last: str, events: int, now: float) -> Repeat:
        held = self._fingerprints.get(fingerprint)
        if held is None or held.incident is None or not held.incident.open:
            return Repeat(open=False)
        counted = held.counted.get(shard)
        if counted is not None and position(counted) >= position(first):
            return Repeat(open=True, counted_through=counted)
        held.counted[shard] = last
        held.incident = replace(held.incident, count=held.incident.count + events,
                                last_seen=max(held.incident.last_seen, now))
        return Repeat(open=True)

    def add_repeats(self, repeats: Sequence[Repeated], now: float) -> list[Repeat]:
        return [self.add_repeat(r.fingerprint, r.shard, r.first, r.last, r.events, now) for r in repeats]

    def incidents(self, fingerprints: Sequence[str]) -> dict[str, Incident]:
        found = {fp: self._fingerprints[fp].incident for fp in fingerprints if fp in self._fingerprints}
        return {fp: replace(incident, root=None) for fp, incident in found.items() if incident is not None}

    def claim_update(self, fingerprint: str, now: float, interval: float) -> tuple[bool, Incident | None]:
        held = self._fingerprints.get(fingerprint)
        incident = held.incident if held is not None else None
        if held is None or incident is None or not incident.open or incident.ts is None:
            return False, incident
        if now - incident.shown_at < interval or incident.shown_count >= incident.count:
            return False, incident
        held.incident = replace(incident, shown_count=incident.count, shown_at=now)
        return True, held.incident

    def claim_quiet(self, fingerprint: str, now: float, after: float) -> tuple[bool, Incident | None]:
        held = self._fingerprints.get(fingerprint)
        incident = held.incident if held is not None else None
        if held is None or incident is None or not incident.open or incident.ts is None:
            return False, incident
        if now - incident.last_seen < after:
            return False, incident
        held.until = now
        held.incident = replace(incident, open=False, shown_count=incident.count, shown_at=now)
        return True, held.incident

    def claim_samples(self, fingerprint: str, now: float, per_minute: int, wanted: int) -> int:
        held = self._fingerprints.get(fingerprint)
        minute = int(now // 60)
        if held is None or held.samples[minute] >= per_minute:
            return 0
        granted = min(wanted, per_minute - held.samples[minute])
        held.samples[minute] += wanted  # as DynamoState's ADD: the minute's count may pass the limit
        return granted

    def add_to_digest(self, contributions: Mapping[str, Sequence[Contribution]],
                      now: float) -> dict[str, list[tuple[Added, str | None]]]:
        return {bucket: [self._add_one(bucket, c, now) for c in cs] for bucket, cs in contributions.items()}

    def add_counts(self, repeats: Sequence[Repeated], contributions: Mapping[str, Sequence[Contribution]],
                   now: float) -> tuple[list[Repeat], dict[str, list[tuple[Added, str | None]]]]:
        return self.add_repeats(repeats, now), self.add_to_digest(contributions, now)

    def _add_one(self, bucket: str, contribution: Contribution, now: float) -> tuple[Added, str | None]:
        send = self._sends.get(contribution.key)
        if send is not None and send.ended is not None:
            return Added.ALREADY, send.ended.bucket
        counts, sealed = self._digests.setdefault(bucket, (Counter(), False))
        if sealed:
            return Added.SEALED, None
        counts.update(contribution.lines)
        self._sends[contribution.key] = _Send("done", "", now, Ended(contribution.through, bucket=bucket))
        self._raise_high_water(contribution.through)
        return Added.ADDED, bucket

    def open_digests(self, claims: Sequence[Claim]) -> list[tuple[Begun, DigestContents | None]]:
        return [(begun, self._seal(claim.key.removeprefix("digest/")) if begun.verdict is Verdict.TAKEN else None)
                for claim in claims for begun in [self.begin(claim)]]

    def _seal(self, bucket: str) -> DigestContents:
        counts, _ = self._digests.get(bucket, (Counter(), True))
        self._digests[bucket] = (counts, True)
        return DigestContents(dict(counts))
