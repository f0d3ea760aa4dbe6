"""Accepted messages and edits: kept in memory and appended as JSON lines to a store file.

Each line is one JSON object (see :mod:`slack_receiver.workspace` for the kinds) and is flushed at once,
because other processes read the file while the receiver runs. An existing file is kept and loaded,
so memory and file always hold the same records; ``reset`` empties both.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger(__name__)

Record = dict[str, Any]


def _load(path: Path) -> list[Record]:
    records: list[Record] = []
    if not path.exists():
        return records
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif line.strip():
                logger.warning("%s:%d: skipping unreadable line", path, number)
    return records


def _ends_with_torn_line(path: Path) -> bool:
    if not path.exists():
        return False
    with path.open("rb") as f:
        if f.seek(0, 2) == 0:
            return False
        f.seek(-1, 2)
        return f.read(1) != b"\n"


def _open_for_append(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = _ends_with_torn_line(path)
    f = path.open("a", encoding="utf-8")
    if torn:  # finish the torn last line so the next record starts on a line of its own
        f.write("\n")
        f.flush()
    return f


class MessageStore:
    """Thread-safe list of accepted messages, mirrored to ``path`` when one is given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._records: list[Record] = _load(path) if path else []
        self._file: TextIO | None = _open_for_append(path) if path else None

    def append(self, record: Record) -> Record:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
            self._records.append(record)
        return record

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            if self._file is not None:
                self._file.truncate(0)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
