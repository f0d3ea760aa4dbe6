"""The Slack edge: the classify policy, and SlackWebhook against a real local HTTP server (slack_receiver).

Faults are injected through the receiver's HTTP control API, never by patching slack-sdk.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from consumer.config import Secret
from consumer.deliver.slack import Outcome, SlackWebhook, classify
from consumer.errors import DeliveryError, PermanentDelivery, RetryableDelivery
from localmode.supervisor import wait_for
from slack_receiver import ReceiverServer, running

HOOK_PATH = "/services/T000/B000/SECRETSECRET"
SECRET_PART = "SECRETSECRET"
PAYLOAD = {"text": "[ERROR] payment-api: db timeout", "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "db timeout after 3000ms"}}]}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(200, "ok", Outcome.DELIVERED, id="200-ok"),
        pytest.param(200, "ok\n", Outcome.DELIVERED, id="200-ok-newline"),
        pytest.param(200, "other", Outcome.PERMANENT, id="200-other"),
        pytest.param(200, "", Outcome.PERMANENT, id="200-empty"),
        pytest.param(400, "invalid_payload", Outcome.PERMANENT, id="400-invalid_payload"),
        pytest.param(400, "no_text", Outcome.PERMANENT, id="400-no_text"),
        pytest.param(403, "action_prohibited", Outcome.PERMANENT, id="403"),
        pytest.param(404, "channel_not_found", Outcome.PERMANENT, id="404"),
        pytest.param(410, "channel_is_archived", Outcome.PERMANENT, id="410"),
        pytest.param(413, "request_too_large", Outcome.PERMANENT, id="413"),
        pytest.param(408, "timeout", Outcome.RETRY, id="408"),
        pytest.param(429, "rate_limited", Outcome.RETRY, id="429"),
        pytest.param(500, "rollup_error", Outcome.RETRY, id="500"),
        pytest.param(502, "bad gateway", Outcome.RETRY, id="502"),
        pytest.param(503, "service_unavailable", Outcome.RETRY, id="503"),
        pytest.param(504, "", Outcome.RETRY, id="504"),
    ],
)
def test_classify(status: int, body: str, expected: Outcome) -> None:
    assert classify(status, body) is expected


# -- a real local webhook ----------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with running() as server:
        yield server


def control(server: ReceiverServer, path: str, body: object) -> None:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def snapshot(server: ReceiverServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/_control/messages", timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_secret_hidden(webhook: SlackWebhook, url: str, caplog: pytest.LogCaptureFixture,
                         error: BaseException | None = None) -> None:
    """Neither the URL nor its secret path part shows in repr, the exception, or the consumer's logs.

    The receiver's own log lines (logger ``slack_receiver``) are Slack's side of the wire and are not checked.
    """
    texts = [repr(webhook), str(webhook)]
    if error is not None:
        texts += [str(error), repr(error), *map(str, error.args), "".join(traceback.format_exception(error))]
    for record in caplog.records:
        if record.name.startswith("slack_receiver"):
            continue
        texts += [record.getMessage(), str(record.args), str(record.exc_text)]
    for text in texts:
        assert url not in text
        assert SECRET_PART not in text, text


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_delivered(receiver: ReceiverServer, debug_logs: pytest.LogCaptureFixture) -> None:
    url = receiver.url + HOOK_PATH
    webhook = SlackWebhook(Secret(url), "main")
    webhook.post(PAYLOAD)
    state = snapshot(receiver)
    assert [m["payload"] for m in state["messages"]] == [PAYLOAD]
    assert [m["path"] for m in state["messages"]] == [HOOK_PATH]
    assert_secret_hidden(webhook, url, debug_logs)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param({"username": "cali"}, "no_text", id="no-text"),
        pytest.param({"text": "   "}, "no_text", id="blank-text"),
    ],
)
def test_slack_refusing_the_payload_is_permanent(receiver: ReceiverServer, debug_logs: pytest.LogCaptureFixture,
                                                 payload: dict[str, Any], reason: str) -> None:
    url = receiver.url + HOOK_PATH
    webhook = SlackWebhook(Secret(url), "main")
    with pytest.raises(PermanentDelivery) as info:
        webhook.post(payload)
    assert (info.value.status, info.value.reason) == (400, reason)
    assert snapshot(receiver)["attempts"] == 1  # no retry on a 4xx
    assert_secret_hidden(webhook, url, debug_logs, info.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(400, "invalid_payload", id="400"),
        pytest.param(403, "action_prohibited", id="403"),
        pytest.param(404, "channel_not_found", id="404"),
        pytest.param(410, "channel_is_archived", id="410"),
    ],
)
def test_injected_4xx_is_permanent(receiver: ReceiverServer, debug_logs: pytest.LogCaptureFixture, status: int,
                                   body: str) -> None:
    control(receiver, "/_control/faults", [{"status": status, "body": body}])
    url = receiver.url + HOOK_PATH
    webhook = SlackWebhook(Secret(url), "main")
    with pytest.raises(PermanentDelivery) as info:
        webhook.post(PAYLOAD)
    assert (info.value.status, info.value.reason) == (status, body)
    state = snapshot(receiver)
    assert (state["attempts"], state["messages"]) == (1, [])
    assert_secret_hidden(webhook, url, debug_logs, info.value)


def test_429_with_retry_after_then_ok(receiver: ReceiverServer, debug_logs: pytest.LogCaptureFixture) -> None:
    control(receiver, "/_control/faults", [{"status": 429, "body": "rate_limited", "retry_after": 1}])
    url = receiver.url + HOOK_PATH
    webhook = SlackWebhook(Secret(url), "main")
    started = time.monotonic()
    webhook.post(PAYLOAD)  # slack-sdk's rate-limit handler waits Retry-After and posts again
    assert time.monotonic() - started >= 1.0
    state = snapshot(receiver)
    assert [a["status"] for a in state["attempt_log"]] == [429, 200]
    assert len(state["messages"]) == 1
    assert_secret_hidden(webhook, url, debug_logs)


@pytest.mark.parametrize("status", [pytest.param(500, id="500"), pytest.param(502, id="502"),
                                    pytest.param(503, id="503")])
def test_5xx_is_an_uncertain_outcome_and_not_re_posted_at_once(receiver: ReceiverServer,
                                                               debug_logs: pytest.LogCaptureFixture,
                                                               status: int) -> None:
    """Slack may have posted before answering 5xx: no immediate re-post (the alerter pauses, then tries again)."""
    control(receiver, "/_control/faults", [{"status": status, "body": "oops"}])
    url = receiver.url + HOOK_PATH
    webhook = SlackWebhook(Secret(url), "main")
    with pytest.raises(RetryableDelivery) as info:
        webhook.post(PAYLOAD)
    assert (info.value.status, info.value.uncertain) == (status, True)
    assert [a["status"] for a in snapshot(receiver)["attempt_log"]] == [status]
    webhook.post(PAYLOAD)  # the alerter's next attempt
    assert len(snapshot(receiver)["messages"]) == 1
    assert_secret_hidden(webhook, url, debug_logs, info.value)


def test_a_slow_slack_within_the_timeout_gets_each_message_once(receiver: ReceiverServer) -> None:
    """Issue 8: a receiver answering after 8 s got 4 copies with a 5 s timeout. The timeout now leaves room."""
    control(receiver, "/_control/faults", [{"delay": 8}])
    webhook = SlackWebhook(Secret(receiver.url + HOOK_PATH), "main")
    webhook.post(PAYLOAD)
    state = snapshot(receiver)
    assert (len(state["attempt_log"]), len(state["messages"])) == (1, 1)


def test_no_answer_within_the_timeout_is_uncertain_and_not_re_posted(receiver: ReceiverServer) -> None:
    control(receiver, "/_control/faults", [{"delay": 3}])
    webhook = SlackWebhook(Secret(receiver.url + HOOK_PATH), "main", timeout=1)
    with pytest.raises(RetryableDelivery) as info:
        webhook.post(PAYLOAD)
    assert info.value.uncertain is True
    state = wait_for(lambda: snapshot(receiver), lambda s: bool(s["messages"]), 10, "the delayed message stored")
    assert (len(state["attempt_log"]), len(state["messages"])) == (1, 1)  # Slack has it: once


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        pytest.param({"status": 503, "body": "service_unavailable"}, 503, id="503-outage"),
        pytest.param({"status": 429, "body": "rate_limited", "retry_after": 120}, 429, id="429-long-retry-after"),
    ],
)
def test_lasting_trouble_is_retryable(receiver: ReceiverServer, debug_logs: pytest.LogCaptureFixture,
                                      fault: dict[str, Any], status: int) -> None:
    control(receiver, "/_control/faults", [fault] * 5)
    url = receiver.url + HOOK_PATH
    webhook = SlackWebhook(Secret(url), "main")
    started = time.monotonic()
    with pytest.raises(RetryableDelivery) as info:
        webhook.post(PAYLOAD)
    assert time.monotonic() - started < 30  # one post stays bounded; the alerter's backoff handles the rest
    assert info.value.status == status
    assert snapshot(receiver)["messages"] == []
    assert_secret_hidden(webhook, url, debug_logs, info.value)


def test_connection_refused_is_retryable(debug_logs: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"
    webhook = SlackWebhook(Secret(url), "main")
    with pytest.raises(RetryableDelivery) as info:
        webhook.post(PAYLOAD)
    assert (info.value.status, info.value.uncertain) == (None, False)  # certainly not posted
    assert "refused" in info.value.reason.lower()
    # slack-sdk logs each retry with the request URL: the redaction is exercised here, not vacuous.
    assert any("retry" in r.getMessage() for r in debug_logs.records if r.name.startswith("cali.slack"))
    assert_secret_hidden(webhook, url, debug_logs, info.value)


def test_delivery_errors_are_one_tree() -> None:
    assert issubclass(RetryableDelivery, DeliveryError)
    assert issubclass(PermanentDelivery, DeliveryError)
    error = PermanentDelivery(404, "channel_not_found")
    assert str(error) == "slack answered 404: channel_not_found"


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(repr, id="repr"),
        pytest.param(str, id="str"),
        pytest.param(lambda s: f"{s}", id="format"),
        pytest.param(lambda s: "%s %r" % (s, s), id="percent"),  # noqa: UP031
        pytest.param(lambda s: repr([s, {"k": s}]), id="in-containers"),
    ],
)
def test_secret_hides_its_value(render: Any) -> None:
    secret = Secret("https://hooks.slack.com" + HOOK_PATH)
    text = render(secret)
    assert SECRET_PART not in text
    assert "***" in text
    assert secret.value.endswith(SECRET_PART)  # the value itself is still usable


def test_two_webhooks_with_different_secrets_redact_their_own(receiver: ReceiverServer,
                                                              debug_logs: pytest.LogCaptureFixture) -> None:
    main = SlackWebhook(Secret(receiver.url + HOOK_PATH), "main")
    warn = SlackWebhook(Secret(receiver.url + "/services/T000/B001/OTHERSECRET"), "warn")
    main.post(PAYLOAD)
    warn.post(PAYLOAD)
    assert "OTHERSECRET" not in repr(warn)
    assert [m["path"] for m in snapshot(receiver)["messages"]] == [HOOK_PATH, "/services/T000/B001/OTHERSECRET"]
    for record in debug_logs.records:
        if not record.name.startswith("slack_receiver"):
            assert "OTHERSECRET" not in record.getMessage()
            assert SECRET_PART not in record.getMessage()
