"""The AWS resources CALI needs, created idempotently (local mode; compose and AWS use Terraform)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from consumer.state.dynamodb import ensure_table

log = logging.getLogger("cali.resources")


def ensure_stream(kinesis: Any, name: str, shards: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    try:
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        log.info("created stream %s with %d shards", name, shards)
    except kinesis.exceptions.ResourceInUseException:
        pass
    deadline = time.monotonic() + timeout
    while True:
        description = kinesis.describe_stream(StreamName=name)["StreamDescription"]
        if description["StreamStatus"] == "ACTIVE":
            return list(description["Shards"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {name} not ACTIVE after {timeout}s")
        time.sleep(0.2)


def seed_leases(dynamodb: Any, app_name: str, shards: Sequence[Mapping[str, Any]],
                owners: Sequence[str] = ()) -> bool:
    """Write one lease per open shard before the KCL's first start, as the KCL itself would.

    A KCL 3 worker facing an empty lease table waits a random 1-30 s before syncing shards
    (``Scheduler.shouldInitiateLeaseSync``; no property controls it). Seeded leases start it in ~5 s
    (DESIGN.md). Only done when the lease table does not exist yet; the KCL adds its GSI itself.

    ``owners``: worker ids to hand the leases to, round robin. KCL 3.1.3 balances leases between workers by their
    CPU use, which it cannot measure off AWS (no EC2/ECS/EKS metadata): a second worker started later stays idle
    until the first fails. A known fleet can be given its shares up front.
    """
    try:
        dynamodb.create_table(
            TableName=app_name,
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except dynamodb.exceptions.ResourceInUseException:
        return False
    dynamodb.get_waiter("table_exists").wait(TableName=app_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    open_shards = [s for s in shards if not s.get("SequenceNumberRange", {}).get("EndingSequenceNumber")]
    for index, shard in enumerate(open_shards):  # closed shards: the KCL finds them through their children
        item: dict[str, Any] = {
            "leaseKey": {"S": shard["ShardId"]},
            "leaseCounter": {"N": "0"},
            "checkpoint": {"S": "TRIM_HORIZON"},
            "checkpointSubSequenceNumber": {"N": "0"},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
            "startingHashKey": {"S": shard["HashKeyRange"]["StartingHashKey"]},
            "endingHashKey": {"S": shard["HashKeyRange"]["EndingHashKey"]},
        }
        if owners:
            item["leaseOwner"] = {"S": owners[index % len(owners)]}
        if shard.get("ParentShardId"):
            item["parentShardId"] = {"SS": [shard["ParentShardId"]]}
        dynamodb.put_item(TableName=app_name, Item=item)
    log.info("seeded %d leases in %s", len(open_shards), app_name)
    return True



def ensure_silences_table(client: Any, table: str) -> None:
    """The silences table (consumer/silence/store.py: hash key ``id``, TTL ``expires_at``), if missing; Terraform
    declares the same for compose and AWS."""
    ensure_table(client, table, key="id")
