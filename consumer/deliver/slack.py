"""Posting to a Slack incoming webhook with slack-sdk, and the one policy that reads its answers.

Slack answers 200 ``ok``, or a plain-text error: 400 invalid_payload/no_text, 403 action_prohibited,
404 channel_not_found, 410 channel_is_archived, 429 rate_limited (Retry-After), 5xx.
https://api.slack.com/messaging/webhooks#handling_errors

A webhook cannot be asked whether a post arrived. So slack-sdk retries only what certainly did not reach Slack
(a connection that could not be made, a 429); a request left unanswered (timeout, reset after sending) or answered
5xx is an *uncertain* outcome: ``RetryableDelivery(uncertain=True)``, counted, and re-posted only after a pause.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.error import URLError

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from consumer.config import Secret
from consumer.errors import PermanentDelivery, RetryableDelivery
from consumer.timing import MAX_RETRY_AFTER_SECONDS, SLACK_TIMEOUT_SECONDS

log = logging.getLogger("cali.slack")

RETRIES_PER_POST = 1  # per handler


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Posted:
    """Where a message went: a webhook tells nothing (None, None); the Web API its channel and ``ts``."""

    channel: str | None = None
    ts: str | None = None


def classify(status: int, body: str) -> Outcome:
    if status == 200 and body.strip() == "ok":
        return Outcome.DELIVERED
    if status == 200:
        return Outcome.PERMANENT  # a 200 with another body is not Slack's webhook contract
    if status == 429 or status >= 500 or status == 408:
        return Outcome.RETRY
    return Outcome.PERMANENT


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler sleeps whatever Retry-After says; cap it so one post stays bounded."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            return int(values[0]) <= MAX_RETRY_AFTER_SECONDS
        except ValueError:
            return False


class ServerErrorsRetryHandler(ServerErrorRetryHandler):
    """Every 5xx, not only 500 and 503 (for idempotent calls only: a post answered 5xx may have gone out)."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return response is not None and response.status_code >= 500


def post_retry_handlers() -> list[RetryHandler]:
    """For posts: only what certainly did not reach Slack. urllib wraps errors while *sending* in URLError;
    errors while waiting for the answer (timeout, reset) come raw, and are not retried here."""
    return [ConnectionErrorRetryHandler(max_retry_count=RETRIES_PER_POST, error_types=[URLError]),
            BoundedRateLimitRetryHandler(max_retry_count=RETRIES_PER_POST)]


def idempotent_retry_handlers() -> list[RetryHandler]:
    """For calls that can be repeated safely (updates, look-ups): connection trouble, 429, 5xx."""
    return [ConnectionErrorRetryHandler(max_retry_count=RETRIES_PER_POST),
            BoundedRateLimitRetryHandler(max_retry_count=RETRIES_PER_POST),
            ServerErrorsRetryHandler(max_retry_count=RETRIES_PER_POST)]


class _Redact(logging.Filter):
    def __init__(self, secret: str, name: str) -> None:
        super().__init__()
        self._secret = secret
        self._name = name

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg, record.args = message.replace(self._secret, self._name), None
        return True


def sdk_logger(secret: Secret, name: str = "<webhook>") -> logging.Logger:
    """slack-sdk logs the full URL (or token) at DEBUG and errors at ERROR: keep it at INFO, behind a redacting
    filter."""
    sdk_log = logging.getLogger(f"cali.slack.sdk.{id(secret)}")
    sdk_log.setLevel(logging.INFO)
    sdk_log.addFilter(_Redact(secret.value, name))
    return sdk_log


def unanswered(exc: Exception, secret: Secret) -> RetryableDelivery:
    """A request that raised: certain not to have reached Slack only when urllib failed while sending."""
    reason = f"{type(exc).__name__}: {str(exc).replace(secret.value, '<secret>')}"[:200]
    return RetryableDelivery(None, reason, uncertain=not isinstance(exc, URLError))


class SlackWebhook:
    """One webhook. ``post`` returns when Slack said ok, or raises Retryable/PermanentDelivery."""

    def __init__(self, url: Secret, name: str = "main", timeout: int = SLACK_TIMEOUT_SECONDS) -> None:
        self.name = name
        self._url = url
        self._client = WebhookClient(url.value, timeout=timeout, logger=sdk_logger(url),
                                     retry_handlers=post_retry_handlers())

    def __repr__(self) -> str:
        return f"SlackWebhook(name={self.name!r}, url=<redacted>)"

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        """``key``/``since``/``uncertain`` are for senders that can look a post up; a webhook cannot."""
        try:
            response = self._client.send_dict(dict(payload))
        except Exception as exc:  # urllib errors after the handlers gave up
            raise unanswered(exc, self._url) from None
        outcome = classify(response.status_code, response.body)
        reason = _without(response.body, self._url)[:200]
        if outcome is Outcome.RETRY:
            raise RetryableDelivery(response.status_code, reason, uncertain=response.status_code >= 500)
        if outcome is Outcome.PERMANENT:
            raise PermanentDelivery(response.status_code, reason)
        return Posted()


def _without(text: str, url: Secret) -> str:
    return text.replace(url.value, "<webhook>")
