"""`python -m localmode run` as an operator runs it: parts that crash come back, a stop and a start lose nothing.

Each test runs the real command (emulator, Slack receiver, KCL daemon, generator) in its own run directory and on
its own ports, and feeds it through Kinesis like the fault tests do.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from consumer.config import REPO_ROOT
from generator.fluentbit import fluent_bit_record
from localmode.stack import Stack
from localmode.supervisor import free_port, port_open
from tests.integration.conftest import stack_env
from tests.integration.helpers import Receiver, SteadyLoad, event_count, posted, put_lines, wait_for

START_TIMEOUT = 90.0
ALERT_TIMEOUT = 120.0


class LocalRun:
    """``python -m localmode run`` in a subprocess; its terminal output in a file."""

    def __init__(self, env: dict[str, str], run_dir: Path, *args: str) -> None:
        self.env, self.run_dir, self.args = env, run_dir, args
        self.out = run_dir.parent / f"{run_dir.name}-{uuid.uuid4().hex[:6]}.out"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalRun:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.out.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "localmode", "run", "--run-dir",
                                             str(self.run_dir), *self.args], env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        wait_for(self.text, lambda t: "pipeline up" in t or self.process is None or self.process.poll() is not None,
                 START_TIMEOUT, "pipeline up")
        assert "pipeline up" in self.text(), self.text()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def text(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def pid(self, part: str) -> int:
        found = re.findall(rf"started {re.escape(part)} \(pid (\d+)\)|{re.escape(part)} restarted \(pid (\d+)",
                           self.text())
        assert found, f"{part} never started:\n{self.text()}"
        return int("".join(found[-1]))

    def stop(self) -> int:
        """Ctrl-C, as an operator would; the exit code."""
        if self.process is None:
            return -1
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code


def run_env(tmp: Path, **overrides: str) -> dict[str, str]:
    env = stack_env(f"http://127.0.0.1:{free_port()}", CALI_WORKER_ID=f"cali-op-{uuid.uuid4().hex[:6]}",
                    CALI_HEALTH_DIR=str(tmp / "health"), FLUENT_BIT_FORWARD_PORT=str(free_port()),
                    GENERATOR_RATE="20", CALI_CHECKPOINT_INTERVAL_SECONDS="2", **overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def client(env: dict[str, str], service: str) -> Any:
    return Stack(env=dict(env)).client(service)


def reachable_count(receiver: Receiver, marker: str) -> int:
    """How many of the marker's alerts arrived; -1 while the receiver is restarting."""
    try:
        return len(posted(receiver, marker))
    except OSError:
        return -1


def test_each_crashed_part_is_restarted_and_no_alert_is_lost_or_doubled(tmp_path: Path) -> None:
    env = run_env(tmp_path)
    parts = ["kcl-" + env["CALI_WORKER_ID"], "slack-receiver", "generator"]
    if shutil.which("fluent-bit"):
        parts.append("fluent-bit")
    marker = f"heal-{uuid.uuid4().hex[:8]}"
    with LocalRun(env, tmp_path / "run") as run:
        stack = Stack(env=dict(env))
        receiver = Receiver(f"http://127.0.0.1:{env['SLACK_RECEIVER_PORT']}")
        with SteadyLoad(stack, marker, errors_per_second=4, info_per_second=8) as load:
            for number, part in enumerate(parts, start=1):
                os.kill(run.pid(part), signal.SIGKILL)
                wait_for(run.text, lambda t, p=part, n=number: t.count(" restarted (pid ") >= n and
                         f"{p} restarted (pid " in t, 60, f"{part} restarted")
                seen = wait_for(lambda: reachable_count(receiver, marker), lambda n: n >= 0, 30, "the receiver")
                wait_for(lambda: reachable_count(receiver, marker), lambda n, s=seen: n >= s + 4, ALERT_TIMEOUT,
                         f"alerts arriving after the restart of {part}")
        found = wait_for(lambda: posted(receiver, marker), lambda c: set(c) >= load.expected, ALERT_TIMEOUT,
                         f"all {len(load.expected)} ERRORs at Slack")
        assert run.stop() == 0
    assert set(found) == load.expected, "nothing lost"
    assert set(found.values()) == {1}, f"nothing doubled: {[m for m, n in found.items() if n > 1]}"
    text = run.text()
    for part in parts:
        assert re.search(rf"{re.escape(part)} exited \(code -9\); restarting it in 1s", text), text
    assert "status: records in" in text
    assert "Traceback" not in text


def same_error(marker: str, n: int) -> list[bytes]:
    """n ERRORs of one fingerprint: the first alerts, the repeats wait in a digest."""
    return [fluent_bit_record({"level": "ERROR", "service": f"svc-{marker}",
                               "message": f"{marker} payment timed out after {100 + i} ms"}) for i in range(n)]


