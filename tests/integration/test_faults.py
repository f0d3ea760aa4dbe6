"""Fault injection on the real pipeline: every ERROR reaches Slack exactly once whatever breaks.

Each test builds its own stream, application and Slack receiver on the session's emulator (moto, whose resharding
is made Kinesis-like by localmode/moto_patches.py), and its own KCL worker. The tests of two workers (one killed, a
rolling restart, the leader killed) are in test_faults_workers.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from consumer.model import Dropped
from consumer.pipeline.decode import decode
from consumer.pipeline.parse import parse_line
from generator.fluentbit import fluent_bit_record
from localmode.stack import Stack
from localmode.supervisor import wait_until
from tests.integration.conftest import Daemon
from tests.integration.fault_proxy import FaultProxy
from tests.integration.helpers import (
    SteadyLoad,
    checkpoint_at,
    event_count,
    leases,
    posted,
    put_lines,
    put_located,
    wait_all,
    wait_for,
)
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults

TIMEOUT = 150.0


def shard_of(payload: dict[str, Any]) -> str:
    context = json.dumps(payload["blocks"][-1])
    match = re.search(r"shard (shardId-\d+)", context)
    assert match, context
    return match.group(1)


def test_resharding_parents_finish_before_children_and_nothing_is_lost(pipeline: Any) -> None:
    stack, receiver = pipeline(2)
    worker = Daemon(stack, "worker-reshard")
    worker.start()
    kinesis = stack.client("kinesis")
    name = stack.settings.stream_name
    with SteadyLoad(stack, f"reshard-{uuid.uuid4().hex[:6]}") as load:
        wait_for(lambda: posted(receiver, load.marker), lambda c: len(c) >= 4, TIMEOUT, "first alerts")
        first = kinesis.list_shards(StreamName=name)["Shards"][0]
        middle = (int(first["HashKeyRange"]["StartingHashKey"]) + int(first["HashKeyRange"]["EndingHashKey"])) // 2
        kinesis.split_shard(StreamName=name, ShardToSplit=first["ShardId"], NewStartingHashKey=str(middle))
        time.sleep(6)
        children = [s for s in kinesis.list_shards(StreamName=name)["Shards"]
                    if s.get("ParentShardId") == first["ShardId"]]
        kinesis.merge_shards(StreamName=name, ShardToMerge=children[0]["ShardId"],
                             AdjacentShardToMerge=children[1]["ShardId"])
        time.sleep(6)
    found = wait_all(receiver, load, TIMEOUT)

    assert found == Counter(dict.fromkeys(load.expected, 1))
    table = wait_for(lambda: leases(stack.client("dynamodb"), stack.settings.app_name),
                     lambda t: all(t.get(c["ShardId"], {}).get("checkpoint") == "SHARD_END" for c in children)
                     and t.get(first["ShardId"], {}).get("checkpoint") == "SHARD_END", 60,
                     "split parent and merged children checkpointed at SHARD_END")
    assert len(table) == 5  # 2 original, 2 split children, 1 merged
    times: dict[str, list[float]] = {}
    for message in receiver.messages():
        if load.marker in message["payload"]["text"]:
            times.setdefault(shard_of(message["payload"]), []).append(message["received_at"])
    parent, kids = first["ShardId"], [c["ShardId"] for c in children]
    assert parent in times and all(kid in times for kid in kids), f"a shard got no alert: {sorted(times)}"
    for kid in kids:
        assert max(times[parent]) <= min(times[kid]), "a child started before its parent finished"
    worker.stop()


def test_endpoint_outage_of_20s_the_consumer_backs_off_and_recovers(stack: Stack, pipeline: Any) -> None:
    """Kinesis and DynamoDB unreachable for 20 s (a proxy in front of the emulator is cut); records keep
    arriving in the stream meanwhile. No restart: the consumer recovers, nothing lost, nothing doubled."""
    _, emulator_port = stack.settings.endpoint_url.rsplit(":", 1)  # type: ignore[union-attr]
    proxy = TcpProxy(int(emulator_port))
    try:
        other, receiver = pipeline(2, endpoint=f"http://127.0.0.1:{proxy.port}")
        worker = Daemon(other, "worker-outage")
        worker.start()
        direct = stack.client("kinesis")  # the producer does not go through the cut proxy
        with SteadyLoad(other, f"outage-{uuid.uuid4().hex[:6]}", client=direct) as load:
            wait_for(lambda: posted(receiver, load.marker), lambda c: len(c) >= 4, TIMEOUT, "first alerts")
            proxy.cut()
            time.sleep(20)
            proxy.restore()
            time.sleep(5)
        found = wait_all(receiver, load, TIMEOUT)
        assert found == Counter(dict.fromkeys(load.expected, 1))
        assert worker.child is not None and worker.child.alive(), "recovered without a restart"
        worker.stop()
    finally:
        proxy.close()


def poison(i: int) -> bytes:
    """A hostile record of one of many shapes."""
    shapes = [
        b"\xff\xfe\xfa invalid utf-8 " + str(i).encode(),
        b'{"level":"ERROR","message":"truncated',
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b'{"level":"INFO","blob":"' + b"x" * (1024 * 1024 - 64) + b'"}' if i % 1000 == 3 else b"{}",
        b'["ERROR","array","line"]',
        b'{"level":12345,"message":"number level"}',
        b'{"level":"INFO","message":"ctl \x01\x02\x1b[31m"}',
        b"\x00" * 512,
        b"",
        b"   \n\t\n",
    ]
    return shapes[i % len(shapes)]


def test_poison_records_never_crash_and_valid_errors_all_arrive(pipeline: Any) -> None:
    stack, receiver = pipeline(2)
    worker = Daemon(stack, "worker-poison")
    worker.start()
    marker = f"poison-{uuid.uuid4().hex[:6]}"
    records: list[bytes] = []
    valid: set[str] = set()
    for i in range(10_000):
        records.append(poison(i) or b"\n")
        if i % 100 == 0:
            message = f"{marker} valid {i}"
            valid.add(message)
            records.append(fluent_bit_record({"level": "ERROR", "service": f"{marker}-{i}", "message": message}))
    expected_events = 0
    dropped: Counter[str] = Counter()
    for record in records:
        for line in decode(record).lines:
            event = parse_line(line)
            if isinstance(event, Dropped):
                dropped[event.reason] += 1
            elif event.level.value in {"ERROR", "WARN"}:
                expected_events += 1
    put_lines(stack.client("kinesis"), stack.settings.stream_name, records)

    messages = wait_for(receiver.messages, lambda m: sum(event_count(x["payload"]) for x in m) >= expected_events,
                        TIMEOUT + 60, f"{expected_events} ERROR/WARN events accounted for")
    assert sum(event_count(m["payload"]) for m in messages) == expected_events
    assert set(posted(receiver, marker)) == valid
    assert worker.child is not None and worker.child.alive()
    worker.stop()  # the processors log their final stats on shutdown
    logged: Counter[str] = Counter()
    for path in stack.supervisor.log_dir.glob("kcl-*.log"):
        finals: dict[str, dict[str, Any]] = {}
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"msg": "stats"' in line:
                entry = json.loads(line)
                finals[entry["shard_id"]] = entry["stats"]
        for stats in finals.values():
            logged.update(stats["dropped"])
    assert {k: v for k, v in logged.items() if k != "slack_permanent_error"} == dict(dropped)
    assert dropped, "the poison produced counted drops"
    print(f"\npoison: {expected_events} ERROR/WARN accounted for; drops by reason {dict(dropped)}")



def test_a_failure_inside_a_batch_never_lets_a_checkpoint_pass_it(stack: Stack, pipeline: Any) -> None:
    """The state raises a non-transient ClientError once (a real 400 from a proxy in front of the emulator, seen by
    the processors only): the child ends without a checkpoint, which stops the daemon (the MultiLangDaemon exits
    when a child dies); its restart reads the batch again, and every ERROR reaches Slack exactly once."""
    _, emulator_port = stack.settings.endpoint_url.rsplit(":", 1)  # type: ignore[union-attr]
    proxy = FaultProxy(int(emulator_port))
    try:
        other, receiver = pipeline(2, endpoint=proxy.url)
        direct = stack.settings.endpoint_url or ""
        worker = Daemon(other, "worker-fault", overrides={"kinesisEndpoint": direct, "dynamoDBEndpoint": direct})
        worker.start()
        kinesis = other.client("kinesis")
        marker = f"fault-{uuid.uuid4().hex[:6]}"
        [(shard, warm)] = put_located(kinesis, other.settings.stream_name, [fluent_bit_record(
            {"level": "ERROR", "service": f"{marker}-warm", "message": f"{marker} warm-up"})])
        wait_for(lambda: posted(receiver, marker), lambda c: len(c) == 1, TIMEOUT, "the warm-up alert")
        # its send ended (marked done) before the fault is armed: a fault on that write would be the one window
        # no webhook can close (posted, not yet marked), which is not what this test is about
        wait_for(lambda: leases(stack.client("dynamodb"), other.settings.app_name)[shard],
                 lambda lease: checkpoint_at(lease) >= int(warm), TIMEOUT, "the checkpoint past the warm-up")

        proxy.fail_next(other.settings.state_table, "ValidationException")
        expected = {f"{marker} warm-up"} | {f"{marker} failure {i}" for i in range(10)}
        put_lines(kinesis, other.settings.stream_name, [fluent_bit_record(
            {"level": "ERROR", "service": f"{marker}-{i}", "message": f"{marker} failure {i}"}) for i in range(10)])
        assert worker.child is not None
        armed = time.monotonic()
        wait_until(lambda: not worker.child.alive(), TIMEOUT, "the daemon to stop after its child ended")  # type: ignore[union-attr]
        stopped = time.monotonic()

        assert len(proxy.injected) == 1
        failures = re.findall(r"failed on shard (\S+) \(records (\d+)\.\.(\d+)", worker.log_text())
        assert len(failures) == 1, "logged once, with the shard and the batch's sequence numbers"
        shard, first, _ = failures[0]
        checkpoint = leases(stack.client("dynamodb"), other.settings.app_name)[shard]["checkpoint"]
        assert not checkpoint.isdigit() or int(checkpoint) < int(first), "a checkpoint passed the failed batch"

        worker.child = None
        worker.start()  # what local mode's supervisor and compose's restart policy do
        found = wait_for(lambda: posted(receiver, marker), lambda c: set(c) >= expected, TIMEOUT,
                         "every ERROR after the restart")
        resumed = time.monotonic()
        time.sleep(3)  # and nothing more
        assert posted(receiver, marker) == Counter(dict.fromkeys(expected, 1)) == found
        worker.stop()
        print(f"\nfailure in a batch: the daemon stopped {stopped - armed:.1f}s after the fault; after its restart "
              f"every ERROR was at Slack in {resumed - stopped:.1f}s")
    finally:
        proxy.close()
