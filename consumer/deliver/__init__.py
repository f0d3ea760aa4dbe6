"""Delivery at the edge: Slack incoming webhooks (``slack``) and the Web API (``webapi``), and what the alerter asks
of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from consumer.deliver.slack import Posted


class Sender(Protocol):
    name: str

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted: ...


class ThreadedSender(Sender, Protocol):
    """A sender that can update a message in place and reply in its thread (the Web API)."""

    def update(self, posted: Posted, payload: Mapping[str, Any]) -> None: ...

    def reply(self, posted: Posted, payload: Mapping[str, Any], *, key: str = "") -> None: ...


def threaded(sender: Sender) -> ThreadedSender | None:
    return sender if hasattr(sender, "update") and hasattr(sender, "reply") else None  # type: ignore[return-value]
