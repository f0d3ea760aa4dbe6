"""Web API mode on the real pipeline: incidents (one root per fingerprint, counts updated in place), a slow Slack,
kill -9 mid-burst, quiet-again. Real parts only: moto emulator, the KCL MultiLangDaemon, the Python processors,
the local Slack stand-in's Web API (its local token selects the mode, as in ``make run``)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localmode.stack import Stack
from tests.integration.conftest import Daemon, stack_env
from tests.integration.helpers import Receiver, error_line, put_lines, wait_for

TIMEOUT = 120.0
RESOLVE_AFTER = 12


@pytest.fixture(scope="module")
def web_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Receiver, Daemon]]:
    env = stack_env(stack.settings.endpoint_url or "", SLACK_BOT_TOKEN="xoxb-cali-local", SLACK_CHANNEL="",
                    SLACK_API_URL="", THROTTLE_MAX_PER_MINUTE="100", CALI_UPDATE_INTERVAL_SECONDS="1",
                    CALI_RESOLVE_AFTER_SECONDS=str(RESOLVE_AFTER), CALI_DIGEST_INTERVAL_SECONDS="10",
                    CALI_SEND_STALE_SECONDS="15", CALI_UPKEEP_GAP_SECONDS="0.25")
    other = Stack(env=env, run_dir=Path(tmp_path_factory.mktemp("cali-web-api")))
    try:
        other.start_emulator()  # finds the session's emulator and uses it
        other.create_resources()
        other.start_receiver()
        assert other.slack_mode == "local web api"
        daemon = Daemon(other, "cali-test-web-api")
        daemon.start()
        yield other, Receiver(f"http://127.0.0.1:{other.local.slack_receiver_port}"), daemon
    finally:
        other.stop()


def roots(receiver: Receiver, marker: str) -> list[dict[str, Any]]:
    """Top-level messages about ``marker`` (not thread replies, not digests)."""
    return [m for m in receiver.messages() if marker in m["payload"].get("text", "")
            and m.get("thread_ts", m["ts"]) == m["ts"] and not re.match(r"\d+ more ERROR/WARN", m["payload"]["text"])]


def keys(messages: list[dict[str, Any]]) -> list[str]:
    """The idempotency key each message was posted with (message metadata): a duplicate repeats one."""
    return [m["original"]["metadata"]["event_payload"]["key"] for m in messages]


def count(root: dict[str, Any]) -> int:
    found = re.search(r" \(x(\d+)\)$", root["payload"]["text"].split("\n", 1)[0])
    return int(found.group(1)) if found else 1


def burst(marker: str, per_problem: int) -> list[bytes]:
    problems = [("payment-api", "db timeout after {}ms"), ("auth-api", "token refresh failed for user {}"),
                ("order-api", "order {} could not be saved")]
    return [error_line(f"{marker}-{service}", f"{marker} " + message.format(1000 + i))
            for i in range(per_problem) for service, message in problems]


def test_a_burst_becomes_three_incidents_whose_counts_add_up(web_api: tuple[Stack, Receiver, Daemon]) -> None:
    """3 fingerprints x 100 events on 2 shards -> 3 roots, updated in place until their counts equal the events;
    no digest (the budget is not spent), samples in the threads."""
    other, receiver, _ = web_api
    marker = f"burst-{uuid.uuid4().hex[:8]}"
    put_lines(other.client("kinesis"), other.settings.stream_name, burst(marker, 100))
    found = wait_for(lambda: roots(receiver, marker), lambda r: len(r) >= 3 and sum(map(count, r)) >= 300,
                     TIMEOUT, "3 roots counting 300 events")
    assert sorted(count(r) for r in found) == [100, 100, 100]
    assert all(r["edits"] for r in found)  # counted in place, not posted again
    everything = [m for m in receiver.messages() if marker in m["payload"].get("text", "")]
    assert [m for m in everything if re.match(r"\d+ more ERROR/WARN", m["payload"]["text"])] == []
    replies = [m for m in everything if m.get("thread_ts", m["ts"]) != m["ts"]]
    assert 0 < len(replies) <= 3 * 3 * 2  # samples: bounded per incident per minute


def test_a_slow_slack_gets_each_root_once(web_api: tuple[Stack, Receiver, Daemon]) -> None:
    other, receiver, _ = web_api
    marker = f"slow-{uuid.uuid4().hex[:8]}"
    receiver.faults([{"delay": 8, "on": "chat.postMessage"}] * 3)
    put_lines(other.client("kinesis"), other.settings.stream_name, burst(marker, 2))
    wait_for(lambda: roots(receiver, marker), lambda r: len(r) >= 3, TIMEOUT, "3 roots from a slow Slack")
    time.sleep(3)  # a duplicate would come right after the first answer
    # the roots' counts are updated by the incidents' upkeep, which may itself wait for a slow thread reply
    found = wait_for(lambda: roots(receiver, marker), lambda r: sum(map(count, r)) >= 6, TIMEOUT, "counts of 6")
    receiver.clear_faults()
    # (an incident may go quiet meanwhile, RESOLVE_AFTER being short here, and a late repeat open a new one)
    assert len(set(keys(found))) == len(found), [r["payload"]["text"] for r in found]
    assert sum(map(count, found)) == 6


def test_kill_9_mid_burst_posts_no_root_twice(web_api: tuple[Stack, Receiver, Daemon]) -> None:
    """Posts are slow when the daemon and its processors are killed: Slack keeps what it received; the restarted
    processors take the stale claims over and look each key up before posting again."""
    other, receiver, daemon = web_api
    marker = f"kill-{uuid.uuid4().hex[:8]}"
    receiver.faults([{"delay": 4, "on": "chat.postMessage"}] * 6)
    before = len(receiver._call("GET", "/_control/messages")["attempt_log"])
    put_lines(other.client("kinesis"), other.settings.stream_name, burst(marker, 20))
    wait_for(lambda: receiver._call("GET", "/_control/messages")["attempt_log"][before:],
             lambda log: any(a["path"].endswith("chat.postMessage") for a in log), TIMEOUT, "a root being posted")
    daemon.kill()
    daemon.start()
    found = wait_for(lambda: roots(receiver, marker), lambda r: len(r) >= 3 and sum(map(count, r)) >= 60,
                     TIMEOUT + 30, "3 roots counting 60 events after the restart")
    receiver.clear_faults()
    assert len(set(keys(found))) == len(found), [r["payload"]["text"] for r in found]  # no root posted twice
    assert sum(map(count, found)) == 60


def test_an_incident_goes_quiet_after_the_resolve_time(web_api: tuple[Stack, Receiver, Daemon]) -> None:
    other, receiver, _ = web_api
    marker = f"quiet-{uuid.uuid4().hex[:8]}"
    put_lines(other.client("kinesis"), other.settings.stream_name, [error_line(f"{marker}-svc", f"{marker} broke")])
    (root,) = wait_for(lambda: roots(receiver, marker), lambda r: len(r) == 1, TIMEOUT, "the root")
    posted_at = time.monotonic()
    (quiet,) = wait_for(lambda: roots(receiver, marker), lambda r: r[0]["payload"]["text"].startswith("[quiet]"),
                        RESOLVE_AFTER + 30, "the root updated to quiet")
    assert time.monotonic() - posted_at >= RESOLVE_AFTER - 2
    assert quiet["ts"] == root["ts"]
    assert "Quiet since" in str(quiet["payload"]["blocks"])
