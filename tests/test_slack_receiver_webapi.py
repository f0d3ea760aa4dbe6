"""Contract tests of the receiver's Web API stand-in, driven by slack-sdk's own ``WebClient`` over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from consumer.config import Secret
from consumer.errors import ConfigError
from slack_receiver import ReceiverServer, ReceiverSettings, load_receiver_settings, running
from slack_receiver.channels import Directory, channel_id
from slack_receiver.settings import DEFAULT_TOKEN
from tests.test_slack_receiver import REPO, post_json, request

# slack-sdk warns when a post has no top-level text; posts without it are part of the contract tested here.
pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")

TOKEN = "xoxb-test-token"
SETTINGS = ReceiverSettings(token=Secret(TOKEN), channels=("cali-alerts", "cali-warn"))
ALERTS, WARN = channel_id("cali-alerts"), channel_id("cali-warn")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "slack.jsonl"


@pytest.fixture
def server(store_path: Path) -> Iterator[ReceiverServer]:
    with running(store_path=store_path, settings=SETTINGS) as srv:
        yield srv


def client(server: ReceiverServer, token: str | None = TOKEN, **kwargs: Any) -> WebClient:
    return WebClient(token=token, base_url=server.url + "/api/", timeout=5, **kwargs)


def error_of(call: Any, *args: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value


def control(server: ReceiverServer, path: str) -> Any:
    status, body, _ = request(server.url + path)
    assert status == 200, body
    return json.loads(body)


def store_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


# -- auth and channels ---------------------------------------------------------------------------


def test_auth_test_answers_the_bot(server: ReceiverServer) -> None:
    answer = client(server).auth_test()
    assert answer["ok"] is True
    assert (answer["user_id"], answer["bot_id"], answer["team"]) == ("U0CALIBOT", "B0CALIBOT", "CALI local")
    assert answer["url"] == server.url + "/api/"


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("", "not_authed"), ("xoxb-other", "invalid_auth")])
def test_token_is_required(server: ReceiverServer, token: str | None, error: str) -> None:
    for call in (lambda c: c.auth_test(), lambda c: c.chat_postMessage(channel="cali-alerts", text="x")):
        err = error_of(call, client(server, token))
        assert (err.response.status_code, err.response["error"]) == (200, error)
    assert control(server, "/_control/messages")["messages"] == []


def test_default_settings_token(tmp_path: Path) -> None:
    with running(store_path=tmp_path / "s.jsonl") as srv:
        assert client(srv, DEFAULT_TOKEN).auth_test()["ok"]


@pytest.mark.parametrize("ref", ["cali-warn", "#cali-warn", WARN])
def test_channel_by_name_hash_name_or_id(server: ReceiverServer, ref: str) -> None:
    answer = client(server).chat_postMessage(channel=ref, text="hello")
    assert answer["channel"] == WARN
    [message] = client(server).conversations_history(channel=ref)["messages"]
    assert (message["ts"], message["text"]) == (answer["ts"], "hello")


@pytest.mark.parametrize("method", ["chat_postMessage", "conversations_history", "chat_update",
                                    "conversations_replies"])
def test_unknown_channel(server: ReceiverServer, method: str) -> None:
    err = error_of(getattr(client(server), method), channel="nope", text="x", ts="1.000001")
    assert err.response["error"] == "channel_not_found"


def test_channel_ids_are_slack_like_and_stable() -> None:
    assert channel_id("cali-alerts") == ALERTS and ALERTS.startswith("C") and len(ALERTS) == 11
    assert ALERTS.isalnum() and ALERTS.isupper() and ALERTS != WARN


def test_unknown_method_is_404(server: ReceiverServer) -> None:
    err = error_of(client(server).api_call, "chat.delete", json={"channel": "cali-alerts"})
    assert (err.response.status_code, err.response["error"]) == (404, "unknown_method")


# -- posting -------------------------------------------------------------------------------------


def test_post_message_with_blocks_and_metadata_is_stored(server: ReceiverServer, store_path: Path) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*ERROR* boom"}}]
    metadata = {"event_type": "cali_alert", "event_payload": {"key": "shard-1/42"}}
    answer = client(server).chat_postMessage(channel="cali-alerts", text="boom", blocks=blocks, metadata=metadata)
    assert answer["message"]["blocks"] == blocks and answer["message"]["bot_id"] == "B0CALIBOT"
    [line] = store_lines(store_path)
    assert line["kind"] == "message" and line["channel"] == ALERTS and line["ts"] == answer["ts"]
    assert line["payload"] == {"text": "boom", "blocks": blocks, "metadata": metadata}
    [view] = control(server, "/_control/messages?channel=cali-alerts")["messages"]
    assert (view["channel_name"], view["payload"]["text"], view["edits"]) == ("cali-alerts", "boom", [])


def test_username_and_icon_emoji_are_kept(server: ReceiverServer) -> None:
    answer = client(server).chat_postMessage(channel="cali-alerts", text="x", username="deploy", icon_emoji=":ship:")
    assert answer["message"]["username"] == "deploy"
    [view] = control(server, "/_control/messages")["messages"]
    assert (view["payload"]["username"], view["payload"]["icon_emoji"]) == ("deploy", ":ship:")


def test_metadata_only_with_include_all_metadata(server: ReceiverServer) -> None:
    metadata = {"event_type": "cali_alert", "event_payload": {"key": "k1"}}
    client(server).chat_postMessage(channel="cali-alerts", text="a", metadata=metadata)
    [plain] = client(server).conversations_history(channel="cali-alerts")["messages"]
    [full] = client(server).conversations_history(channel="cali-alerts", include_all_metadata=True)["messages"]
    assert "metadata" not in plain and full["metadata"] == metadata


def test_ts_unique_per_channel_under_concurrent_posts(server: ReceiverServer) -> None:
    answers: list[tuple[str, str]] = []
    lock = threading.Lock()

    def post(channel: str) -> None:
        web = client(server)
        for i in range(15):
            answer = web.chat_postMessage(channel=channel, text=f"m{i}")
            with lock:
                answers.append((answer["channel"], answer["ts"]))

    threads = [threading.Thread(target=post, args=(ch,)) for ch in ("cali-alerts", "cali-alerts", "cali-warn")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 45 and len(set(answers)) == 45
    history = client(server).conversations_history(channel="cali-alerts", limit=100)["messages"]
    stamps = [float(m["ts"]) for m in history]
    assert len(stamps) == 30 and stamps == sorted(stamps, reverse=True)


LONG_TEXT = "x" * 40_001
TOO_MANY = [{"type": "divider"}] * 51


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({}, "no_text", id="nothing"),
        pytest.param({"text": "   "}, "no_text", id="blank"),
        pytest.param({"text": LONG_TEXT}, "msg_too_long", id="too-long"),
        pytest.param({"blocks": [{"type": "section"}]}, "invalid_blocks", id="section-without-text"),
        pytest.param({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]}, "invalid_blocks",
                     id="mrkdwn-header"),
        pytest.param({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
                     "invalid_blocks", id="long-header"),
        pytest.param({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
                     "invalid_blocks", id="long-section"),
        pytest.param({"blocks": [{"type": "marquee"}]}, "invalid_blocks", id="unknown-type"),
        pytest.param({"blocks": TOO_MANY}, "invalid_blocks", id="51-blocks"),
        pytest.param({"blocks": "[not json"}, "invalid_blocks_format", id="blocks-not-json"),
        pytest.param({"text": "x", "metadata": {"event_type": "e"}}, "invalid_metadata_format", id="metadata"),
    ],
)
def test_post_message_refusals(server: ReceiverServer, kwargs: dict[str, Any], error: str) -> None:
    err = error_of(client(server).chat_postMessage, channel="cali-alerts", **kwargs)
    assert (err.response.status_code, err.response["error"]) == (200, error)
    assert control(server, "/_control/messages")["messages"] == []


def test_invalid_blocks_says_where(server: ReceiverServer) -> None:
    blocks = [{"type": "divider"}, {"type": "section", "text": {"type": "mrkdwn", "text": ""}}]
    err = error_of(client(server).chat_postMessage, channel="cali-alerts", blocks=blocks)
    assert err.response["errors"] == ["must be more than 0 characters [json-pointer:/blocks/1/text/text]"]


def test_form_encoded_post_with_json_blocks(server: ReceiverServer) -> None:
    blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "from a form"}]}]
    form = urllib.parse.urlencode({"token": TOKEN, "channel": "cali-alerts", "blocks": json.dumps(blocks)}).encode()
    status, body, _ = request(server.url + "/api/chat.postMessage", "POST", form, "application/x-www-form-urlencoded")
    assert status == 200 and json.loads(body)["ok"] is True
    [message] = client(server).conversations_history(channel="cali-alerts")["messages"]
    assert message["blocks"] == blocks


# -- threads -------------------------------------------------------------------------------------


def test_threads_replies_and_broadcast(server: ReceiverServer) -> None:
    web = client(server)
    root = web.chat_postMessage(channel="cali-alerts", text="root")["ts"]
    first = web.chat_postMessage(channel="cali-alerts", text="first reply", thread_ts=root)["ts"]
    loud = web.chat_postMessage(channel="cali-alerts", text="also to channel", thread_ts=root, reply_broadcast=True)
    web.chat_postMessage(channel="cali-alerts", text="after")
    # A reply to a reply goes to the thread's root, as on Slack.
    web.chat_postMessage(channel="cali-alerts", text="nested", thread_ts=first)

    history = web.conversations_history(channel="cali-alerts")["messages"]
    assert [m["text"] for m in history] == ["after", "also to channel", "root"]
    assert history[1]["subtype"] == "thread_broadcast" and history[1]["thread_ts"] == root
    assert (history[2]["reply_count"], history[2]["thread_ts"]) == (3, root)

    for ts in (root, first):
        replies = web.conversations_replies(channel="cali-alerts", ts=ts)["messages"]
        assert [m["text"] for m in replies] == ["root", "first reply", "also to channel", "nested"]
    assert replies[1]["parent_user_id"] == "U0CALIBOT" and replies[2]["ts"] == loud["ts"]

    thread = control(server, f"/_control/thread?channel=cali-alerts&ts={root}")["messages"]
    assert [m["payload"]["text"] for m in thread] == ["root", "first reply", "also to channel", "nested"]


def test_thread_not_found(server: ReceiverServer) -> None:
    web = client(server)
    assert error_of(web.conversations_replies, channel="cali-alerts", ts="1.000001").response["error"] == (
        "thread_not_found")
    err = error_of(web.chat_postMessage, channel="cali-alerts", text="x", thread_ts="1.000001")
    assert err.response["error"] == "thread_not_found"


# -- edits ---------------------------------------------------------------------------------------


def test_update_edits_in_place_and_persists(server: ReceiverServer, store_path: Path) -> None:
    web = client(server)
    posted = web.chat_postMessage(channel="cali-warn", text="3 errors",
                                  metadata={"event_type": "cali_alert", "event_payload": {"n": 3}})
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "7 errors"}}]
    updated = web.chat_update(channel=WARN, ts=posted["ts"], text="7 errors", blocks=blocks)
    assert (updated["ts"], updated["text"], updated["channel"]) == (posted["ts"], "7 errors", WARN)

    [message] = web.conversations_history(channel="cali-warn", include_all_metadata=True)["messages"]
    assert message["text"] == "7 errors" and message["blocks"] == blocks
    assert message["metadata"]["event_payload"] == {"n": 3}  # kept: the update did not name it
    assert float(message["edited"]["ts"]) > float(posted["ts"])
    lines = store_lines(store_path)
    assert [line["kind"] for line in lines] == ["message", "edit"]
    assert lines[1]["ts"] == posted["ts"] and lines[1]["payload"]["text"] == "7 errors"
    [view] = control(server, "/_control/messages?channel=cali-warn")["messages"]
    assert view["original"]["text"] == "3 errors" and [e["payload"]["text"] for e in view["edits"]] == ["7 errors"]


def test_update_refusals(server: ReceiverServer) -> None:
    web = client(server)
    assert post_json(server.url + "/services/local/cali/webhook", {"text": "from a webhook"})[:2] == (200, "ok")
    [hooked] = control(server, "/_control/messages")["messages"]
    ts = web.chat_postMessage(channel="cali-alerts", text="mine")["ts"]
    cases = [
        ({"ts": "1.000001", "text": "x"}, "message_not_found"),
        ({"ts": hooked["ts"], "text": "x"}, "cant_update_message"),
        ({"ts": ts}, "no_text"),
        ({"ts": ts, "text": LONG_TEXT}, "msg_too_long"),
        ({"ts": ts, "blocks": [{"type": "section"}]}, "invalid_blocks"),
    ]
    for kwargs, error in cases:
        assert error_of(web.chat_update, channel="cali-alerts", **kwargs).response["error"] == error, kwargs
    assert all(not m["edits"] for m in control(server, "/_control/messages")["messages"])


# -- history paging ------------------------------------------------------------------------------


def test_history_oldest_latest_limit_cursor(server: ReceiverServer) -> None:
    web = client(server)
    stamps = [web.chat_postMessage(channel="cali-alerts", text=f"m{i}")["ts"] for i in range(7)]
    between = web.conversations_history(channel="cali-alerts", oldest=stamps[1], latest=stamps[4])["messages"]
    assert [m["ts"] for m in between] == [stamps[3], stamps[2]]
    inclusive = web.conversations_history(channel="cali-alerts", oldest=stamps[1], latest=stamps[4], inclusive=True)
    assert [m["ts"] for m in inclusive["messages"]] == stamps[4:0:-1]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = web.conversations_history(channel="cali-alerts", limit=3, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        pages += 1
        if not page["has_more"]:
            break
        cursor = page["response_metadata"]["next_cursor"]
    assert (seen, pages) == (stamps[::-1], 3)
    assert error_of(web.conversations_history, channel="cali-alerts", cursor="bm9wZQ==").response["error"] == (
        "invalid_cursor")
    assert error_of(web.conversations_history, channel="cali-alerts", limit=-1).response["error"] == "invalid_limit"


def test_replies_paging(server: ReceiverServer) -> None:
    web = client(server)
    root = web.chat_postMessage(channel="cali-alerts", text="root")["ts"]
    for i in range(4):
        web.chat_postMessage(channel="cali-alerts", text=f"r{i}", thread_ts=root)
    first = web.conversations_replies(channel="cali-alerts", ts=root, limit=3)
    rest = web.conversations_replies(channel="cali-alerts", ts=root, limit=3,
                                     cursor=first["response_metadata"]["next_cursor"])
    assert [m["text"] for m in first["messages"] + rest["messages"]] == ["root", "r0", "r1", "r2", "r3"]
    assert rest["has_more"] is False


# -- faults on the Web API -----------------------------------------------------------------------


def test_ratelimited_with_retry_after_is_honoured_by_slack_sdk(server: ReceiverServer) -> None:
    post_json(server.url + "/_control/faults", [{"status": 429, "retry_after": 1, "on": "chat.postMessage"}])
    web = client(server, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    assert web.auth_test()["ok"]  # the fault waits for the method it names
    started = time.monotonic()
    answer = web.chat_postMessage(channel="cali-alerts", text="after a 429")
    assert time.monotonic() - started >= 1.0
    assert answer["ok"] is True
    log = control(server, "/_control/messages")["attempt_log"]
    assert [(a["path"], a["status"]) for a in log] == [
        ("/api/auth.test", 200), ("/api/chat.postMessage", 429), ("/api/chat.postMessage", 200)]
    assert len(control(server, "/_control/messages")["messages"]) == 1


def test_ratelimited_without_a_retry_handler(server: ReceiverServer) -> None:
    post_json(server.url + "/_control/faults", [{"status": 429, "retry_after": 3}])
    err = error_of(client(server, retry_handlers=[]).chat_postMessage, channel="cali-alerts", text="x")
    assert (err.response.status_code, err.response["error"]) == (429, "ratelimited")
    assert err.response.headers["Retry-After"] == "3"


def test_server_error_outage_and_surface_targets(server: ReceiverServer) -> None:
    web = client(server, retry_handlers=[])
    post_json(server.url + "/_control/faults", [{"status": 500, "on": "webhook"}, {"status": 500, "on": "api"}])
    assert error_of(web.auth_test).response.status_code == 500
    assert post_json(server.url + "/services/x", {"text": "x"})[:2] == (500, "rollup_error")
    post_json(server.url + "/_control/outage", {"seconds": 30})
    err = error_of(web.chat_postMessage, channel="cali-alerts", text="x")
    assert (err.response.status_code, err.response["error"]) == (503, "service_unavailable")
    assert post_json(server.url + "/services/x", {"text": "x"})[:2] == (503, "service_unavailable")
    request(server.url + "/_control/faults", "DELETE")
    assert web.chat_postMessage(channel="cali-alerts", text="x")["ok"]


def test_delay_applies_to_the_api(server: ReceiverServer) -> None:
    post_json(server.url + "/_control/faults", [{"delay": 0.3, "on": "api"}])
    started = time.monotonic()
    assert client(server).chat_postMessage(channel="cali-alerts", text="slow")["ok"]
    assert time.monotonic() - started >= 0.3


# -- webhooks land in channels -------------------------------------------------------------------


def test_webhook_paths_choose_the_channel(server: ReceiverServer) -> None:
    for path, text in [("/services/local/cali/webhook", "default"), ("/services/cali-warn/local", "by name"),
                       (f"/services/{WARN}/x", "by id")]:
        assert post_json(server.url + path, {"text": text, "username": "cali"})[:2] == (200, "ok")
    web = client(server)
    assert [m["text"] for m in web.conversations_history(channel="cali-alerts")["messages"]] == ["default"]
    warn = web.conversations_history(channel="cali-warn")["messages"]
    assert [m["text"] for m in warn] == ["by id", "by name"]
    assert (warn[0]["subtype"], warn[0]["bot_id"], warn[0]["username"]) == ("bot_message", "B0CALIHOOK", "cali")
    assert Directory(["a", "b"]).for_webhook("/services/T0/B0/secret").name == "a"


# -- persistence ---------------------------------------------------------------------------------


def test_restart_replays_messages_threads_and_edits(store_path: Path) -> None:
    with running(store_path=store_path, settings=SETTINGS) as first:
        web = client(first)
        root = web.chat_postMessage(channel="cali-alerts", text="root")["ts"]
        web.chat_postMessage(channel="cali-alerts", text="reply", thread_ts=root)
        web.chat_update(channel="cali-alerts", ts=root, text="root, edited")
        post_json(first.url + "/services/cali-warn/x", {"text": "hook"})
        before = control(first, "/_control/messages")["messages"]
    with running(store_path=store_path, settings=SETTINGS) as second:
        assert control(second, "/_control/messages")["messages"] == before
        web = client(second)
        [message] = web.conversations_history(channel="cali-alerts")["messages"]
        assert (message["text"], message["reply_count"], "edited" in message) == ("root, edited", 1, True)
        later = web.chat_postMessage(channel="cali-alerts", text="later")["ts"]
        assert float(later) > float(message["edited"]["ts"])


def test_old_store_lines_load_into_the_default_channel(store_path: Path) -> None:
    store_path.write_text('{"received_at": 1.5, "path": "/services/a", "payload": {"text": "old"}}\n', "utf-8")
    with running(store_path=store_path, settings=SETTINGS) as srv:
        [message] = client(srv).conversations_history(channel="cali-alerts")["messages"]
        assert (message["text"], message["ts"]) == ("old", "1.500000")


# -- settings ------------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    settings = load_receiver_settings({"SLACK_RECEIVER_TOKEN": "xoxb-1", "SLACK_RECEIVER_CHANNELS": "a, #b,a"})
    assert (settings.token.value, settings.channels) == ("xoxb-1", ("a", "b"))
    assert "xoxb-1" not in repr(settings)
    defaults = load_receiver_settings({})
    assert (defaults.token.value, defaults.channels) == ("xoxb-cali-local", ("cali-alerts",))


@pytest.mark.parametrize("channels", ["Alerts", "a b", ",", "x" * 81])
def test_settings_refuse_bad_channel_names(channels: str) -> None:
    with pytest.raises(ConfigError):
        load_receiver_settings({"SLACK_RECEIVER_CHANNELS": channels})


def test_cli_bad_settings_exit_2_with_one_sentence(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_RECEIVER_CHANNELS": "Not A Channel"}
    proc = subprocess.run([sys.executable, "-m", "slack_receiver", "--port", "0"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "SLACK_RECEIVER_CHANNELS" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# -- the test helper other tests use ---------------------------------------------------------------


def test_integration_helper_reads_channels_threads_and_edits(server: ReceiverServer) -> None:
    from tests.integration.helpers import Receiver

    receiver = Receiver(server.url)
    web = WebClient(token=TOKEN, base_url=receiver.api_url)
    root = web.chat_postMessage(channel="cali-warn", text="root")["ts"]
    web.chat_postMessage(channel="cali-warn", text="reply", thread_ts=root)
    web.chat_update(channel="cali-warn", ts=root, text="root v2")
    post_json(server.url + "/services/local/x", {"text": "hooked"})
    assert receiver.channels() == {"cali-alerts": ALERTS, "cali-warn": WARN}
    assert receiver.texts("", channel="cali-alerts") == ["hooked"]
    assert receiver.texts("root", channel=WARN) == ["root v2"]
    assert [m["payload"]["text"] for m in receiver.thread("#cali-warn", root)] == ["root v2", "reply"]
    [edited] = receiver.edited()
    assert (edited["original"]["text"], edited["ts"]) == ("root", root)
