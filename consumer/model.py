"""The values that flow through the pipeline. Frozen: stages return new values, never mutate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Level(StrEnum):
    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"
    DEBUG = "DEBUG"
    TRACE = "TRACE"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class LogEvent:
    level: Level
    message: str
    raw_level: str | None = None
    service: str | None = None
    timestamp: datetime | None = None
    trace_id: str | None = None
    error_type: str | None = None
    stack: str | None = None
    host: str | None = None
    container: str | None = None
    flaw: str | None = None  # what was wrong with the input, though an event could be salvaged (a counter name)


@dataclass(frozen=True)
class Dropped:
    """Input that could not become a LogEvent; ``reason`` is a short, stable counter name."""

    reason: str


@dataclass(frozen=True)
class RecordRef:
    """Where an event came from: enough for an idempotency key and a checkpoint."""

    shard_id: str
    sequence_number: str
    sub_sequence_number: int = 0
    line: int = 0

    @property
    def key(self) -> str:
        return f"{self.shard_id}/{self.sequence_number}/{self.sub_sequence_number}/{self.line}"

    @property
    def position(self) -> tuple[int, int, int]:
        return position(self.key)


@dataclass(frozen=True)
class Position:
    """A record's place in its shard, as the KCL checkpoints it."""

    sequence_number: str
    sub_sequence_number: int = 0

    @property
    def order(self) -> tuple[int, int]:
        return int(self.sequence_number), self.sub_sequence_number


def position(key: str) -> tuple[int, int, int]:
    """Order of events within a shard, from a ``RecordRef.key``."""
    _, sequence, sub, line = key.rsplit("/", 3)
    return int(sequence), int(sub), int(line)


@dataclass(frozen=True)
class Alert:
    event: LogEvent
    ref: RecordRef


def sortable_position(key: str) -> str:
    """A ``RecordRef.key``'s position as a fixed-width string: compares like ``position`` (DynamoDB conditions)."""
    sequence, sub, line = position(key)
    return f"{sequence:060d}/{sub:010d}/{line:08d}"
