"""One contract for both AlertStates: ``MemoryState`` and ``DynamoState`` against the local moto emulator
(the session's, tests/conftest.py), each test run over both.

Several "processes" (``new_state()``) share one store: for DynamoState each has its own client and local cache
over one table; MemoryState is one object. Times are injected, so nothing waits for a real minute. At the end, what
only DynamoDB has: the table's shape, concurrent writers, and the round trips one alert costs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from consumer.state import (
    CONTRIBUTIONS_PER_PART,
    ENDS_PER_TRANSACTION,
    Added,
    AlertState,
    Begun,
    Claim,
    Contribution,
    DigestContents,
    DigestLine,
    Ended,
    Ending,
    Incident,
    Repeat,
    Repeated,
    Verdict,
)
from consumer.state.dynamodb import DynamoState, ensure_table
from consumer.state.memory import MemoryState
from tests.emulator import make_client

LIMIT = 5
WINDOW = 60.0
DEDUP = 300.0
STALE = 90.0
BASE = float(int(time.time()) // 60 * 60)  # realistic epoch seconds (TTLs in the future), on a minute
SHARD = "shardId-000000000007"

NewState = Callable[[], AlertState]


@pytest.fixture
def endpoint(emulator_url: str) -> str:
    return emulator_url


def new_table(endpoint: str) -> str:
    name = f"cali-test-{uuid.uuid4().hex[:8]}-state"
    ensure_table(make_client(endpoint), name)
    return name


@pytest.fixture(params=["memory", "dynamodb"])
def new_state(request: pytest.FixtureRequest) -> NewState:
    if request.param == "memory":
        shared = MemoryState(LIMIT, WINDOW)
        return lambda: shared
    endpoint = request.getfixturevalue("endpoint")
    table = new_table(endpoint)
    return lambda: DynamoState(make_client(endpoint), table, LIMIT, WINDOW)


def counting_client(endpoint: str) -> tuple[Any, list[str]]:
    """A DynamoDB client that lists the operation of every request it sends."""
    client = make_client(endpoint)
    calls: list[str] = []
    client.meta.events.register("before-send.dynamodb.*", lambda request, **_: calls.append(
        request.headers.get("X-Amz-Target", b"").decode().rsplit(".", 1)[-1]))
    return client, calls


def claim(key: str, now: float, slot: int, *, owner: str = "p1", fingerprint: str | None = None,
          incident_events: int = 0, through: str = "") -> Claim:
    return Claim(key=key, owner=owner, now=now, budget="main", slot=slot, stale_after=STALE, fingerprint=fingerprint,
                 dedup_window=DEDUP, incident_events=incident_events, shard=SHARD, through=through or key)


def begin(state: AlertState, key: str, now: float, **kwargs: Any) -> Begun:
    """Decide and begin as the alerter does: a free slot from the view, again after a conflict."""
    for _ in range(LIMIT + 2):
        slot = state.view("main", kwargs.get("fingerprint") or "", now, key).free_slot
        if slot is None:
            return Begun(Verdict.CONFLICT)
        begun = state.begin(claim(key, now, slot, **kwargs))
        if begun.verdict is not Verdict.CONFLICT or state.view("main", kwargs.get("fingerprint") or "", now,
                                                               key).fingerprint_open:
            return begun  # (a conflict on the slot only: another slot)
    return Begun(Verdict.CONFLICT)


def key(n: int) -> str:
    return f"{SHARD}/{n}/0/0"


# -- the budget ---------------------------------------------------------------------------------------------------


def test_no_more_than_the_limit_in_any_window_across_processes(new_state: NewState) -> None:
    """A send attempt every 7 s from alternating processes for 10 minutes: sliding window, budget used."""
    states = [new_state(), new_state()]
    sent = []
    for i, t in enumerate(range(0, 600, 7)):
        if begin(states[i % 2], key(i), BASE + t).verdict is Verdict.TAKEN:
            sent.append(BASE + t)
    for t in sent:
        assert sum(1 for u in sent if t <= u < t + WINDOW) <= LIMIT
    assert len(sent) == 50


def test_a_spent_budget_is_known_without_asking(new_state: NewState) -> None:
    state = new_state()
    for i in range(LIMIT):
        slot = state.view("main", "", BASE + i).free_slot
        assert slot is not None  # its own sends are known: never a slot it used itself
        assert state.begin(claim(key(i), BASE + i, slot)).verdict is Verdict.TAKEN
    assert begin(state, key(9), BASE + 10).verdict is Verdict.CONFLICT
    assert state.view("main", "", BASE + 59.9).free_slot is None
    assert state.view("main", "", BASE + 60.0).free_slot is not None  # the first send left the window
    assert state.view("warn", "", BASE + 10).free_slot is not None  # another destination, another budget


def test_a_batch_s_alerts_begin_together_each_as_alone(new_state: NewState) -> None:
    """``begin_all``: a re-read's ended alert, another processor's live claim, and a spent slot with an open
    fingerprint amid a new alert: each gets the verdict it would get alone, and what the refusals teach is known."""
    a, b = new_state(), new_state()
    assert a.begin(claim(key(1), BASE, 0, fingerprint="fp1")).verdict is Verdict.TAKEN
    a.end(key(1), "p1", BASE, key(1))
    assert a.begin(claim(key(3), BASE, 1, fingerprint="fp3")).verdict is Verdict.TAKEN  # p1 is posting it
    begun = b.begin_all([claim(key(1), BASE + 1, 2, owner="p2", fingerprint="fp1"),  # ended (a re-read)
                         claim(key(2), BASE + 1, 3, owner="p2", fingerprint="fp2"),
                         claim(key(3), BASE + 1, 4, owner="p2", fingerprint="fp3"),  # busy
                         claim(key(4), BASE + 1, 0, owner="p2", fingerprint="fp1")])  # slot and fingerprint taken
    assert [x.verdict for x in begun] == [Verdict.ENDED, Verdict.TAKEN, Verdict.BUSY, Verdict.CONFLICT]
    assert begun[0].ended == Ended(key(1))
    assert b.view("main", "fp1", BASE + 2, key(9)).fingerprint_open is True  # learned from the refusal
    assert b.view("main", "fp2", BASE + 2, key(9)).fingerprint_open is True  # its own
    assert b.view("main", "", BASE + 2, promised={1, 2, 4}).free_slot is None  # 0 learned, 3 its own


# -- fingerprints ---------------------------------------------------------------------------------------------------


def test_a_fingerprint_is_exclusive_within_the_dedup_window(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    assert begin(a, key(1), BASE, fingerprint="fp").verdict is Verdict.TAKEN
    assert a.view("main", "fp", BASE + 1, key(5)).fingerprint_open is True  # its own claim: known without asking
    assert begin(b, key(2), BASE + 1, fingerprint="fp").verdict is Verdict.CONFLICT
    assert b.view("main", "fp", BASE + 1, key(2)).fingerprint_open is True  # learned from the refusal
    assert begin(b, key(3), BASE + DEDUP, fingerprint="fp").verdict is Verdict.TAKEN  # the window passed


def test_the_owner_gets_its_claim_back_and_a_refusal_releases_it(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    assert begin(a, key(1), BASE, fingerprint="fp").verdict is Verdict.TAKEN
    assert b.view("main", "fp", BASE + 1, key(1)).fingerprint_open is False  # its own key: a re-read
    a.end(key(1), "p1", BASE + 1, key(1), refused=True, release="fp")
    assert begin(b, key(2), BASE + 2, fingerprint="fp").verdict is Verdict.TAKEN  # released: free again


# -- send records ---------------------------------------------------------------------------------------------------


def test_an_ended_message_says_what_it_covered(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    assert begin(a, key(5), BASE).verdict is Verdict.TAKEN
    a.end(key(5), "p1", BASE + 1, key(8))
    again = begin(b, key(5), BASE + 2, owner="p2")
    assert again.verdict is Verdict.ENDED
    assert again.ended is not None and again.ended.through == key(8)
    delivered = b.delivered(key(5))
    assert delivered is not None and (delivered.through, delivered.refused) == (key(8), False)
    assert b.delivered(key(6)) is None


def test_a_live_send_claim_is_respected_and_a_stale_one_taken_over(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    assert begin(a, key(1), BASE).verdict is Verdict.TAKEN
    a.keep_sending(key(1), "p1", BASE + 50)
    assert begin(b, key(1), BASE + 50 + STALE - 1, owner="p2").verdict is Verdict.BUSY
    taken = begin(b, key(1), BASE + 50 + STALE + 1, owner="p2")
    assert (taken.verdict, taken.takeover) == (Verdict.TAKEN, True)  # the first attempt's outcome is unknown
    assert taken.since == BASE  # look the post up from the first claim on, not from this one
    again = begin(a, key(1), BASE + 50 + 2 * STALE + 2, owner="p3")
    assert (again.verdict, again.since) == (Verdict.TAKEN, BASE)


def test_the_high_water_mark_only_rises(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    assert a.ended_through(SHARD) is None
    a.end(key(9), "p1", BASE, f"{SHARD}/9/0/2")
    a.end(key(3), "p1", BASE, key(4))  # an older message ending late: no step back
    assert b.ended_through(SHARD) == f"{SHARD}/9/0/2"
    a.end(key(100), "p1", BASE, key(100))  # 100 > 9 as numbers, not as strings
    assert b.ended_through(SHARD) == key(100)


# -- digests --------------------------------------------------------------------------------------------------------


def digest(state: AlertState, bucket: str, batch: list[Contribution], now: float) -> list[tuple[Added, str | None]]:
    """A batch's contributions to one bucket."""
    return state.add_to_digest({bucket: batch}, now)[bucket]


