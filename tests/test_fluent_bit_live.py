"""Fluent Bit for real: the one config in fluent-bit/ under the real binary, and local mode's log path through it.

The Fluent Bit tests skip unless `fluent-bit` is on PATH (it is not a PyPI package; nothing here stands in for it).
The first tests need no Fluent Bit: they check the forward protocol the generator speaks to it, acks included,
against a small in-process Forward protocol server standing in for Fluent Bit's in_forward.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from dotenv import dotenv_values

from consumer.config import read_environment, resolve_aliases
from consumer.model import Dropped
from consumer.pipeline.decode import decode
from consumer.pipeline.parse import parse_line
from generator import LogLineFactory
from generator.outputs import FORWARD_TAG, ForwardOutput
from localmode import paths
from localmode.stack import Stack
from localmode.supervisor import free_port
from tests.integration.helpers import Receiver, event_count, wait_for

REPO = Path(__file__).resolve().parents[1]
FLUENT_BIT = shutil.which("fluent-bit")
needs_fluent_bit = pytest.mark.skipif(
    FLUENT_BIT is None,
    reason="`fluent-bit` is not on PATH (Fluent Bit is not on PyPI; install it to run the real pipeline)")
GENERATE_SECONDS = 10.0
ARRIVAL_TIMEOUT = 90.0


# ------------------------------------------------------------------ the generator's forward output (no Fluent Bit)


class ForwardReader:
    """Stands in for Fluent Bit's in_forward on loopback: decodes Forward protocol entries as they arrive, Message
    mode ([tag, time, record]) and Forward mode ([tag, [[time, record], ...], option]), and answers the `chunk`
    option with {"ack": chunk} as in_forward does. ``acks=False``: takes every chunk in but never answers; ``drop``:
    the first N chunks are read and thrown away with the connection, unanswered (what a kill -9 does)."""

    def __init__(self, port: int = 0, *, acks: bool = True, drop: int = 0) -> None:
        self._server = socket.create_server(("127.0.0.1", port))
        self.port: int = self._server.getsockname()[1]
        self.entries: list[list[Any]] = []
        self.chunks_seen = 0
        self._acks, self._drop = acks, drop
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                self._read(conn)

    def _read(self, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        while chunk := conn.recv(65536):
            unpacker.feed(chunk)
            for message in unpacker:
                tag, body, *option = message
                self.chunks_seen += 1
                if self._drop:
                    self._drop -= 1
                    return  # closed unanswered: these entries never got anywhere
                entries = [[tag, t, r] for t, r in body] if isinstance(body, list) else [[tag, body, option.pop(0)]]
                self.entries.extend(entries)
                wanted = option[0].get("chunk") if option and isinstance(option[0], dict) else None
                if wanted and self._acks:
                    conn.sendall(msgpack.packb({"ack": wanted}))

    def wait(self, count: int, timeout: float = 5.0) -> list[list[Any]]:
        return wait_for(lambda: list(self.entries), lambda e: len(e) >= count, timeout, f"{count} forward entries")

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def reader() -> Iterator[ForwardReader]:
    r = ForwardReader()
    yield r
    r.close()


def test_forward_output_sends_docker_fluentd_driver_records_to_a_stand_in_fluent_bit(reader: ForwardReader) -> None:
    """Like Docker's fluentd driver (fixture case c6): tag docker.log-generator, whole-second time, the JSON line
    (no newline) in `log`, next to container_id, container_name, source."""
    factory = LogLineFactory(seed=5, error_ratio=0.5)
    records = [factory.line() for _ in range(5)]
    output = ForwardOutput("127.0.0.1", reader.port)
    before = int(time.time())
    output.write(records)
    output.close()

    entries = reader.wait(5)
    assert [e[0] for e in entries] == [FORWARD_TAG] * 5
    assert all(isinstance(e[1], int) and before <= e[1] <= time.time() + 1 for e in entries)
    bodies = [e[2] for e in entries]
    assert [list(b) for b in bodies] == [["container_id", "container_name", "source", "log"]] * 5
    assert [json.loads(b["log"]) for b in bodies] == records
    assert all(not b["log"].endswith("\n") and b["source"] == "stdout" for b in bodies)
    assert re.fullmatch(r"[0-9a-f]{64}", bodies[0]["container_id"])
    assert len({b["container_id"] for b in bodies}) == 1
    assert (output.stats.records_sent, output.stats.records_lost) == (5, 0)


def test_forward_output_buffers_until_the_stand_in_fluent_bit_listens() -> None:
    """Fluent Bit not up yet (local mode starts both at once): records wait in the buffer and nothing is lost."""
    port = free_port()
    factory = LogLineFactory(seed=6, error_ratio=0.5)
    output = ForwardOutput("127.0.0.1", port, timeout=1.0)
    output.write([factory.line(), factory.line()])
    assert output.stats.records_sent == 0
    late = ForwardReader(port)
    try:
        output.write([factory.line()])
        output.close()
        assert len(late.wait(3)) == 3
        assert (output.stats.records_sent, output.stats.records_lost) == (3, 0)
    finally:
        late.close()


def test_forward_output_counts_what_it_drops() -> None:
    factory = LogLineFactory(seed=7, error_ratio=0.5)
    output = ForwardOutput("127.0.0.1", free_port(), timeout=0.5, buffer_max_bytes=1200, close_timeout=0.3,
                           retry_interval=0.1)
    output.write([factory.line() for _ in range(8)])  # over the buffer: the oldest are dropped, and counted
    assert 0 < output.stats.records_lost < 8
    output.close()  # what is still buffered is dropped at close, and counted
    assert output.stats.records_sent == 0
    assert output.stats.records_lost == 8


def test_forward_output_resends_what_the_stand_in_fluent_bit_took_but_never_acknowledged() -> None:
    """The measured loss: after a kill -9 of Fluent Bit, the line written into the dead connection was gone while
    the generator said "0 lost". Now a chunk counts as sent only when acknowledged, and is sent again otherwise."""
    server = ForwardReader(drop=1)  # reads the first chunk, then closes without an ack
    try:
        factory = LogLineFactory(seed=8, error_ratio=0.5)
        records = [factory.line() for _ in range(3)]
        output = ForwardOutput("127.0.0.1", server.port, timeout=2.0, retry_interval=0.05)
        output.write(records)
        assert output.stats.records_sent == 0  # written to the socket, not acknowledged
        output.close()
        assert [json.loads(e[2]["log"]) for e in server.wait(3)] == records
        assert server.chunks_seen == 2
        assert (output.stats.records_sent, output.stats.records_lost, output.stats.records_resent) == (3, 0, 3)
    finally:
        server.close()


def test_forward_output_never_acknowledged_is_counted_lost_by_the_stand_in_fluent_bit() -> None:
    server = ForwardReader(acks=False)
    try:
        output = ForwardOutput("127.0.0.1", server.port, timeout=0.3, close_timeout=0.5, retry_interval=0.05)
        output.write([LogLineFactory(seed=9).line() for _ in range(4)])
        output.close()
        assert server.entries  # the bytes arrived, but nobody said so: not "sent"
        assert (output.stats.records_sent, output.stats.records_lost) == (0, 4)
    finally:
        server.close()


def test_generator_cli_speaks_forward_to_a_stand_in_fluent_bit(reader: ForwardReader) -> None:
    """`python -m generator --output forward --forward-port N`: the command local mode runs when fluent-bit is on
    PATH (localmode/stack.py start_generator)."""
    env = {**os.environ, "FLUENT_BIT_FORWARD_PORT": str(reader.port), "GENERATOR_SEED": "3"}
    result = subprocess.run([sys.executable, "-m", "generator", "--output", "forward", "--count", "7", "--rate", "0"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "closed: 7 sent, 0 lost" in result.stderr
    assert len(reader.wait(7)) == 7


# ---------------------------------------------------------------------------------------------- real Fluent Bit


def local_fluent_bit_env(tmp_path: Path) -> dict[str, str]:
    """What local mode gives Fluent Bit: the environment and .env, plus Stack.fluent_bit_env()."""
    dotenv = {k: v or "" for k, v in dotenv_values(REPO / ".env").items()}
    stack = Stack(env=dotenv, run_dir=tmp_path)
    return {**os.environ, **dotenv, **stack.fluent_bit_env()}


@needs_fluent_bit
def test_fluent_bit_dry_run_accepts_the_config(tmp_path: Path) -> None:
    assert FLUENT_BIT is not None
    result = subprocess.run([FLUENT_BIT, "--dry-run", "-c", str(paths.FLUENT_BIT_CONF)], cwd=tmp_path,
                            env=local_fluent_bit_env(tmp_path), capture_output=True, text=True, timeout=60,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[error]" not in output, output


def read_stream(kinesis: Any, stream: str) -> list[bytes]:
    """Every record of every shard, from the start."""
    data: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            data.extend(r["Data"] for r in page["Records"])
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return data


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[Stack]:
    run_id = uuid.uuid4().hex[:8]
    env = resolve_aliases({
        "LOCALSTACK_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "CALI_TLS_PORT": str(free_port()),
        "SLACK_RECEIVER_PORT": str(free_port()),
        "FLUENT_BIT_FORWARD_PORT": str(free_port()),
        "SLACK_WEBHOOK_URL": "",
        "SLACK_WEBHOOK_URL_WARN": "",
        "KINESIS_STREAM_NAME": f"cali-fb-{run_id}",
        "CALI_APP_NAME": f"cali-fb-{run_id}",
        "CALI_WORKER_ID": "cali-fb-worker",
        "THROTTLE_MAX_PER_MINUTE": "100000",  # count every alert; the throttle has its own tests
        # A digest goes out this long after its first event: the 60 s default outlasts a busy machine's wait.
        "CALI_DIGEST_INTERVAL_SECONDS": "2",
        "GENERATOR_RATE": "20",
        "GENERATOR_ERROR_RATIO": "0.5",
        "GENERATOR_SEED": "11",
        "LOG_LEVEL": "INFO",
    }, read_environment())
    stack = Stack(env=env, run_dir=tmp_path / "run")
    try:
        yield stack
    finally:
        stack.stop()
        print(f"\nlocal-mode logs: {stack.supervisor.log_dir}")


@needs_fluent_bit
@pytest.mark.integration
def test_local_mode_with_real_fluent_bit_loses_nothing(live_stack: Stack) -> None:
    """Local mode as `make run` starts it when fluent-bit is on PATH: generator --forward--> Fluent Bit --HTTPS-->
    the emulator's Kinesis --> the real KCL daemon --> the Slack receiver. Every generated line reaches the stream
    (once, parsed out of Docker's `log`), and every ERROR/WARN among them is accounted for in Slack."""
    if not list(paths.JARS.glob("*.jar")):
        pytest.skip("no KCL jars in jars/ (`make setup` fetches them)")
    stack = live_stack
    stack.start_emulator()
    stack.create_resources()
    stack.start_receiver()
    stack.start_daemon()
    children = stack.start_generator()
    assert [c.name for c in children] == ["fluent-bit", "generator"]
    fluent_bit, generator = children
    kinesis = stack.client("kinesis")
    stream = stack.settings.stream_name

    wait_for(lambda: read_stream(kinesis, stream), bool, ARRIVAL_TIMEOUT, "the first record through Fluent Bit")
    time.sleep(GENERATE_SECONDS)
    assert stack.supervisor.stop(generator) == 0  # SIGTERM: the generator flushes and closes its output
    generator_log = (stack.supervisor.log_dir / "generator.log").read_text()
    written = int(re.findall(r"done: (\d+) lines written", generator_log)[-1])
    assert re.search(rf"closed: {written} sent, 0 lost", generator_log), generator_log[-2000:]

    data = wait_for(lambda: read_stream(kinesis, stream), lambda d: len(d) >= written, ARRIVAL_TIMEOUT,
                    f"all {written} generated lines in Kinesis")
    assert fluent_bit.alive()
    records = [json.loads(d) for d in data]
    assert len(records) == written  # nothing lost, nothing doubled
    assert all("log" not in r and r["source"] == "stdout" and "level" in r for r in records)
    assert len({(r["timestamp"], r["service"], r["message"], r.get("trace_id")) for r in records}) == written

    expected = 0
    for record in data:
        for line in decode(record).lines:
            event = parse_line(line)
            expected += not isinstance(event, Dropped) and event.level.value in {"ERROR", "WARN"}
    assert expected > 0
    receiver = Receiver(f"http://127.0.0.1:{stack.local.slack_receiver_port}")
    messages = wait_for(receiver.messages, lambda m: sum(event_count(x["payload"]) for x in m) >= expected,
                        ARRIVAL_TIMEOUT, "every ERROR/WARN event in an alert or a digest")
    assert sum(event_count(m["payload"]) for m in messages) == expected
