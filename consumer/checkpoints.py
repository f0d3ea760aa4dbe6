"""``python -m consumer.checkpoints``: per shard, who holds the lease, where the checkpoint is, how far behind.

Reads the KCL's lease table and the stream; works against LocalStack, the local emulator and real AWS alike
(the endpoint is LOCALSTACK_ENDPOINT, unset on AWS). Prints to stdout: this is a CLI, not a KCL child.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

import boto3

from consumer.config import load_settings

_SPECIAL = {"TRIM_HORIZON", "LATEST", "SHARD_END", "AT_TIMESTAMP"}


@dataclass(frozen=True)
class ShardView:
    shard: str
    owner: str
    checkpoint: str
    lease_counter: int
    millis_behind_tip: int | None
    records_behind: str


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: next(iter(value.values())) for key, value in item.items()}


def shard_views(kinesis: Any, dynamodb: Any, stream: str, app: str, sample: int = 10000) -> list[ShardView]:
    items = dynamodb.scan(TableName=app, ConsistentRead=True)["Items"]
    views = []
    for lease in sorted((_plain(i) for i in items), key=lambda x: str(x["leaseKey"])):
        shard, checkpoint = str(lease["leaseKey"]), str(lease.get("checkpoint", "?"))
        behind_ms, behind = _behind(kinesis, stream, shard, checkpoint, sample)
        views.append(ShardView(shard, str(lease.get("leaseOwner", "-")), checkpoint,
                               int(lease.get("leaseCounter", 0)), behind_ms, behind))
    return views


def _behind(kinesis: Any, stream: str, shard: str, checkpoint: str, sample: int) -> tuple[int | None, str]:
    """MillisBehindLatest from reading one batch after the checkpoint, and how many records that batch held."""
    if checkpoint == "SHARD_END":
        return 0, "0 (shard closed and finished)"
    if checkpoint in _SPECIAL:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType=checkpoint)
    else:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                              ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=checkpoint)
    result = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=sample)
    count = len(result["Records"])
    return result.get("MillisBehindLatest"), (f">= {count}" if count == sample else str(count))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m consumer.checkpoints", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one JSON object per shard")
    args = parser.parse_args(argv)
    s = load_settings()
    kinesis = boto3.client("kinesis", region_name=s.region, endpoint_url=s.endpoint_url)
    dynamodb = boto3.client("dynamodb", region_name=s.region, endpoint_url=s.endpoint_url)
    views = shard_views(kinesis, dynamodb, s.stream_name, s.app_name)
    out = sys.stdout
    if args.json:
        for view in views:
            out.write(json.dumps(asdict(view)) + "\n")
        return
    header = ("shard", "lease owner", "checkpoint", "counter", "ms behind tip", "records behind")
    rows = [header] + [(v.shard, v.owner, v.checkpoint, str(v.lease_counter),
                        "-" if v.millis_behind_tip is None else str(v.millis_behind_tip), v.records_behind)
                       for v in views]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


if __name__ == "__main__":
    main()
