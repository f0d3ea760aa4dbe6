"""Batch marks written by the processors under test (children of the KCL daemon), read by ``bench.throughput``.

One JSON line per non-empty batch: shard, wall-clock start and end of ``process_records``, record count, last
sequence number. Appended with one ``os.write`` on an ``O_APPEND`` descriptor, so the two shards' processes can
share the file. No-op when ``BENCH_MARK_FILE`` is unset.
"""

from __future__ import annotations

import json
import os

MARK_FILE_ENV = "BENCH_MARK_FILE"


class Marks:
    def __init__(self, path: str | None) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None

    @classmethod
    def from_env(cls) -> Marks:
        return cls(os.environ.get(MARK_FILE_ENV) or None)

    def batch(self, shard: str, started: float, ended: float, records: int, last_sequence: str) -> None:
        if self._fd is None:
            return
        line = json.dumps({"shard": shard, "t0": started, "t1": ended, "n": records, "last": last_sequence,
                           "pid": os.getpid()})
        os.write(self._fd, (line + "\n").encode())
