"""Tests for the local Slack webhook receiver (slack_receiver/)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from slack_receiver import ReceiverServer, running
from slack_receiver.faults import NORMAL, Fault, FaultPlan, Outage, parse_fault, parse_outage
from slack_receiver.payload import PayloadError, parse_webhook_body
from slack_receiver.server import DEFAULT_SETTINGS
from slack_receiver.settings import ReceiverSettings
from slack_receiver.store import MessageStore

REPO = Path(__file__).resolve().parents[1]
HOOK = "/services/local/cali/webhook"


# -- helpers -------------------------------------------------------------------------------------


def request(
    url: str, method: str = "GET", body: bytes | None = None, content_type: str | None = None
) -> tuple[int, str, Message]:
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode(), err.headers


def post_json(url: str, obj: object) -> tuple[int, str, Message]:
    return request(url, "POST", json.dumps(obj).encode(), "application/json")


def messages(server: ReceiverServer) -> dict[str, Any]:
    status, body, _ = request(server.url + "/_control/messages")
    assert status == 200
    result: dict[str, Any] = json.loads(body)
    return result


def store_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "slack.jsonl"


@pytest.fixture
def server(store_path: Path) -> Iterator[ReceiverServer]:
    with running(store_path=store_path) as srv:
        yield srv


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- webhook over HTTP ---------------------------------------------------------------------------


def test_accepts_json_and_appends_a_flushed_line(server: ReceiverServer, store_path: Path) -> None:
    before = time.time()
    status, body, _ = post_json(server.url + HOOK, {"text": "disk full on web-1"})
    assert (status, body) == (200, "ok")
    [line] = store_lines(store_path)  # readable by another process while the server runs
    assert (line["kind"], line["path"]) == ("message", HOOK)
    assert line["payload"] == {"text": "disk full on web-1"}
    assert before <= line["received_at"] <= time.time()
    state = messages(server)
    [view] = state["messages"]
    assert {key: view[key] for key in line if key != "kind"} == {k: v for k, v in line.items() if k != "kind"}
    assert view["channel_name"] == "cali-alerts"
    assert state["attempts"] == 1


def test_accepts_blocks_without_text(server: ReceiverServer) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*ERROR* boom"}}]
    assert post_json(server.url + HOOK, {"blocks": blocks})[:2] == (200, "ok")


def test_accepts_form_encoded_payload(server: ReceiverServer, store_path: Path) -> None:
    form = urllib.parse.urlencode({"payload": json.dumps({"text": "from a form & more"})}).encode()
    status, body, _ = request(server.url + HOOK, "POST", form, "application/x-www-form-urlencoded")
    assert (status, body) == (200, "ok")
    assert store_lines(store_path)[0]["payload"] == {"text": "from a form & more"}


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        (b"not json", "application/json", "invalid_payload"),
        (b"[1, 2]", "application/json", "invalid_payload"),
        (b'"text"', "application/json", "invalid_payload"),
        (b"", "application/json", "invalid_payload"),
        (b"payload=%7Bbroken", "application/x-www-form-urlencoded", "invalid_payload"),
        (b"{}", "application/json", "no_text"),
        (b'{"text": ""}', "application/json", "no_text"),
        (b'{"text": "  ", "blocks": []}', "application/json", "no_text"),
        (b'{"username": "cali"}', "application/json", "no_text"),
    ],
)
def test_rejects_like_slack(
    server: ReceiverServer, store_path: Path, raw: bytes, content_type: str, expected: str
) -> None:
    assert request(server.url + HOOK, "POST", raw, content_type)[:2] == (400, expected)
    assert store_path.read_text() == ""
    assert messages(server)["attempts"] == 1


def test_unknown_paths_are_404(server: ReceiverServer) -> None:
    assert post_json(server.url + "/hooks/x", {"text": "x"})[:2] == (404, "no_service")
    assert request(server.url + "/nope")[0] == 404
    assert request(server.url + "/healthz")[:2] == (200, "ok")


# -- fault injection over HTTP -------------------------------------------------------------------


def test_fault_sequence_429_then_500_then_ok(server: ReceiverServer, store_path: Path) -> None:
    faults = [
        {"status": 429, "body": "rate_limited", "retry_after": 2},
        {"status": 500, "body": "rollup_error"},
    ]
    assert post_json(server.url + "/_control/faults", faults)[0] == 200

    status, body, headers = post_json(server.url + HOOK, {"text": "one"})
    assert (status, body, headers["Retry-After"]) == (429, "rate_limited", "2")
    status, body, headers = post_json(server.url + HOOK, {"text": "one"})
    assert (status, body, headers["Retry-After"]) == (500, "rollup_error", None)
    assert post_json(server.url + HOOK, {"text": "one"})[:2] == (200, "ok")

    state = messages(server)
    assert [m["payload"]["text"] for m in state["messages"]] == ["one"]  # refused posts are not stored
    assert state["attempts"] == 3
    assert [a["status"] for a in state["attempt_log"]] == [429, 500, 200]
    assert len(store_lines(store_path)) == 1


def test_delay_answers_ok_late(server: ReceiverServer) -> None:
    post_json(server.url + "/_control/faults", [{"delay": 0.3}])
    started = time.monotonic()
    assert post_json(server.url + HOOK, {"text": "slow"})[:2] == (200, "ok")
    assert time.monotonic() - started >= 0.3
    assert len(messages(server)["messages"]) == 1


def test_outage_window_then_recovery(server: ReceiverServer) -> None:
    outage = {"seconds": 0.5, "status": 503, "body": "service_unavailable"}
    assert post_json(server.url + "/_control/outage", outage)[0] == 200
    for _ in range(3):
        assert post_json(server.url + HOOK, {"text": "x"})[:2] == (503, "service_unavailable")
    time.sleep(0.6)
    assert post_json(server.url + HOOK, {"text": "x"})[:2] == (200, "ok")
    state = messages(server)
    assert (state["attempts"], len(state["messages"])) == (4, 1)


def test_outage_shorthand_and_delete_clears_everything(server: ReceiverServer) -> None:
    post_json(server.url + "/_control/faults", {"outage_seconds": 60})
    post_json(server.url + "/_control/faults", [{"status": 500}])
    assert post_json(server.url + HOOK, {"text": "x"})[:2] == (503, "service_unavailable")
    assert request(server.url + "/_control/faults", "DELETE")[0] == 200
    assert json.loads(request(server.url + "/_control/faults")[1]) == {"pending": 0, "outage_remaining": 0}
    assert post_json(server.url + HOOK, {"text": "x"})[:2] == (200, "ok")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_control/faults", b'[{"status": 200}]'),
        ("/_control/faults", b'[{"delay": -1}]'),
        ("/_control/faults", b'[{"retry_after": 1}]'),
        ("/_control/faults", b"not json"),
        ("/_control/outage", b'{"status": 503}'),
    ],
)
def test_control_rejects_bad_requests(server: ReceiverServer, path: str, body: bytes) -> None:
    status, text, _ = request(server.url + path, "POST", body, "application/json")
    assert status == 400
    assert text.startswith("invalid_request")


def test_reset_clears_memory_and_truncates_file(server: ReceiverServer, store_path: Path) -> None:
    post_json(server.url + HOOK, {"text": "a"})
    post_json(server.url + HOOK, {"text": "b"})
    assert request(server.url + "/_control/reset", "POST", b"")[0] == 200
    assert store_path.read_text() == ""
    state = messages(server)
    assert (state["messages"], state["attempts"], state["attempt_log"]) == ([], 0, [])
    post_json(server.url + HOOK, {"text": "c"})
    assert [line["payload"]["text"] for line in store_lines(store_path)] == ["c"]


# -- the page (its rendering: tests/test_slack_receiver_render.py; in a browser: tests/test_receiver_page_browser.py)


def test_page_shell_holds_no_message_text_and_a_strict_csp(server: ReceiverServer) -> None:
    post_json(server.url + HOOK, {"text": "<script>alert(1)</script>"})
    status, page, headers = request(server.url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "alert(1)" not in page
    csp = headers["Content-Security-Policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "require-trusted-types-for 'script'"):
        assert rule in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_page_state_and_static_files(server: ReceiverServer) -> None:
    post_json(server.url + HOOK, {"text": "*hello* &lt;b&gt;"})
    state = json.loads(request(server.url + "/_page/state?channel=cali-alerts")[1])
    assert state["channel"]["name"] == "cali-alerts" and state["total"] == 1
    [message] = state["messages"]
    assert ["b", "hello"] in message[3][3]  # message > content > body
    again = json.loads(request(server.url + "/_page/state?since=" + state["version"])[1])
    assert again == {"version": state["version"], "unchanged": True}
    post_json(server.url + HOOK, {"text": "more"})
    assert json.loads(request(server.url + "/_page/state?since=" + state["version"])[1])["total"] == 2
    for name, kind in (("page.js", "text/javascript"), ("page.css", "text/css")):
        status, _, headers = request(server.url + "/static/" + name)
        assert status == 200 and headers["Content-Type"].startswith(kind)
    for path in ("/static/../server.py", "/static/nope.js", "/static/"):
        assert request(server.url + path)[0] == 404



def test_page_opens_where_the_alerts_are_while_the_default_channel_is_empty(store_path: Path) -> None:
    """With routes every alert may land in a team's channel: a first look must not be an empty default channel."""
    settings = ReceiverSettings(token=DEFAULT_SETTINGS.token, channels=("cali-alerts", "payments-alerts", "db"))
    with running(store_path=store_path, settings=settings) as srv:
        assert json.loads(request(srv.url + "/_page/state")[1])["channel"]["name"] == "cali-alerts"
        post_json(srv.url + "/services/payments-alerts/local", {"text": "payment failed"})
        post_json(srv.url + "/services/db/local", {"text": "deadlock"})
        assert json.loads(request(srv.url + "/_page/state")[1])["channel"]["name"] == "db"  # the newest
        post_json(srv.url + HOOK, {"text": "to the default"})
        assert json.loads(request(srv.url + "/_page/state")[1])["channel"]["name"] == "cali-alerts"
        assert json.loads(request(srv.url + "/_page/state?channel=payments-alerts")[1])["total"] == 1

