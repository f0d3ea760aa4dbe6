"""Slack's Web API with slack-sdk's ``WebClient``: posts that can be looked up, updates in place, thread replies.

https://api.slack.com/methods/chat.postMessage, chat.update, conversations.history, auth.test.

Effectively once: every post carries message metadata (``event_type`` ``cali_alert``, ``event_payload.key`` = the
idempotency key). A post whose outcome is unknown (no answer, a reset after sending, a 5xx) raises
``RetryableDelivery(uncertain=True)``; the next attempt first looks the key up in ``conversations.history`` since the
send claim was taken, and posts again only if Slack does not have it. So posts use a client that retries only what
certainly did not reach Slack (a connection not made, a 429); updates and look-ups, which can be repeated safely,
use one that also retries connection trouble and 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from consumer.config import Secret
from consumer.deliver.slack import Posted, idempotent_retry_handlers, post_retry_handlers, sdk_logger, unanswered
from consumer.errors import ConfigError, PermanentDelivery, RetryableDelivery
from consumer.timing import SLACK_TIMEOUT_SECONDS

log = logging.getLogger("cali.slack")

EVENT_TYPE = "cali_alert"
LOOKUP_MARGIN_SECONDS = 60.0  # clocks differ: look a little further back than the send claim
LOOKUP_PAGES = 20
# Web API errors (ok=false) worth another try; anything else in ok=false is permanent (a wrong channel, a bad token,
# a payload Slack refuses). https://api.slack.com/methods/chat.postMessage#errors
UNCERTAIN_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def _payload_args(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {key: payload[key] for key in ("text", "blocks") if key in payload}


class SlackWebApi:
    """One channel through one bot token. ``post``/``reply`` return where the message went; errors are
    Retryable/PermanentDelivery, never carrying the token."""

    def __init__(self, token: Secret, channel: str, base_url: str | None = None, name: str = "main",
                 timeout: int = SLACK_TIMEOUT_SECONDS) -> None:
        self.name = name
        self._token = token
        self._channel = channel
        self._channel_id: str | None = None
        url = base_url or "https://slack.com/api/"
        logger = sdk_logger(token, "<token>")
        self._posts = WebClient(token=token.value, base_url=url, timeout=timeout, logger=logger,
                                retry_handlers=post_retry_handlers())
        self._calls = WebClient(token=token.value, base_url=url, timeout=timeout, logger=logger,
                                retry_handlers=idempotent_retry_handlers())

    def __repr__(self) -> str:
        return f"SlackWebApi(name={self.name!r}, channel={self._channel!r}, token=<redacted>)"

    def check(self) -> str:
        """``auth.test`` at start: who the token is; a refused token is a configuration error (one line)."""
        try:
            response = self._call(self._calls.auth_test)
        except PermanentDelivery as exc:
            raise ConfigError(f"SLACK_BOT_TOKEN was refused by Slack's auth.test ({exc.reason})") from None
        except RetryableDelivery as exc:
            raise ConfigError(f"Slack's auth.test could not be reached to check SLACK_BOT_TOKEN ({exc.reason})") \
                from None
        return f"{response.get('user', '?')} in {response.get('team', '?')}"

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        if uncertain and key:
            found = self.find(key, since)
            if found is not None:
                log.info("message %s was posted before its outcome was known; not posting it again", key)
                return found
        response = self._call(self._posts.chat_postMessage, channel=self._channel_id or self._channel,
                              metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
                              **_payload_args(payload))
        return self._posted(response)

    def reply(self, posted: Posted, payload: Mapping[str, Any], *, key: str = "") -> None:
        self._call(self._posts.chat_postMessage, channel=posted.channel or self._channel, thread_ts=posted.ts,
                   metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}}, **_payload_args(payload))

    def update(self, posted: Posted, payload: Mapping[str, Any]) -> None:
        self._call(self._calls.chat_update, channel=posted.channel or self._channel, ts=posted.ts,
                   **_payload_args(payload))

    def find(self, key: str, since: float) -> Posted | None:
        """The message posted with idempotency key ``key`` at or after ``since`` (epoch seconds), if Slack has it."""
        channel = self._channel_id or self._channel
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            response = self._call(self._calls.conversations_history, channel=channel, include_all_metadata=True,
                                  oldest=f"{max(0.0, since - LOOKUP_MARGIN_SECONDS):.6f}", limit=200,
                                  **({"cursor": cursor} if cursor else {}))
            messages: list[dict[str, Any]] = response.get("messages", [])
            for message in messages:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == EVENT_TYPE and \
                        (metadata.get("event_payload") or {}).get("key") == key:
                    return Posted(str(response.get("channel") or channel), str(message["ts"]))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None

    def _posted(self, response: SlackResponse) -> Posted:
        channel = str(response.get("channel") or self._channel)
        self._channel_id = channel
        return Posted(channel, str(response.get("ts")))

    def _call(self, method: Callable[..., SlackResponse], **kwargs: Any) -> SlackResponse:
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"HTTP {status}")
            if status == 429 or error == "ratelimited":
                raise RetryableDelivery(429, error) from None
            if status >= 500 or error in UNCERTAIN_ERRORS:
                raise RetryableDelivery(status, error, uncertain=True) from None
            raise PermanentDelivery(status, error) from None
        except Exception as exc:  # urllib errors after the handlers gave up
            raise unanswered(exc, self._token) from None
