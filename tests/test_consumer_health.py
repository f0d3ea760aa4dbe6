"""The health check's decision and its heartbeat files."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.health import assess, read_heartbeats, remove_heartbeat, write_heartbeat

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("daemon", "owned", "beats", "healthy", "stale"),
    [
        pytest.param(True, ["s0", "s1"], {"s0": NOW - 1, "s1": NOW - 59}, True, [], id="all-fresh"),
        pytest.param(True, ["s0", "s1"], {"s0": NOW - 1}, False, ["s1"], id="a-child-never-beat"),
        pytest.param(True, ["s0"], {"s0": NOW - 61}, False, ["s0"], id="a-child-stuck-or-dead"),
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
