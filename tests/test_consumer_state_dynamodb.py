"""DynamoState against a real DynamoDB API: the local moto emulator (``python -m localmode.emulator``) as a child.

Every test gets its own table (created with ``ensure_table``, as local mode does) and checks the items with a plain
boto3 client. Several ``DynamoState`` instances, each with its own client, stand for several KCL child processes;
times are injected, so nothing waits for a real minute.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from consumer.alerter import Alerter, RecordIn
from consumer.model import Level
from consumer.state.dynamodb import CLAIM_CACHE_SECONDS, DELIVERED_TTL_SECONDS, DynamoState, ensure_table
from tests.emulator import make_client

LIMIT = 5
WINDOW = 60.0
DEDUP = 300.0
BASE = float(int(time.time()))  # realistic epoch seconds, so the TTLs written are in the future


@pytest.fixture(scope="module")
def endpoint(emulator_url: str) -> str:
    return emulator_url


@pytest.fixture
def table(endpoint: str) -> str:
    name = f"cali-test-{uuid.uuid4().hex[:8]}-state"
    ensure_table(make_client(endpoint), name)
    return name


@pytest.fixture
def db(endpoint: str) -> Any:
    """The checking client."""
    return make_client(endpoint)


@pytest.fixture
def new_state(endpoint: str, table: str) -> Callable[[], DynamoState]:
    """Another "process": its own client and its own local cache, same table."""
    return lambda: DynamoState(make_client(endpoint), table, LIMIT, WINDOW)


def item(db: Any, table: str, pk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = db.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    return found


# -- the table ------------------------------------------------------------------------------------------------


def test_ensure_table_creates_the_declared_table_once(endpoint: str, db: Any, table: str) -> None:
    described = db.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert described["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = db.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    ensure_table(make_client(endpoint), table)  # already there: no error, nothing changed
    assert db.describe_table(TableName=table)["Table"]["KeySchema"] == described["KeySchema"]


# -- the shared sliding-window budget ----------------------------------------------------------------------------


def test_two_processes_share_one_sliding_window_budget(db: Any, table: str,
                                                       new_state: Callable[[], DynamoState]) -> None:
    a, b = new_state(), new_state()
    assert [a.try_acquire("main", BASE + t) for t in (0.0, 1.0, 2.0)] == [True] * 3
    assert [b.try_acquire("main", BASE + t) for t in (3.0, 4.0)] == [True] * 2
    assert b.try_acquire("main", BASE + 5.0) is False  # five in the last minute, whoever sent them
    assert a.try_acquire("main", BASE + 59.9) is False
    assert a.try_acquire("main", BASE + 60.0) is True  # the send at +0 left the window
    assert b.try_acquire("main", BASE + 60.5) is False  # +1 is still inside (59.5 s ago)
    assert b.try_acquire("main", BASE + 61.0) is True
    assert a.try_acquire("warn", BASE + 61.0) is True  # another webhook, another budget

    stored = item(db, table, "throttle#main")
    assert stored is not None
    assert [float(x["N"]) for x in stored["sent"]["L"]] == [BASE + t for t in (2.0, 3.0, 4.0, 60.0, 61.0)]
    assert stored["ver"]["N"] == "7"  # one conditional write per admitted send
    assert int(stored["expires_at"]["N"]) == int(BASE + 61.0 + 2 * WINDOW)


def test_no_more_than_the_limit_in_any_window(new_state: Callable[[], DynamoState]) -> None:
    """A send attempt every 7 s from alternating processes for 10 minutes."""
    states = [new_state(), new_state()]
    admitted = [BASE + t for i, t in enumerate(range(0, 600, 7)) if states[i % 2].try_acquire("main", BASE + t)]
    for t in admitted:
        assert sum(1 for u in admitted if t <= u < t + WINDOW) <= LIMIT
    assert len(admitted) == 50  # and the budget is used, not only respected


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_try_acquire_admits_exactly_the_limit(endpoint: str, db: Any, table: str, round_: int) -> None:
    states = [DynamoState(make_client(endpoint), table, LIMIT, WINDOW) for _ in range(8)]
    barrier = threading.Barrier(len(states))
    results: list[bool | BaseException] = [False] * len(states)

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = states[index].try_acquire("main", BASE + index * 0.001)
        except BaseException as exc:  # surfaced below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(states))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert results.count(True) == LIMIT
    stored = item(db, table, "throttle#main")
    assert stored is not None
    assert len(stored["sent"]["L"]) == LIMIT
    assert stored["ver"]["N"] == str(LIMIT)


# -- fingerprint claims --------------------------------------------------------------------------------------------


def test_claim_is_exclusive_within_the_window(db: Any, table: str, new_state: Callable[[], DynamoState]) -> None:
    a, b = new_state(), new_state()
    assert a.claim_fingerprint("fp1", "shard-0/1/0/0", BASE, DEDUP) is True
    assert b.claim_fingerprint("fp1", "shard-1/7/0/0", BASE + 1.0, DEDUP) is False
    assert b.claim_fingerprint("fp2", "shard-1/7/0/0", BASE + 1.0, DEDUP) is True  # another problem
    stored = item(db, table, "fp#fp1")
    assert stored is not None
    assert (stored["owner"]["S"], float(stored["at"]["N"])) == ("shard-0/1/0/0", BASE)
    assert int(stored["expires_at"]["N"]) == int(BASE + DEDUP + 3600)


def test_claim_expires_after_the_window(new_state: Callable[[], DynamoState]) -> None:
    a, b, c = new_state(), new_state(), new_state()
    assert a.claim_fingerprint("fp", "k1", BASE, DEDUP) is True
    assert b.claim_fingerprint("fp", "k2", BASE + 1.0, DEDUP) is False  # b now caches the claim's end: BASE + 300
    assert b.claim_fingerprint("fp", "k2", BASE + 299.0, DEDUP) is False
    assert c.claim_fingerprint("fp", "k3", BASE + 299.9, DEDUP) is False
    assert b.claim_fingerprint("fp", "k2", BASE + 300.0, DEDUP) is True  # exactly the window after the claim
    assert a.claim_fingerprint("fp", "k1", BASE + 301.0, DEDUP) is False  # now b's


def test_the_owner_gets_its_claim_back(db: Any, table: str, new_state: Callable[[], DynamoState]) -> None:
    """The same alert re-read after a crash (same idempotency key, a new process) may claim again."""
    crashed, restarted, other = new_state(), new_state(), new_state()
    assert crashed.claim_fingerprint("fp", "shard-0/42/0/0", BASE, DEDUP) is True
    assert other.claim_fingerprint("fp", "shard-0/43/0/0", BASE + 2.0, DEDUP) is False
    assert restarted.claim_fingerprint("fp", "shard-0/42/0/0", BASE + 5.0, DEDUP) is True
    stored = item(db, table, "fp#fp")
    assert stored is not None
    assert (stored["owner"]["S"], float(stored["at"]["N"])) == ("shard-0/42/0/0", BASE + 5.0)


def test_release_by_the_owner_frees_the_fingerprint(db: Any, table: str,
                                                    new_state: Callable[[], DynamoState]) -> None:
    a, b = new_state(), new_state()
    assert a.claim_fingerprint("fp", "k1", BASE, DEDUP) is True
    a.release_fingerprint("fp", "k1")  # throttled, or refused by Slack
    assert item(db, table, "fp#fp") is None
    assert b.claim_fingerprint("fp", "k2", BASE + 1.0, DEDUP) is True


def test_release_by_another_owner_changes_nothing(db: Any, table: str,
                                                  new_state: Callable[[], DynamoState]) -> None:
    a, b, c = new_state(), new_state(), new_state()
    assert a.claim_fingerprint("fp", "k1", BASE, DEDUP) is True
    b.release_fingerprint("fp", "k2")  # not its claim: a no-op, no error
    b.release_fingerprint("never-claimed", "k2")
    stored = item(db, table, "fp#fp")
    assert stored is not None
    assert stored["owner"]["S"] == "k1"
    assert c.claim_fingerprint("fp", "k3", BASE + 1.0, DEDUP) is False


def test_a_release_elsewhere_is_seen_once_the_local_claim_cache_expires(
        new_state: Callable[[], DynamoState]) -> None:
    """A lost claim is cached locally for CLAIM_CACHE_SECONDS (keeps DynamoDB off the per-event path in a burst),
    not for the claim's whole window, so a release by its owner (throttled or refused) is seen soon after."""
    a, b = new_state(), new_state()
    assert a.claim_fingerprint("fp", "k1", BASE, DEDUP) is True
    assert b.claim_fingerprint("fp", "k2", BASE + 1.0, DEDUP) is False
    a.release_fingerprint("fp", "k1")
    assert b.claim_fingerprint("fp", "k2", BASE + 2.0, DEDUP) is False  # still cached
    assert b.claim_fingerprint("fp", "k2", BASE + 1.0 + CLAIM_CACHE_SECONDS, DEDUP) is True


