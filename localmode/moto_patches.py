"""Keep moto's Kinesis cost independent of the stream's length.

moto 5.2.5 walks a shard's records from the first one on every GetRecords, and copies every key into a list
to find the last sequence number on every put (``moto/kinesis/models.py``: ``Shard.get_records``,
``get_max_sequence_number``). A long-running local mode then slows down as the stream grows. A shard's
sequence numbers are consecutive integers (``put_record`` assigns last + 1), so a record is found by key.
"""

from __future__ import annotations

from typing import Any

from moto.kinesis import models

_original_get_records = models.Shard.get_records


def _first_key(shard: Any) -> int:
    return next(iter(shard.records)) if shard.records else 0


def _last_key(shard: Any) -> int:
    return next(reversed(shard.records)) if shard.records else 0


def _get_records(shard: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    after = int(last_sequence_id)
    if not shard.records:
        return [], after, 0
    last = _last_key(shard)
    seq = max(after + 1, _first_key(shard))
    results: list[Any] = []
    while seq <= last and (limit is None or len(results) < limit):
        record = shard.records.get(seq)
        if record is None:  # not consecutive after all: fall back to moto's own scan
            return _original_get_records(shard, last_sequence_id, limit)
        results.append(record)
        seq += 1
    if not results:
        return [], after, 0
    behind = shard.records[last].created_at - results[-1].created_at
    return results, results[-1].sequence_number, int(behind * 1000)


def apply() -> None:
    for name, function in (("get_records", _get_records), ("get_min_sequence_number", _first_key),
                           ("get_max_sequence_number", _last_key)):
        setattr(models.Shard, name, function)
