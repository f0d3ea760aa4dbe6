"""AlertState in DynamoDB: one table (``<app>-state``, hash key ``pk``, TTL on ``expires_at``).

Items (see consumer/state/__init__.py for what each one means):
- ``budget#<destination>#<slot>``: ``at`` = the slot's last send. Taken with ``at`` a window old (or absent).
- ``fp#<fingerprint>``: ``owner`` (the alert's key), ``until`` (open until then). In Web API mode also the incident:
  ``state`` open|quiet, ``count``, ``last_seen``, ``channel``/``ts`` of the root, ``shown_count``/``shown_at`` (what
  the root shows), ``th_<shard>`` (the last event of that shard counted: repeats are idempotent across re-reads),
  ``s_<minute>`` (thread samples posted that minute).
- ``sent#<shard/seq/sub/line>`` or ``sent#digest/<bucket>``: ``status`` sending|done, ``owner``, ``at``, and when done
  ``through`` (last event covered), ``refused``. Kept a week.
- ``part#<shard/seq/sub/line>``: one batch's contributions to the digest buckets (one per destination), keyed by
  its first group's first event: ``lines`` (JSON [bucket, level, service, template, count]), ``runs`` (JSON [first
  event, last event, bucket] per group: the re-read's look-up), ``prev`` (the shard's part before it) and
  ``below`` (the highest run end before it). Kept a week.
- ``chain#<shard>``: ``head`` (the shard's newest part) and ``upto`` (the highest run end in the chain). Moved by
  compare-and-set: a processor that finds it moved reads the parts added since.
- ``digest#<destination>#<interval>``: ``parts`` (a string set of the parts counted into it), ``sealed`` once sent.
- ``hwm#<shard>``: ``sortable`` (position as a fixed-width string, raised only) and ``through``.

Local knowledge keeps DynamoDB off the decision: slots and fingerprints learned from refused conditions (a refused
transaction returns the old items), so the decision needs no read, and an alert costs two round trips.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from consumer.model import position
from consumer.retry import patiently
from consumer.state import (
    BEGINS_PER_TRANSACTION,
    CONTRIBUTIONS_PER_PART,
    ENDS_PER_TRANSACTION,
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

log = logging.getLogger("cali.state")

DELIVERED_TTL_SECONDS = 7 * 24 * 3600
INCIDENT_TTL_SECONDS = 30 * 24 * 3600
TRANSACT_ITEMS = 100  # DynamoDB's limit per transaction
REPEATS_PER_TRANSACTION = TRANSACT_ITEMS  # one item each
INCIDENT_SHOWN = "pk, #c, last_seen, channel, ts, shown_count, shown_at, #s"  # an incident without its root (the
# rendering, for updates: ``claim_update`` returns it) nor its per-shard and per-minute counters (moto serialises a
# response attribute by attribute)
INCIDENT_SHOWN_NAMES = {"#c": "count", "#s": "state"}
DIGESTS_PER_TRANSACTION = 50  # a claim and a seal each: a transaction holds 100 items
CLAIM_CACHE_SECONDS = 10.0  # how long a fingerprint learned "open" stays believed (its owner may release it)
FOREVER = 1e12
FAILED = "ConditionalCheckFailed"
LINE_PREFIX = "l"  # a digest line's count attribute: "l" + JSON [level, service, template]

Item = dict[str, Any]


def sortable(key: str) -> str:
    sequence, sub, line = position(key)
    return f"{sequence:060d}/{sub:010d}/{line:08d}"


def unsortable(shard: str, value: str) -> str:
    sequence, sub, line = value.split("/")
    return f"{shard}/{int(sequence)}/{int(sub)}/{int(line)}"


def _n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _num(item: Item, name: str, default: float = 0.0) -> float:
    return float(item[name]["N"]) if name in item else default


def _str(item: Item, name: str) -> str | None:
    return str(item[name]["S"]) if name in item else None


def _line_name(line: DigestLine) -> str:
    return LINE_PREFIX + json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _line(name: str) -> DigestLine | None:
    try:
        level, service, template = json.loads(name[len(LINE_PREFIX):])
    except (ValueError, TypeError):
        return None
    return str(level), str(service), str(template)


def _incident(fingerprint: str, item: Item) -> Incident:
    return Incident(fingerprint, count=int(_num(item, "count")), last_seen=_num(item, "last_seen"),
                    channel=_str(item, "channel"), ts=_str(item, "ts"), shown_count=int(_num(item, "shown_count")),
                    shown_at=_num(item, "shown_at"), open=_str(item, "state") == "open", root=_str(item, "root"))


def _shard_of(key: str) -> str | None:
    """The shard of an event key (``<shard>/<sequence>/<sub>/<line>``); None for other keys (``digest/...``)."""
    parts = key.rsplit("/", 3)
    return parts[0] if len(parts) == 4 and all(p.isdigit() for p in parts[1:]) else None


@dataclass
class _Chain:
    """What this process knows of a shard's chain of digest parts (newest first: each names the one before).

    A part holds the contributions of one batch: the counts of its lines, and each group's run (first event ->
    last event, the re-read's look-up). ``upto`` is the highest run end in the chain up to the head, ``below`` in a
    part the same before it: so a walk back from the head can stop where no run can start at or after a position."""

    known: bool = False  # the head was read or written by this process
    head: str | None = None
    upto: str = ""
    floor: str = ""  # every run starting after this position is in ``runs``
    resume: str | None = None  # the next part to read walking back (None: the chain's start, or nothing to read)
    runs: dict[str, Ended] = field(default_factory=dict)  # a run's first event -> its end and bucket
    prev: dict[str, str | None] = field(default_factory=dict)  # part -> the part before it
    below: dict[str, str] = field(default_factory=dict)  # part -> ``upto`` before it

    forgotten: str = ""  # runs ending before this position were dropped from memory (a processor moves on)

    def learn(self, pk: str, runs: Sequence[tuple[str, Ended]], prev: str | None, below: str) -> None:
        self.runs.update(runs)
        self.prev[pk], self.below[pk] = prev, below

    def forget_below(self, low: str) -> None:
        """Drop the runs that end before ``low``: a processor asks about its events in order, so memory stays at
        about a batch's groups. Asking about an earlier position later reads the chain again."""
        if low > self.forgotten:
            self.runs = {first: ended for first, ended in self.runs.items()
                         if ended.through is None or sortable(ended.through) >= low}
            self.forgotten = low


