"""What every benchmark shares: a private Stack, the receiver's control API, the lease table, statistics, tables."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumer.config import REPO_ROOT
from generator.fluentbit import fluent_bit_record
from generator.lines import make_line
from localmode import paths
from localmode.stack import Stack, private_env
from slack_receiver.settings import DEFAULT_TOKEN

WORKER_ID = "cali-bench-worker"

Summary = list[tuple[str, str]]
"""(metric, value) rows a benchmark hands to ``bench.all``."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def bench_env(name: str, **overrides: str) -> dict[str, str]:
    """A private stack (``cali-bench-<name>-<id>``) whose daemon's children can import bench.*."""
    python_path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return private_env(f"cali-bench-{name}-{new_run_id()}", CALI_WORKER_ID=WORKER_ID, LOG_LEVEL="INFO",
                       PYTHONPATH=python_path, **overrides)


def new_stack(name: str, **overrides: str) -> Stack:
    run_dir = Path(tempfile.mkdtemp(prefix=f"cali-bench-{name}-"))
    return Stack(env=bench_env(name, **overrides), run_dir=run_dir)


@contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """Whatever the body starts on ``stack`` is stopped on the way out (the daemon gets SIGTERM first)."""
    try:
        yield stack
    finally:
        stack.stop()


# -- the Slack receiver's control API ----------------------------------------------------------------------------
@dataclass
class Receiver:
    base: str

    @classmethod
    def of(cls, stack: Stack) -> Receiver:
        return cls(f"http://127.0.0.1:{stack.local.slack_receiver_port}")

    def messages(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.base + "/_control/messages", timeout=10) as response:
            return list(json.loads(response.read())["messages"])

    def texts_with(self, marker: str) -> list[tuple[float, str]]:
        """(received_at, text) of the messages whose text contains ``marker``."""
        out = []
        for message in self.messages():
            text = str(message.get("payload", {}).get("text", ""))
            if marker in text:
                out.append((float(message["received_at"]), text))
        return out


# -- Kinesis and the lease table -----------------------------------------------------------------------------------
def error_record(service: str, message: str, seq: int | None = None) -> bytes:
    """One ERROR line as Fluent Bit writes it to Kinesis."""
    return fluent_bit_record(make_line("ERROR", service, message, seq=seq))


def put_datas(kinesis: Any, stream: str, datas: Sequence[bytes]) -> list[tuple[str, str]]:
    """PutRecords in batches of 500 with random partition keys (as Fluent Bit); failed entries are re-put.
    Returns (shard id, sequence number) per record, in order."""
    out: list[tuple[str, str]] = [("", "")] * len(datas)
    pending = list(range(len(datas)))
    while pending:
        batch, pending = pending[:500], pending[500:]
        result = kinesis.put_records(StreamName=stream, Records=[
            {"Data": datas[i], "PartitionKey": uuid.uuid4().hex} for i in batch])
        failed = []
        for index, outcome in zip(batch, result["Records"], strict=True):
            if "ErrorCode" in outcome:
                failed.append(index)
            else:
                out[index] = (str(outcome["ShardId"]), str(outcome["SequenceNumber"]))
        pending = failed + pending
    return out


def leases(dynamodb: Any, table: str) -> dict[str, dict[str, str]]:
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: {k: str(next(iter(v.values()))) for k, v in item.items()} for item in items}


def checkpoint_at_least(lease: dict[str, str] | None, sequence_number: str) -> bool:
    checkpoint = (lease or {}).get("checkpoint", "")
    return checkpoint == "SHARD_END" or (checkpoint.isdigit() and int(checkpoint) >= int(sequence_number))


def read_marks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def processor_stats(log_dir: Path) -> dict[str, dict[str, Any]]:
    """The last ``stats`` line each CALI processor logged (its stderr ends up in the daemon's log), per shard."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(log_dir.glob("kcl-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"msg": "stats"' in line:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                out[str(entry.get("shard_id", "?"))] = {**entry.get("stats", {}),
                                                        "millis_behind_latest": entry.get("millis_behind_latest")}
    return out


# -- numbers and tables --------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.fmean(data) if data else float("nan")


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than 2 points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# -- the machine ---------------------------------------------------------------------------------------------------
def machine_info() -> Summary:
    import psutil  # type: ignore[import-untyped]

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        java = "?"
    from importlib.metadata import version

    kcl_jars = sorted(p.name for p in paths.JARS.glob("amazon-kinesis-client-multilang-*.jar"))
    return [
        ("cpu", f"{cpu}, {os.cpu_count()} logical cores"),
        ("memory", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"),
        ("os", platform.platform()),
        ("python", sys.version.split()[0]),
        ("java", java),
        ("KCL", ", ".join(kcl_jars) or "?"),
        ("packages", ", ".join(f"{p} {version(p)}" for p in ("amazon-kclpy", "moto", "hypercorn", "boto3"))),
    ]


def base_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the stack does (INFO)")
    return parser


# The consumer's two Slack modes: webhook (no token), or the local receiver's Web API (local mode points
# SLACK_API_URL at the receiver when SLACK_BOT_TOKEN is the receiver's token).
MODES: dict[str, dict[str, str]] = {"webhook": {}, "webapi": {"SLACK_BOT_TOKEN": DEFAULT_TOKEN}}


def add_mode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=sorted(MODES), default="webhook",
                        help="the consumer's Slack mode (default webhook; webapi: incidents via the local Web API)")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def say(text: str) -> None:
    """Progress on stderr; the numbers go to stdout."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()