# -- pure parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"text": "hi"}', "application/json; charset=utf-8", {"text": "hi"}),
        (b'{"text": "hi"}', "application/x-www-form-urlencoded", {"text": "hi"}),  # curl -d
        (b"payload=%7B%22text%22%3A%22hi%22%7D", None, {"text": "hi"}),
        (b'{"text": NaN}', "application/json", "invalid_payload"),
        (b"\xff\xfe", "application/json", "invalid_payload"),
        (b'{"text": 5}', "application/json", "no_text"),
        (b'{"blocks": {}}', "application/json", "no_text"),
    ],
)
def test_parse_webhook_body(body: bytes, content_type: str | None, expected: object) -> None:
    if isinstance(expected, str):
        with pytest.raises(PayloadError) as info:
            parse_webhook_body(body, content_type)
        assert info.value.code == expected
    else:
        assert parse_webhook_body(body, content_type) == expected


RATE = Fault(429, "rate_limited", 2.0)
DOWN = Fault(503)


@pytest.mark.parametrize(
    ("queued", "steps", "expected"),
    [
        pytest.param([], [0, 0], [NORMAL, NORMAL], id="nothing-queued"),
        pytest.param([RATE, Fault(500, "rollup_error")], [0, 0, 0], [RATE, Fault(500, "rollup_error"), NORMAL]),
        pytest.param([Fault(delay=3.0)], [0, 0], [Fault(delay=3.0), NORMAL], id="delay"),
        pytest.param([Outage(10, DOWN), RATE], [0, 5, 4.9, 0.2, 0], [DOWN, DOWN, DOWN, RATE, NORMAL], id="outage"),
        pytest.param([Outage(0, DOWN)], [0, 0], [DOWN, NORMAL], id="zero-outage-fails-once"),
    ],
)
def test_fault_plan_table(queued: list[Fault | Outage], steps: list[float], expected: list[Fault]) -> None:
    clock = FakeClock()
    plan = FaultPlan(clock)
    plan.queue(queued)
    answers = []
    for step in steps:
        clock.now += step
        answers.append(plan.next_response())
    assert answers == expected