class _Cancelled(Exception):
    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons

    def failed(self, index: int) -> Item | None:
        """The old item if condition ``index`` failed ({} when the item did not exist), else None."""
        reason = self.reasons[index] if index < len(self.reasons) else {}
        return dict(reason.get("Item", {})) if reason.get("Code") == FAILED else None

    def too_large(self, index: int) -> bool:
        """Whether write ``index`` was refused as invalid: the only one CALI can cause is an item over 400 KB."""
        return index < len(self.reasons) and self.reasons[index].get("Code") == "ValidationError"


class DynamoState:
    def __init__(self, client: Any, table: str, limit: int, window: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, limits: Mapping[str, int] | None = None) -> None:
        self._client = client
        self._table = table
        self._limit = limit
        self._limits = dict(limits or {})  # per budget (a route's); others: ``limit``
        self._window = window
        self._sleep = sleep
        self._slot_busy_until: dict[str, dict[int, float]] = {}
        self._open_until: dict[str, tuple[float, str]] = {}  # fingerprint -> (believed open until, its owner)
        self._marks: dict[str, str] = {}  # shard -> a high-water mark (sortable) the table holds at least
        self._chains: dict[str, _Chain] = {}  # shard -> its chain of digest parts, as far as read
        self._random = random.Random()  # spreads slot choices; not for security

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _call(self, name: str, **kwargs: Any) -> Any:
        return patiently(lambda: getattr(self._client, name)(**kwargs), self._sleep, f"state table {name}")

    def _conditional(self, name: str, **kwargs: Any) -> tuple[Item | None, Item]:
        """A conditional write: (its result, {}), or (None, the item as it was: ALL_OLD). (Returned, not kept: the
        incidents' upkeep calls from a thread of its own.)"""
        try:
            return dict(self._call(name, ReturnValuesOnConditionCheckFailure="ALL_OLD", **kwargs)), {}
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            response: dict[str, Any] = dict(exc.response)
            return None, dict(response.get("Item", {}))

    def _transact(self, items: list[Item]) -> None:
        try:
            self._call("transact_write_items", TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            response: dict[str, Any] = dict(exc.response)
            raise _Cancelled(list(response.get("CancellationReasons", []))) from None

    def _key(self, pk: str) -> Item:
        return {"pk": _s(pk)}

    def _raises_mark(self, through: str) -> bool:
        """Whether ``through`` may raise its shard's high-water mark (a write known to be refused is left out)."""
        return sortable(through) > self._marks.get(through.rsplit("/", 3)[0], "")

    def _mark_at_least(self, through: str) -> None:
        shard, mark = through.rsplit("/", 3)[0], sortable(through)
        if mark > self._marks.get(shard, ""):
            self._marks[shard] = mark

    def _high_water(self, through: str, now: float) -> Item:
        """The shard's mark raised to ``through``: the whole item put (cheaper than an update on the emulator)."""
        mark = sortable(through)
        item = {**self._key(f"hwm#{through.rsplit('/', 3)[0]}"), "sortable": _s(mark), "through": _s(through),
                "expires_at": _n(int(now + DELIVERED_TTL_SECONDS))}
        return {"Put": {
            "TableName": self._table, "Item": item,
            "ConditionExpression": "attribute_not_exists(sortable) OR sortable < :s",
            "ExpressionAttributeValues": {":s": _s(mark)}}}

    def _transact_best_effort(self, required: list[Item], optional: list[Item]) -> None:
        """``required`` items must succeed (unconditional); ``optional`` conditional ones are dropped when refused
        (a high-water mark already higher, a fingerprint already released)."""
        while True:
            try:
                self._transact(required + optional)
                return
            except _Cancelled as cancelled:
                kept = [item for i, item in enumerate(optional) if cancelled.failed(len(required) + i) is None]
                if len(kept) == len(optional):
                    raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                                 "Message": str(cancelled.reasons)}}, "TransactWriteItems") from None
                optional = kept

    # -- the decision's input ---------------------------------------------------------------------------------
    def view(self, budget: str, fingerprint: str, now: float, key: str = "",
             promised: Set[int] = frozenset()) -> View:
        until, owner = self._open_until.get(fingerprint, (0.0, ""))
        return View(fingerprint_open=until > now and owner != key,
                    free_slot=self._free_slot(budget, now, promised))

    def _free_slot(self, budget: str, now: float, promised: Set[int]) -> int | None:
        busy = self._slot_busy_until.setdefault(budget, {})
        limit = self._limits.get(budget, self._limit)
        if limit <= 256:
            free = [slot for slot in range(limit) if busy.get(slot, 0.0) <= now and slot not in promised]
            return self._random.choice(free) if free else None
        for _ in range(32):
            slot = self._random.randrange(limit)
            if busy.get(slot, 0.0) <= now and slot not in promised:
                return slot
        return None

    # -- reads (once per shard, or on a re-read) --------------------------------------------------------------
    def ended_through(self, shard_id: str) -> str | None:
        item = self._call("get_item", TableName=self._table, Key=self._key(f"hwm#{shard_id}"), ConsistentRead=True)
        through = _str(item.get("Item", {}), "through")
        if through:
            self._mark_at_least(through)
        return through

    def delivered(self, key: str) -> Ended | None:
        shard = _shard_of(key)
        if shard is None:  # a digest's own send record
            item = self._call("get_item", TableName=self._table, Key=self._key(f"sent#{key}"),
                              ConsistentRead=True).get("Item")
            return self._ended(item) if item is not None else None
        chain = self._cover(shard, self._chains.setdefault(shard, _Chain()), sortable(key))
        if (ended := chain.runs.get(key)) is not None:
            return ended
        keys: list[Item] = [self._key(f"sent#{key}"), self._key(f"chain#{shard}")]
        answer = self._call("batch_get_item", RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
        found = {_str(item, "pk"): item for item in answer.get("Responses", {}).get(self._table, [])}
        if (sent := found.get(f"sent#{key}")) is not None:
            return self._ended(sent)
        head = found.get(f"chain#{shard}", {})
        if _str(head, "head") != chain.head:  # a part was added meanwhile (another processor of this shard)
            self._moved(chain, head)
        return chain.runs.get(key)

    @staticmethod
    def _ended(item: Item) -> Ended | None:
        if _str(item, "status") != "done":
            return None
        return Ended(_str(item, "through"), refused="refused" in item, bucket=_str(item, "bucket"))

    # -- one alert: begin ... end -----------------------------------------------------------------------------
    def begin(self, claim: Claim) -> Begun:
        try:
            self._transact(self._begin_items(claim, take_stale=False))
        except _Cancelled as cancelled:
            return self._not_begun(claim, cancelled)
        self._took_slot(claim)
        return Begun(Verdict.TAKEN)

    def begin_all(self, claims: Sequence[Claim]) -> list[Begun]:
        items = [pk for c in claims for pk in (f"budget#{c.budget}#{c.slot}", f"fp#{c.fingerprint}", f"sent#{c.key}")]
        if len(claims) == 1 or len(set(items)) < len(items) or any(c.slot < 0 or not c.fingerprint for c in claims):
            return [self.begin(c) for c in claims]  # (a transaction writes an item once; digests have no slot)
        results: dict[int, Begun] = {}
        for start in range(0, len(claims), BEGINS_PER_TRANSACTION):
            waiting = list(enumerate(claims))[start:start + BEGINS_PER_TRANSACTION]
            while waiting:
                try:
                    self._transact([item for _, c in waiting for item in self._begin_items(c, take_stale=False)])
                except _Cancelled as cancelled:  # the refused ones are known (their items as they were); the
                    # others were not written: once more without the refused
                    still = []
                    for i, (index, claim) in enumerate(waiting):
                        own = _Cancelled(cancelled.reasons[3 * i:3 * i + 3])
                        if any(own.failed(k) is not None for k in range(3)):
                            results[index] = self._not_begun(claim, own)
                        else:
                            still.append((index, claim))
                    if len(still) == len(waiting):  # none refused (a conflict with another transaction): as
                        # ``begin`` would, decide again
                        results.update((index, Begun(Verdict.CONFLICT)) for index, _ in waiting)
                        still = []
                    waiting = still
                    continue
                for index, claim in waiting:
                    self._took_slot(claim)
                    results[index] = Begun(Verdict.TAKEN)
                waiting = []
        return [results[index] for index in range(len(claims))]

    def _not_begun(self, claim: Claim, cancelled: _Cancelled) -> Begun:
        """A refused begin: what the refusal says (its conditions 0-2: slot, fingerprint, send claim)."""
        old_send = cancelled.failed(2)
        if old_send is not None:
            ended = self._ended(old_send)
            if ended is not None:
                return Begun(Verdict.ENDED, ended)
            if claim.now - _num(old_send, "at") < claim.stale_after:
                return Begun(Verdict.BUSY)
            return self._take_over(claim, _num(old_send, "started", _num(old_send, "at")))
        self._learn(claim, cancelled)
        return Begun(Verdict.CONFLICT)

    def _take_over(self, claim: Claim, started: float) -> Begun:
        try:
            self._transact(self._begin_items(claim, take_stale=True, started=started))
            self._took_slot(claim)
            return Begun(Verdict.TAKEN, takeover=True, since=started)
        except _Cancelled as cancelled:
            if cancelled.failed(2) is not None:
                return Begun(Verdict.BUSY)  # someone else took it over first, or it ended: look again later
            self._learn(claim, cancelled)
            return Begun(Verdict.CONFLICT)

    def _took_slot(self, claim: Claim) -> None:
        """What our own claim taught us, without a refusal to learn it from: the slot is busy for a window, the
        fingerprint open (its next group decides REPEAT or over budget without a refused round trip)."""
        if claim.slot >= 0:
            self._slot_busy_until.setdefault(claim.budget, {})[claim.slot] = claim.now + self._window
        if claim.fingerprint:
            open_for = CLAIM_CACHE_SECONDS if claim.incident_events else min(claim.dedup_window, CLAIM_CACHE_SECONDS)
            self._open_until[claim.fingerprint] = (claim.now + open_for, claim.key)

    def _learn(self, claim: Claim, cancelled: _Cancelled) -> None:
        old_slot = cancelled.failed(0)
        if old_slot is not None:
            self._slot_busy_until.setdefault(claim.budget, {})[claim.slot] = _num(old_slot, "at") + self._window
        old_fingerprint = cancelled.failed(1)
        if old_fingerprint is not None and claim.fingerprint:
            until = _num(old_fingerprint, "until", claim.now + CLAIM_CACHE_SECONDS)
            self._open_until[claim.fingerprint] = (min(until, claim.now + CLAIM_CACHE_SECONDS),
                                                   _str(old_fingerprint, "owner") or "")

    def _begin_items(self, claim: Claim, *, take_stale: bool, started: float | None = None) -> list[Item]:
        table, now = self._table, claim.now
        slot = _noop(table, 0) if claim.slot < 0 else {"Put": {
            "TableName": table, "Item": {**self._key(f"budget#{claim.budget}#{claim.slot}"), "at": _n(now),
                                         "expires_at": _n(int(now + 2 * self._window))},
            "ConditionExpression": "attribute_not_exists(pk) OR #at <= :cutoff",
            "ExpressionAttributeNames": {"#at": "at"},
            "ExpressionAttributeValues": {":cutoff": _n(now - self._window)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
        # a digest has no fingerprint: a condition that always holds keeps the indices of the reasons fixed
        fingerprint = self._fingerprint_item(claim, retake=take_stale) if claim.fingerprint else _noop(table, 1)
        return [slot, fingerprint, self._send_claim(claim, take_stale=take_stale, started=started)]

    def _send_claim(self, claim: Claim, *, take_stale: bool, started: float | None = None) -> Item:
        """The send record, claimed ``sending`` (refused when another live processor holds it, or it ended)."""
        table, now = self._table, claim.now
        taking = "(#status = :sending AND (#owner = :owner OR #at < :stale))" if take_stale else \
            "(#status = :sending AND #owner = :owner)"
        return {"Put": {
            "TableName": table, "Item": {**self._key(f"sent#{claim.key}"), "status": _s("sending"),
                                         "owner": _s(claim.owner), "at": _n(now),
                                         "started": _n(now if started is None else started),
                                         "expires_at": _n(int(now + DELIVERED_TTL_SECONDS))},
            "ConditionExpression": f"attribute_not_exists(pk) OR {taking}",
            "ExpressionAttributeNames": {"#status": "status", "#owner": "owner",
                                         **({"#at": "at"} if take_stale else {})},
            "ExpressionAttributeValues": {":sending": _s("sending"), ":owner": _s(claim.owner),
                                          **({":stale": _n(now - claim.stale_after)} if take_stale else {})},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def _fingerprint_item(self, claim: Claim, *, retake: bool = False) -> Item:
        """Claim the fingerprint for ``claim.key``. ``retake``: taking over a dead processor's claim of the same
        alert: an incident it opened keeps its counts (repeats of other shards were added meanwhile)."""
        now = claim.now
        if retake and claim.incident_events:
            return {"Update": {
                "TableName": self._table, "Key": self._key(f"fp#{claim.fingerprint}"),
                "UpdateExpression": "SET #until = :forever, #state = :open",
                "ConditionExpression": "#owner = :key", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                "ExpressionAttributeNames": {"#until": "until", "#state": "state", "#owner": "owner"},
                "ExpressionAttributeValues": {":forever": _n(FOREVER), ":open": _s("open"), ":key": _s(claim.key)}}}
        common: Item = {
            "TableName": self._table, "Key": self._key(f"fp#{claim.fingerprint}"),
            "ConditionExpression": "attribute_not_exists(pk) OR #until <= :now OR #owner = :key",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        names = {"#until": "until", "#owner": "owner"}
        values = {":now": _n(now), ":key": _s(claim.key)}
        if not claim.incident_events:
            return {"Update": {**common, "UpdateExpression": "SET #until = :until, #owner = :key, expires_at = :e",
                               "ExpressionAttributeNames": names,
                               "ExpressionAttributeValues": {**values, ":until": _n(now + claim.dedup_window),
                                                             ":e": _n(int(now + claim.dedup_window + 3600))}}}
        return {"Update": {
            **common,  # a webhook mode's dedup claim (no incident: no state) does not hold an incident back
            "ConditionExpression": f"{common['ConditionExpression']} OR attribute_not_exists(#state)",
            "UpdateExpression": ("SET #until = :forever, #owner = :key, #state = :open, #count = :n, last_seen = :now, "
                                 "shown_count = :zero, shown_at = :zero, #th = :th, expires_at = :e "
                                 "REMOVE ts, channel"),
            "ExpressionAttributeNames": {**names, "#state": "state", "#count": "count", "#th": f"th_{claim.shard}"},
            "ExpressionAttributeValues": {**values, ":forever": _n(FOREVER), ":open": _s("open"),
                                          ":n": _n(claim.incident_events), ":zero": _n(0),
                                          ":th": _s(sortable(claim.through)),
                                          ":e": _n(int(now + INCIDENT_TTL_SECONDS))}}}

    def keep_sending(self, key: str, owner: str, now: float) -> None:
        self._conditional("update_item", TableName=self._table, Key=self._key(f"sent#{key}"),
                          UpdateExpression="SET #at = :now",
                          ConditionExpression="#status = :sending AND #owner = :owner",
                          ExpressionAttributeNames={"#at": "at", "#status": "status", "#owner": "owner"},
                          ExpressionAttributeValues={":now": _n(now), ":sending": _s("sending"),
                                                     ":owner": _s(owner)})

    def end(self, key: str, owner: str, now: float, through: str | None, *, refused: bool = False,
            release: str | None = None, root: Incident | None = None) -> None:
        self.end_all([Ending(key, owner, now, through, refused, release, root)])

    def end_all(self, endings: Sequence[Ending]) -> None:
        chunk: list[Ending] = []
        items: set[str] = set()
        for ending in endings:
            touches = {f"sent#{ending.key}", *(f"fp#{fp}" for fp in self._fingerprints_touched(ending))}
            if len(chunk) == ENDS_PER_TRANSACTION or items & touches:  # (a transaction writes an item once)
                self._end_chunk(chunk)
                chunk, items = [], set()
            chunk.append(ending)
            items |= touches
        if chunk:
            self._end_chunk(chunk)

    @staticmethod
    def _fingerprints_touched(ending: Ending) -> list[str]:
        return [fp for fp in (ending.release, ending.root.fingerprint if ending.root else None) if fp]

    def _end_chunk(self, endings: Sequence[Ending]) -> None:
        """One transaction: the send records (done), the fingerprints released or incidents' roots recorded, each
        shard's high-water mark raised to the last event ended (dropped when already higher)."""
        required: list[Item] = []
        optional: list[Item] = []
        marks: dict[str, tuple[str, float]] = {}  # shard -> (the last event ended, when)
        for e in endings:
            done: Item = {**self._key(f"sent#{e.key}"), "status": _s("done"), "owner": _s(e.owner), "at": _n(e.now),
                          "expires_at": _n(int(e.now + DELIVERED_TTL_SECONDS))}
            if e.through:
                done["through"] = _s(e.through)
                shard = e.through.rsplit("/", 3)[0]
                if shard not in marks or sortable(e.through) > sortable(marks[shard][0]):
                    marks[shard] = (e.through, e.now)
            if e.refused:
                done["refused"] = {"BOOL": True}
            required.append({"Put": {"TableName": self._table, "Item": done}})
            if e.release:
                optional.append({"Delete": {"TableName": self._table, "Key": self._key(f"fp#{e.release}"),
                                            "ConditionExpression": "#owner = :key",
                                            "ExpressionAttributeNames": {"#owner": "owner"},
                                            "ExpressionAttributeValues": {":key": _s(e.key)}}})
                self._open_until.pop(e.release, None)
            root = e.root
            if root is not None and root.ts and root.channel:
                optional.append(self._root_item(root, root.ts, root.channel, e))
                self._open_until[root.fingerprint] = (e.now + CLAIM_CACHE_SECONDS, e.key)
        optional += [self._high_water(through, now) for through, now in marks.values() if self._raises_mark(through)]
        self._transact_best_effort(required, optional)
        for through, _ in marks.values():
            self._mark_at_least(through)  # ours, or a higher one that refused it

    def _root_item(self, root: Incident, ts: str, channel: str, e: Ending) -> Item:
        return {"Update": {
            "TableName": self._table, "Key": self._key(f"fp#{root.fingerprint}"),
            "UpdateExpression": "SET ts = :ts, channel = :c, shown_count = :shown, shown_at = :now, #root = :root",
            "ConditionExpression": "#owner = :key",
            "ExpressionAttributeNames": {"#owner": "owner", "#root": "root"},
            "ExpressionAttributeValues": {":root": _s(root.root or "{}"), ":ts": _s(ts), ":c": _s(channel),
                                          ":shown": _n(root.shown_count), ":now": _n(e.now), ":key": _s(e.key)}}}

    # -- Web API incidents ------------------------------------------------------------------------------------
    def add_repeat(self, fingerprint: str, shard: str, first: str, last: str, events: int, now: float) -> Repeat:
        repeated = Repeated(fingerprint, shard, first, last, events)
        result, old = self._conditional("update_item", **self._repeat_update(repeated, now))
        if result is None:
            return self._not_counted(repeated, old)
        return self._counted(fingerprint, now)

    def add_repeats(self, repeats: Sequence[Repeated], now: float) -> list[Repeat]:
        if len(repeats) == 1 or len({r.fingerprint for r in repeats}) < len(repeats):  # (one transaction cannot
            # write an item twice)
            return [self.add_repeat(r.fingerprint, r.shard, r.first, r.last, r.events, now) for r in repeats]
        results: dict[int, Repeat] = {}
        for start in range(0, len(repeats), REPEATS_PER_TRANSACTION):
            waiting = list(enumerate(repeats))[start:start + REPEATS_PER_TRANSACTION]
            while waiting:
                try:
                    self._transact([{"Update": {**self._repeat_update(r, now),
                                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
                                    for _, r in waiting])
                    break
                except _Cancelled as cancelled:  # the refused ones are known (their items as they were); the
                    # others were not written: once more without the refused
                    still = []
                    for i, (index, r) in enumerate(waiting):
                        old = cancelled.failed(i)
                        if old is None:
                            still.append((index, r))
                        else:
                            results[index] = self._not_counted(r, old)
                    if len(still) == len(waiting):
                        raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                                     "Message": str(cancelled.reasons)}}, "TransactWriteItems") \
                            from None
                    waiting = still
            for index, r in waiting:
                results[index] = self._counted(r.fingerprint, now)
        return [results[index] for index in range(len(repeats))]

    def incidents(self, fingerprints: Sequence[str]) -> dict[str, Incident]:
        items = self._batch_get([f"fp#{fp}" for fp in fingerprints], INCIDENT_SHOWN, INCIDENT_SHOWN_NAMES)
        found = {(_str(item, "pk") or "").removeprefix("fp#"): item for item in items}
        return {fp: _incident(fp, item) for fp, item in found.items()}

    def _repeat_update(self, r: Repeated, now: float) -> Item:
        return {"TableName": self._table, "Key": self._key(f"fp#{r.fingerprint}"),
                "UpdateExpression": "ADD #count :n SET last_seen = :now, #th = :last",
                "ConditionExpression": "#state = :open AND (attribute_not_exists(#th) OR #th < :first)",
                "ExpressionAttributeNames": {"#count": "count", "#state": "state", "#th": f"th_{r.shard}"},
                "ExpressionAttributeValues": {":n": _n(r.events), ":now": _n(now), ":open": _s("open"),
                                              ":first": _s(sortable(r.first)), ":last": _s(sortable(r.last))}}

    def _counted(self, fingerprint: str, now: float) -> Repeat:
        """Still open: believed so for a while longer (its owner, the root's key, as learned before)."""
        self._open_until[fingerprint] = (now + CLAIM_CACHE_SECONDS, self._open_until.get(fingerprint, (0.0, ""))[1])
        return Repeat(open=True)

    def _not_counted(self, r: Repeated, old: Item) -> Repeat:
        if _str(old, "state") != "open":
            self._open_until.pop(r.fingerprint, None)
            return Repeat(open=False)
        counted = _str(old, f"th_{r.shard}")
        return Repeat(open=True, counted_through=unsortable(r.shard, counted) if counted else None)

    @staticmethod
    def _refused(fingerprint: str, old: Item) -> tuple[bool, Incident | None]:
        return False, (_incident(fingerprint, old) if old else None)

    def claim_update(self, fingerprint: str, now: float, interval: float) -> tuple[bool, Incident | None]:
        result, old = self._conditional(
            "update_item", TableName=self._table, Key=self._key(f"fp#{fingerprint}"),
            UpdateExpression="SET shown_at = :now, shown_count = #count",
            ConditionExpression=("#state = :open AND attribute_exists(ts) AND shown_at <= :cutoff "
                                 "AND shown_count < #count"),
            ExpressionAttributeNames={"#count": "count", "#state": "state"},
            ExpressionAttributeValues={":now": _n(now), ":open": _s("open"), ":cutoff": _n(now - interval)},
            ReturnValues="ALL_NEW")
        if result is None:
            return self._refused(fingerprint, old)
        return True, _incident(fingerprint, result["Attributes"])

    def claim_quiet(self, fingerprint: str, now: float, after: float) -> tuple[bool, Incident | None]:
        result, old = self._conditional(
            "update_item", TableName=self._table, Key=self._key(f"fp#{fingerprint}"),
            UpdateExpression="SET #state = :quiet, #until = :now, shown_count = #count, shown_at = :now",
            ConditionExpression="#state = :open AND attribute_exists(ts) AND last_seen <= :cutoff",
            ExpressionAttributeNames={"#count": "count", "#state": "state", "#until": "until"},
            ExpressionAttributeValues={":now": _n(now), ":open": _s("open"), ":quiet": _s("quiet"),
                                       ":cutoff": _n(now - after)},
            ReturnValues="ALL_NEW")
        if result is None:
            return self._refused(fingerprint, old)
        self._open_until.pop(fingerprint, None)
        return True, _incident(fingerprint, result["Attributes"])

    def claim_samples(self, fingerprint: str, now: float, per_minute: int, wanted: int) -> int:
        result, _ = self._conditional(
            "update_item", TableName=self._table, Key=self._key(f"fp#{fingerprint}"),
            UpdateExpression="ADD #s :k",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#s) OR #s < :max)",
            ExpressionAttributeNames={"#s": f"s_{int(now // 60)}"},
            ExpressionAttributeValues={":k": _n(wanted), ":max": _n(per_minute)}, ReturnValues="UPDATED_NEW")
        if result is None:
            return 0
        before = int(_num(result["Attributes"], f"s_{int(now // 60)}")) - wanted
        return max(0, min(wanted, per_minute - before))

    # -- digests ----------------------------------------------------------------------------------------------
    def add_to_digest(self, contributions: Mapping[str, Sequence[Contribution]],
                      now: float) -> dict[str, list[tuple[Added, str | None]]]:
        return self.add_counts([], contributions, now)[1]

    def add_counts(self, repeats: Sequence[Repeated], contributions: Mapping[str, Sequence[Contribution]],
                   now: float) -> tuple[list[Repeat], dict[str, list[tuple[Added, str | None]]]]:
        flat = [(bucket, c) for bucket, cs in contributions.items() for c in cs]
        if len({c.through.rsplit("/", 3)[0] for _, c in flat}) > 1:
            raise ValueError("digest contributions of one shard at a time (one chain of parts)")
        together = bool(flat) and len({r.fingerprint for r in repeats}) == len(repeats) and \
            len(repeats) + len(contributions) + 3 <= TRANSACT_ITEMS  # (buckets, the part, its head, the mark)
        counted: dict[int, Repeat] = {}
        attached = list(enumerate(repeats)) if together else []
        step = CONTRIBUTIONS_PER_PART
        results = [result for start in range(0, len(flat), step)
                   for result in self._add_part(flat[start:start + step], now, attached, counted)]
        unsent = [r for index, r in enumerate(repeats) if index not in counted]  # (not together, or no part written:
        # the batch's groups were all in the digest before, a re-read)
        rest = iter(self.add_repeats(unsent, now) if unsent else [])
        out: dict[str, list[tuple[Added, str | None]]] = {bucket: [] for bucket in contributions}
        for (bucket, _), result in zip(flat, results, strict=True):
            out[bucket].append(result)
        return [counted[index] if index in counted else next(rest) for index in range(len(repeats))], out

    def _add_part(self, chunk: Sequence[tuple[str, Contribution]], now: float,
                  attached: list[tuple[int, Repeated]], counted: dict[int, Repeat]) -> list[tuple[Added, str | None]]:
        """One transaction: each bucket's list of parts (refused once sealed), the part (refused when it exists),
        the shard's chain head (refused when another processor moved it), the high-water mark (dropped when
        already higher), and the ``attached`` repeats (each refused as ``add_repeats``'s are; their outcomes go to
        ``counted``, and they are taken off the list once written). A refusal of the part or the head re-reads what
        was added meanwhile and retries the rest."""
        shard = chunk[0][1].through.rsplit("/", 3)[0]
        chain = self._chains.setdefault(shard, _Chain())
        results: dict[int, tuple[Added, str | None]] = {}
        waiting = list(range(len(chunk)))
        chain.forget_below(min(sortable(c.key) for _, c in chunk))
        while waiting:
            if chain.known:
                chain = self._cover(shard, chain, min(sortable(chunk[i][1].key) for i in waiting))
            already = {i: ended for i in waiting if (ended := chain.runs.get(chunk[i][1].key)) is not None}
            results.update({i: (Added.ALREADY, ended.bucket) for i, ended in already.items()})
            waiting = [i for i in waiting if i not in already]
            if not waiting:
                break
            part = [chunk[i] for i in waiting]
            buckets = sorted({bucket for bucket, _ in part})
            pk = f"part#{part[0][1].key}"
            upto = max([chain.upto, *(sortable(c.through) for _, c in part)])
            mark = max((c.through for _, c in part), key=sortable)
            with_high_water = self._raises_mark(mark)
            items = [self._part_in_bucket(bucket, pk, now) for bucket in buckets]
            items += [self._part(pk, part, chain, now), self._chain_head(shard, pk, upto, chain, now)]
            if with_high_water:
                items.append(self._high_water(mark, now))
            digest_items = len(items)
            items += [{"Update": {**self._repeat_update(r, now), "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
                      for _, r in attached]
            try:
                self._transact(items)
            except _Cancelled as cancelled:
                refused = {n for n in range(len(attached)) if cancelled.failed(digest_items + n) is not None}
                for n in refused:
                    index, r = attached[n]
                    counted[index] = self._not_counted(r, cancelled.failed(digest_items + n) or {})
                attached[:] = [repeat for n, repeat in enumerate(attached) if n not in refused]
                sealed = {b for n, b in enumerate(buckets) if cancelled.failed(n) is not None or cancelled.too_large(n)}
                head = cancelled.failed(len(buckets) + 1)
                if not any(cancelled.failed(n) is not None or cancelled.too_large(n) for n in range(digest_items)):
                    if refused:
                        continue  # only repeats were refused: the rest again
                    raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                                 "Message": str(cancelled.reasons)}}, "TransactWriteItems") from None
                if sealed:  # being sent, or full: a later bucket
                    results.update({i: (Added.SEALED, None) for i in waiting if chunk[i][0] in sealed})
                    waiting = [i for i in waiting if chunk[i][0] not in sealed]
                elif head is not None:  # another processor of this shard added a part: read what it covers
                    self._moved(chain, head)
                elif cancelled.failed(len(buckets)) is not None:  # our first event is in a part: read the chain
                    self._moved(chain, self._chain_item(shard))
                elif with_high_water:
                    self._mark_at_least(mark)  # a higher mark refused ours: retry without it
                else:
                    raise RuntimeError("unreachable: a refusal with no refused condition") from None
                continue
            self._mark_at_least(mark)
            counted.update((index, self._counted(r.fingerprint, now)) for index, r in attached)
            attached.clear()
            if not chain.known:  # the head was absent: the chain starts here
                chain.known, chain.floor, chain.resume = True, "", None
            chain.runs.update((c.key, Ended(c.through, bucket=bucket)) for bucket, c in part)  # (a walk back from a
            chain.head, chain.upto = pk, upto  # moved head stops at our head: our own parts need no ``prev``)
            results.update({i: (Added.ADDED, chunk[i][0]) for i in waiting})
            waiting = []
        return [results[i] for i in range(len(chunk))]

    def _part_in_bucket(self, bucket: str, pk: str, now: float) -> Item:
        return {"Update": {"TableName": self._table, "Key": self._key(f"digest#{bucket}"),
                           "UpdateExpression": "ADD parts :p SET expires_at = :e",
                           "ConditionExpression": "attribute_not_exists(sealed)",
                           "ExpressionAttributeValues": {":p": {"SS": [pk]},
                                                         ":e": _n(int(now + DELIVERED_TTL_SECONDS))}}}

    def _part(self, pk: str, part: Sequence[tuple[str, Contribution]], chain: _Chain, now: float) -> Item:
        lines: Counter[tuple[str, DigestLine]] = Counter()
        for bucket, contribution in part:
            lines.update({(bucket, line): n for line, n in contribution.lines.items()})
        item: Item = {**self._key(pk), "below": _s(chain.upto),
                      "lines": _s(json.dumps([[bucket, *line, n] for (bucket, line), n in lines.items()],
                                             ensure_ascii=False)),
                      "runs": _s(json.dumps([[c.key, c.through, bucket] for bucket, c in part])),
                      "expires_at": _n(int(now + DELIVERED_TTL_SECONDS))}
        if chain.head is not None:
            item["prev"] = _s(chain.head)
        return {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def _chain_head(self, shard: str, pk: str, upto: str, chain: _Chain, now: float) -> Item:
        if chain.known and chain.head is not None:
            condition, values = "head = :prev", {":prev": _s(chain.head)}
        else:  # none yet, or not read yet (a new chain is assumed: a refusal returns the head)
            condition, values = "attribute_not_exists(head)", {}
        return {"Update": {"TableName": self._table, "Key": self._key(f"chain#{shard}"),
                           "UpdateExpression": "SET head = :k, upto = :u, expires_at = :e",
                           "ConditionExpression": condition, "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                           "ExpressionAttributeValues": {**values, ":k": _s(pk), ":u": _s(upto),
                                                         ":e": _n(int(now + DELIVERED_TTL_SECONDS))}}}

    def _chain_item(self, shard: str) -> Item:
        return dict(self._call("get_item", TableName=self._table, Key=self._key(f"chain#{shard}"),
                               ConsistentRead=True).get("Item", {}))

    def _moved(self, chain: _Chain, head: Item) -> None:
        """The chain's head as the table has it: read the parts added since the head this process knew."""
        new_head, upto = _str(head, "head"), _str(head, "upto") or ""
        if not chain.known:
            chain.head, chain.upto, chain.known, chain.floor, chain.resume = new_head, upto, True, upto, new_head
            return
        pk = new_head
        while pk is not None and pk not in chain.prev and pk != chain.head:
            pk = self._load_part(chain, pk)
        chain.head, chain.upto = new_head, max(chain.upto, upto)

    def _cover(self, shard: str, chain: _Chain, low: str) -> _Chain:
        """Read parts back along the chain until every run starting at ``low`` or later is known."""
        if low < chain.forgotten:  # an earlier position than this process moved past: start over
            self._chains[shard] = chain = _Chain()
        if not chain.known:
            self._moved(chain, self._chain_item(shard))
        while chain.floor >= low and chain.resume is not None:
            pk = chain.resume
            if pk in chain.prev:
                chain.resume = chain.prev.get(pk)
                chain.floor = chain.below.get(pk, "")
                continue
            chain.resume = self._load_part(chain, pk)
            chain.floor = chain.below.get(pk, "")
        if chain.resume is None:
            chain.floor = ""
        return chain

    def _load_part(self, chain: _Chain, pk: str) -> str | None:
        """Read one part into the chain's runs; its previous part's key."""
        item = self._call("get_item", TableName=self._table, Key=self._key(pk), ConsistentRead=True,
                          ProjectionExpression="#below, #prev, #runs",
                          ExpressionAttributeNames={"#below": "below", "#prev": "prev", "#runs": "runs"}
                          ).get("Item", {})
        runs = json.loads(_str(item, "runs") or "[]")
        chain.learn(pk, [(first, Ended(through, bucket=bucket)) for first, through, bucket in runs],
                    _str(item, "prev"), _str(item, "below") or "")
        return chain.prev[pk]

    def open_digests(self, claims: Sequence[Claim]) -> list[tuple[Begun, DigestContents | None]]:
        step = DIGESTS_PER_TRANSACTION
        return [opened for start in range(0, len(claims), step)
                for opened in self._open_digests(claims[start:start + step])]

    def _open_digests(self, claims: Sequence[Claim]) -> list[tuple[Begun, DigestContents | None]]:
        """One transaction claims every send and seals every bucket; a refused claim (ended, busy, or stale: taken
        over on its own) leaves the others to retry. Then the buckets' lists of parts, then the parts: one read each."""
        begun: dict[int, Begun] = {}
        seal_only: list[int] = []  # taken over on their own: sealed with the others
        waiting = list(range(len(claims)))
        while waiting or seal_only:
            items = [item for i in waiting for item in (self._send_claim(claims[i], take_stale=False),
                                                         self._seal(claims[i]))]
            items += [self._seal(claims[i]) for i in seal_only]
            try:
                self._transact(items)
            except _Cancelled as cancelled:
                refused = {i: old for n, i in enumerate(waiting) if (old := cancelled.failed(2 * n)) is not None}
                if not refused:
                    raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                                 "Message": str(cancelled.reasons)}}, "TransactWriteItems") from None
                for i, old in refused.items():
                    ended = self._ended(old)
                    if ended is not None:
                        begun[i] = Begun(Verdict.ENDED, ended)
                    elif claims[i].now - _num(old, "at") < claims[i].stale_after:
                        begun[i] = Begun(Verdict.BUSY)
                    else:
                        begun[i] = self._take_over(claims[i], _num(old, "started", _num(old, "at")))
                        if begun[i].verdict is Verdict.TAKEN:
                            seal_only.append(i)
                waiting = [i for i in waiting if i not in refused]
                continue
            begun.update({i: Begun(Verdict.TAKEN) for i in waiting})
            waiting, seal_only = [], []
        taken = [i for i in range(len(claims)) if begun[i].verdict is Verdict.TAKEN]
        contents = self._read_digests([_bucket(claims[i]) for i in taken])
        return [(begun[i], contents.get(_bucket(claims[i])) if i in taken else None) for i in range(len(claims))]

    def _seal(self, claim: Claim) -> Item:
        return {"Update": {"TableName": self._table, "Key": self._key(f"digest#{_bucket(claim)}"),
                           "UpdateExpression": "SET sealed = :t", "ExpressionAttributeValues": {":t": {"BOOL": True}}}}

    def _read_digests(self, buckets: Sequence[str]) -> dict[str, DigestContents]:
        """Sealed buckets' contents: their lists of parts, then the parts (BatchGetItem, 100 keys a request)."""
        parts: dict[str, set[str]] = {}
        for item in self._batch_get([f"digest#{bucket}" for bucket in buckets], "pk, #parts", {"#parts": "parts"}):
            parts[_str(item, "pk") or ""] = set(item.get("parts", {}).get("SS", []))
        lines: dict[str, Counter[DigestLine]] = {bucket: Counter() for bucket in buckets}
        wanted = sorted({pk for bucket in buckets for pk in parts.get(f"digest#{bucket}", set())})
        for item in self._batch_get(wanted, "#l", {"#l": "lines"}):
            for of, level, service, template, count in json.loads(_str(item, "lines") or "[]"):
                if of in lines:  # (a part lists the lines of every bucket it went into)
                    lines[of][(str(level), str(service), str(template))] += int(count)
        return {bucket: DigestContents(dict(counted)) for bucket, counted in lines.items()}

    def _batch_get(self, pks: Sequence[str], projection: str, names: Mapping[str, str]) -> list[Item]:
        found: list[Item] = []
        for start in range(0, len(pks), 100):  # BatchGetItem's most keys per request
            keys: list[Item] = [self._key(pk) for pk in pks[start:start + 100]]
            while keys:
                answer = self._call("batch_get_item", RequestItems={self._table: {
                    "Keys": keys, "ConsistentRead": True, "ProjectionExpression": projection,
                    "ExpressionAttributeNames": dict(names)}})
                found += answer.get("Responses", {}).get(self._table, [])
                keys = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return found


def _bucket(claim: Claim) -> str:
    return claim.key.removeprefix("digest/")


def _noop(table: str, index: int) -> Item:
    return {"ConditionCheck": {"TableName": table, "Key": {"pk": _s(f"noop#{index}")},
                               "ConditionExpression": "attribute_not_exists(pk) OR attribute_exists(pk)"}}


def ensure_table(client: Any, table: str, key: str = "pk") -> None:
    """Create the state table (or another with a string hash ``key`` and TTL on ``expires_at``) if missing (local
    mode; Terraform declares them for compose and AWS)."""
    try:
        client.create_table(TableName=table, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
    except client.exceptions.ResourceInUseException:
        return
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    try:
        client.update_time_to_live(TableName=table,
                                   TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    except ClientError as exc:  # some emulators lack TTL; expiry is then only a tidy-up concern
        log.warning("could not enable TTL on %s: %s", table, exc)
