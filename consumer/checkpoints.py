"""``python -m consumer.checkpoints``: the KCL leader, and per shard who holds the lease, whether it is being
renewed, where the checkpoint is and how far behind it the stream is.

Reads the KCL's lease table, its ``<app>-CoordinatorState`` table and the stream; works against LocalStack, the
local emulator and real AWS alike (region, endpoint and keys from ``.env`` and the environment, through
consumer/config.py). A lease item holds no expiry time: a lease is alive while its owner keeps raising its
``leaseCounter``, and expires ``failoverTimeMillis`` after the last raise. So the table is read twice, ``--observe``
seconds apart, to see which leases are being renewed. Prints to stdout: this is a CLI, not a KCL child.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from consumer import aws
from consumer.config import kcl_failover_millis

_SPECIAL = {"TRIM_HORIZON", "LATEST", "SHARD_END", "AT_TIMESTAMP"}
LEADER_KEY = "Leader"  # the DynamoDB lock client's item of KCL 3's leader election (DynamoDBLockBasedLeaderDecider)


@dataclass(frozen=True)
class ShardView:
    shard: str
    owner: str
    checkpoint: str
    lease_counter: int
    renewing: bool | None  # None: no owner, finished, or not observed
    lease: str  # the lease's state in words: renewing, not renewed for n s (expires within m s), no owner
    millis_behind_tip: int | None  # age of the oldest record after the checkpoint; 0 when none is waiting
    records_behind: str


@dataclass(frozen=True)
class LeaderView:
    owner: str | None
    lock_millis: int | None
    owner_renews_leases: bool | None

    def describe(self, table: str) -> str:
        if self.owner is None:
            return f"leader: none (no {LEADER_KEY!r} item in {table})"
        renews = {True: "yes", False: "NO", None: "not observed"}[self.owner_renews_leases]
        lock = f"{self.lock_millis // 1000} s lock" if self.lock_millis else "lock"
        return f"leader: {self.owner} ({lock}, item {LEADER_KEY!r} in {table}; renews its leases: {renews})"


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: next(iter(value.values())) for key, value in item.items()}


def lease_items(dynamodb: Any, app: str) -> dict[str, dict[str, Any]]:
    items = dynamodb.scan(TableName=app, ConsistentRead=True)["Items"]
    return {str(lease["leaseKey"]): lease for lease in (_plain(i) for i in items)}


def leader_item(dynamodb: Any, app: str) -> dict[str, Any] | None:
    try:
        found = dynamodb.get_item(TableName=f"{app}-CoordinatorState", Key={"key": {"S": LEADER_KEY}},
                                  ConsistentRead=True).get("Item")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None  # KCL 3 creates it at its first start
        raise
    return _plain(found) if found else None


def lease_state(before: Mapping[str, Any] | None, after: Mapping[str, Any], observed: float,
                failover_ms: int) -> tuple[bool | None, str]:
    """Pure: is the lease being renewed (its counter rose while observed), and that in words."""
    if after.get("checkpoint") == "SHARD_END":
        return None, "finished (SHARD_END)"
    if not after.get("leaseOwner"):
        return None, "no owner"
    if before is None or observed <= 0:
        return None, "not observed"
    if before.get("leaseOwner") != after.get("leaseOwner") or before.get("leaseCounter") != after.get("leaseCounter"):
        return True, f"renewing (lives {failover_ms / 1000:g} s past each renewal)"
    left = max(0.0, failover_ms / 1000 - observed)
    return False, f"not renewed for {observed:.0f} s (expires within {left:.0f} s)"


def _behind(kinesis: Any, stream: str, shard: str, checkpoint: str, sample: int,
            now: Callable[[], float]) -> tuple[int | None, str]:
    """How old the oldest record after the checkpoint is, and how many records one read after it found.
    (GetRecords' own MillisBehindLatest says how far the END of that read is from the tip: 0 once it read all.)"""
    if checkpoint == "SHARD_END":
        return 0, "0 (shard closed and finished)"
    if checkpoint in _SPECIAL:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType=checkpoint)
    else:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                              ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=checkpoint)
    records = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=sample)["Records"]
    if not records:
        return 0, "0"
    arrived: datetime = records[0]["ApproximateArrivalTimestamp"]
    age = max(0, round((now() - arrived.timestamp()) * 1000))
    return age, (f">= {len(records)}" if len(records) == sample else str(len(records)))


def shard_views(kinesis: Any, dynamodb: Any, stream: str, app: str, *, observe: float = 0.0,
                failover_ms: int = 10000, sample: int = 10000, sleep: Callable[[float], None] = time.sleep,
                now: Callable[[], float] = time.time) -> list[ShardView]:
    before = lease_items(dynamodb, app) if observe > 0 else {}
    if observe > 0:
        sleep(observe)
    after = lease_items(dynamodb, app)
    views = []
    for shard in sorted(after):
        lease = after[shard]
        checkpoint = str(lease.get("checkpoint", "?"))
        renewing, words = lease_state(before.get(shard), lease, observe, failover_ms)
        behind_ms, behind = _behind(kinesis, stream, shard, checkpoint, sample, now)
        views.append(ShardView(shard, str(lease.get("leaseOwner") or "-"), checkpoint,
                               int(lease.get("leaseCounter", 0)), renewing, words, behind_ms, behind))
    return views


def leader_view(dynamodb: Any, app: str, views: Sequence[ShardView]) -> LeaderView:
    item = leader_item(dynamodb, app)
    if item is None or not item.get("ownerName"):
        return LeaderView(None, None, None)
    owner = str(item["ownerName"])
    held = [v.renewing for v in views if v.owner == owner and v.renewing is not None]
    renews = None if not held else any(held)
    duration = str(item.get("leaseDuration", ""))
    return LeaderView(owner, int(duration) if duration.isdigit() else None, renews)


def table(views: Sequence[ShardView]) -> list[str]:
    header = ("shard", "lease owner", "lease", "checkpoint", "counter", "ms behind tip", "records behind")
    rows = [header] + [(v.shard, v.owner, v.lease, v.checkpoint, str(v.lease_counter),
                        "-" if v.millis_behind_tip is None else str(v.millis_behind_tip), v.records_behind)
                       for v in views]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def main(argv: list[str] | None = None) -> None:
    failover_ms = kcl_failover_millis()
    parser = argparse.ArgumentParser(prog="python -m consumer.checkpoints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="one JSON object: the leader and the shards")
    parser.add_argument("--observe", type=float, default=round(failover_ms / 3000 + 0.5, 1),
                        help="seconds between the two reads of the lease table (0: read once; default: a bit "
                             "more than one renewal period, failoverTimeMillis / 3)")
    args = parser.parse_args(argv)
    settings = aws.cli_settings()
    with aws.one_line_errors(settings):
        kinesis, dynamodb = aws.client(settings, "kinesis"), aws.client(settings, "dynamodb")
        views = shard_views(kinesis, dynamodb, settings.stream_name, settings.app_name, observe=args.observe,
                            failover_ms=failover_ms)
        leader = leader_view(dynamodb, settings.app_name, views)
    if args.json:
        sys.stdout.write(json.dumps({"leader": asdict(leader), "shards": [asdict(v) for v in views]}) + "\n")
        return
    sys.stdout.write(leader.describe(f"{settings.app_name}-CoordinatorState") + "\n")
    sys.stdout.write("".join(line + "\n" for line in table(views)))


if __name__ == "__main__":
    main()
