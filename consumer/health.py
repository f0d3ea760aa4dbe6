"""Health of one consumer worker, for compose healthchecks, Kubernetes probes and people.

Each processor writes a heartbeat file per shard (``<dir>/<shard>.json``) from ``process_records``, which the
KCL calls on every poll (``callProcessRecordsEvenForEmptyRecordList``) and only while the worker holds the
shard's lease. The heartbeat also carries the processor's counts (``stats``), the Slack state (``slack``: ok or
failing, since when, the last error) and ``failed_batches``. Healthy means:
- the daemon is alive: this worker's MultiLangDaemon java process exists;
- every shard this worker owns in the lease table has a fresh heartbeat: its child is alive, its lease is being
  renewed, and it is not stuck (a processor blocked on a Slack outage goes stale after ``stale_after`` seconds,
  which is what an operator should see);
- no shard stays without a live owner for more than twice ``failoverTimeMillis``. A live owner raises the lease's
  counter every few seconds; each run of the check records when it last saw each lease change
  (``<dir>/leases-<app>.observed``), so a probe that runs every few seconds sees a lease nobody renews or takes. That is
  what KCL 3.1.3 does after its leader died without releasing the lock (amazon-kinesis-client #1803): lease
  assignment stops silently (the README says how to recover).

``python -m consumer.health`` prints one line (``--json``: the report) and exits 0 (healthy) or 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from consumer import aws, timing
from consumer.config import kcl_failover_millis

STALE_AFTER_SECONDS = timing.HEALTH_STALE_SECONDS  # longer than any legitimate wait
BEAT_EVERY_SECONDS = 5.0
RECOVERY_HINT = "if the KCL leader died, delete its lock (README, 'When shards are not reassigned')"


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(target)


def write_heartbeat(directory: Path, shard_id: str, now: float, details: dict[str, Any]) -> None:
    _write_atomically(directory / f"{shard_id}.json",
                      json.dumps({"shard_id": shard_id, "at": now, "pid": os.getpid(), **details}))


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


def daemon_running(worker_id: str) -> bool:
    """A MultiLangDaemon of this worker runs on this host (its properties file is ``<workerId>.properties``, as
    local mode and the compose image render it; other workers' daemons on the same host do not count)."""
    mine = f"{worker_id}.properties".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"MultiLangDaemon" in cmdline and mine in cmdline:
            return True
    return False


# -- leases without a live owner ---------------------------------------------------------------------------------

Observed = dict[str, dict[str, Any]]  # shard -> {"owner", "counter", "since"}: the lease unchanged since "since"


def observe(previous: Observed, leases: Mapping[str, Mapping[str, Any]], now: float) -> Observed:
    """Pure: when each unfinished lease last changed owner or counter (a renewal), as far as the checks saw."""
    seen: Observed = {}
    for shard, lease in leases.items():
        if lease.get("checkpoint") == "SHARD_END":
            continue
        owner, counter = str(lease.get("leaseOwner") or ""), int(lease.get("leaseCounter", 0))
        before = previous.get(shard)
        unchanged = before is not None and (before.get("owner"), before.get("counter")) == (owner, counter)
        seen[shard] = {"owner": owner, "counter": counter, "since": before["since"] if unchanged and before else now}
    return seen


def without_live_owner(seen: Observed, now: float, failover_ms: int) -> dict[str, float]:
    """Pure: shards whose lease nobody renewed or took for longer than twice failoverTimeMillis -> for how long."""
    limit = 2 * failover_ms / 1000
    return {shard: round(now - lease["since"], 1) for shard, lease in sorted(seen.items())
            if now - lease["since"] > limit}


def observed_file(directory: Path, app: str) -> Path:
    return directory / f"leases-{app}.observed"


def read_observed(path: Path) -> Observed:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- the report ----------------------------------------------------------------------------------------------------


@dataclass
class Report:
    healthy: bool
    daemon_alive: bool
    owned_shards: list[str]
    fresh: list[str] = field(default_factory=list)
    stale_or_missing: list[str] = field(default_factory=list)
    without_live_owner: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def assess(daemon_alive: bool, owned: list[str], beats: dict[str, dict[str, Any]], now: float,
           stale_after: float = STALE_AFTER_SECONDS, orphans: Mapping[str, float] | None = None,
           failover_ms: int = 10000) -> Report:
    """Pure: healthy when the daemon runs, every owned shard's processor beat recently, and every shard has a live
    owner; ``reason`` says in one line what is wrong (or what is right)."""
    fresh = [s for s in owned if s in beats and now - float(beats[s].get("at", 0)) <= stale_after]
    stale = [s for s in owned if s not in fresh]
    orphans = dict(orphans or {}) if daemon_alive else {}
    report = Report(daemon_alive and not stale and not orphans, daemon_alive, owned, fresh, stale, orphans)
    if not daemon_alive:
        report.reason = f"the KCL daemon is not running on this host: {aws.START_HINT}"
    elif stale:
        slack = next((beats[s]["slack"] for s in stale if beats.get(s, {}).get("slack", {}).get("state") == "failing"),
                     None)
        why = f"; Slack is failing: {slack['error']}" if slack else ""
        report.reason = (f"no heartbeat within {stale_after:.0f} s from the processor of {', '.join(stale)} "
                         f"(stuck or dead){why}")
    elif orphans:
        shard, seconds = max(orphans.items(), key=lambda item: item[1])
        report.reason = (f"{shard} has had no live owner for {seconds:.0f} s (over twice failoverTimeMillis, "
                         f"{2 * failover_ms / 1000:g} s): lease assignment has stopped; {RECOVERY_HINT}")
    else:
        report.reason = f"{len(owned)} shard(s) held here, every processor beat within {stale_after:.0f} s"
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m consumer.health", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    args = parser.parse_args(argv)
    settings = aws.cli_settings()
    now, alive, failover_ms = time.time(), daemon_running(settings.worker_id), kcl_failover_millis()
    owned: list[str] = []
    orphans: dict[str, float] = {}
    if alive:
        try:
            dynamodb = aws.client(settings, "dynamodb")
            items = dynamodb.scan(TableName=settings.app_name, ConsistentRead=True)["Items"]
        except (BotoCoreError, ClientError) as exc:
            sys.stdout.write(f"unhealthy: cannot read the lease table: {aws.explain(exc, settings)}\n")
            raise SystemExit(1) from None
        leases = {i["leaseKey"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in items}
        owned = sorted(s for s, lease in leases.items() if lease.get("leaseOwner") == settings.worker_id)
        observed = observed_file(settings.health_dir, settings.app_name)
        seen = observe(read_observed(observed), leases, now)
        with contextlib.suppress(OSError):  # then the next run cannot compare; the other checks stand
            _write_atomically(observed, json.dumps(seen))
        orphans = without_live_owner(seen, now, failover_ms)
    report = assess(alive, owned, read_heartbeats(settings.health_dir), now, orphans=orphans,
                    failover_ms=failover_ms)
    if args.json:
        sys.stdout.write(json.dumps(asdict(report)) + "\n")
    else:
        sys.stdout.write(f"{'healthy' if report.healthy else 'unhealthy'}: {report.reason}\n")
    raise SystemExit(0 if report.healthy else 1)


if __name__ == "__main__":
    main()
