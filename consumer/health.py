"""Health of one consumer worker, for compose healthchecks and (later) Kubernetes probes.

Each processor writes a heartbeat file per shard (``<dir>/<shard>.json``) from ``process_records``, which the
KCL calls on every poll (``callProcessRecordsEvenForEmptyRecordList``) and only while the worker holds the
shard's lease. Healthy means:
- the daemon is alive: a MultiLangDaemon java process exists;
- every shard this worker owns in the lease table has a fresh heartbeat: its child is alive, its lease is being
  renewed, and it is not stuck (a processor blocked on a Slack outage goes stale after ``stale_after`` seconds,
  which is what an operator should see).

``python -m consumer.health`` prints a JSON report and exits 0 (healthy) or 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3

from consumer.config import load_settings

STALE_AFTER_SECONDS = 60.0
BEAT_EVERY_SECONDS = 5.0


def write_heartbeat(directory: Path, shard_id: str, now: float, details: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{shard_id}.json"
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps({"shard_id": shard_id, "at": now, "pid": os.getpid(), **details}))
    temporary.replace(target)


def remove_heartbeat(directory: Path, shard_id: str) -> None:
    (directory / f"{shard_id}.json").unlink(missing_ok=True)


def read_heartbeats(directory: Path) -> dict[str, dict[str, Any]]:
    beats = {}
    for path in directory.glob("*.json"):
        try:
            beat = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        beats[str(beat.get("shard_id", path.stem))] = beat
    return beats


def daemon_running() -> bool:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"MultiLangDaemon" in (proc / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


@dataclass
class Report:
    healthy: bool
    daemon_alive: bool
    owned_shards: list[str]
    fresh: list[str] = field(default_factory=list)
    stale_or_missing: list[str] = field(default_factory=list)


def assess(daemon_alive: bool, owned: list[str], beats: dict[str, dict[str, Any]], now: float,
           stale_after: float = STALE_AFTER_SECONDS) -> Report:
    """Pure: healthy when the daemon runs and every owned shard's processor beat recently."""
    fresh = [s for s in owned if s in beats and now - float(beats[s].get("at", 0)) <= stale_after]
    stale = [s for s in owned if s not in fresh]
    return Report(daemon_alive and not stale, daemon_alive, owned, fresh, stale)


def owned_shards(worker_id: str) -> list[str]:
    s = load_settings()
    db = boto3.client("dynamodb", region_name=s.region, endpoint_url=s.endpoint_url)
    items = db.scan(TableName=s.app_name, ConsistentRead=True)["Items"]
    return sorted(i["leaseKey"]["S"] for i in items if i.get("leaseOwner", {}).get("S") == worker_id)


def main() -> None:
    settings = load_settings()
    report = assess(daemon_running(), owned_shards(settings.worker_id), read_heartbeats(settings.health_dir),
                    time.time())
    sys.stdout.write(json.dumps(asdict(report)) + "\n")
    raise SystemExit(0 if report.healthy else 1)


if __name__ == "__main__":
    main()
