"""Local mode's state on disk: moto's Kinesis and DynamoDB backends, saved and restored whole.

What it keeps: the stream and its records (with their sequence numbers), the KCL's lease table and checkpoints, and
CALI's ``<app>-state`` table (throttle, dedup claims, send claims). A stop followed by a start resumes where the
processors last checkpointed, so an event held in a pending digest at the stop is read again and reported.

How: the emulator serialises every request behind one lock; a snapshot pickles the backends while holding that
lock, so it is one consistent instant of the whole emulator (a checkpoint is never newer than the records it
points at). It is written to a temporary file and renamed over the old one, so a crash mid-write leaves the
previous snapshot intact. Taken every ``interval`` seconds while running and once more at a clean stop.

After ``kill -9`` of everything, the state is that of the last snapshot: up to ``interval`` seconds of puts that
were acknowledged are gone (producers were told they landed), and an alert posted in that window may be posted
again (its send claim is gone too). A clean stop (Ctrl-C, SIGTERM) loses nothing.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("cali.snapshot")

SERVICES = ("kinesis", "dynamodb")
FORMAT = 1
DEFAULT_INTERVAL_SECONDS = 5.0


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


class Saver:
    """Takes a snapshot every ``interval`` seconds in a thread, and a last one at ``stop``."""

    def __init__(self, path: Path, lock: Callable[[], AbstractContextManager[Any]],
                 interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self._path, self._lock, self._interval = path, lock, interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def save(self) -> float:
        started = time.monotonic()
        with self._lock():
            blob = capture()
        write(self._path, blob)
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
