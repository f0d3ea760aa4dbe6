"""The health check's decision and its heartbeat files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consumer.health import (
    STALE_AFTER_SECONDS,
    assess,
    observe,
    read_heartbeats,
    remove_heartbeat,
    without_live_owner,
    write_heartbeat,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("daemon", "owned", "beats", "healthy", "stale"),
    [
        pytest.param(True, ["s0", "s1"], {"s0": NOW - 1, "s1": NOW - STALE_AFTER_SECONDS + 1}, True, [],
                     id="all-fresh"),
        pytest.param(True, ["s0", "s1"], {"s0": NOW - 1}, False, ["s1"], id="a-child-never-beat"),
        pytest.param(True, ["s0"], {"s0": NOW - STALE_AFTER_SECONDS - 1}, False, ["s0"], id="a-child-stuck-or-dead"),
        pytest.param(False, ["s0"], {"s0": NOW}, False, [], id="daemon-gone"),
        pytest.param(True, [], {}, True, [], id="standby-worker-without-leases"),
        pytest.param(True, ["s0"], {"s0": NOW, "s9": NOW - 999}, True, [], id="a-beat-of-a-lost-lease-is-ignored"),
    ],
)
def test_assess(daemon: bool, owned: list[str], beats: dict[str, float], healthy: bool, stale: list[str]) -> None:
    report = assess(daemon, owned, {shard: {"at": at} for shard, at in beats.items()}, NOW)
    assert (report.healthy, report.stale_or_missing) == (healthy, stale)


def test_heartbeat_files_roundtrip(tmp_path: Path) -> None:
    write_heartbeat(tmp_path, "shardId-000000000001", NOW, {"millis_behind_latest": 12})
    (tmp_path / "garbage.json").write_text("{not json")
    beats = read_heartbeats(tmp_path)
    assert beats["shardId-000000000001"]["at"] == NOW
    assert beats["shardId-000000000001"]["millis_behind_latest"] == 12
    remove_heartbeat(tmp_path, "shardId-000000000001")
    assert read_heartbeats(tmp_path) == {}


# -- shards without a live owner (KCL 3.1.3's stuck leader, amazon-kinesis-client #1803) ---------------------------

FAILOVER_MS = 10000


def lease(owner: str | None, counter: int, checkpoint: str = "49") -> dict[str, Any]:
    return {"leaseOwner": owner, "leaseCounter": counter, "checkpoint": checkpoint}


@pytest.mark.parametrize(
    ("before", "leases", "orphans"),
    [
        pytest.param({}, {"s0": lease("w1", 5)}, {}, id="first-look-cannot-tell"),
        pytest.param({"s0": ("w1", 5, NOW - 30)}, {"s0": lease("w1", 6)}, {}, id="renewed-since"),
        pytest.param({"s0": ("w1", 5, NOW - 30)}, {"s0": lease("w2", 5)}, {}, id="taken-by-another-worker"),
        pytest.param({"s0": ("w1", 5, NOW - 20.5)}, {"s0": lease("w1", 5)}, {"s0": 20.5},
                     id="nobody-renewed-for-over-2x-failover"),
        pytest.param({"s0": ("w1", 5, NOW - 19.9)}, {"s0": lease("w1", 5)}, {}, id="not-yet-2x-failover"),
        pytest.param({"s0": ("", 0, NOW - 25)}, {"s0": lease(None, 0)}, {"s0": 25.0}, id="never-assigned"),
        pytest.param({"s0": ("w1", 5, NOW - 99)}, {"s0": lease("w1", 5, "SHARD_END")}, {}, id="finished-shard"),
    ],
)
def test_shards_without_a_live_owner(before: dict[str, tuple[str, int, float]], leases: dict[str, dict[str, Any]],
                                     orphans: dict[str, float]) -> None:
    previous = {s: {"owner": o, "counter": c, "since": t} for s, (o, c, t) in before.items()}
    seen = observe(previous, leases, NOW)
    assert without_live_owner(seen, NOW, FAILOVER_MS) == orphans


def test_observation_survives_a_round_trip_through_json() -> None:
    seen = observe({}, {"s0": lease("w1", 5)}, NOW - 25)
    again = observe(json.loads(json.dumps(seen)), {"s0": lease("w1", 5)}, NOW)
    assert without_live_owner(again, NOW, FAILOVER_MS) == {"s0": 25.0}


@pytest.mark.parametrize(
    ("daemon", "beats", "orphans", "healthy", "reason"),
    [
        pytest.param(False, {}, {"s9": 99.0}, False, "the KCL daemon is not running on this host: start the "
                     "pipeline first (`make run`, or `docker compose up`)", id="nothing-running"),
        pytest.param(True, {"s0": {"at": NOW}}, {"s9": 41.0}, False, "s9 has had no live owner for 41 s (over twice "
                     "failoverTimeMillis, 20 s): lease assignment has stopped; if the KCL leader died, delete its "
                     "lock (README, 'When shards are not reassigned')", id="stuck-leader"),
        pytest.param(True, {"s0": {"at": NOW - STALE_AFTER_SECONDS - 30,
                                   "slack": {"state": "failing", "error": "main unavailable: 503"}}},
                     {}, False, f"no heartbeat within {STALE_AFTER_SECONDS:.0f} s from the processor of s0 (stuck or "
                     "dead); Slack is failing: main unavailable: 503", id="stuck-on-slack"),
        pytest.param(True, {"s0": {"at": NOW}}, {}, True,
                     f"1 shard(s) held here, every processor beat within {STALE_AFTER_SECONDS:.0f} s", id="healthy"),
    ],
)
def test_reason_is_one_line(daemon: bool, beats: dict[str, dict[str, Any]], orphans: dict[str, float],
                            healthy: bool, reason: str) -> None:
    report = assess(daemon, ["s0"], beats, NOW, orphans=orphans, failover_ms=FAILOVER_MS)
    assert (report.healthy, report.reason) == (healthy, reason)
    assert "\n" not in report.reason