def test_stop_with_a_pending_digest_then_start_again_every_event_is_reported(tmp_path: Path) -> None:
    run_dir, n = tmp_path / "run", 30
    marker = f"keep-{uuid.uuid4().hex[:8]}"
    first = run_env(tmp_path, THROTTLE_MAX_PER_MINUTE="1", CALI_DIGEST_INTERVAL_SECONDS="3600")
    receiver = Receiver(f"http://127.0.0.1:{first['SLACK_RECEIVER_PORT']}")
    with LocalRun(first, run_dir, "--no-generator") as run:
        assert "fresh start: no saved state" in run.text()
        put_lines(client(first, "kinesis"), first["CALI_STREAM_NAME"], same_error(marker, n))
        alerts = wait_for(receiver.messages, lambda m: len(m) >= 1, ALERT_TIMEOUT, "the first alert")
        assert sum(event_count(m["payload"]) for m in alerts) < n  # the rest is held in a digest
        assert run.stop() == 0
    assert (run_dir / "state" / "emulator.pickle").exists()
    processors = "".join(p.read_text() for p in (run_dir / "logs").glob("kcl-*.log"))
    assert "released: this worker is stopping" in processors  # a plain Ctrl-C: no other worker took anything
    assert "lease lost for shard" not in processors

    second = {**first, "THROTTLE_MAX_PER_MINUTE": "100", "CALI_DIGEST_INTERVAL_SECONDS": "2"}
    with LocalRun(second, run_dir, "--no-generator") as run:
        text = run.text()
        assert "resuming from the state saved at" in text and f"stream {first['CALI_STREAM_NAME']} resumed" in text
        messages = wait_for(receiver.messages, lambda m: sum(event_count(x["payload"]) for x in m) >= n,
                            ALERT_TIMEOUT, f"all {n} events reported")
        time.sleep(3)  # a re-read reported twice would come as one more digest, within a digest interval (2 s)
        messages = receiver.messages()
        assert run.stop() == 0
    assert sum(event_count(m["payload"]) for m in messages) == n
    assert Counter(m["payload"]["text"] for m in messages).most_common(1)[0][1] == 1

    with LocalRun(second, run_dir, "--no-generator", "--fresh") as run:
        text = run.text()
        assert "fresh start (--fresh)" in text and f"stream {first['CALI_STREAM_NAME']} created" in text
        assert receiver.messages() == []
        assert run.stop() == 0


def test_the_emulator_stops_without_a_traceback_while_connections_are_open(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "emulator.log"
    with log.open("wb") as out:
        emulator = subprocess.Popen([sys.executable, "-m", "localmode.emulator", "--port", str(port)], stdout=out,
                                    stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), bool, 30, "the emulator")
        with socket.create_connection(("127.0.0.1", port)) as half_request:
            half_request.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            time.sleep(0.5)
            emulator.send_signal(signal.SIGTERM)
            assert emulator.wait(30) == 0
    finally:
        if emulator.poll() is None:
            emulator.kill()
    assert "Traceback" not in log.read_text(), log.read_text()


def test_after_kill_9_of_the_emulator_everything_it_acknowledged_is_there(tmp_path: Path) -> None:
    """The snapshot is taken every 60 s here, so what survives comes from the journal replayed at start."""
    port, state = free_port(), tmp_path / "state" / "emulator.pickle"
    argv = [sys.executable, "-m", "localmode.emulator", "--port", str(port), "--state-file", str(state),
            "--snapshot-seconds", "60"]
    env = stack_env(f"http://127.0.0.1:{port}")
    kinesis, dynamodb = client(env, "kinesis"), client(env, "dynamodb")

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open("127.0.0.1", port), bool, 60, "the emulator")
        return process

    first = start()
    try:
        kinesis.create_stream(StreamName="s", ShardCount=1)
        wait_for(lambda: kinesis.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]["StreamStatus"],
                 lambda status: status == "ACTIVE", 30, "the stream")
        written = [kinesis.put_record(StreamName="s", Data=f"r{i}".encode(), PartitionKey=str(i))["SequenceNumber"]
                   for i in range(20)]
        dynamodb.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        dynamodb.put_item(TableName="t", Item={"k": {"S": "claim"}, "v": {"N": "1"}})
    finally:
        first.kill()  # kill -9: no snapshot at stop
        first.wait()

    second = start()
    try:
        shard = kinesis.describe_stream(StreamName="s")["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName="s", ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
        assert [r["SequenceNumber"] for r in records] == written
        assert [r["Data"] for r in records] == [f"r{i}".encode() for i in range(20)]
        assert dynamodb.get_item(TableName="t", Key={"k": {"S": "claim"}})["Item"]["v"] == {"N": "1"}
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)


def test_a_slack_that_refuses_every_post_for_30s_is_reported_and_so_is_its_recovery(tmp_path: Path) -> None:
    env = run_env(tmp_path)
    receiver = Receiver(f"http://127.0.0.1:{env['SLACK_RECEIVER_PORT']}")
    marker = f"down-{uuid.uuid4().hex[:8]}"
    with LocalRun(env, tmp_path / "run", "--no-generator") as run:
        receiver.faults([{"status": 500, "body": "rollup_error"}] * 1000)
        put_lines(client(env, "kinesis"), env["CALI_STREAM_NAME"],
                  [fluent_bit_record({"level": "ERROR", "service": marker, "message": f"{marker} failed"})])
        warned = wait_for(run.text, lambda t: "WARNING: Slack has refused or not answered every post" in t,
                          ALERT_TIMEOUT, "the Slack warning")
        assert posted(receiver, marker) == Counter()
        receiver.clear_faults()
        wait_for(run.text, lambda t: "Slack is answering again" in t, ALERT_TIMEOUT, "the recovery line")
        assert wait_for(lambda: posted(receiver, marker), bool, ALERT_TIMEOUT, "the held alert") == Counter(
            {f"{marker} failed": 1})
        assert run.stop() == 0
    assert warned.count("WARNING: Slack has refused") == 1
