"""``python -m consumer``'s wiring: every setting reaches the object that uses it, in both Slack modes; a refused
bot token ends the child with one line and exit code 2, before the protocol or at the first action after
``initialize``, which the child answers while ``auth.test`` is still on its way (real processes, real HTTP)."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from consumer.alerter import Alerter
from consumer.config import Secret, load_settings
from consumer.decision import Mode
from consumer.deliver.slack import SlackWebhook
from consumer.deliver.webapi import SlackWebApi
from consumer.state.dynamodb import DynamoState
from consumer.wiring import build_processor
from slack_receiver import ReceiverServer, ReceiverSettings, running
from slack_receiver.faults import Fault

REPO = Path(__file__).resolve().parents[1]
TOKEN = "xoxb-wiring-test"
ROUTES = REPO / "tests" / "fixtures" / "routes-wiring.yaml"


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with running(settings=ReceiverSettings(token=Secret(TOKEN), channels=("cali-wiring",))) as server:
        yield server


def environment(**overrides: str) -> dict[str, str]:
    """Every consumer setting at a value no default has."""
    return {
        "LOCALSTACK_ENDPOINT": "http://127.0.0.1:9", "AWS_REGION": "eu-west-3", "CALI_APP_NAME": "wired-app",
        "CALI_WORKER_ID": "wired-worker", "CALI_ALERT_LEVELS": "ERROR", "THROTTLE_MAX_PER_MINUTE": "17",
        "CALI_DISPLAY_TIMEZONE": "Europe/Paris", "CALI_CHECKPOINT_INTERVAL_SECONDS": "7.5",
        "CALI_DEDUP_WINDOW_SECONDS": "123", "CALI_DIGEST_INTERVAL_SECONDS": "45",
        "CALI_UPDATE_INTERVAL_SECONDS": "3.5", "CALI_RESOLVE_AFTER_SECONDS": "77", "CALI_HEALTH_DIR": "/tmp/wired",
        "CALI_SEND_STALE_SECONDS": "33", "CALI_SLACK_RETRY_MAX_SECONDS": "4.5",
        "CALI_UPKEEP_GAP_SECONDS": "0.25",
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/main", "SLACK_WEBHOOK_URL_WARN": "http://127.0.0.1:9/w",
        "CALI_ROUTES_FILE": str(ROUTES), "CALI_SILENCE_REFRESH_SECONDS": "2.5", "LOG_LEVEL": "INFO", **overrides,
    }


def alerter_of(env: dict[str, str]) -> Alerter:
    processor = build_processor(load_settings(env))
    processor.initialize(SimpleNamespace(shard_id="shardId-000000000003", sequence_number="TRIM_HORIZON"))
    assert processor.alerter is not None
    assert (processor._interval, processor._health_dir) == (7.5, Path("/tmp/wired"))
    return processor.alerter


def test_every_setting_reaches_its_object_in_webhook_mode() -> None:
    alerter = alerter_of(environment())
    assert (alerter._levels, alerter._dedup_window, alerter._digest_interval) == ({"ERROR"}, 123.0, 45.0)
    incidents: Any = alerter.upkeep._incidents
    assert (alerter._mode, incidents._update_interval, incidents._resolve_after) == (Mode.WEBHOOK, 3.5, 77.0)
    assert (alerter.upkeep._background, alerter.upkeep._gap) == (False, 0.25)  # (webhook mode has no incidents)
    assert (alerter._stale_after, alerter._retry_max) == (33.0, 4.5)
    assert str(alerter._tz) == "Europe/Paris"
    assert alerter._owner.startswith("wired-worker/shardId-000000000003/")
    state = alerter._state
    assert isinstance(state, DynamoState)
    assert (state._table, state._limit) == ("wired-app-state", 17)
    client: Any = state._client
    assert (client.meta.region_name, client.meta.endpoint_url) == ("eu-west-3", "http://127.0.0.1:9")
    assert state._limits == {"route#warnings": 4, "route#default": 17}
    main, warn = alerter._senders["default"], alerter._senders["warnings"]
    assert isinstance(main, SlackWebhook) and isinstance(warn, SlackWebhook)
    assert (main._url.value, warn._url.value) == ("http://127.0.0.1:9/services/main", "http://127.0.0.1:9/w")
    assert (main.name, warn.name) == ("route#default", "route#warnings")
    assert alerter._routes is not None and [r.name for r in alerter._routes.all] == ["warnings", "default"]
    silencer: Any = alerter._silencer
    assert silencer._cache._refresh == 2.5 and silencer._store._table == "wired-app-silences"
    assert silencer._cache._background is True  # re-read off the record path


def test_every_setting_reaches_its_object_in_web_api_mode(receiver: ReceiverServer) -> None:
    alerter = alerter_of(environment(SLACK_BOT_TOKEN=TOKEN, SLACK_CHANNEL="cali-wiring",
                                     SLACK_API_URL=receiver.url + "/api/"))
    assert alerter._mode is Mode.WEB_API and alerter.upkeep._background is True  # off the record path
    sender, warn = alerter._senders["default"], alerter._senders["warnings"]
    assert isinstance(sender, SlackWebApi) and isinstance(warn, SlackWebApi)
    assert (sender._channel, sender._token.value, sender._calls.base_url) == (
        "cali-wiring", TOKEN, receiver.url + "/api/")
    assert (warn._channel, warn.name) == ("cali-warnings", "route#warnings")  # the route's channel


def child_env(receiver: ReceiverServer, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CALI_"))}
    env.update(environment(SLACK_BOT_TOKEN=token, SLACK_CHANNEL="cali-wiring", SLACK_API_URL=receiver.url + "/api/"))
    return env


class Child:
    """``python -m consumer`` spoken to as the MultiLangDaemon does: one JSON line per action on its stdin."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "consumer"], cwd=REPO, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stdout is not None
        self._stdout = self.process.stdout.fileno()
        self._answers = selectors.DefaultSelector()
        self._answers.register(self._stdout, selectors.EVENT_READ)
        self._pending = b""

    def send(self, action: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(action).encode() + b"\n")
        self.process.stdin.flush()

    def answer(self, timeout: float = 30.0) -> str:
        """The next protocol line ("" once the child closed stdout); amazon-kclpy puts a blank line before each."""
        while True:
            line, newline, rest = self._pending.lstrip(b"\n").partition(b"\n")
            if newline:
                self._pending = rest
                return line.decode()
            if not self._answers.select(timeout):
                raise TimeoutError(f"no answer from the child in {timeout} s")
            chunk = os.read(self._stdout, 65536)
            if not chunk:
                return self._pending.decode().strip()
            self._pending += chunk

    def finish(self) -> tuple[int, str]:
        assert self.process.stdin is not None and self.process.stderr is not None
        self.process.stdin.close()
        code = self.process.wait(timeout=30)
        stderr = self.process.stderr.read().decode()
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            stream.close()
        self._answers.close()
        return code, stderr


