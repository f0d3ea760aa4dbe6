"""Local mode's state on disk: moto's Kinesis and DynamoDB backends, saved and restored whole.

What it keeps: the stream and its records (with their sequence numbers), the KCL's lease table and checkpoints, and
CALI's ``<app>-state`` table (throttle, dedup claims, send claims). A stop followed by a start resumes where the
processors last checkpointed, so an event held in a pending digest at the stop is read again and reported.

How: the emulator serialises every request behind one lock; a snapshot pickles the backends while holding that
lock, so it is one consistent instant of the whole emulator (a checkpoint is never newer than the records it
points at). It is written to a temporary file and renamed over the old one, so a crash mid-write leaves the
previous snapshot intact. Taken every ``interval`` seconds while running and once more at a clean stop.

Between snapshots, every request that changed something (answered 2xx, not a read such as GetRecords or Scan) is
appended to a journal before its answer is sent; a snapshot empties the journal (both under the lock). A start
restores the snapshot and replays the journal through moto in the original order, which gives the same sequence
numbers and the same conditional-write outcomes. So after ``kill -9`` of everything nothing that was acknowledged
is lost: a record a producer was told had landed is there, and so is the send claim of an alert already posted.
The journal is flushed to the OS, not fsynced: a power cut can lose its last writes (then the last snapshot holds).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("cali.snapshot")

SERVICES = ("kinesis", "dynamodb")
FORMAT = 1
DEFAULT_INTERVAL_SECONDS = 30.0  # the journal makes it durable; this bounds replay (pickling 9k records: ~0.5 s)


@dataclass(frozen=True)
class Restored:
    saved_at: float
    streams: int
    tables: int


def _backends(service: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)  # type: ignore[call-overload]


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


def capture() -> bytes:
    """Pickle the services' backends. Call it with the emulator's request lock held."""
    state = {service: {account: dict(regions) for account, regions in _backends(service).items()}
             for service in SERVICES}
    return pickle.dumps({"format": FORMAT, "moto": _moto_version(), "saved_at": time.time(), "state": state},
                        protocol=pickle.HIGHEST_PROTOCOL)


def restore(blob: bytes) -> Restored:
    """Put saved backends in place of moto's (before the server takes requests)."""
    saved = pickle.loads(blob)
    if saved.get("format") != FORMAT or saved.get("moto") != _moto_version():
        raise ValueError(f"saved by another version (format {saved.get('format')}, moto {saved.get('moto')})")
    streams = tables = 0
    for service, accounts in saved["state"].items():
        backend_dict = _backends(service)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                backend_dict[account][region] = backend
                streams += len(getattr(backend, "streams", {}))
                tables += len(getattr(backend, "tables", {}))
    return Restored(float(saved["saved_at"]), streams, tables)


def write(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    temporary.replace(path)


def load(path: Path) -> Restored | None:
    """Restore from ``path`` if it holds a usable snapshot; an unusable one is moved aside, and we start empty."""
    if not path.exists():
        return None
    try:
        return restore(path.read_bytes())
    except Exception as exc:
        aside = path.with_suffix(".unusable")
        path.replace(aside)
        log.warning("could not restore %s (%s); starting empty, the file is kept as %s", path, exc, aside)
        return None


# Kinesis and DynamoDB (JSON protocol, X-Amz-Target) actions that change nothing: not journaled.
READS = frozenset({
    "GetRecords", "GetShardIterator", "DescribeStream", "DescribeStreamSummary", "ListShards", "ListStreams",
    "ListTagsForStream", "ListStreamConsumers", "DescribeStreamConsumer", "DescribeLimits",
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables", "DescribeTimeToLive",
    "DescribeContinuousBackups", "ListTagsOfResource", "DescribeEndpoints",
})


def changes_state(environ: dict[str, Any]) -> bool:
    action = str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]
    return bool(action) and action not in READS


class Journal:
    """The requests that changed the state since the last snapshot, in order (pickled (environ, body) pairs)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab")

    def record(self, environ: dict[str, Any], body: bytes) -> None:
        plain = {k: v for k, v in environ.items() if isinstance(v, str)}
        pickle.dump((plain, body), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.flush()  # to the OS: survives kill -9 of this process

    def clear(self) -> None:
        self._file.seek(0)
        self._file.truncate()

    def close(self) -> None:
        self._file.close()


def journaled(path: Path) -> Iterator[dict[str, Any]]:
    """WSGI environs to replay, in order; a torn last entry (killed mid-write) ends the list."""
    if not path.exists():
        return
    with path.open("rb") as f:
        while True:
            try:
                plain, body = pickle.load(f)
            except (EOFError, pickle.UnpicklingError, ValueError):
                return
            yield {**plain, "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
                   "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}


class Saver:
    """Takes a snapshot every ``interval`` seconds in a thread, and a last one at ``stop``."""

    def __init__(self, path: Path, lock: Callable[[], AbstractContextManager[Any]],
                 interval: float = DEFAULT_INTERVAL_SECONDS, journal: Journal | None = None) -> None:
        self._path, self._lock, self._interval, self._journal = path, lock, interval, journal
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def save(self) -> float:
        started = time.monotonic()
        with self._lock():  # the file written and the journal emptied as one step: no request falls between
            write(self._path, capture())
            if self._journal is not None:
                self._journal.clear()
        return time.monotonic() - started

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                took = self.save()
            except Exception:
                log.exception("snapshot to %s failed", self._path)
                continue
            if took > 1.0:
                log.warning("snapshot took %.1fs (requests wait meanwhile)", took)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        took = self.save()
        log.info("state saved to %s in %.2fs", self._path, took)
