"""The receiver's workspace: channels, their messages, threads and edits, mirrored to the JSONL store.

Every message gets a ``ts`` unique in its channel (``<seconds>.<microseconds>``, strictly increasing). The
store holds one line per event, so replaying it rebuilds the same workspace after a restart:

* ``{"kind": "message", "received_at", "path", "channel", "ts", "payload", "thread_ts"?, "reply_broadcast"?}``
* ``{"kind": "edit", "received_at", "path", "channel", "ts", "edit_ts", "payload"}`` (``payload`` is the whole
  message after the edit)

Lines written before channels existed (no ``kind``) load as messages of the default channel.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .channels import Channel, Directory
from .store import MessageStore, Record

logger = logging.getLogger(__name__)

MESSAGE = "message"
EDIT = "edit"


def format_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def parse_ts(ts: object) -> int | None:
    """Microseconds of a ``"<seconds>.<micro>"`` ts (or a plain number), None when it is not one."""
    if isinstance(ts, bool) or not isinstance(ts, str | int | float):
        return None
    text = str(ts).strip()
    seconds, _, fraction = text.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        return None
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


@dataclass
class Message:
    channel: Channel
    ts: str
    received_at: float
    path: str
    payload: dict[str, Any]
    original: dict[str, Any]
    thread_ts: str | None = None
    reply_broadcast: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    @property
    def from_webhook(self) -> bool:
        return not self.path.startswith("/api/")

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def view(self) -> dict[str, Any]:
        """The message as the control API and the test helpers see it (plain JSON)."""
        out: dict[str, Any] = {
            "received_at": self.received_at, "path": self.path, "channel": self.channel.id,
            "channel_name": self.channel.name, "ts": self.ts, "payload": self.payload,
        }
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.reply_broadcast:
            out["reply_broadcast"] = True
        if self.replies:
            out["reply_count"] = len(self.replies)
        out["original"] = self.original
        out["edits"] = list(self.edits)
        return out


class Workspace:
    """Thread-safe; every change is appended to the store before it becomes visible."""

    def __init__(self, directory: Directory, store: MessageStore) -> None:
        self.directory = directory
        self.store = store
        self._lock = threading.Lock()
        self._messages: dict[str, dict[str, Message]] = {}
        self._order: list[Message] = []
        self._last: dict[str, int] = {}
        self.version = 0
        self._replay(store.records())

    # -- changes --------------------------------------------------------------------------------
    def post(self, channel: Channel, received_at: float, path: str, payload: dict[str, Any],
             thread_ts: str | None = None, reply_broadcast: bool = False) -> Message:
        """Store a new message; ``thread_ts`` must name a message of ``channel`` (its thread's root is used)."""
        with self._lock:
            if thread_ts is not None:
                parent = self._messages.get(channel.id, {}).get(thread_ts)
                if parent is None:
                    raise KeyError(thread_ts)
                thread_ts = parent.thread_ts or parent.ts
            record: Record = {"kind": MESSAGE, "received_at": received_at, "path": path, "channel": channel.id,
                              "ts": self._next_ts(channel.id, received_at), "payload": payload}
            if thread_ts is not None:
                record["thread_ts"] = thread_ts
                if reply_broadcast:
                    record["reply_broadcast"] = True
            self.store.append(record)
            return self._apply_message(record, channel)

    def edit(self, channel: Channel, ts: str, received_at: float, path: str, changes: dict[str, Any]) -> Message:
        """Replace the given fields of message ``ts``; raises KeyError when there is none."""
        with self._lock:
            message = self._messages.get(channel.id, {})[ts]
            payload = {**message.payload, **changes}
            record: Record = {"kind": EDIT, "received_at": received_at, "path": path, "channel": channel.id,
                              "ts": ts, "edit_ts": self._next_ts(channel.id, received_at), "payload": payload}
            self.store.append(record)
            self._apply_edit(record, message)
            return message

    def reset(self) -> None:
        with self._lock:
            self.store.reset()
            self._messages.clear()
            self._order.clear()
            self._last.clear()
            self.version += 1

    # -- queries --------------------------------------------------------------------------------
    def get(self, channel: Channel, ts: str) -> Message | None:
        with self._lock:
            return self._messages.get(channel.id, {}).get(ts)

    def channel_messages(self, channel: Channel) -> list[Message]:
        """Every message of ``channel`` (replies too), oldest first."""
        with self._lock:
            return list(self._messages.get(channel.id, {}).values())

    def thread(self, channel: Channel, ts: str) -> list[Message]:
        """The root of the thread ``ts`` belongs to, then its replies, oldest first; [] if ``ts`` is unknown."""
        with self._lock:
            messages = self._messages.get(channel.id, {})
            message = messages.get(ts)
            if message is None:
                return []
            root = messages.get(message.thread_ts or message.ts, message)
            return [root, *(messages[reply] for reply in root.replies)]

    def views(self, channel: Channel | None = None) -> list[dict[str, Any]]:
        """Messages in arrival order (all channels, or one), as plain JSON."""
        with self._lock:
            return [m.view() for m in self._order if channel is None or m.channel == channel]

    # -- internals (lock held) ------------------------------------------------------------------
    def _next_ts(self, channel_id: str, at: float) -> str:
        micros = max(int(at * 1_000_000), self._last.get(channel_id, 0) + 1)
        self._last[channel_id] = micros
        return format_ts(micros)

    def _apply_message(self, record: Record, channel: Channel) -> Message:
        payload = record["payload"]
        message = Message(channel, record["ts"], record["received_at"], record["path"], payload, payload,
                          record.get("thread_ts"), bool(record.get("reply_broadcast")))
        messages = self._messages.setdefault(channel.id, {})
        messages[message.ts] = message
        if message.is_reply and message.thread_ts in messages:
            root = messages[message.thread_ts]
            root.replies.append(message.ts)
            root.thread_ts = root.ts
        self._order.append(message)
        self.version += 1
        return message

    def _apply_edit(self, record: Record, message: Message) -> None:
        message.payload = record["payload"]
        message.edits.append({"edit_ts": record["edit_ts"], "received_at": record["received_at"],
                              "payload": record["payload"]})
        self.version += 1

    def _replay(self, records: Iterable[Record]) -> None:
        for number, record in enumerate(records, start=1):
            try:
                self._replay_one(record)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("store line %d: skipped (%s)", number, exc)

    def _replay_one(self, record: Record) -> None:
        channel = self.directory.find(str(record.get("channel") or "")) if "channel" in record else None
        if record.get("kind", MESSAGE) == EDIT:
            if channel is None:
                raise KeyError("unknown channel")
            self._apply_edit(record, self._messages[channel.id][record["ts"]])
            self._bump(channel.id, record["edit_ts"])
            return
        if channel is None:  # written before channels existed, or for a channel no longer configured
            channel = self.directory.for_webhook(str(record.get("path", "")))
        if not isinstance(record.get("payload"), dict):
            raise TypeError("payload is not an object")
        received_at = float(record.get("received_at") or 0.0)
        record = {"kind": MESSAGE, "path": "", **record, "channel": channel.id, "received_at": received_at}
        if parse_ts(record.get("ts")) is None or record["ts"] in self._messages.get(channel.id, {}):
            record["ts"] = self._next_ts(channel.id, received_at)
        self._bump(channel.id, record["ts"])
        self._apply_message(record, channel)

    def _bump(self, channel_id: str, ts: str) -> None:
        micros = parse_ts(ts) or 0
        self._last[channel_id] = max(self._last.get(channel_id, 0), micros)
