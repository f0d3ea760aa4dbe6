"""Posting to a Slack incoming webhook with slack-sdk, and the one policy that reads its answers.

Slack answers 200 ``ok``, or a plain-text error: 400 invalid_payload/no_text, 403 action_prohibited,
404 channel_not_found, 410 channel_is_archived, 429 rate_limited (Retry-After), 5xx.
https://api.slack.com/messaging/webhooks#handling_errors
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

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

log = logging.getLogger("cali.slack")

# One post() stays bounded (~4 attempts of 5 s, plus a Retry-After of 20 s at most): the processor's backoff loop
# handles longer outages, and its send claim must not go stale meanwhile (alerter.SEND_STALE_SECONDS).
REQUEST_TIMEOUT_SECONDS = 5
RETRIES_PER_POST = 1  # per handler
MAX_RETRY_AFTER_SECONDS = 20


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


def classify(status: int, body: str) -> Outcome:
    if status == 200 and body.strip() == "ok":
        return Outcome.DELIVERED
    if status == 200:
        return Outcome.PERMANENT  # a 200 with another body is not Slack's webhook contract
    if status == 429 or status >= 500 or status == 408:
        return Outcome.RETRY
    return Outcome.PERMANENT


class _BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
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


class _ServerErrorsRetryHandler(ServerErrorRetryHandler):
    """Every 5xx, not only 500 and 503."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return response is not None and response.status_code >= 500


def retry_handlers() -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=RETRIES_PER_POST),
        _BoundedRateLimitRetryHandler(max_retry_count=RETRIES_PER_POST),
        _ServerErrorsRetryHandler(max_retry_count=RETRIES_PER_POST),
    ]


class _Redact(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg, record.args = message.replace(self._secret, "<webhook>"), None
        return True


def _sdk_logger(url: Secret) -> logging.Logger:
    """slack-sdk logs the full URL at DEBUG and errors at ERROR: keep it at INFO, behind a redacting filter."""
    sdk_log = logging.getLogger(f"cali.slack.sdk.{id(url)}")
    sdk_log.setLevel(logging.INFO)
    sdk_log.addFilter(_Redact(url.value))
    return sdk_log


class SlackWebhook:
    """One webhook. ``post`` returns when Slack said ok, or raises Retryable/PermanentDelivery."""

    def __init__(self, url: Secret, name: str = "main") -> None:
        self.name = name
        self._url = url
        self._client = WebhookClient(url.value, timeout=REQUEST_TIMEOUT_SECONDS, logger=_sdk_logger(url),
                                     retry_handlers=retry_handlers())

    def __repr__(self) -> str:
        return f"SlackWebhook(name={self.name!r}, url=<redacted>)"

    def post(self, payload: Mapping[str, Any]) -> None:
        try:
            response = self._client.send_dict(dict(payload))
        except Exception as exc:  # urllib errors after the connection handler gave up
            raise RetryableDelivery(None, f"{type(exc).__name__}: {_without(str(exc), self._url)}") from None
        outcome = classify(response.status_code, response.body)
        reason = _without(response.body, self._url)[:200]
        if outcome is Outcome.RETRY:
            raise RetryableDelivery(response.status_code, reason)
        if outcome is Outcome.PERMANENT:
            raise PermanentDelivery(response.status_code, reason)


def _without(text: str, url: Secret) -> str:
    return text.replace(url.value, "<webhook>")


def payload_size(payload: Mapping[str, Any]) -> int:
    return len(json.dumps(payload))
