"""The Web API edge (consumer/deliver/webapi.py) against the local Slack stand-in over real HTTP: auth.test at start,
posts that carry their idempotency key, look-ups after an unknown outcome, updates and thread replies, errors
that never carry the token. Faults come from the receiver's control API, never from patching slack-sdk."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from consumer.config import Secret
from consumer.deliver.webapi import SlackWebApi
from consumer.errors import ConfigError, PermanentDelivery, RetryableDelivery
from slack_receiver import ReceiverServer, ReceiverSettings, running

TOKEN = "xoxb-cali-test-SECRET"
SETTINGS = ReceiverSettings(token=Secret(TOKEN), channels=("cali-alerts",))
PAYLOAD = {"text": "[ERROR] pay: db timeout", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                                    "text": "db timeout"}}]}


@pytest.fixture
def server() -> Iterator[ReceiverServer]:
    with running(settings=SETTINGS) as srv:
        yield srv


def api(server: ReceiverServer, token: str = TOKEN, timeout: int = 30) -> SlackWebApi:
    return SlackWebApi(Secret(token), "cali-alerts", server.url + "/api/", timeout=timeout)


def control(server: ReceiverServer, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def messages(server: ReceiverServer) -> list[dict[str, Any]]:
    return list(control(server, "/_control/messages")["messages"])


def test_auth_test_at_start(server: ReceiverServer) -> None:
    assert "CALI local" in api(server).check()
    with pytest.raises(ConfigError) as info:
        api(server, token="xoxb-wrong").check()
    assert str(info.value) == "SLACK_BOT_TOKEN was refused by Slack's auth.test (invalid_auth)"


def test_a_post_carries_its_key_and_says_where_it_went(server: ReceiverServer) -> None:
    posted = api(server).post(PAYLOAD, key="shardId-0/12/0/0", since=time.time())
    (stored,) = messages(server)
    assert (posted.channel, posted.ts) == (stored["channel"], stored["ts"])
    assert stored["payload"]["metadata"] == {"event_type": "cali_alert", "event_payload": {"key": "shardId-0/12/0/0"}}


def test_an_unanswered_post_is_looked_up_before_posting_again(server: ReceiverServer) -> None:
    """Slack got the post but the answer came too late: the next attempt finds it by its key, posts nothing."""
    slow = api(server, timeout=1)
    since = time.time()
    control(server, "/_control/faults", [{"delay": 3, "on": "chat.postMessage"}])
    with pytest.raises(RetryableDelivery) as info:
        slow.post(PAYLOAD, key="k-1", since=since)
    assert info.value.uncertain is True
    deadline = time.monotonic() + 10
    while not messages(server) and time.monotonic() < deadline:  # the receiver stores it once its delay passed
        time.sleep(0.1)
    again = slow.post(PAYLOAD, key="k-1", since=since, uncertain=True)
    (stored,) = messages(server)
    assert again.ts == stored["ts"]
    assert again.channel in (stored["channel"], stored["channel_name"])
    fresh = slow.post(PAYLOAD, key="k-2", since=since, uncertain=True)  # not found: posted now
    assert len(messages(server)) == 2 and fresh.ts != again.ts


def test_a_slow_but_working_slack_gets_each_post_once(server: ReceiverServer) -> None:
    control(server, "/_control/faults", [{"delay": 8, "on": "chat.postMessage"}])
    api(server).post(PAYLOAD, key="k-slow", since=time.time())
    assert len(messages(server)) == 1


def test_updates_and_thread_replies(server: ReceiverServer) -> None:
    client = api(server)
    root = client.post(PAYLOAD, key="root", since=time.time())
    client.update(root, {"text": "[ERROR] pay: db timeout (x5)"})
    client.reply(root, {"text": "db timeout after 31ms"}, key="sample")
    stored, reply = messages(server)
    assert stored["payload"]["text"] == "[ERROR] pay: db timeout (x5)"
    assert (stored["reply_count"], reply["thread_ts"], reply["payload"]["text"]) == (1, root.ts,
                                                                                      "db timeout after 31ms")


@pytest.mark.parametrize(
    ("fault", "kind", "uncertain"),
    [
        pytest.param({"status": 429, "retry_after": 30}, RetryableDelivery, False, id="429-long"),
        pytest.param({"status": 500}, RetryableDelivery, True, id="500"),
        pytest.param({"status": 503}, RetryableDelivery, True, id="503"),
        pytest.param({"status": 400, "body": "invalid_blocks"}, PermanentDelivery, False, id="400"),
    ],
)
def test_errors_are_classified_and_never_carry_the_token(server: ReceiverServer, caplog: pytest.LogCaptureFixture,
                                                         fault: dict[str, Any], kind: type[Exception],
                                                         uncertain: bool) -> None:
    caplog.set_level(logging.DEBUG)
    control(server, "/_control/faults", [{**fault, "on": "chat.postMessage"}] * 3)
    client = api(server)
    with pytest.raises(kind) as info:
        client.post(PAYLOAD, key="k", since=time.time())
    assert getattr(info.value, "uncertain", False) is uncertain
    assert messages(server) == []
    assert "SECRET" not in str(info.value) + repr(client) + caplog.text