def seal(state: AlertState, bucket: str, owner: str = "sealer") -> DigestContents:
    """Claim the digest's send, seal it and read it, as a processor does once its interval closed."""
    [(begun, contents)] = state.open_digests([Claim(key=f"digest/{bucket}", owner=owner, now=BASE + 100,
                                                    budget=bucket.rpartition("#")[0], slot=-1, stale_after=STALE)])
    assert begun.verdict is Verdict.TAKEN and contents is not None
    return contents


def add(state: AlertState, bucket: str, first: str, through: str, lines: dict[DigestLine, int],
        now: float) -> tuple[Added, str | None]:
    """One group's contribution."""
    [result] = digest(state, bucket, [Contribution(first, through, lines)], now)
    return result


def test_one_digest_bucket_collects_from_every_process_once(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    line_a, line_b = ("ERROR", "pay", "db timeout after <n>ms"), ("WARN", "auth", "slow")
    assert add(a, "main#1", key(1), key(2), {line_a: 2}, BASE) == (Added.ADDED, "main#1")
    assert add(b, "main#1", f"{SHARD}x/1/0/0", f"{SHARD}x/3/0/0", {line_a: 1, line_b: 4}, BASE) == \
        (Added.ADDED, "main#1")
    assert add(a, "main#1", key(1), key(2), {line_a: 2}, BASE + 1) == (Added.ALREADY, "main#1")
    assert a.ended_through(SHARD) == key(2)  # a contribution ended those events as far as a re-read goes
    delivered = b.delivered(key(1))
    assert delivered is not None and delivered.bucket == "main#1"
    contents = seal(b, "main#1")
    assert (contents.lines, contents.total) == ({line_a: 3, line_b: 4}, 7)
    assert add(a, "main#1", key(7), key(7), {line_a: 1}, BASE + 2) == (Added.SEALED, None)
    assert seal(b, "main#1").total == 7  # sealing again reads the same


def test_a_batch_of_contributions_counts_each_group_once(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    line_a, line_b = ("ERROR", "pay", "db timeout after <n>ms"), ("WARN", "auth", "slow")
    assert add(a, "main#1", key(3), key(4), {line_a: 2}, BASE) == (Added.ADDED, "main#1")
    batch = [Contribution(key(1), key(2), {line_a: 2}), Contribution(key(3), key(4), {line_a: 2}),
             Contribution(key(5), key(9), {line_b: 3})]
    assert digest(b, "main#1", batch, BASE + 1) == [(Added.ADDED, "main#1"), (Added.ALREADY, "main#1"),
                                                          (Added.ADDED, "main#1")]
    assert a.ended_through(SHARD) == key(9)
    for first, through in ((key(1), key(2)), (key(5), key(9))):
        delivered = a.delivered(first)
        assert delivered is not None and (delivered.through, delivered.bucket) == (through, "main#1")
    assert seal(b, "main#1").lines == {line_a: 4, line_b: 3}  # the re-read group counted once
    assert digest(b, "main#1", [*batch[2:], Contribution(key(10), key(10), {line_b: 1})], BASE + 2) == \
        [(Added.ALREADY, "main#1"), (Added.SEALED, None)]


def test_more_contributions_than_one_transaction_holds(new_state: NewState) -> None:
    state = new_state()
    n = CONTRIBUTIONS_PER_PART + 5
    batch = [Contribution(key(i), key(i), {("ERROR", "svc", f"t{i % 7}"): 1}) for i in range(1, n + 1)]
    assert digest(state, "main#1", batch, BASE) == [(Added.ADDED, "main#1")] * n
    assert state.ended_through(SHARD) == key(n)
    assert seal(state, "main#1").total == n


def test_one_batch_adds_to_every_destinations_bucket_at_once(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    line = ("ERROR", "svc", "boom")
    assert add(a, "ops#1", key(1), key(1), {line: 1}, BASE) == (Added.ADDED, "ops#1")
    seal(a, "ops#1")  # being sent: this destination's groups go to a later bucket, the others are added
    assert b.add_to_digest({"main#1": [Contribution(key(2), key(3), {line: 2})],
                            "ops#1": [Contribution(key(4), key(4), {line: 1})],
                            "db#1": [Contribution(key(5), key(6), {line: 3})]}, BASE) == \
        {"main#1": [(Added.ADDED, "main#1")], "ops#1": [(Added.SEALED, None)], "db#1": [(Added.ADDED, "db#1")]}
    assert (seal(a, "main#1").total, seal(a, "db#1").total, seal(a, "ops#1").total) == (2, 3, 1)
    delivered = a.delivered(key(5))
    assert delivered is not None and (delivered.through, delivered.bucket) == (key(6), "db#1")
    assert a.delivered(key(4)) is None


def digest_claim(bucket: str, now: float, owner: str) -> Claim:
    return Claim(key=f"digest/{bucket}", owner=owner, now=now, budget=bucket.rpartition("#")[0], slot=-1,
                 stale_after=STALE)


def test_the_digests_due_together_are_claimed_sealed_and_read_together(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    line = ("ERROR", "svc", "boom")
    assert b.add_to_digest({f"{d}#1": [Contribution(key(i), key(i), {line: i})]
                            for i, d in enumerate(["main", "ops", "db", "web"], start=1)}, BASE) == \
        {f"{d}#1": [(Added.ADDED, f"{d}#1")] for d in ["main", "ops", "db", "web"]}
    assert a.begin(digest_claim("ops#1", BASE + 2, "p1")).verdict is Verdict.TAKEN  # p1 is sending ops#1
    assert a.begin(digest_claim("db#1", BASE + 2, "p1")).verdict is Verdict.TAKEN
    a.end("digest/db#1", "p1", BASE + 3, None)  # and has sent db#1
    assert a.begin(digest_claim("web#1", BASE + 2 - STALE, "p3")).verdict is Verdict.TAKEN  # p3 died sending web#1
    opened = b.open_digests([digest_claim(f"{d}#1", BASE + 4, "p2") for d in ["main", "ops", "db", "web"]])
    verdicts = [(begun.verdict, begun.takeover, contents.total if contents else None) for begun, contents in opened]
    assert verdicts == [(Verdict.TAKEN, False, 1), (Verdict.BUSY, False, None), (Verdict.ENDED, False, None),
                        (Verdict.TAKEN, True, 4)]
    assert opened[3][0].since == BASE + 2 - STALE  # look the post up from the dead processor's claim on
    assert add(a, "main#1", key(9), key(9), {line: 1}, BASE + 5) == (Added.SEALED, None)
    assert add(a, "web#1", key(9), key(9), {line: 1}, BASE + 5) == (Added.SEALED, None)


def test_the_digests_due_together_cost_three_round_trips(endpoint: str) -> None:
    client, calls = counting_client(endpoint)
    state = DynamoState(client, new_table(endpoint), LIMIT, WINDOW)
    buckets = [f"d{i}#1" for i in range(6)]
    assert state.open_digests([digest_claim(f"e{i}#1", BASE, "p1") for i in range(60)])[59][0].verdict is \
        Verdict.TAKEN  # more than one transaction holds: several
    for batch in range(3):
        state.add_to_digest({bucket: [Contribution(key(10 * batch + i), key(10 * batch + i), {("ERROR", "a", "b"): 1})]
                             for i, bucket in enumerate(buckets)}, BASE)
    calls.clear()
    opened = state.open_digests([digest_claim(bucket, BASE + 5, "p1") for bucket in buckets])
    assert [contents.total if contents else None for _, contents in opened] == [3] * 6
    assert calls == ["TransactWriteItems", "BatchGetItem", "BatchGetItem"]


def test_a_re_read_finds_each_group_however_many_batches_ago(new_state: NewState) -> None:
    """Each batch's groups are one part; a new process (a restart) finds a group's run by its first event, in the
    newest part or thirty batches back, and an event that started no run is not delivered."""
    a = new_state()
    for batch in range(30):
        first = 10 * batch
        assert digest(a, f"main#{batch}", [Contribution(key(first), key(first + 3), {("ERROR", "a", "x"): 2}),
                                                 Contribution(key(first + 1), key(first + 5), {("WARN", "b", "y"): 3})],
                               BASE) == [(Added.ADDED, f"main#{batch}")] * 2
    b = new_state()
    for first, through, bucket in ((key(291), key(295), "main#29"), (key(10), key(13), "main#1")):
        delivered = b.delivered(first)
        assert delivered is not None and (delivered.through, delivered.bucket) == (through, bucket)
    assert b.delivered(key(12)) is None
    assert digest(b, "main#30", [Contribution(key(1), key(3), {("ERROR", "a", "x"): 1}),
                                       Contribution(key(300), key(300), {("ERROR", "a", "x"): 1})], BASE) == \
        [(Added.ALREADY, "main#0"), (Added.ADDED, "main#30")]
    assert digest(a, "main#30", [Contribution(key(300), key(301), {("ERROR", "a", "x"): 1})], BASE) == \
        [(Added.ALREADY, "main#30")]  # ``a`` learns of ``b``'s part from the moved chain
    assert seal(b, "main#30").total == 1


def test_a_re_read_reads_only_the_parts_it_needs(endpoint: str) -> None:
    table = new_table(endpoint)
    a = DynamoState(make_client(endpoint), table, LIMIT, WINDOW)
    for batch in range(30):
        first = 10 * batch
        digest(a, "main#1", [Contribution(key(first), key(first + 3), {("ERROR", "a", "x"): 1})], BASE)
    client, calls = counting_client(endpoint)
    b = DynamoState(client, table, LIMIT, WINDOW)
    assert b.delivered(key(270)) is not None  # the chain's head, then parts 29, 28 and 27
    assert calls == ["GetItem"] * 4
    calls.clear()
    assert b.delivered(key(280)) is not None and calls == []  # known
    assert b.delivered(key(281)) is None and calls == ["BatchGetItem"]  # an alert's send record? the head moved?
    delivered = a.delivered(key(10))  # ``a`` keeps only its last batch's runs in memory: it reads the chain again
    assert delivered is not None and (delivered.through, delivered.bucket) == (key(13), "main#1")


# -- Web API incidents ----------------------------------------------------------------------------------------------


def open_incident(state: AlertState, count: int = 2, fp: str = "fp", at: int = 1) -> None:
    assert begin(state, key(at), BASE, fingerprint=fp, incident_events=count, through=key(at + 1)).verdict is \
        Verdict.TAKEN
    state.end(key(at), "p1", BASE, key(at + 1), root=Incident(fp, count, BASE, "C1", f"{at}.000100",
                                                               shown_count=count, root='{"text": "root"}'))


def test_repeats_count_into_the_open_incident_once(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    open_incident(a)
    assert b.view("main", "fp", BASE + 1, key(3)).fingerprint_open is (not isinstance(b, DynamoState))
    assert b.add_repeat("fp", SHARD, key(3), key(5), 3, BASE + 1) == Repeat(open=True)
    incident = b.incidents(["fp"])["fp"]
    assert (incident.count, incident.ts, incident.channel, incident.root) == (5, "1.000100", "C1", None)
    assert b.view("main", "fp", BASE + 1, key(6)).fingerprint_open is True
    again = a.add_repeat("fp", SHARD, key(4), key(6), 3, BASE + 2)  # a re-read overlapping what was counted
    assert (again, a.incidents(["fp"])["fp"].count) == (Repeat(open=True, counted_through=key(5)), 5)
    other_shard = a.add_repeat("fp", "shardId-000000000008", "shardId-000000000008/1/0/0",
                               "shardId-000000000008/1/0/0", 1, BASE + 2)
    assert other_shard.counted and a.incidents(["fp"])["fp"].count == 6
    assert a.add_repeat("nope", SHARD, key(9), key(9), 1, BASE) == Repeat(open=False)  # no open incident
    assert a.incidents(["nope", "fp"]).keys() == {"fp"}


def test_a_batch_s_repeats_count_together_each_as_alone(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    open_incident(a, fp="fp1", at=1)
    open_incident(a, fp="fp2", at=11)
    open_incident(a, fp="fp3", at=21)
    assert b.add_repeat("fp2", SHARD, key(30), key(31), 2, BASE + 1).counted_through is None  # counted before
    repeats = [Repeated("fp1", SHARD, key(30), key(32), 3), Repeated("fp2", SHARD, key(30), key(33), 4),
               Repeated("nope", SHARD, key(34), key(34), 1), Repeated("fp3", SHARD, key(35), key(35), 1)]
    counted = b.add_repeats(repeats, BASE + 2)  # a re-read's overlap and a closed incident amid counted ones
    assert counted == [Repeat(open=True), Repeat(open=True, counted_through=key(31)), Repeat(open=False),
                       Repeat(open=True)]
    assert {fp: (i.count, i.ts) for fp, i in a.incidents(["fp1", "fp2", "fp3"]).items()} == {
        "fp1": (5, "1.000100"), "fp2": (4, "11.000100"), "fp3": (3, "21.000100")}
    counted = b.add_repeats([Repeated("fp1", SHARD, key(36), key(36), 1), Repeated("fp3", SHARD, key(36), key(36), 1)],
                            BASE + 3)
    assert counted == [Repeat(open=True)] * 2
    assert a.add_repeat("fp3", SHARD, key(35), key(35), 1, BASE + 3) == Repeat(open=True, counted_through=key(36))
    assert {fp: i.count for fp, i in b.incidents(["fp1", "fp3"]).items()} == {"fp1": 6, "fp3": 4}


def test_a_batch_s_repeats_and_digest_groups_count_together_each_as_alone(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    open_incident(a, fp="fp1", at=1)
    open_incident(a, fp="fp2", at=11)
    assert b.add_repeat("fp2", SHARD, key(30), key(31), 2, BASE + 1).counted_through is None  # counted before
    line = ("ERROR", "svc", "boom")
    assert add(a, "ops#1", key(20), key(20), {line: 1}, BASE) == (Added.ADDED, "ops#1")
    seal(a, "ops#1")  # being sent: its groups go to a later bucket, the rest are counted
    repeats = [Repeated("fp1", SHARD, key(30), key(32), 3), Repeated("fp2", SHARD, key(30), key(33), 4),
               Repeated("nope", SHARD, key(34), key(34), 1)]
    contributions = {"main#1": [Contribution(key(35), key(36), {line: 2})],
                     "ops#1": [Contribution(key(37), key(37), {line: 1})]}
    counted, added = b.add_counts(repeats, contributions, BASE + 2)
    assert counted == [Repeat(open=True), Repeat(open=True, counted_through=key(31)), Repeat(open=False)]
    assert added == {"main#1": [(Added.ADDED, "main#1")], "ops#1": [(Added.SEALED, None)]}
    assert {fp: i.count for fp, i in a.incidents(["fp1", "fp2"]).items()} == {"fp1": 5, "fp2": 4}
    assert seal(a, "main#1").total == 2
    counted, added = b.add_counts(repeats[:1], contributions, BASE + 3)  # the batch read again: nothing twice
    assert counted == [Repeat(open=True, counted_through=key(32))]
    assert added == {"main#1": [(Added.ALREADY, "main#1")], "ops#1": [(Added.SEALED, None)]}
    assert a.incidents(["fp1"])["fp1"].count == 5
    assert b.add_counts([], {}, BASE + 3) == ([], {})


def test_a_webhook_mode_dedup_claim_does_not_hold_an_incident_back(new_state: NewState) -> None:
    """The mode changed (webhook, then Web API) within the dedup window: the fingerprint's claim is not an incident."""
    a, b = new_state(), new_state()
    assert begin(a, key(1), BASE, fingerprint="fp").verdict is Verdict.TAKEN  # webhook mode: a dedup claim
    a.end(key(1), "p1", BASE, key(1))
    assert b.add_repeat("fp", SHARD, key(2), key(2), 1, BASE + 1) == Repeat(open=False)
    assert begin(b, key(2), BASE + 1, fingerprint="fp", incident_events=1, through=key(2),
                 owner="p2").verdict is Verdict.TAKEN
    assert b.add_repeat("fp", SHARD, key(3), key(3), 1, BASE + 2) == Repeat(open=True)
    assert b.incidents(["fp"])["fp"].count == 2


def test_updates_are_coalesced_per_interval(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    open_incident(a)
    assert a.claim_update("fp", BASE + 20, 10.0)[0] is False  # nothing new to show
    b.add_repeat("fp", SHARD, key(3), key(3), 1, BASE + 3)
    claimed, incident = a.claim_update("fp", BASE + 5, 10.0)
    assert claimed is False and incident is not None and incident.shown_count < incident.count  # too soon
    claimed, incident = a.claim_update("fp", BASE + 10, 10.0)
    assert claimed is True and incident is not None and (incident.shown_count, incident.count) == (3, 3)
    assert incident.root == '{"text": "root"}'
    assert b.claim_update("fp", BASE + 30, 10.0)[0] is False  # shown already


def test_an_incident_goes_quiet_and_a_repeat_then_opens_a_new_one(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    open_incident(a)
    b.add_repeat("fp", SHARD, key(3), key(3), 1, BASE + 100)
    assert a.claim_quiet("fp", BASE + 100 + 899, 900.0)[0] is False
    claimed, incident = a.claim_quiet("fp", BASE + 100 + 900, 900.0)
    assert claimed is True and incident is not None and (incident.open, incident.count) == (False, 3)
    assert b.claim_quiet("fp", BASE + 1100, 900.0)[0] is False  # once
    assert b.add_repeat("fp", SHARD, key(4), key(4), 1, BASE + 1100) == Repeat(open=False)
    reopened = begin(b, key(4), BASE + 1100, fingerprint="fp", incident_events=1, owner="p2")
    assert reopened.verdict is Verdict.TAKEN


def test_a_taken_over_root_keeps_the_repeats_counted_meanwhile(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    assert begin(a, key(1), BASE, fingerprint="fp", incident_events=2, through=key(2)).verdict is Verdict.TAKEN
    repeat = b.add_repeat("fp", "shardId-000000000008", "shardId-000000000008/1/0/0", "shardId-000000000008/3/0/0",
                          3, BASE + 1)  # counted while the root's post is in flight; then its processor dies
    assert repeat.counted and b.incidents(["fp"])["fp"].count == 5
    taken = begin(b, key(1), BASE + STALE + 1, fingerprint="fp", incident_events=2, through=key(2), owner="p2")
    assert (taken.verdict, taken.takeover) == (Verdict.TAKEN, True)
    b.end(key(1), "p2", BASE + STALE + 2, key(2), root=Incident("fp", 2, BASE, "C1", "1.0001", shown_count=2,
                                                                root="{}"))
    claimed, incident = b.claim_update("fp", BASE + STALE + 20, 10.0)
    assert claimed is True and incident is not None and incident.count == 5


def test_a_batch_s_alerts_end_together_as_each_would_alone(new_state: NewState) -> None:
    """Web API mode ends a batch's alerts in one ``end_all``: roots recorded, a refused one released, the mark."""
    a, b = new_state(), new_state()
    for n, fp in ((1, "fp1"), (3, "fp2"), (5, "fp3")):
        assert begin(a, key(n), BASE, fingerprint=fp, incident_events=2, through=key(n + 1)).verdict is Verdict.TAKEN
    a.end_all([Ending(key(1), "p1", BASE + 1, key(2), root=Incident("fp1", 2, BASE, "C1", "1.1", 2, root="{}")),
               Ending(key(5), "p1", BASE + 1, key(6), root=Incident("fp3", 2, BASE, "C1", "1.3", 2, root="{}")),
               Ending(key(3), "p1", BASE + 1, key(4), refused=True, release="fp2")])
    assert b.ended_through(SHARD) == key(6)
    assert [b.delivered(key(n)) for n in (1, 3, 5)] == [Ended(key(2)), Ended(key(4), refused=True), Ended(key(6))]
    b.add_repeat("fp1", SHARD, key(7), key(7), 1, BASE + 20)
    claimed, incident = b.claim_update("fp1", BASE + 20, 10.0)  # the root is known: it can be updated
    assert claimed and incident is not None and (incident.ts, incident.count, incident.shown_count) == ("1.1", 3, 3)
    assert begin(b, key(9), BASE + 2, fingerprint="fp2", owner="p2").verdict is Verdict.TAKEN  # released


def test_thread_samples_are_bounded_per_minute(new_state: NewState) -> None:
    a, b = new_state(), new_state()
    open_incident(a)
    assert [a.claim_samples("fp", BASE + 1, 3, 1), b.claim_samples("fp", BASE + 2, 3, 1),
            a.claim_samples("fp", BASE + 3, 3, 1), b.claim_samples("fp", BASE + 4, 3, 1)] == [1, 1, 1, 0]
    assert [a.claim_samples("fp", BASE + 60, 3, 2), b.claim_samples("fp", BASE + 61, 3, 2),
            a.claim_samples("fp", BASE + 62, 3, 1)] == [2, 1, 0]  # the next minute; several in one claim
    assert a.claim_samples("gone", BASE + 63, 3, 1) == 0  # no incident


# -- what only DynamoDB has -------------------------------------------------------------------------------------


def test_ensure_table_creates_the_declared_table_once(endpoint: str) -> None:
    table = new_table(endpoint)
    db = make_client(endpoint)
    described = db.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = db.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    ensure_table(make_client(endpoint), table)  # already there: no error


def test_concurrent_processes_never_exceed_the_budget(endpoint: str) -> None:
    table = new_table(endpoint)
    states = [DynamoState(make_client(endpoint), table, LIMIT, WINDOW) for _ in range(8)]
    barrier = threading.Barrier(len(states))
    results: list[Verdict | BaseException] = [Verdict.CONFLICT] * len(states)

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = begin(states[index], key(index), BASE + index * 0.001).verdict
        except BaseException as exc:  # surfaced below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(states))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert results.count(Verdict.TAKEN) == LIMIT


def test_one_alert_costs_two_round_trips(endpoint: str) -> None:
    client, calls = counting_client(endpoint)
    state = DynamoState(client, new_table(endpoint), LIMIT, WINDOW)
    assert begin(state, key(1), BASE, fingerprint="fp").verdict is Verdict.TAKEN
    state.end(key(1), "p1", BASE + 1, key(1))
    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    calls.clear()
    assert add(state, "main#1", key(2), key(2), {("ERROR", "a", "b"): 1}, BASE) == (Added.ADDED, "main#1")
    assert calls == ["TransactWriteItems"]
    calls.clear()  # the over-budget groups of a batch: one round trip for all of them, up to a part's size
    batch = [Contribution(key(i), key(i), {("ERROR", "a", f"t{i}"): 1}) for i in range(3, 3 + 40)]
    assert digest(state, "main#1", batch, BASE) == [(Added.ADDED, "main#1")] * 40
    assert calls == ["TransactWriteItems"]
    calls.clear()  # and every destination's of the batch
    by_bucket = {f"d{i}#1": [Contribution(key(i), key(i), {("ERROR", "a", "b"): 1})] for i in range(43, 49)}
    assert state.add_to_digest(by_bucket, BASE) == {bucket: [(Added.ADDED, bucket)] for bucket in by_bucket}
    assert calls == ["TransactWriteItems"]
    calls.clear()  # a group that ended below the shard's mark known to be in the table: no mark sent, none refused
    assert begin(state, key(50), BASE + 1, fingerprint="fp2").verdict is Verdict.TAKEN  # an alert covering 50..60
    state.end(key(50), "p1", BASE + 1, key(60))
    assert add(state, "main#1", key(55), key(55), {("ERROR", "a", "b"): 1}, BASE) == (Added.ADDED, "main#1")
    assert calls == ["TransactWriteItems"] * 3
    assert state.ended_through(SHARD) == key(60)


def test_a_batch_s_alerts_cost_one_round_trip_to_begin(endpoint: str) -> None:
    client, calls = counting_client(endpoint)
    table = new_table(endpoint)
    state = DynamoState(client, table, 40, WINDOW)
    begun = state.begin_all([claim(key(n), BASE, n, fingerprint=f"fp{n}") for n in range(35)])
    assert [x.verdict for x in begun] == [Verdict.TAKEN] * 35
    assert calls == ["TransactWriteItems"] * 2  # up to BEGINS_PER_TRANSACTION in one
    calls.clear()  # another processor's batch, one of them refused: once more without it
    other = DynamoState(client, table, 40, WINDOW)
    begun = other.begin_all([claim(key(100 + n), BASE + 1, 35 + n, owner="p2", fingerprint=f"new{n}")
                             for n in range(3)] + [claim(key(200), BASE + 1, 38, owner="p2", fingerprint="fp0")])
    assert [x.verdict for x in begun] == [Verdict.TAKEN] * 3 + [Verdict.CONFLICT]
    assert calls == ["TransactWriteItems"] * 2


def with_incidents(endpoint: str, incidents: int) -> tuple[DynamoState, list[str]]:
    """A state with incidents ``fp1``.. open, and the requests it sends from then on."""
    client, calls = counting_client(endpoint)
    state = DynamoState(client, new_table(endpoint), 1000, WINDOW)
    for n in range(1, incidents + 1):
        open_incident(state, fp=f"fp{n}", at=10 * n)
    calls.clear()
    return state, calls


def test_a_batch_s_repeats_cost_one_round_trip(endpoint: str) -> None:
    state, calls = with_incidents(endpoint, 7)
    counted = state.add_repeats([Repeated(f"fp{n}", SHARD, key(100 + n), key(100 + n), 1) for n in range(1, 8)],
                                BASE + 1)
    assert counted == [Repeat(open=True)] * 7
    assert calls == ["TransactWriteItems"]
    calls.clear()  # one refused: once more without it
    counted = state.add_repeats([Repeated(f"fp{n}", SHARD, key(100 + n), key(100 + n), 1) for n in (1, 2)] +
                                [Repeated("fp3", SHARD, key(200), key(200), 1)], BASE + 2)
    assert [r.counted_through for r in counted] == [key(101), key(102), None]
    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    calls.clear()  # what the upkeep reads: one request
    assert {fp: i.count for fp, i in state.incidents([f"fp{n}" for n in range(1, 8)]).items()} == {
        f"fp{n}": 4 if n == 3 else 3 for n in range(1, 8)}
    assert calls == ["BatchGetItem"]


def test_a_batch_s_repeats_and_digest_groups_cost_one_round_trip(endpoint: str) -> None:
    state, calls = with_incidents(endpoint, 30)
    line = ("WARN", "svc", "slow")

    def batch(first: int, closed: bool = False) -> tuple[list[Repeat], dict[str, list[tuple[Added, str | None]]]]:
        repeats = [Repeated(f"fp{n}", SHARD, key(first + n), key(first + n), 2) for n in range(1, 31)]
        if closed:
            repeats.append(Repeated("nope", SHARD, key(first + 31), key(first + 31), 1))
        return state.add_counts(repeats, {"main#1": [Contribution(key(first + 40), key(first + 45), {line: 6})],
                                          "ops#1": [Contribution(key(first + 46), key(first + 46), {line: 1})]},
                                BASE + 1)

    assert batch(1000) == ([Repeat(open=True)] * 30, {"main#1": [(Added.ADDED, "main#1")],
                                                      "ops#1": [(Added.ADDED, "ops#1")]})
    assert calls == ["TransactWriteItems"]
    calls.clear()  # a repeat refused (no open incident): once more without it
    counted, _ = batch(2000, closed=True)
    assert counted == [Repeat(open=True)] * 30 + [Repeat(open=False)]
    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    assert {i.count for i in state.incidents([f"fp{n}" for n in range(1, 31)]).values()} == {6}


def test_the_ends_of_a_batch_s_alerts_cost_one_round_trip(endpoint: str) -> None:
    client = make_client(endpoint)
    transactions: list[int] = []
    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems",
                                lambda params, **_: transactions.append(len(params["TransactItems"])))
    state = DynamoState(client, new_table(endpoint), 1000, WINDOW)
    endings = []
    for n in range(1, ENDS_PER_TRANSACTION + 3):
        fp = f"fp{n}"
        assert begin(state, key(n), BASE, fingerprint=fp, incident_events=1).verdict is Verdict.TAKEN
        endings.append(Ending(key(n), "p1", BASE + 1, key(n), root=Incident(fp, 1, BASE, "C1", f"1.{n}", 1)))
    transactions.clear()
    state.end_all(endings)
    assert transactions == [2 * ENDS_PER_TRANSACTION + 1, 2 * 2 + 1]  # send records, roots, one mark each
    assert state.ended_through(SHARD) == key(ENDS_PER_TRANSACTION + 2)


def test_a_digest_holds_more_distinct_lines_than_one_item(endpoint: str) -> None:
    """DynamoDB holds 400 KB per item: a bucket's lines are in its parts (one per batch), so an interval with a
    thousand and more distinct 290-character templates keeps every one, each counted."""
    state = DynamoState(make_client(endpoint), new_table(endpoint), LIMIT, WINDOW)
    template = "x" * 290
    expected: dict[DigestLine, int] = {}
    for start in range(0, 1500, 300):
        batch = [Contribution(key(i), key(i), {("ERROR", f"svc{i % 3}", f"{template} {i}"): 2})
                 for i in range(start, start + 300)]
        expected.update({line: 2 for c in batch for line in c.lines})
        assert {added for added, _ in digest(state, "main#1", batch, BASE)} == {Added.ADDED}
    assert seal(state, "main#1").lines == expected
