"""Helpers for tests that run the real pipeline parts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from consumer.config import REPO_ROOT, Settings, load_settings
from generator.fluentbit import fluent_bit_record
from localmode.stack import Stack
from localmode.supervisor import wait_for

__all__ = ["Receiver", "SteadyLoad", "checkpoint_at", "dotenv_settings", "error_line", "event_count", "last_per_shard",
           "leader", "leases", "new_shell", "owners", "posted", "put_lines", "put_located", "readme_commands",
           "run_shell", "wait_all", "wait_for"]


@dataclass
class Receiver:
    """Client for the local Slack receiver's control API (see ``slack_receiver``'s docstring for the shapes).

    A message is ``{"channel", "channel_name", "ts", "payload" (as it reads now), "original", "edits",
    "thread_ts"?, "reply_count"?, ...}``; ``channel`` arguments take a name, ``#name`` or an id.
    """

    base: str

    @property
    def api_url(self) -> str:
        """Base URL of the Web API stand-in: ``slack_sdk.WebClient(token=..., base_url=receiver.api_url)``."""
        return self.base + "/api/"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
        return json.loads(raw) if raw.startswith((b"{", b"[")) else raw.decode()

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages in arrival order (thread replies too), of one channel or of all."""
        query = "" if channel is None else "?" + urllib.parse.urlencode({"channel": channel})
        return list(self._call("GET", "/_control/messages" + query)["messages"])

    def texts(self, marker: str, channel: str | None = None) -> list[str]:
        return [m["payload"]["text"] for m in self.messages(channel) if marker in m["payload"].get("text", "")]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The thread ``ts`` (root or reply) belongs to: root first, then the replies."""
        query = urllib.parse.urlencode({"channel": channel, "ts": ts})
        return list(self._call("GET", "/_control/thread?" + query)["messages"])

    def edited(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages that were edited (each has ``original``, ``edits`` and the current ``payload``)."""
        return [m for m in self.messages(channel) if m["edits"]]

    def channels(self) -> dict[str, str]:
        """Channel name -> id."""
        return {c["name"]: c["id"] for c in self._call("GET", "/_control/messages")["channels"]}

    def faults(self, items: list[dict[str, Any]]) -> None:
        """Queue faults; an item may say ``"on": "webhook" | "api" | "<method>"``."""
        self._call("POST", "/_control/faults", items)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_control/faults")


def put_lines(kinesis: Any, stream: str, payloads: Iterable[bytes]) -> int:
    """PutRecords in batches of 500 with random partition keys (like Fluent Bit); re-puts failed entries."""
    return len(put_located(kinesis, stream, payloads))


def put_located(kinesis: Any, stream: str, payloads: Iterable[bytes]) -> list[tuple[str, str]]:
    """``put_lines``, answering where each record landed: (shard id, sequence number), in the order they landed."""
    pending = [{"Data": data, "PartitionKey": uuid.uuid4().hex} for data in payloads]
    landed: list[tuple[str, str]] = []
    while pending:
        size, count = 0, 0
        for entry in pending[:500]:  # PutRecords: 500 records and 5 MiB at most
            size += len(entry["Data"]) + len(entry["PartitionKey"])
            if size > 4 * 1024 * 1024 and count:
                break
            count += 1
        batch, pending = pending[:count], pending[count:]
        result = kinesis.put_records(StreamName=stream, Records=batch)
        landed += [(outcome["ShardId"], outcome["SequenceNumber"]) for outcome in result["Records"]
                   if "ErrorCode" not in outcome]
        pending = [entry for entry, outcome in zip(batch, result["Records"], strict=True)
                   if "ErrorCode" in outcome] + pending
    return landed


def last_per_shard(landed: Iterable[tuple[str, str]]) -> dict[str, int]:
    """The highest sequence number written to each shard."""
    last: dict[str, int] = {}
    for shard, sequence in landed:
        last[shard] = max(last.get(shard, 0), int(sequence))
    return last


def checkpoint_at(lease: dict[str, Any]) -> int:
    """A lease's checkpoint as a number; -1 before the first record (TRIM_HORIZON, LATEST...)."""
    value = str(lease.get("checkpoint", ""))
    return int(value) if value.isdigit() else -1


def leases(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: {k: next(iter(v.values())) for k, v in item.items()} for item in items}