# -- idempotency records ----------------------------------------------------------------------------------------


def test_delivered_marks_are_shared_and_kept_a_week(db: Any, table: str,
                                                    new_state: Callable[[], DynamoState]) -> None:
    a, b = new_state(), new_state()
    key = "shardId-000000000000/49659000000000000000000000000000000000000000000000000001/0/0"
    through = key.replace("/0/0", "/0/3")
    assert a.delivered_through(key) is None
    assert a.begin_send(key, "a", BASE, 60.0) == (True, None)
    assert b.begin_send(key, "b", BASE + 1.0, 60.0) == (False, None)  # a is posting it
    a.end_send(key, "a", BASE, through)
    assert (a.delivered_through(key), b.delivered_through(key)) == (through, through)
    assert b.begin_send(key, "b", BASE + 2.0, 60.0) == (False, through)  # ended: never posted twice
    assert b.delivered_through(key.replace("/0/0", "/0/1")) is None  # another line of the same record
    assert b.delivered_through(f"digest/{key}") is None  # a digest's key is its own
    b.end_send(f"digest/{key}", "b", BASE + 1.0, key)
    assert a.delivered_through(f"digest/{key}") == key
    stored = item(db, table, f"sent#{key}")
    assert stored is not None
    assert (float(stored["at"]["N"]), int(stored["expires_at"]["N"])) == (BASE, int(BASE + DELIVERED_TTL_SECONDS))