INITIALIZE = {"action": "initialize", "shardId": "shardId-000000000000", "sequenceNumber": "TRIM_HORIZON",
              "subSequenceNumber": 0}
PROCESS = {"action": "processRecords", "records": [], "millisBehindLatest": 0}
AUTH_TEST_DELAY = 2.0


def test_initialize_is_answered_while_auth_test_is_on_its_way(receiver: ReceiverServer) -> None:
    receiver.state.faults.queue([Fault(delay=AUTH_TEST_DELAY, on="auth.test")])
    started = time.monotonic()
    child = Child(child_env(receiver, TOKEN))
    child.send(INITIALIZE)
    assert child.answer() == '{"action": "status", "responseFor": "initialize"}'
    assert receiver.state.snapshot()["attempt_log"] == []  # auth.test not answered yet
    child.send(PROCESS)  # waits for the build, auth.test included
    assert child.answer() == '{"action": "status", "responseFor": "processRecords"}'
    assert time.monotonic() - started >= AUTH_TEST_DELAY
    assert [(a["path"], a["status"]) for a in receiver.state.snapshot()["attempt_log"]] == [("/api/auth.test", 200)]
    code, stderr = child.finish()
    assert (code, "Traceback" in stderr) == (0, False)


def test_a_bot_token_refused_after_initialize_ends_the_child_at_the_next_action(receiver: ReceiverServer) -> None:
    child = Child(child_env(receiver, "xoxb-not-this-one"))
    child.send(INITIALIZE)
    assert child.answer() == '{"action": "status", "responseFor": "initialize"}'
    child.send(PROCESS)
    assert child.answer() == ""  # no answer: the child exited instead of reporting processRecords done
    code, stderr = child.finish()
    assert code == 2
    assert stderr.strip().splitlines()[-1] == \
        "cali consumer: SLACK_BOT_TOKEN was refused by Slack's auth.test (invalid_auth)"
    assert "Traceback" not in stderr


def test_a_refused_bot_token_is_one_line_and_exit_code_2(receiver: ReceiverServer) -> None:
    done = subprocess.run([sys.executable, "-m", "consumer"], cwd=REPO, env=child_env(receiver, "xoxb-not-this-one"),
                          input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == \
        "cali consumer: SLACK_BOT_TOKEN was refused by Slack's auth.test (invalid_auth)"
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # the KCL protocol channel stays clean