def test_fault_plan_outage_overrides_queue_and_clear_resets() -> None:
    clock = FakeClock()
    plan = FaultPlan(clock)
    assert plan.queue([RATE]) == 1
    plan.start_outage(Outage(1.0, DOWN))
    assert plan.status() == {"pending": 1, "outage_remaining": 1.0}
    assert plan.next_response() == DOWN  # the queued fault waits for the outage to end
    clock.now += 1.0
    assert plan.next_response() == RATE
    plan.start_outage(Outage(5.0, DOWN))
    plan.queue([RATE])
    plan.clear()
    assert plan.next_response() == NORMAL
    assert plan.status() == {"pending": 0, "outage_remaining": 0.0}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"status": 429, "retry_after": 1.2}, Fault(429, None, 1.2)),
        ({"status": 502}, Fault(502)),
        ({"status": 500, "on": "chat.update"}, Fault(500, on="chat.update")),
        ({"status": 500, "body": "x", "delay": 1}, Fault(500, "x", None, 1.0)),
        ({"delay": 0.5}, Fault(delay=0.5)),
        ({"outage_seconds": 60}, Outage(60, DOWN)),
        ({"outage_seconds": 2, "status": 429, "retry_after": 3}, Outage(2, Fault(429, None, 3))),
    ],
)
def test_parse_fault(item: dict[str, object], expected: Fault | Outage) -> None:
    assert parse_fault(item) == expected


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"status": 200},
        {"status": True},
        {"status": "429"},
        {"delay": math.inf},
        {"delay": -0.1},
        {"retry_after": 1},
        {"status": 429, "retry-after": 1},
        {"status": 500, "body": 5},
        {"status": 500, "on": ""},
        {"delay": 1, "on": 5},
        [1],
    ],
)
def test_parse_fault_rejects(item: object) -> None:
    with pytest.raises(ValueError):
        parse_fault(item)