def event_count(payload: dict[str, Any]) -> int:
    """How many ERROR/WARN events one Slack message accounts for: an alert says "(xN)" when N > 1, a digest
    starts with "N more ERROR/WARN"."""
    text = payload.get("text", "")
    digest = re.match(r"(\d+) more ERROR/WARN", text)
    if digest:
        return int(digest.group(1))
    repeat = re.search(r" \(x(\d+)\)$", text.split("\n", 1)[0])
    return int(repeat.group(1)) if repeat else 1


def error_line(service: str, message: str, level: str = "ERROR") -> bytes:
    return fluent_bit_record({"timestamp": "2026-11-26T05:00:00.000Z", "level": level, "service": service,
                              "message": message, "trace_id": uuid.uuid4().hex})


def posted(receiver: Receiver, marker: str) -> Counter[str]:
    """The messages of the marker's alerts at Slack, each with how often it was posted."""
    return Counter(text.split(": ", 1)[1] for text in receiver.texts(marker))


# -- a steady load, and who holds the leases (the fault tests) ----------------------------------------------------

class SteadyLoad:
    """A background producer: every tick, some unique ERRORs (each its own service, so nothing folds) + INFO."""

    def __init__(self, stack: Stack, marker: str, errors_per_second: int = 4, info_per_second: int = 16,
                 client: Any = None) -> None:
        self.kinesis = client or stack.client("kinesis")
        self.stream = stack.settings.stream_name
        self.marker = marker
        self.errors, self.info = errors_per_second, info_per_second
        self.expected: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.5):
            records = []
            for _ in range(self.errors // 2):
                n += 1
                message = f"{self.marker} failure {n}"
                records.append(fluent_bit_record({"level": "ERROR", "service": f"{self.marker}-{n}",
                                                  "message": message}))
                self.expected.add(message)
            records += [fluent_bit_record({"level": "INFO", "service": "noise", "message": f"ok {i}"})
                        for i in range(self.info // 2)]
            put_lines(self.kinesis, self.stream, records)


def wait_all(receiver: Receiver, load: SteadyLoad, timeout: float) -> Counter[str]:
    """Every ERROR of the load at Slack, and a little while after it (a duplicate would come then): how often each
    was posted."""
    wait_for(lambda: posted(receiver, load.marker), lambda c: set(c) >= load.expected, timeout,
             f"all {len(load.expected)} ERRORs at Slack")
    time.sleep(3)  # and nothing more
    return posted(receiver, load.marker)


def owners(stack: Stack) -> Counter[str]:
    """Worker -> how many open shards (not at SHARD_END) it holds."""
    return Counter(str(lease.get("leaseOwner", "-")) for lease in leases(stack.client("dynamodb"),
                                                                           stack.settings.app_name).values()
                   if lease.get("checkpoint") != "SHARD_END")


def leader(stack: Stack) -> str | None:
    """The worker holding KCL 3's leader lock (DynamoDB lock client item in <app>-CoordinatorState)."""
    dynamodb = stack.client("dynamodb")
    try:
        items = dynamodb.scan(TableName=f"{stack.settings.app_name}-CoordinatorState")["Items"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return None  # the KCL has not created it yet
    return next((i["ownerName"]["S"] for i in items if "ownerName" in i), None)


# -- README's commands, as a new shell runs them -----------------------------------------------------------------

README = REPO_ROOT / "README.md"
BLOCK = re.compile(r"<!-- readme-test: (\w+) -->\s*```(?:bash|sh)\n(.*?)```\s*<!-- /readme-test -->", re.DOTALL)


def dotenv_settings() -> Settings:
    """The settings of ``.env`` alone (the names README's commands use), whatever this process's environment says."""
    return load_settings({k: v for k, v in dotenv_values(REPO_ROOT / ".env").items() if v is not None})


def readme_commands(kind: str) -> list[str]:
    """The command lines of README's shell blocks marked ``kind`` (a trailing backslash continues a line)."""
    commands: list[str] = []
    for found, body in BLOCK.findall(README.read_text()):
        if found == kind:
            joined = body.replace("\\\n", " ")
            commands += [line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]
    return commands


def new_shell(endpoint: str, worker_id: str) -> dict[str, str]:
    """The environment of a new shell: the venv is not activated, and nothing of CALI's or AWS's is exported,
    except the two things that differ from ``.env`` on a machine shared with other test runs."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    return {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
            "LOCALSTACK_ENDPOINT": endpoint, "CALI_WORKER_ID": worker_id}


def run_shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
