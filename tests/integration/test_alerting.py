"""Alerting behaviour across processes: shared throttle, digests, idempotency, Slack faults, hostile input.

Real parts only: moto emulator, the KCL MultiLangDaemon, the Python processors, the HTTP Slack receiver.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localmode.stack import Stack
from tests.integration.conftest import Daemon, stack_env
from tests.integration.helpers import (
    Receiver,
    checkpoint_at,
    error_line,
    event_count,
    last_per_shard,
    leases,
    posted,
    put_lines,
    put_located,
    wait_for,
)

TIMEOUT = 120.0
OUTAGE_SECONDS = 20  # long enough for several failed posts and backoffs; the test waits it out
# Longer than one post to the test receiver plus one backoff sleep (consumer/timing.py says why); 110 s in production.
STALE_CLAIM_SECONDS = 25


def unique_errors(marker: str, n: int) -> tuple[list[bytes], set[str]]:
    """n ERRORs that never fold together (each its own service), and their messages."""
    messages = {f"{marker} failure {i}" for i in range(n)}
    return [error_line(f"{marker}-svc-{m.rsplit(' ', 1)[1]}", m) for m in sorted(messages)], messages


# -- a second pipeline on the same emulator, with the real default throttle (5 a minute) -----------------------
@pytest.fixture(scope="module")
def throttled(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Receiver]]:
    env = stack_env(stack.settings.endpoint_url or "", THROTTLE_MAX_PER_MINUTE="5", CALI_DEDUP_WINDOW_SECONDS="300",
                    CALI_DIGEST_INTERVAL_SECONDS="60")
    other = Stack(env=env, run_dir=Path(tmp_path_factory.mktemp("cali-throttled")))
    try:
        other.start_emulator()  # finds the session's emulator and uses it
        other.create_resources()
        other.start_receiver()
        Daemon(other, "cali-test-throttled").start()
        yield other, Receiver(f"http://127.0.0.1:{other.local.slack_receiver_port}")
    finally:
        other.stop()


def max_in_any_minute(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + 60) for start in times), default=0)


def test_burst_is_throttled_app_wide_and_every_event_is_accounted_for(throttled: tuple[Stack, Receiver]) -> None:
    """2 shards, 1,000 events incl. 300 ERROR of 3 fingerprints within 10 s -> <= 5 messages a minute at the
    receiver across both shards, and alerts + digests account for every ERROR event."""
    other, receiver = throttled
    templates = [("payment-api", "db timeout after {}ms"), ("auth-api", "token refresh failed for user {}"),
                 ("order-api", "order {} could not be saved")]
    records = []
    for i in range(1000):
        if i % 10 < 3:
            service, message = templates[i % 10]
            records.append(error_line(service, message.format(1000 + i)))
        else:
            records.append(error_line("noise-api", f"request {i} served", level="INFO" if i % 2 else "DEBUG"))
    started = time.monotonic()
    put_lines(other.client("kinesis"), other.settings.stream_name, records)
    assert time.monotonic() - started < 10

    messages = wait_for(receiver.messages, lambda m: sum(event_count(x["payload"]) for x in m) >= 300, 200,
                        "alerts + digests accounting for 300 ERRORs")
    time.sleep(3)  # nothing more may arrive
    messages = receiver.messages()

    assert sum(event_count(m["payload"]) for m in messages) == 300
    assert max_in_any_minute([m["received_at"] for m in messages]) <= 5
    alerts = [m["payload"]["text"] for m in messages if not m["payload"]["text"][0].isdigit()]
    assert len(alerts) <= 3  # one per fingerprint within the dedup window
    span = messages[-1]["received_at"] - messages[0]["received_at"]
    print(f"\nburst: {len(messages)} messages ({len(alerts)} alerts, {len(messages) - len(alerts)} digests) over "
          f"{span:.0f}s, at most {max_in_any_minute([m['received_at'] for m in messages])} in any 60 s; "
          f"they account for {sum(event_count(m['payload']) for m in messages)} of 300 ERRORs")


# -- the session pipeline (throttle effectively off) ------------------------------------------------------------
def attempts(receiver: Receiver) -> list[dict[str, Any]]:
    return list(receiver._call("GET", "/_control/messages")["attempt_log"])


def test_429_with_retry_after_is_honoured(stack: Stack, receiver: Receiver, running_daemon: Daemon) -> None:
    marker = f"r429-{uuid.uuid4().hex[:8]}"
    receiver.faults([{"status": 429, "body": "rate_limited", "retry_after": 2}])
    before = len(attempts(receiver))
    put_lines(stack.client("kinesis"), stack.settings.stream_name, unique_errors(marker, 1)[0])

    wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) == 1, TIMEOUT, "the alert after a 429")

    log = attempts(receiver)[before:]
    assert [a["status"] for a in log[:2]] == [429, 200]
    assert log[1]["at"] - log[0]["at"] >= 2.0


def test_500_three_times_then_ok_is_delivered_once(stack: Stack, receiver: Receiver, running_daemon: Daemon) -> None:
    marker = f"r500-{uuid.uuid4().hex[:8]}"
    receiver.faults([{"status": 500, "body": "rollup_error"}] * 3)
    put_lines(stack.client("kinesis"), stack.settings.stream_name, unique_errors(marker, 1)[0])

    found = wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= 1, TIMEOUT, "the alert")
    assert list(found.values()) == [1]


def test_400_is_permanent_counted_not_retried_and_the_checkpoint_moves_on(
        stack: Stack, receiver: Receiver, running_daemon: Daemon) -> None:
    marker = f"r400-{uuid.uuid4().hex[:8]}"
    receiver.faults([{"status": 400, "body": "invalid_payload"}])
    before = len(attempts(receiver))
    kinesis = stack.client("kinesis")
    [(shard, refused)] = put_located(kinesis, stack.settings.stream_name, [error_line(f"{marker}-a",
                                                                                      f"{marker} refused")])
    wait_for(lambda: attempts(receiver)[before:], lambda a: len(a) >= 1, TIMEOUT, "the refused attempt")
    put_lines(kinesis, stack.settings.stream_name, [error_line(f"{marker}-b", f"{marker} accepted")])

    found = wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= 1, TIMEOUT, "the next alert")
    assert found == Counter({f"{marker} accepted": 1})
    assert [a["status"] for a in attempts(receiver)[before:]] == [400, 200]  # the 400 was not retried
    # the refused event ended (counted as dropped): the checkpoint moves past it
    wait_for(lambda: leases(stack.client("dynamodb"), stack.settings.app_name)[shard],
             lambda lease: checkpoint_at(lease) >= int(refused), 30, "the checkpoint past the refused record")

    running_daemon.stop()  # SIGTERM: checkpoints; the refused record is behind the checkpoint, not re-read
    running_daemon.start()
    put_lines(kinesis, stack.settings.stream_name, [error_line(f"{marker}-c", f"{marker} after restart")])
    wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= 2, TIMEOUT, "the alert after restart")
    assert [a["status"] for a in attempts(receiver)[before:]] == [400, 200, 200]


def test_slack_outage_holds_the_checkpoint_and_everything_is_delivered_after(
        stack: Stack, receiver: Receiver, running_daemon: Daemon) -> None:
    marker = f"outage-{uuid.uuid4().hex[:8]}"
    dynamodb = stack.client("dynamodb")
    records, messages = unique_errors(marker, 10)
    warm = f"warm-{uuid.uuid4().hex[:8]}"
    put_lines(stack.client("kinesis"), stack.settings.stream_name, [error_line(warm, f"{warm} up")])
    wait_for(lambda: receiver.texts(warm), bool, TIMEOUT, "the processors up (a warm-up alert)")
    receiver._call("POST", "/_control/outage", {"seconds": OUTAGE_SECONDS, "status": 503,
                                                "body": "service_unavailable"})
    started = time.monotonic()
    before = len(attempts(receiver))
    landed = put_located(stack.client("kinesis"), stack.settings.stream_name, records)
    first = {shard: min(int(s) for sh, s in landed if sh == shard) for shard, _ in landed}
    wait_for(lambda: attempts(receiver)[before:], lambda a: sum(x["status"] == 503 for x in a) >= 2, TIMEOUT,
             "failing posts")
    at_start = leases(dynamodb, stack.settings.app_name)
    time.sleep(max(0.0, OUTAGE_SECONDS - 3 - (time.monotonic() - started)))
    at_end = leases(dynamodb, stack.settings.app_name)  # still inside the outage

    found = wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= 10, OUTAGE_SECONDS + TIMEOUT,
                     "every alert once Slack is back")

    assert time.monotonic() - started >= OUTAGE_SECONDS - 5
    assert found == Counter(dict.fromkeys(messages, 1))
    for shard, first_of_ours in first.items():  # held before this test's first record all through the outage
        assert checkpoint_at(at_start[shard]) < first_of_ours
        assert checkpoint_at(at_end[shard]) == checkpoint_at(at_start[shard])
    written = last_per_shard(landed)
    wait_for(lambda: leases(dynamodb, stack.settings.app_name),
             lambda t: all(checkpoint_at(t[shard]) >= last for shard, last in written.items()), 30,
             "the checkpoints past every record once delivered")


def test_kill_9_mid_stream_then_restart_posts_nothing_twice_and_loses_nothing(pipeline: Any) -> None:
    """Its own pipeline, with the stale-claim time shortened (CALI_SEND_STALE_SECONDS): a claim of a killed processor
    is taken over after it, and a re-post, if any, would come within it; the test waits that window out."""
    other, receiver = pipeline(2, CALI_SEND_STALE_SECONDS=str(STALE_CLAIM_SECONDS))
    daemon = Daemon(other, "worker-crash")
    daemon.start()
    kinesis = other.client("kinesis")
    marker = f"crash-{uuid.uuid4().hex[:8]}"
    first, first_messages = unique_errors(f"{marker}-a", 30)
    put_lines(kinesis, other.settings.stream_name, first)
    wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= 30, TIMEOUT, "the first 30 alerts")
    # Slack down while the second part streams in: the processors are mid-stream, retrying, when killed.
    receiver._call("POST", "/_control/outage", {"seconds": 600, "status": 503, "body": "service_unavailable"})
    second, second_messages = unique_errors(f"{marker}-b", 30)
    before = len(attempts(receiver))
    put_lines(kinesis, other.settings.stream_name, second)
    wait_for(lambda: attempts(receiver)[before:], lambda a: len(a) >= 3, TIMEOUT, "posts failing mid-stream")

    daemon.kill()
    receiver.clear_faults()
    daemon.start()
    restarted = time.monotonic()

    # the killed processors' send claims must go stale first
    stale = other.settings.send_stale_seconds
    found = wait_for(lambda: posted(receiver, marker), lambda c: sum(c.values()) >= 60, TIMEOUT + stale,
                     "all 60 alerts")
    time.sleep(max(3.0, restarted + stale + 5 - time.monotonic()))  # the whole window in which a re-post could come
    assert posted(receiver, marker) == Counter(dict.fromkeys(first_messages | second_messages, 1))
    assert found.total() == 60
    daemon.stop()


def test_hostile_input_is_escaped_truncated_and_never_crashes(stack: Stack, receiver: Receiver,
                                                              running_daemon: Daemon) -> None:
    marker = f"hostile-{uuid.uuid4().hex[:8]}"
    hostile = [
        error_line(f"{marker}-1", f"{marker} <!channel> <!here> <@U123> <https://evil.example|click> & done"),
        error_line(f"{marker}-2", f"{marker} " + "A" * 50_000),
        b'{"level":"ERROR","service":"' + marker.encode() + b'-3","message":"' + marker.encode()
        + b' bad \xff\xfe bytes"}\n',
        b"[" * 100_000,
        b'{"level":"ERROR","message":' * 5000,
        b"\x00" * 1000,
        error_line(f"{marker}-4", f"{marker} nul\x00 esc\x1b[31m end"),
    ]
    put_lines(stack.client("kinesis"), stack.settings.stream_name, hostile)
    put_lines(stack.client("kinesis"), stack.settings.stream_name, [error_line(f"{marker}-5", f"{marker} sentinel")])

    wait_for(lambda: posted(receiver, marker), lambda c: any("sentinel" in k for k in c) and len(c) >= 5, TIMEOUT,
             "alerts for the hostile ERRORs and the sentinel")
    payloads = [m["payload"] for m in receiver.messages() if marker in m["payload"]["text"]]
    text = json.dumps(payloads)
    for raw in ("<!channel>", "<!here>", "<@U123>", "<https://evil.example|click>"):
        assert raw not in text
    assert "&lt;!channel&gt;" in text
    for payload in payloads:
        assert len(payload["text"]) <= 3000
        for block in payload["blocks"]:
            assert len(block.get("text", {}).get("text", "")) <= 3000
    assert running_daemon.child is not None and running_daemon.child.alive()