def test_a_stale_send_claim_is_taken_over_and_a_fresh_one_is_kept_fresh(new_state: Callable[[], DynamoState]) -> None:
    """A crashed processor's claim goes stale; a live one refreshes its claim while it retries."""
    a, b = new_state(), new_state()
    key = "shardId-000000000001/7/0/0"
    assert a.begin_send(key, "a", BASE, 60.0) == (True, None)
    a.keep_sending(key, "a", BASE + 50.0)
    assert b.begin_send(key, "b", BASE + 100.0, 60.0) == (False, None)  # refreshed at +50: not stale at +100
    assert b.begin_send(key, "b", BASE + 111.0, 60.0) == (True, None)  # a went quiet: b takes over
    a.keep_sending(key, "a", BASE + 112.0)  # a zombie's refresh does not steal it back
    assert a.begin_send(key, "a", BASE + 113.0, 60.0) == (False, None)


# -- two shards' alerters on one table -----------------------------------------------------------------------------


class Sender:
    name = "main"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def post(self, payload: Any) -> None:
        self.texts.append(str(payload["text"]))


def test_two_alerters_share_budget_dedup_and_idempotency(endpoint: str, table: str) -> None:
    now = [BASE]
    sender = Sender()

    def alerter() -> Alerter:
        state = DynamoState(make_client(endpoint), table, LIMIT, WINDOW)
        return Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                       display_tz=ZoneInfo("UTC"), clock=lambda: now[0], sleep=lambda s: None, dedup_window=DEDUP)

    def records(shard: str, messages: list[str]) -> list[RecordIn]:
        return [RecordIn(json.dumps({"level": "ERROR", "service": f"svc-{m}", "message": f"failure {m}"}).encode(),
                         shard, str(1000 + i)) for i, m in enumerate(messages)]

    shard0, shard1 = alerter(), alerter()
    batch0 = records("shardId-0", ["a", "b", "c", "d"])
    shard0.handle_batch(batch0)
    shard1.handle_batch(records("shardId-1", ["a", "e", "f"]))  # "a" alerted on shard 0: folded; budget 1 left
    assert len(sender.texts) == 5
    assert (shard0.stats.alerts_sent, shard1.stats.alerts_sent) == (4, 1)
    assert shard1.held == 2  # "a" (dedup) and "f" (throttled)

    restarted = alerter()  # shard 0's processor restarts and reads its batch again
    now[0] += 10.0
    restarted.handle_batch(batch0)
    assert restarted.stats.already_delivered == 4
    assert len(sender.texts) == 5

    now[0] += 50.0  # the digest interval passed and the budget reopened
    shard1.tick()
    assert sender.texts[-1].startswith("2 more ERROR/WARN")
    assert (shard1.held, shard1.stats.digested_events) == (0, 2)


def test_the_high_water_mark_only_rises_and_a_spent_budget_is_known_locally(
        new_state: Callable[[], DynamoState]) -> None:
    a, b = new_state(), new_state()
    shard = "shardId-000000000042"
    assert a.ended_through(shard) is None
    a.end_send(f"{shard}/9/0/0", "a", BASE, f"{shard}/9/0/2")
    a.end_send(f"{shard}/3/0/0", "a", BASE, f"{shard}/4/0/0")  # an older message ending late: no step back
    assert b.ended_through(shard) == f"{shard}/9/0/2"
    a.end_send(f"{shard}/100/0/0", "a", BASE, f"{shard}/100/0/0")  # 100 > 9 as numbers, not as strings
    assert b.ended_through(shard) == f"{shard}/100/0/0"

    assert all(a.try_acquire("hook", BASE + i) for i in range(5))
    assert a.has_budget("hook", BASE + 10.0)  # optimistic until a refusal says otherwise
    assert a.try_acquire("hook", BASE + 10.0) is False
    assert a.has_budget("hook", BASE + 59.9) is False  # known locally: no DynamoDB call
    assert a.has_budget("hook", BASE + 60.0) is True  # the first send leaves the window
