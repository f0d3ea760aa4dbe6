"""What the KCL adapter does when something inside a batch goes wrong, and what its heartbeat says.

Played against the real amazon-kclpy loop with the scripted daemon of test_kcl_transcript (no Java). The state
raises a non-transient ClientError once (what DynamoState's ``_Patient`` re-raises); the real daemon is in
tests/integration/test_failures.py.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from amazon_kclpy import kcl
from botocore.exceptions import ClientError

from consumer.alerter import Alerter
from consumer.deliver.slack import Posted
from consumer.errors import RetryableDelivery
from consumer.health import read_heartbeats
from consumer.kcl.processor import EXIT_ON_FAILURE, AlertRecordProcessor
from consumer.model import Level
from consumer.state import Begun, Claim
from consumer.state.memory import MemoryState
from tests.test_kcl_transcript import (
    C1,
    SHARD,
    Advance,
    FakeClock,
    ScriptedDaemon,
    checkpoint_answer,
    checkpoint_request,
    initialize,
    process,
    record,
    seq,
    status,
)


class StateFailingOnce(MemoryState):
    """Test double of the state: the n-th send claim raises a ClientError that no retry policy treats as transient."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(100)
        self._calls = 0
        self._fail_at = fail_at

    def begin(self, claim: Claim) -> Begun:
        self._calls += 1
        if self._calls == self._fail_at:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "injected"}}, "TransactWriteItems")
        return super().begin(claim)


class Sender:
    """Test double for the Slack edge; ``failures`` are raised by the first posts. ``seen`` records the shard's
    heartbeat as it was at each post (what an operator's status line would read at that moment)."""

    def __init__(self, beats: Path, failures: list[Exception] | None = None) -> None:
        self.name = "main"
        self.payloads: list[dict[str, Any]] = []
        self.seen: list[dict[str, Any]] = []
        self._beats = beats
        self._failures = failures or []

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        self.seen.append(read_heartbeats(self._beats).get(SHARD, {}))
        if self._failures:
            raise self._failures.pop(0)
        self.payloads.append(dict(payload))
        return Posted()


def run(script: list[Any], state: MemoryState, sender: Sender, health_dir: Path) -> tuple[list[str], int | None]:
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    def make_alerter(shard_id: str) -> Alerter:
        return Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                       display_tz=ZoneInfo("UTC"), clock=clock, sleep=sleep, digest_interval=60.0)

    processor = AlertRecordProcessor(make_alerter, clock=clock, checkpoint_interval=5.0, health_dir=health_dir)
    out, err = io.StringIO(), io.StringIO()
    code = None
    try:
        kcl.KCLProcess(processor, input_file=ScriptedDaemon(clock, script), output_file=out, error_file=err).run()
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert err.getvalue() == ""  # kclpy's own "Caught exception from action dispatch" never appears
    return [x for x in out.getvalue().splitlines() if x.strip()], code


def test_an_unexpected_error_ends_the_child_before_any_checkpoint_passes_the_batch(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = StateFailingOnce(fail_at=2)
    sender = Sender(tmp_path)
    script = [
        initialize(),
        process(record(1, C1, 0)),  # alerted
        process(record(2, C1, 1), record(3, C1, 4)),  # the state fails inside this batch
        process(record(4, C1, 7)),  # never read: the child is gone
        checkpoint_answer(seq(4)),
    ]
    with caplog.at_level(logging.INFO, logger="cali.processor"):
        protocol, code = run(script, state, sender, tmp_path)

    assert code == EXIT_ON_FAILURE
    assert protocol == [status("initialize"), status("processRecords")]  # no status for the failed batch either
    assert checkpoint_request(seq(3)) not in protocol
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1, "logged once"
    assert f"shard {SHARD}" in failures[0].getMessage()
    assert f"records {seq(2)}..{seq(3)}" in failures[0].getMessage()
    assert "ValidationException" in failures[0].getMessage()
    assert read_heartbeats(tmp_path)[SHARD]["failed_batches"] == 1


def test_the_failure_count_carries_over_to_the_next_child(tmp_path: Path) -> None:
    for expected in (1, 2):
        run([initialize(), process(record(1, C1, 0))], StateFailingOnce(fail_at=1), Sender(tmp_path), tmp_path)
        assert read_heartbeats(tmp_path)[SHARD]["failed_batches"] == expected
    run([initialize(), process(record(1, C1, 0))], MemoryState(100), Sender(tmp_path), tmp_path)
    beat = read_heartbeats(tmp_path)[SHARD]
    assert beat["failed_batches"] == 2  # a healthy child keeps the count it inherited


def test_heartbeat_carries_stats_and_the_slack_state(tmp_path: Path) -> None:
    sender = Sender(tmp_path, failures=[RetryableDelivery(503, "service_unavailable")] * 2)
    script = [initialize(), process(record(1, C1, 0)), Advance(6.0), process(record(2, C1, 1)),  # a beat is due
              checkpoint_answer(seq(2))]
    _, code = run(script, MemoryState(100), sender, tmp_path)

    assert code is None and len(sender.payloads) == 2
    during = sender.seen[2]  # the third attempt of the first alert: Slack has failed twice
    assert during["slack"]["state"] == "failing"
    assert "503" in during["slack"]["error"] and "\n" not in during["slack"]["error"]
    beat = read_heartbeats(tmp_path)[SHARD]
    assert beat["slack"]["state"] == "ok" and beat["slack"]["error"] == ""
    assert beat["slack"]["since"] > during["slack"]["since"]  # the moment it recovered
    stats = beat["stats"]
    assert (stats["alerts_sent"], stats["retries"], stats["held"]) == (2, 2, 0)
    assert stats["events"] == {"ERROR": 1, "WARN": 1}
    assert set(beat) >= {"shard_id", "at", "pid", "millis_behind_latest", "failed_batches", "stats", "slack"}
    json.dumps(beat)
