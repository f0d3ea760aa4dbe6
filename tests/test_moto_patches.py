"""localmode/moto_patches.py on moto's in-process Kinesis model (the emulator serves the same model over HTTP)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localmode import moto_patches


@pytest.fixture
def kinesis() -> Any:
    with mock_aws():
        moto_patches.apply(retention_seconds=0.2)
        client = boto3.client("kinesis", region_name="ap-northeast-2")
        client.create_stream(StreamName="s", ShardCount=1)
        yield client
        moto_patches.apply()


def read_all(kinesis: Any, shard: str) -> list[bytes]:
    iterator = kinesis.get_shard_iterator(StreamName="s", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]


def test_old_records_are_trimmed_on_put_and_numbering_continues(kinesis: Any) -> None:
    first = [kinesis.put_record(StreamName="s", Data=b"old%d" % i, PartitionKey="k")["SequenceNumber"]
             for i in range(3)]
    time.sleep(0.3)
    later = kinesis.put_record(StreamName="s", Data=b"new", PartitionKey="k")["SequenceNumber"]
    assert read_all(kinesis, "shardId-000000000000") == [b"new"]
    assert int(later) == int(first[-1]) + 1


def test_split_keeps_parent_records_children_start_empty_and_the_parent_ends(kinesis: Any) -> None:
    moto_patches.apply()  # no trimming here
    for i in range(4):
        kinesis.put_record(StreamName="s", Data=b"p%d" % i, PartitionKey=str(i))
    kinesis.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
    kinesis.put_record(StreamName="s", Data=b"child", PartitionKey="x")
    assert read_all(kinesis, "shardId-000000000000") == [b"p0", b"p1", b"p2", b"p3"]
    iterator = kinesis.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    result = kinesis.get_records(ShardIterator=iterator)
    assert "NextShardIterator" not in result or result["NextShardIterator"] is None
    assert sorted(c["ShardId"] for c in result["ChildShards"]) == ["shardId-000000000001", "shardId-000000000002"]
    children = read_all(kinesis, "shardId-000000000001") + read_all(kinesis, "shardId-000000000002")
    assert children == [b"child"]
