"""Where generated records go: stdout (JSON lines, for a container's log driver), Fluent Bit's forward input
(records shaped like Docker's fluentd logging driver sends them), or straight into Kinesis."""

from __future__ import annotations

import itertools
import json
import logging
import random
import secrets
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TextIO

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from .fluentbit import RecordDiscarded, fluent_bit_record, partition_key, partition_prefix
from .forward import AckedForwardClient, Entry, ForwardError
from .lines import LogRecord

log = logging.getLogger(__name__)

MAX_RECORDS_PER_PUT: Final = 500
MAX_BYTES_PER_PUT: Final = 5 * 1024 * 1024  # data + partition keys of one PutRecords request
MAX_BYTES_PER_RECORD: Final = 1024 * 1024  # data + partition key of one record

RETRYABLE_ERROR_CODES: Final = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "LimitExceededException",
    "KMSThrottlingException",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
})


class Output(Protocol):
    def write(self, records: list[LogRecord]) -> None: ...

    def close(self) -> None: ...


class StdoutOutput:
    """One compact JSON line per record (ASCII only, ``\\uXXXX`` escapes), flushed after every write."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: whatever sys.stdout is at write time

    def _target(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def write(self, records: list[LogRecord]) -> None:
        if not records:
            return
        stream = self._target()
        stream.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        stream.flush()

    def close(self) -> None:
        self._target().flush()


FORWARD_TAG: Final = "docker.log-generator"
FORWARD_CONTAINER_NAME: Final = "/cali-log-generator-1"
FORWARD_BUFFER_MAX_BYTES: Final = 8 * 1024 * 1024
FORWARD_BATCH_MAX: Final = 500  # entries per chunk
FORWARD_RETRY_INTERVAL: Final = 0.5  # seconds between connection attempts while the server is away


def docker_fields(container_id: str | None = None, container_name: str = FORWARD_CONTAINER_NAME) -> dict[str, str]:
    """What Docker's fluentd logging driver adds to each stdout line of the generator's container in compose
    (``container_id`` is 64 hex digits, one per container)."""
    return {"container_id": container_id or secrets.token_hex(32), "container_name": container_name,
            "source": "stdout"}


class ForwardClient(Protocol):
    """The part of ``generator.forward.AckedForwardClient`` that ``ForwardOutput`` uses."""

    def send(self, tag: str, entries: Sequence[Entry]) -> None: ...

    def close(self) -> None: ...


@dataclass
class ForwardStats:
    records_sent: int = 0  # acknowledged by the server
    records_lost: int = 0  # dropped from the buffer (over its limit, or still unacknowledged at close)
    records_resent: int = 0  # sent again after no ack came (the server may then have them twice: at least once)


class ForwardOutput:
    """Records as Docker's ``fluentd`` logging driver makes them, sent to Fluent Bit's ``forward`` input.

    Each line becomes ``{"container_id", "container_name", "source": "stdout", "log": <the JSON line>}`` with tag
    ``docker.log-generator`` and whole-second time: the shape the generator's container produces in docker compose
    (fixture case c6), so local mode feeds a real Fluent Bit the same records without Docker, and the one Fluent Bit
    config serves both.

    Acknowledged, as the driver's ``fluentd-request-ack``: records stay buffered until Fluent Bit acknowledged the
    chunk that carried them (generator/forward.py). A chunk without an ack (Fluent Bit down, restarting, killed
    mid-write) is sent again, so the server may see it twice but never silently misses it. Past
    ``buffer_max_bytes`` the oldest records are dropped; what is still unacknowledged ``close_timeout`` seconds into
    ``close`` is dropped too. Either way it is logged and counted in ``stats.records_lost``: a true figure.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 24224,
        *,
        tag: str = FORWARD_TAG,
        container_name: str = FORWARD_CONTAINER_NAME,
        container_id: str | None = None,
        buffer_max_bytes: int = FORWARD_BUFFER_MAX_BYTES,
        timeout: float = 3.0,
        close_timeout: float = 5.0,
        retry_interval: float = FORWARD_RETRY_INTERVAL,
        client: ForwardClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.address = f"{host}:{port}"
        self.tag = tag
        self._base = docker_fields(container_id, container_name)
        self._client = client if client is not None else AckedForwardClient(host, port, timeout)
        self._buffer_max = buffer_max_bytes
        self._close_timeout = close_timeout
        self._retry_interval = retry_interval
        self._clock, self._sleep = clock, sleep
        self._pending: deque[tuple[Entry, int]] = deque()  # (entry, its size), oldest first
        self._pending_bytes = 0
        self._next_try = 0.0
        self._tried = 0  # how many of the oldest pending records were sent at least once without an ack
        self._failing = False
        self._closed = False
        self.stats = ForwardStats()

    def write(self, records: list[LogRecord]) -> None:
        now = int(time.time())
        for record in records:
            line = json.dumps(record, separators=(",", ":"))  # what the container prints, without the newline
            size = len(line) + 160  # the record's other fields and the framing
            self._pending.append(((now, {**self._base, "log": line}), size))
            self._pending_bytes += size
        dropped = 0
        while self._pending_bytes > self._buffer_max and self._pending:
            _, size = self._pending.popleft()
            self._pending_bytes -= size
            dropped += 1
        if dropped:
            self._tried = max(0, self._tried - dropped)
            self.stats.records_lost += dropped
            log.error("%d records to Fluent Bit at %s lost: its buffer limit (%d bytes) was reached",
                      dropped, self.address, self._buffer_max)
        if self._clock() >= self._next_try:
            self._flush()

    def _flush(self) -> bool:
        """Send what is pending, oldest first, chunk by chunk; False when a chunk went unacknowledged."""
        while self._pending:
            batch = list(itertools.islice(self._pending, FORWARD_BATCH_MAX))
            self.stats.records_resent += min(self._tried, len(batch))
            try:
                self._client.send(self.tag, [entry for entry, _ in batch])
            except ForwardError as exc:
                self._next_try = self._clock() + self._retry_interval
                self._tried = max(self._tried, len(batch))
                if not self._failing:
                    log.warning("Fluent Bit at %s did not acknowledge %d records (%s); buffering and retrying",
                                self.address, len(batch), exc)
                    self._failing = True
                return False
            for _ in batch:
                _, size = self._pending.popleft()
                self._pending_bytes -= size
            self.stats.records_sent += len(batch)
            self._tried = max(0, self._tried - len(batch))
            if self._failing:
                log.info("Fluent Bit at %s acknowledges again; buffered records sent", self.address)
                self._failing = False
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        deadline = self._clock() + self._close_timeout
        while self._pending and not self._flush() and self._clock() < deadline:
            self._sleep(self._retry_interval)
        self._client.close()
        if self._pending:
            self.stats.records_lost += len(self._pending)
            log.error("%d records to Fluent Bit at %s lost: still not acknowledged at exit", len(self._pending),
                      self.address)
            self._pending.clear()
        s = self.stats
        log.log(logging.WARNING if s.records_lost else logging.INFO,
                "forward output to %s closed: %d sent, %d lost (%d re-sent after no ack: Fluent Bit may hold "
                "those twice)", self.address, s.records_sent, s.records_lost, s.records_resent)


