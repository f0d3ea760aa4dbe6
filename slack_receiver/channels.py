"""Channels the receiver knows: Slack-like ids, and which channel a request names (pure).

Ids are derived from the name (``C`` + 10 characters of base32 of its SHA-256), so a restart, and every
test run, gives a channel the same id. Web API methods name a channel by id, by name, or by ``#name``.
A webhook post lands in the channel its path names (``/services/<channel name or id>/...``), otherwise in
the first (default) channel: ``/services/local/cali/webhook`` goes to the default channel and
``/services/cali-warn/local`` to ``#cali-warn`` when ``cali-warn`` is in ``SLACK_RECEIVER_CHANNELS``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

WEBHOOK_PREFIX = "/services/"


@dataclass(frozen=True)
class Channel:
    id: str
    name: str


def channel_id(name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return "C" + base64.b32encode(digest).decode("ascii")[:10]


class Directory:
    """The receiver's channels, in the configured order; the first is the default one."""

    def __init__(self, names: Iterable[str]) -> None:
        self.channels = tuple(Channel(channel_id(name), name) for name in names)
        if not self.channels:
            raise ValueError("at least one channel is needed")
        self._by_key = {key: ch for ch in self.channels for key in (ch.id, ch.name)}

    @property
    def default(self) -> Channel:
        return self.channels[0]

    def find(self, ref: str) -> Channel | None:
        """The channel ``ref`` names (id, name or ``#name``), or None."""
        return self._by_key.get(ref.strip().removeprefix("#"))

    def for_webhook(self, path: str) -> Channel:
        first = path.removeprefix(WEBHOOK_PREFIX).split("/", 1)[0]
        return self.find(first) or self.default
