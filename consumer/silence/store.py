"""Silences in DynamoDB (``<app>-silences``, hash key ``id``; Terraform declares it, local mode creates it).

One item per silence: ``matchers`` (list), ``starts_at``/``ends_at`` (unix seconds), ``author``, ``reason``,
``silenced`` (events counted, an atomic ``ADD``), ``last_silenced_at``, ``expired_by``; ``expires_at`` (TTL) removes
it ``RETAIN_SECONDS`` after it ended, so ``list`` shows recent history and the table stays small.

Counting is exact across re-reads: each count also raises ``mark_<shard>``, the position of the last event counted
from that shard, on condition that it grows; a batch re-read after a restart or a lease move counts only what lies
past the mark. Shards are read in order, so nothing is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from consumer.retry import patiently
from consumer.silence import Silence

log = logging.getLogger("cali.silence")

RETAIN_SECONDS = 7 * 24 * 3600


class SilenceNotFound(LookupError):
    pass


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _silence(item: dict[str, Any]) -> Silence:
    def number(name: str) -> float | None:
        found = item.get(name, {}).get("N")
        return float(found) if found is not None else None

    return Silence(id=item["id"]["S"], matchers=tuple(x["S"] for x in item["matchers"]["L"]),
                   starts_at=float(item["starts_at"]["N"]), ends_at=float(item["ends_at"]["N"]),
                   author=item.get("author", {}).get("S", ""), reason=item.get("reason", {}).get("S", ""),
                   silenced=int(number("silenced") or 0), last_silenced_at=number("last_silenced_at"),
                   expired_by=item.get("expired_by", {}).get("S"))


class SilenceStore:
    """``sleep`` given (the processors): a count is retried through transient trouble (consumer.retry), never lost;
    without it (the CLI), errors surface at once."""

    def __init__(self, client: Any, table: str, sleep: Callable[[float], None] | None = None) -> None:
        self._db = client
        self._table = table
        self._sleep = sleep

    def _update(self, **kwargs: Any) -> Any:
        if self._sleep is None:
            return self._db.update_item(**kwargs)
        return patiently(lambda: self._db.update_item(**kwargs), self._sleep, "silences table update_item")

    def add(self, matchers: Sequence[str], starts_at: float, ends_at: float, author: str, reason: str) -> Silence:
        while True:
            silence = Silence(uuid.uuid4().hex[:8], tuple(matchers), starts_at, ends_at, author, reason)
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item={"id": {"S": silence.id}, "matchers": {"L": [{"S": m} for m in matchers]},
                          "starts_at": {"N": repr(starts_at)}, "ends_at": {"N": repr(ends_at)},
                          "author": {"S": author}, "reason": {"S": reason}, "silenced": {"N": "0"},
                          "expires_at": {"N": str(int(ends_at + RETAIN_SECONDS))}},
                    ConditionExpression="attribute_not_exists(id)")
                return silence
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise  # an id taken (1 in 4 billion): draw another

    def all(self) -> list[Silence]:
        """Every silence still kept (active, future, and ended within ``RETAIN_SECONDS``), oldest first."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._db.scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((_silence(i) for i in items), key=lambda s: (s.starts_at, s.id))

    def expire(self, silence_id: str, by: str, now: float) -> Silence:
        """End a silence now. Raises ``SilenceNotFound`` for an unknown id or one that already ended."""
        try:
            item = self._db.update_item(
                TableName=self._table, Key={"id": {"S": silence_id}},
                UpdateExpression="SET ends_at = :now, expired_by = :by, expires_at = :ttl",
                ConditionExpression="attribute_exists(id) AND ends_at > :now",
                ExpressionAttributeValues={":now": {"N": repr(now)}, ":by": {"S": by},
                                           ":ttl": {"N": str(int(now + RETAIN_SECONDS))}},
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            raise SilenceNotFound(silence_id) from None
        return _silence(item["Attributes"])

    def count(self, silence_id: str, shard_id: str, positions: Sequence[str], now: float) -> int:
        """Add the events at ``positions`` (``sortable_position``s of one shard, ascending) to the silence's count,
        skipping those a re-read already counted. Returns how many were added."""
        mark_name = f"mark_{shard_id}"
        todo = list(positions)
        while todo:
            try:
                self._update(
                    TableName=self._table, Key={"id": {"S": silence_id}},
                    UpdateExpression="ADD silenced :n SET #mark = :through, last_silenced_at = :now",
                    ConditionExpression="attribute_exists(id) AND (attribute_not_exists(#mark) OR #mark < :first)",
                    ExpressionAttributeNames={"#mark": mark_name},
                    ExpressionAttributeValues={":n": {"N": str(len(todo))}, ":through": {"S": todo[-1]},
                                               ":first": {"S": todo[0]}, ":now": {"N": repr(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")
                return len(todo)
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
                response: dict[str, Any] = dict(exc.response)
                old: dict[str, Any] = response.get("Item", {})
                if not old:
                    log.warning("silence %s is gone (deleted by hand?): %d events counted only locally",
                                silence_id, len(todo))
                    return 0
                mark = old.get(mark_name, {}).get("S", "")
                before = len(todo)
                todo = [p for p in todo if p > mark]
                if len(todo) == before:  # cannot happen unless the mark moved back; do not loop
                    raise
        return 0


class SilenceCache:
    """The silences a processor applies: re-read from the table every ``refresh_seconds`` (a new silence holds
    within that time everywhere, no restart). If a re-read fails, the last known silences keep holding.

    ``background``: the first read is made at once (a silence holds from the first batch); later re-reads run on a
    thread of their own while the record path goes on with the silences known (a scan under load took 0.15-0.25 s,
    every ``refresh_seconds``, on the batch's path)."""

    def __init__(self, store: SilenceStore, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time, *,
                 background: bool = False) -> None:
        self._store = store
        self._refresh = refresh_seconds
        self._clock = clock
        self._wall = wall
        self._background = background
        self._silences: tuple[Silence, ...] = ()
        self._active: set[str] = set()
        self._read_at: float | None = None
        self._reading = threading.Lock()  # one re-read at a time

    def current(self) -> tuple[Silence, ...]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh:
            first = self._read_at is None
            self._read_at = now
            if self._background and not first:
                if self._reading.acquire(blocking=False):
                    threading.Thread(target=self._reread, name="silences-reread", daemon=True).start()
            elif self._reading.acquire():
                self._reread()
        return self._silences

    def _reread(self) -> None:  # (holding ``_reading``)
        try:
            silences = tuple(self._store.all())
            active = {s.id for s in silences if s.active(self._wall())}
            self._silences = silences
            if active != self._active:
                log.info("silences in force: %s", ", ".join(sorted(active)) or "none")
                self._active = active
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not re-read the silences (%s); keeping the %d known", exc, len(self._silences))
        finally:
            self._reading.release()
