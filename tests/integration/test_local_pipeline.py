"""The real pipeline: moto emulator + KCL MultiLangDaemon (Java) + Python processor + HTTP Slack receiver."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections import Counter
from typing import Any

from consumer.model import Dropped
from consumer.pipeline.decode import decode
from consumer.pipeline.parse import parse_line
from generator.fluentbit import fluent_bit_record
from localmode.stack import Stack
from tests.corpus import fluent_bit_records
from tests.integration.conftest import GRACEFUL_EXIT, WORKER_ID, Daemon
from tests.integration.helpers import (
    Receiver,
    checkpoint_at,
    event_count,
    last_per_shard,
    leases,
    posted,
    put_lines,
    put_located,
    wait_for,
)

ALERT_TIMEOUT = 90.0  # first use includes the daemon's start-up


def mixed_lines(marker: str, n: int) -> tuple[list[bytes], list[str]]:
    """n records cycling through the levels; returns the bytes and the messages that must alert."""
    levels = ["ERROR", "INFO", "WARN", "DEBUG", "warning", "info", "FATAL", "error"]
    records, expected = [], []
    for i in range(n):
        level = levels[i % len(levels)]
        message = f"{marker} event {i}"
        records.append(fluent_bit_record({"timestamp": "2026-11-26T05:00:00.000Z", "level": level,
                                          "service": f"it-api-{i}", "message": message,
                                          "trace_id": uuid.uuid4().hex}))
        if level.upper() in {"ERROR", "WARN", "WARNING", "FATAL"}:
            expected.append(message)
    return records, expected


def test_error_and_warn_alert_info_and_debug_do_not(stack: Stack, receiver: Receiver, running_daemon: Daemon) -> None:
    marker = f"mixed-{uuid.uuid4().hex[:8]}"
    records, expected = mixed_lines(marker, 40)
    put_lines(stack.client("kinesis"), stack.settings.stream_name, records)

    found = wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= len(expected),
                     ALERT_TIMEOUT, "the ERROR/WARN alerts")

    assert sorted(found) == sorted(expected)
    assert set(found.values()) == {1}


def test_checkpoints_appear_in_the_lease_table(stack: Stack, receiver: Receiver, running_daemon: Daemon) -> None:
    """Compared with this test's own records: what earlier tests left in the shared lease table does not count."""
    marker = f"ckpt-{uuid.uuid4().hex[:8]}"
    records, expected = mixed_lines(marker, 16)
    written = last_per_shard(put_located(stack.client("kinesis"), stack.settings.stream_name, records))
    wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= len(expected), ALERT_TIMEOUT, "alerts")

    table = wait_for(lambda: leases(stack.client("dynamodb"), stack.settings.app_name),
                     lambda t: all(checkpoint_at(t[shard]) >= last for shard, last in written.items()), 30,
                     "checkpoints at or past this test's last record in each shard")
    assert {table[shard]["leaseOwner"] for shard in written} == {WORKER_ID}


def test_restart_resumes_from_the_checkpoint_without_realerting(pipeline: Any) -> None:
    """On a fresh stream: a SIGTERM lets the daemon end gracefully with every lease's checkpoint exactly at the last
    record written to its shard; the restart reads only what came after."""
    other, receiver = pipeline(2)
    daemon = Daemon(other, "worker-restart")
    daemon.start()
    kinesis = other.client("kinesis")
    before = f"before-{uuid.uuid4().hex[:8]}"
    records, expected_before = mixed_lines(before, 16)
    written = last_per_shard(put_located(kinesis, other.settings.stream_name, records))
    wait_for(lambda: posted(receiver, before), lambda c: sum(c.values()) >= len(expected_before), ALERT_TIMEOUT,
             "alerts before the restart")

    assert daemon.stop() == GRACEFUL_EXIT  # SIGTERM: shutdown_requested, checkpoint, exit on its own
    checkpoints = leases(other.client("dynamodb"), other.settings.app_name)
    assert {shard: checkpoint_at(checkpoints[shard]) for shard in written} == written

    after = f"after-{uuid.uuid4().hex[:8]}"
    records, expected_after = mixed_lines(after, 16)
    put_lines(kinesis, other.settings.stream_name, records)
    daemon.start()
    found_after = wait_for(lambda: posted(receiver, after), lambda c: sum(c.values()) >= len(expected_after),
                           ALERT_TIMEOUT, "alerts after the restart")

    assert sorted(found_after) == sorted(expected_after)
    assert posted(receiver, before) == Counter(dict.fromkeys(expected_before, 1))  # nothing posted twice
    assert "shutdown requested for shard" in daemon.log_text()
    daemon.stop()


def test_every_fluent_bit_fixture_record_flows_through(stack: Stack, receiver: Receiver,
                                                       running_daemon: Daemon) -> None:
    """The 90 real Fluent Bit records, read by the real daemon: every ERROR/WARN event in them is accounted for by
    an alert (repeats of one fingerprint fold into one alert or a digest), and nothing hostile gets through."""
    data = [base64.b64decode(r["data_b64"]) for r in fluent_bit_records()]
    expected = 0
    for record in data:
        for line in decode(record).lines:
            event = parse_line(line)
            expected += not isinstance(event, Dropped) and event.level.value in {"ERROR", "WARN"}
    before = len(receiver.messages())
    put_lines(stack.client("kinesis"), stack.settings.stream_name, data)

    messages = wait_for(receiver.messages,
                        lambda m: sum(event_count(x["payload"]) for x in m[before:]) >= expected, ALERT_TIMEOUT,
                        "every fixture ERROR/WARN event in an alert or a digest")

    new = [m["payload"] for m in messages[before:]]
    assert sum(event_count(p) for p in new) == expected
    payload_text = json.dumps(new)
    assert "<!channel>" not in payload_text and "<@U123>" not in payload_text


def test_checkpoints_cli_and_health_check_report_on_the_running_worker(stack: Stack, receiver: Receiver,
                                                                       running_daemon: Daemon) -> None:
    marker = f"cli-{uuid.uuid4().hex[:8]}"
    records, expected = mixed_lines(marker, 8)
    put_lines(stack.client("kinesis"), stack.settings.stream_name, records)
    wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= len(expected), ALERT_TIMEOUT, "alerts")
    env = {**stack.env, "CALI_WORKER_ID": WORKER_ID}

    answer = wait_for(lambda: json.loads(subprocess.run(
        [sys.executable, "-m", "consumer.checkpoints", "--json"], env=env, capture_output=True, text=True,
        check=True).stdout), lambda a: all(x["checkpoint"].isdigit() for x in a["shards"]), 30, "checkpoints")
    views = answer["shards"]
    assert {v["owner"] for v in views} == {WORKER_ID}
    assert all(v["lease_counter"] > 0 and v["millis_behind_tip"] is not None for v in views)
    assert all(v["renewing"] is True for v in views), "the running worker renews its leases"
    assert answer["leader"] == {"owner": WORKER_ID, "lock_millis": 120000, "owner_renews_leases": True}

    health = wait_for(lambda: subprocess.run([sys.executable, "-m", "consumer.health", "--json"], env=env,
                                             capture_output=True, text=True),
                      lambda r: r.returncode == 0, 30, "a healthy report")
    report = json.loads(health.stdout)
    assert report["daemon_alive"] and sorted(report["fresh"]) == sorted(v["shard"] for v in views)
    assert report["without_live_owner"] == {}