def test_parse_outage_defaults() -> None:
    assert parse_outage({"seconds": 1}) == Outage(1, DOWN)
    with pytest.raises(ValueError):
        parse_outage({"seconds": 1, "delay": 2})


def test_fault_plan_targets_keep_their_place_in_the_queue() -> None:
    plan = FaultPlan(FakeClock())
    update, hook, api = Fault(500, on="chat.update"), Fault(429, on="webhook"), Fault(400, on="api")
    plan.queue([update, hook, api])
    assert plan.next_response("chat.postMessage") == api
    assert plan.next_response("chat.postMessage") == NORMAL
    assert plan.next_response("webhook") == hook
    assert plan.next_response("chat.update") == update
    plan.start_outage(Outage(5, Fault(503, on="webhook")))
    assert (plan.next_response("auth.test"), plan.next_response("webhook").status) == (NORMAL, 503)


@pytest.mark.parametrize(("fault", "webhook", "api"), [
    (Fault(429), "rate_limited", "ratelimited"),
    (Fault(500), "rollup_error", "internal_error"),
    (Fault(503, "down"), "down", "down"),
    (Fault(418), "error", "internal_error"),
])
def test_fault_bodies_per_surface(fault: Fault, webhook: str, api: str) -> None:
    assert (fault.webhook_body(), fault.api_error()) == (webhook, api)


def test_retry_after_header_rounds_up() -> None:
    assert Fault(429, "r", 1.2).headers() == {"Retry-After": "2"}
    assert Fault(500, "r").headers() == {}


def test_store_keeps_and_repairs_an_existing_file(store_path: Path) -> None:
    store_path.write_text('{"received_at": 1.0, "path": "/services/a", "payload": {"text": "old"}}\n{"torn', "utf-8")
    store = MessageStore(store_path)
    try:
        assert [r["payload"]["text"] for r in store.records()] == ["old"]
        store.append({"received_at": 2.0, "path": "/services/b", "payload": {"text": "new"}})
        lines = store_path.read_text("utf-8").splitlines()
        assert lines[1] == '{"torn'
        assert json.loads(lines[2])["payload"] == {"text": "new"}
    finally:
        store.close()


# -- CLI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_writes_ready_file_and_exits_0_on_signal(tmp_path: Path, signum: int) -> None:
    ready, store = tmp_path / "ready", tmp_path / "out" / "slack.jsonl"
    cmd = [sys.executable, "-m", "slack_receiver", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--store", str(store), "--ready-file", str(ready)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no ready file"
            time.sleep(0.05)
        port = int(ready.read_text())
        assert port > 0
        url = f"http://127.0.0.1:{port}"
        assert post_json(url + HOOK, {"text": "via cli"})[:2] == (200, "ok")
        assert store_lines(store)[0]["payload"] == {"text": "via cli"}
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert stdout == ""  # library code logs to stderr only
    assert f"port={port}" in stderr
    assert not ready.exists()


# -- the light Docker image (docker/generator.Dockerfile) ----------------------------------------


def test_light_image_installs_every_package_the_receiver_and_generator_import() -> None:
    """The receiver reads settings through consumer/config.py, whose imports grow with the consumer."""
    import re
    from importlib.metadata import packages_distributions

    code = "import sys, slack_receiver.__main__, generator.__main__; print(' '.join(sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            check=True).stdout.split()
    tops = {name.split(".")[0] for name in loaded} - set(sys.stdlib_module_names)
    owners = packages_distributions()
    needed = {dist.lower().replace("_", "-") for top in tops for dist in owners.get(top, [])} - {"cali"}
    dockerfile = (REPO / "docker" / "generator.Dockerfile").read_text("utf-8")
    pinned = re.search(r"grep -E '\^\(([^)]*)\)=='", dockerfile)
    assert pinned is not None
    installed = {name.lower() for name in pinned.group(1).split("|")}
    requirements = (REPO / "requirements.txt").read_text("utf-8")
    pins = {line.split("==")[0].split("[")[0].lower() for line in requirements.splitlines() if "==" in line}
    assert pins & needed - installed == set(), "add these to docker/generator.Dockerfile's grep"
    assert "python-dotenv" in needed  # the check sees through consumer/config.py
    local = {top for top in tops if (REPO / top / "__init__.py").is_file()}
    assert {"slack_receiver", "consumer", "generator"} <= local
    for package in local:
        assert f"COPY {package} ./{package}" in dockerfile
