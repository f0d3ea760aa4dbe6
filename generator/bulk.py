"""Put many generated records into Kinesis as fast as possible (benchmarks and integration tests)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from .lines import DEFAULT_SERVICES, LogLineFactory, utc_now
from .outputs import MAX_RECORDS_PER_PUT, KinesisOutput, PutRecordsClient


def preload(
    client: PutRecordsClient,
    stream: str,
    n: int,
    error_ratio: float = 0.2,
    seed: int | None = None,
    *,
    services: Sequence[str] = DEFAULT_SERVICES,
    with_seq: bool = False,
    now: Callable[[], datetime] = utc_now,
    max_attempts: int = 8,
) -> Counter[str]:
    """Put ``n`` generated records into ``stream`` with no pacing; returns the levels of those delivered.

    Records go in PutRecords calls of 500 with Fluent Bit's bytes; failed entries are re-sent (see
    ``KinesisOutput``). Records finally lost are logged and left out of the returned counts, so the counts
    are what a consumer can see.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    factory = LogLineFactory(seed, error_ratio, services, now=now, with_seq=with_seq)
    output = KinesisOutput(
        stream, client, rng=random.Random(None if seed is None else seed + 1), max_attempts=max_attempts
    )
    delivered: Counter[str] = Counter()
    remaining = n
    try:
        while remaining > 0:
            batch = factory.take(min(MAX_RECORDS_PER_PUT, remaining))
            remaining -= len(batch)
            lost = {id(r) for r in output.send(batch)}
            delivered.update(str(r["level"]) for r in batch if id(r) not in lost)
    finally:
        output.close()
    return delivered