class PutRecordsClient(Protocol):
    """The one call of a boto3 Kinesis client that ``KinesisOutput`` uses."""

    def put_records(self, *, Records: Sequence[Any], StreamName: str) -> Mapping[str, Any]: ...


@dataclass
class KinesisStats:
    records_sent: int = 0
    put_calls: int = 0
    records_retried: int = 0  # re-sends of entries that had failed (one entry may count several times)
    records_lost: int = 0  # finally not delivered (retries used up, or discarded before sending)
    lost_reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class _Entry:
    record: LogRecord
    data: bytes
    key: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.key.encode("utf-8"))


def is_retryable(exc: BaseException) -> bool:
    """Throttling, Kinesis-side failures and connection trouble are worth another try; the rest is not."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "") in RETRYABLE_ERROR_CODES
    return isinstance(exc, (ConnectionError, HTTPClientError))


class KinesisOutput:
    """PutRecords in batches of at most 500 records / 5 MiB, with Fluent Bit's record bytes and partition keys.

    A partial failure re-sends only the failed entries, after a short jittered backoff, up to ``max_attempts``
    calls in all; so does a throttling or connection error of the whole call. What is still not delivered then
    is logged and counted in ``stats.records_lost``. Errors that retrying cannot fix (no such stream, bad
    credentials) propagate.

    ``client`` is a boto3 Kinesis client made by the caller (boto3 itself reads ``AWS_ENDPOINT_URL``).

    ``container``: fields appended to every record, as Fluent Bit's ``[FILTER] parser`` with ``Reserve_Data``
    appends the Docker driver's fields after the app's keys (``docker_fields()``). With them a record is byte for
    byte what compose's path (stdout -> Docker's fluentd driver -> Fluent Bit -> Kinesis) writes for that line
    (fixture case c6b); without them, what Fluent Bit's tail input with the json parser writes (case c1).
    """

    def __init__(
        self,
        stream_name: str,
        client: PutRecordsClient,
        *,
        rng: random.Random | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_max: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        max_records_per_put: int = MAX_RECORDS_PER_PUT,
        max_bytes_per_put: int = MAX_BYTES_PER_PUT,
        container: Mapping[str, str] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 1 <= max_records_per_put <= MAX_RECORDS_PER_PUT:
            raise ValueError(f"max_records_per_put must be within [1, {MAX_RECORDS_PER_PUT}]")
        self.stream_name = stream_name
        self._client = client
        self._rng = rng if rng is not None else random.Random()
        self._prefix = partition_prefix(self._rng)  # like one Fluent Bit output instance
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._max_records = max_records_per_put
        self._max_bytes = max_bytes_per_put
        self._container = dict(container or {})
        self._closed = False
        self.stats = KinesisStats()

    def write(self, records: list[LogRecord]) -> None:
        self.send(records)

    def send(self, records: Sequence[LogRecord]) -> list[LogRecord]:
        """Put ``records``; returns those finally not delivered (already logged and counted)."""
        entries: list[_Entry] = []
        lost: list[LogRecord] = []
        for record in records:
            try:
                data = fluent_bit_record({**record, **self._container} if self._container else record)
            except RecordDiscarded as exc:
                self._count_lost(1, "discarded")
                log.error("record not sent to %s: %s", self.stream_name, exc)
                lost.append(record)
                continue
            entry = _Entry(record, data, partition_key(self._rng, self._prefix))
            if entry.size > MAX_BYTES_PER_RECORD:
                self._count_lost(1, "too_large")
                log.error("record of %d bytes not sent to %s: over the Kinesis limit", entry.size, self.stream_name)
                lost.append(record)
                continue
            entries.append(entry)
        for batch in self._batches(entries):
            lost.extend(self._put(batch))
        return lost

    def _batches(self, entries: list[_Entry]) -> list[list[_Entry]]:
        batches: list[list[_Entry]] = []
        batch: list[_Entry] = []
        size = 0
        for entry in entries:
            if batch and (len(batch) >= self._max_records or size + entry.size > self._max_bytes):
                batches.append(batch)
                batch, size = [], 0
            batch.append(entry)
            size += entry.size
        if batch:
            batches.append(batch)
        return batches

    def _put(self, batch: list[_Entry]) -> list[LogRecord]:
        pending = batch
        reasons: Counter[str] = Counter()
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                self.stats.records_retried += len(pending)
            reasons = Counter()
            try:
                self.stats.put_calls += 1
                response = self._client.put_records(
                    StreamName=self.stream_name,
                    Records=[{"Data": e.data, "PartitionKey": e.key} for e in pending],
                )
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                failed = pending
                reasons[type(exc).__name__ if not isinstance(exc, ClientError) else _error_code(exc)] += len(pending)
            else:
                results = list(response.get("Records") or [])
                if len(results) != len(pending):
                    log.warning("PutRecords answered %d results for %d records", len(results), len(pending))
                failed = []
                for index, entry in enumerate(pending):
                    result = results[index] if index < len(results) else {"ErrorCode": "MissingResult"}
                    code = result.get("ErrorCode")
                    if code:
                        failed.append(entry)
                        reasons[str(code)] += 1
                self.stats.records_sent += len(pending) - len(failed)
            if not failed:
                return []
            if attempt < self._max_attempts:
                delay = self._backoff(attempt)
                log.info(
                    "%d of %d records not accepted by %s (%s); retry %d/%d in %.2fs",
                    len(failed), len(pending), self.stream_name, _summary(reasons), attempt, self._max_attempts - 1,
                    delay,
                )
                self._sleep(delay)
            pending = failed
        for reason, count in reasons.items():
            self._count_lost(count, reason)
        log.error(
            "%d records lost: still not accepted by %s after %d attempts (%s)",
            len(pending), self.stream_name, self._max_attempts, _summary(reasons),
        )
        return [e.record for e in pending]

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def _count_lost(self, count: int, reason: str) -> None:
        self.stats.records_lost += count
        self.stats.lost_reasons[reason] += count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        s = self.stats
        level = logging.WARNING if s.records_lost else logging.INFO
        log.log(
            level, "kinesis output to %s closed: %d sent in %d calls, %d re-sent, %d lost%s",
            self.stream_name, s.records_sent, s.put_calls, s.records_retried, s.records_lost,
            f" ({_summary(s.lost_reasons)})" if s.records_lost else "",
        )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


def _summary(reasons: Counter[str]) -> str:
    return ", ".join(f"{code} x{count}" for code, count in reasons.most_common())
