"""localmode/moto_patches.py on moto's in-process Kinesis model (the emulator serves the same model over HTTP)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.parsing import ast_nodes

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


# -- DynamoDB transactions -----------------------------------------------------------------------------------------


@pytest.fixture
def dynamodb() -> Any:
    with mock_aws():
        moto_patches.apply()
        client = boto3.client("dynamodb", region_name="ap-northeast-2")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        yield client


def put(pk: str, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": pk}, "v": {"N": "2"}},
                          "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def test_a_refused_transaction_applies_nothing_and_returns_the_old_item(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "b"}, "v": {"N": "1"}})
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as info:
        dynamodb.transact_write_items(TransactItems=[put("a"), put("b", "attribute_not_exists(pk)")])
    reasons = info.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"] == {"pk": {"S": "b"}, "v": {"N": "1"}}
    assert "Item" not in dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})  # nothing applied
    dynamodb.transact_write_items(TransactItems=[put("a", "attribute_not_exists(pk)")])
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["v"] == {"N": "2"}


def test_a_transaction_does_not_copy_the_table(dynamodb: Any) -> None:
    """moto alone deep-copies the table per transaction: its cost grows with the table (the alert path's state)."""
    for i in range(3000):
        dynamodb.put_item(TableName="t", Item={"pk": {"S": f"filler-{i}"}, "blob": {"S": "x" * 200}})
    started = time.perf_counter()
    for i in range(20):
        dynamodb.transact_write_items(TransactItems=[put(f"new-{i}", "attribute_not_exists(pk)")])
    per_transaction = (time.perf_counter() - started) / 20
    assert per_transaction < 0.05, f"{per_transaction * 1000:.0f} ms per transaction"


def add_counts(dynamodb: Any, names: list[str]) -> None:
    dynamodb.update_item(
        TableName="t", Key={"pk": {"S": "big"}},
        UpdateExpression="SET v = :v ADD " + ", ".join(f"#n{i} :one" for i in range(len(names))),
        ExpressionAttributeNames={f"#n{i}": name for i, name in enumerate(names)},
        ExpressionAttributeValues={":v": {"S": "x"}, ":one": {"N": "1"}})


def test_an_update_costs_what_its_actions_cost_not_actions_times_item(dynamodb: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """moto alone sizes the whole item per attribute set and counts clauses per node: O(n x item + n^2). Counted
    in calls, not timed: 90 counts added to an item of 900 attributes."""
    for start in range(0, 900, 90):  # (moto's parser recurses per action: about 100 actions at most)
        add_counts(dynamodb, [f"old-{i}" for i in range(start, start + 90)])
    calls: Counter[str] = Counter()
    for owner, name in ((dynamo_type.DynamoType, "size"), (ast_nodes.Node, "find_clauses")):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda self, *a, _f=original, _n=name: calls.update([_n]) or _f(self, *a))
    add_counts(dynamodb, [f"new-{i}" for i in range(90)])
    item = dynamodb.get_item(TableName="t", Key={"pk": {"S": "big"}})["Item"]
    assert len(item) == 1 + 1 + 990 and item["new-0"] == {"N": "1"}
    assert calls["size"] < 3 * 1000, calls  # moto alone: ~90 x 1000
    assert calls["find_clauses"] < 10_000, calls  # moto alone: ~45,000 (here ~6,000)


def test_the_item_size_limit_and_the_clause_rules_still_hold(dynamodb: Any) -> None:
    add_counts(dynamodb, ["a"])
    with pytest.raises(dynamodb.exceptions.ClientError, match="Item size to update has exceeded"):
        add_counts(dynamodb, [f"n{i}-" + "z" * 5000 for i in range(90)])  # 450 KB: over 400 KB
    item = dynamodb.get_item(TableName="t", Key={"pk": {"S": "big"}})["Item"]
    assert set(item) == {"pk", "v", "a"}  # nothing of the refused update stays
    with pytest.raises(dynamodb.exceptions.ClientError, match="SET"):
        dynamodb.update_item(TableName="t", Key={"pk": {"S": "big"}}, UpdateExpression="SET v = :v SET w = :v",
                             ExpressionAttributeValues={":v": {"S": "x"}})


def test_a_write_over_the_size_limit_cancels_the_transaction_as_dynamodb_does(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "b"}, "v": {"N": "1"}})
    too_big = {"Update": {"TableName": "t", "Key": {"pk": {"S": "b"}}, "UpdateExpression": "SET v = :v, w = :w",
                          "ExpressionAttributeValues": {":v": {"N": "2"}, ":w": {"S": "z" * 410_000}}}}
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as info:
        dynamodb.transact_write_items(TransactItems=[put("a"), too_big, put("c")])
    assert [r["Code"] for r in info.value.response["CancellationReasons"]] == ["None", "ValidationError", "None"]
    assert "Item" not in dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})  # the write before it undone
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "b"}})["Item"] == {"pk": {"S": "b"}, "v": {"N": "1"}}
    assert "Item" not in dynamodb.get_item(TableName="t", Key={"pk": {"S": "c"}})
