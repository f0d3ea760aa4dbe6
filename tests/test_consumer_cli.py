"""``python -m consumer.checkpoints`` and ``python -m consumer.health``: their pure parts, and what they say when
nothing runs or the configuration is wrong (real processes, a port where nothing listens)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from consumer.checkpoints import LeaderView, ShardView, lease_state, table
from consumer.config import REPO_ROOT, kcl_failover_millis
from localmode.supervisor import free_port

NOTHING = f"http://127.0.0.1:{free_port()}"


def lease(owner: str | None, counter: int, checkpoint: str = "49") -> dict[str, Any]:
    return {"leaseOwner": owner, "leaseCounter": counter, "checkpoint": checkpoint}


@pytest.mark.parametrize(
    ("before", "after", "observed", "renewing", "words"),
    [
        pytest.param(lease("w1", 5), lease("w1", 6), 4.0, True, "renewing (lives 10 s past each renewal)",
                     id="renewed"),
        pytest.param(lease("w1", 5), lease("w2", 5), 4.0, True, "renewing (lives 10 s past each renewal)",
                     id="taken-over"),
        pytest.param(lease("w1", 5), lease("w1", 5), 4.0, False, "not renewed for 4 s (expires within 6 s)",
                     id="not-renewed"),
        pytest.param(lease("w1", 5), lease("w1", 5), 12.0, False, "not renewed for 12 s (expires within 0 s)",
                     id="past-failover"),
        pytest.param(None, lease("w1", 5), 0.0, None, "not observed", id="read-once"),
        pytest.param(lease(None, 0), lease(None, 0), 4.0, None, "no owner", id="unowned"),
        pytest.param(lease("w1", 5, "SHARD_END"), lease("w1", 5, "SHARD_END"), 4.0, None, "finished (SHARD_END)",
                     id="finished"),
    ],
)
def test_lease_state(before: dict[str, Any] | None, after: dict[str, Any], observed: float, renewing: bool | None,
                     words: str) -> None:
    assert lease_state(before, after, observed, 10000) == (renewing, words)


@pytest.mark.parametrize(
    ("leader", "line"),
    [
        pytest.param(LeaderView("w1", 120000, True), "leader: w1 (120 s lock, item 'Leader' in app-CoordinatorState; "
                     "renews its leases: yes)", id="alive"),
        pytest.param(LeaderView("w1", 120000, False), "leader: w1 (120 s lock, item 'Leader' in "
                     "app-CoordinatorState; renews its leases: NO)", id="dead-leader-still-holds-the-lock"),
        pytest.param(LeaderView(None, None, None), "leader: none (no 'Leader' item in app-CoordinatorState)",
                     id="none"),
    ],
)
def test_leader_line(leader: LeaderView, line: str) -> None:
    assert leader.describe("app-CoordinatorState") == line


def test_table_shows_the_age_of_the_oldest_waiting_record() -> None:
    views = [ShardView("shardId-0", "w1", "49", 7, True, "renewing", 5300, "117")]
    lines = table(views)
    assert lines[0].split() == ["shard", "lease", "owner", "lease", "checkpoint", "counter", "ms", "behind", "tip",
                                "records", "behind"]
    assert lines[1].split()[-2:] == ["5300", "117"]


def test_failover_time_is_read_from_the_kcl_properties() -> None:
    assert kcl_failover_millis() == 10000
    assert kcl_failover_millis(REPO_ROOT / "no-such.properties") == 10000


def run(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CALI_", "LOCALSTACK_", "KINESIS_"))}
    environ.update({"LOCALSTACK_ENDPOINT": NOTHING, "CALI_WORKER_ID": "cali-cli-test-nobody", **env})
    return subprocess.run([sys.executable, "-m", module], env=environ, capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT)


def test_checkpoints_with_nothing_running_says_what_to_do_in_one_line() -> None:
    result = run("consumer.checkpoints")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (f"cali: nothing answers at {NOTHING} (LOCALSTACK_ENDPOINT): start the pipeline first "
                             "(`make run`, or `docker compose up`)\n")


def test_health_with_nothing_running_says_what_to_do_in_one_line() -> None:
    result = run("consumer.health")
    assert result.returncode == 1
    assert result.stderr == ""
    assert result.stdout == ("unhealthy: the KCL daemon is not running on this host: start the pipeline first "
                             "(`make run`, or `docker compose up`)\n")


@pytest.mark.parametrize("module", ["consumer.checkpoints", "consumer.health"])
def test_a_configuration_error_is_one_line_and_exit_2(module: str) -> None:
    result = run(module, THROTTLE_MAX_PER_MINUTE="abc")
    assert result.returncode == 2
    assert result.stderr == "cali: THROTTLE_MAX_PER_MINUTE must be a number, got 'abc'\n"
