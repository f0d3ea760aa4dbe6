"""localmode/moto_patches.py on moto's in-process Kinesis model (the emulator serves the same model over HTTP)."""

from __future__ import annotations

import importlib
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb import comparisons
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


# -- DynamoDB expressions: parsed once, walked cheaply, the same results and errors as moto alone ---------------------


def _outcome(call: Any) -> Any:
    try:
        result = call()
    except Exception as exc:  # the outcome compared is the error itself
        response = getattr(exc, "response", {})
        return ("error", response.get("Error", {}).get("Code"), response.get("Error", {}).get("Message"),
                response.get("CancellationReasons"))
    result.pop("ResponseMetadata", None)
    return result


def _expression_scenario(client: Any) -> list[Any]:
    """Updates, conditions and transactions CALI sends (the same expressions again with other values) and others
    moto supports, refused ones included; the outcome of each."""
    key = {"pk": {"S": "k"}}

    def update(expression: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None,
               condition: str | None = None, pk: str = "k") -> Any:
        kwargs: dict[str, Any] = {"TableName": "t", "Key": {"pk": {"S": pk}}, "UpdateExpression": expression,
                                  "ReturnValues": "ALL_NEW"}
        if values is not None:
            kwargs["ExpressionAttributeValues"] = values
        if names is not None:
            kwargs["ExpressionAttributeNames"] = names
        if condition is not None:
            kwargs["ConditionExpression"] = condition
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return _outcome(lambda: client.update_item(**kwargs))

    incident = ("SET #until = :forever, #owner = :key, #state = :open, #count = :n, last_seen = :now, "
                "shown_count = :zero, shown_at = :zero, #th = :th, expires_at = :e REMOVE ts, channel")
    names = {"#until": "until", "#owner": "owner", "#state": "state", "#count": "count", "#th": "th_0"}
    claim = "attribute_not_exists(pk) OR #until <= :now OR #owner = :key"
    out = []
    for n in range(3):  # the same expressions, other values: each use sees its own
        values = {":forever": {"N": "1e12"}, ":key": {"S": f"key{n % 2}"}, ":open": {"S": "open"}, ":n": {"N": str(n)},
                  ":now": {"N": str(100 + n)}, ":zero": {"N": "0"}, ":th": {"S": f"{n:05d}"}, ":e": {"N": "9"}}
        out.append(update(incident, values, names, claim))
        out.append(update(incident, values, names, claim, pk=f"new{n}"))
        out.append(update("ADD #count :n SET last_seen = :now, #th = :last",
                          {":n": {"N": str(n + 1)}, ":now": {"N": "7"}, ":last": {"S": f"z{n}"}, ":open": {"S": "open"},
                           ":first": {"S": f"{n:05d}"}},
                          {"#count": "count", "#state": "state", "#th": "th_1"},
                          "#state = :open AND (attribute_not_exists(#th) OR #th < :first)"))
    out += [
        update("SET m = :m", {":m": {"M": {"a": {"L": [{"N": "1"}]}, "b": {"S": "x"}}}}),
        update("SET m.a = list_append(m.a, :l), m.c = if_not_exists(m.c, :one), n2 = :one + :one",
               {":l": {"L": [{"N": "2"}]}, ":one": {"N": "1"}}),
        update("SET m.a[0] = :v REMOVE m.b ADD s :s", {":v": {"N": "9"}, ":s": {"SS": ["a", "b"]}}),
        update("DELETE s :s", {":s": {"SS": ["a"]}}),
        update("SET #c = #c - :one", {":one": {"N": "1"}}, {"#c": "count"}),
        update("SET a = :v, a = :w", {":v": {"N": "1"}, ":w": {"N": "2"}}),  # overlapping paths
        update("SET a = :v, b = :v, b = :w, a = :w", {":v": {"N": "1"}, ":w": {"N": "2"}}),  # two pairs
        update("SET m.a = :v, m = :v", {":v": {"N": "1"}}),
        update("SET #a = :v, a = :v", {":v": {"N": "1"}}, {"#a": "a"}),
        update("SET a = :missing", {":v": {"N": "1"}}),
        update("SET #missing = :v", {":v": {"N": "1"}}, {"#a": "a"}),
        update("ADD last_seen :s", {":s": {"S": "x"}}),  # type mismatch
        update("SET pk = :v", {":v": {"S": "other"}}),  # a key attribute
        update("SET a = :v SET b = :v", {":v": {"N": "1"}}),
        update("SET a = = :v", {":v": {"N": "1"}}),  # does not parse: twice, the same error
        update("SET a = = :v", {":v": {"N": "1"}}),
        update("SET a = :v", {":v": {"N": "1"}}, condition="attribute_exists(nothing) OR #x = :v"),
        update("SET a = :v", {":v": {"N": "1"}}, {"#x": "a"}, condition="#x = :v AND size(m) > :v"),
        update("SET a = :v", {":v": {"N": "1"}}, {"#x": "a"}, condition="#x = :v AND size(m) > :v"),
        update("SET a = :v", {":v": {"N": "1"}}, {"#x": "a"}, condition="#x IN (:v, :v) AND NOT #x BETWEEN :v AND :v"),
        update("SET a = :v", {":v": {"N": "1"}}, {"#x": "a"}, condition="#x = = :v"),
        _outcome(lambda: client.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "SET a = :v, b = :w",
                        "ConditionExpression": "a = :v",
                        "ExpressionAttributeValues": {":v": {"N": "5"}, ":w": {"N": "6"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "p"}, "v": {"N": "1"}}}}])),
        _outcome(lambda: client.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "SET a = :w, b = :v",
                        "ConditionExpression": "a = :v",
                        "ExpressionAttributeValues": {":v": {"N": "1"}, ":w": {"N": "6"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "p"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}}])),
        _outcome(lambda: client.get_item(TableName="t", Key=key)),
        _outcome(lambda: client.get_item(TableName="t", Key={"pk": {"S": "p"}})),
    ]
    out += _plain_updates_in_transactions(client)
    return out


def _plain_updates_in_transactions(client: Any) -> list[Any]:
    """Transactions of plain updates (applied by the patches themselves) and of near-plain ones (moto's own)."""
    def transact(*updates: tuple[str, str, dict[str, Any], dict[str, str] | None]) -> Any:
        items = []
        for pk, expression, values, names in updates:
            update: dict[str, Any] = {"TableName": "t", "Key": {"pk": {"S": pk}}, "UpdateExpression": expression,
                                      "ExpressionAttributeValues": values}
            if names is not None:
                update["ExpressionAttributeNames"] = names
            items.append({"Update": update})
        return _outcome(lambda: client.transact_write_items(TransactItems=items))

    repeat = "ADD #count :n SET last_seen = :now, #th = :last"
    names = {"#count": "count", "#th": "th_2"}
    one = {":one": {"N": "1"}}
    out = [
        transact(("k", repeat, {":n": {"N": "3"}, ":now": {"N": "8"}, ":last": {"S": "z"}}, names),
                 ("new0", repeat, {":n": {"N": "1.5"}, ":now": {"N": "9"}, ":last": {"S": "y"}}, names),
                 ("new1", "ADD fresh :one", one, None),
                 ("new2", "set a2 = :v, b2 = :b add c2 :one", {**one, ":v": {"S": ""}, ":b": {"BOOL": True}}, None)),
        transact(("k", "SET size = :one", one, None)),  # a reserved word
        transact(("k", "SET pk = :one", one, None)),  # a key attribute
        transact(("k", "SET a = :one ADD a :one", one, None)),  # one attribute twice
        transact(("k", "SET l = :l", {":l": {"L": [{"N": "1"}]}}, None), ("absent", "SET a = :one", one, None)),
        transact(("k", "ADD fresh :one", one, None), ("new0", "ADD last_seen :s", {":s": {"S": "x"}}, None)),
        transact(("k", "SET #a = :one", one, {"#b": "a"})),  # a name not given
        transact(("k", "ADD #a :one", {":two": {"N": "2"}}, {"#a": "a"})),  # a value not given
    ]
    out += [_outcome(lambda pk=pk: client.get_item(TableName="t", Key={"pk": {"S": pk}}))  # type: ignore[misc]
            for pk in ("k", "new0", "new1", "new2", "absent")]
    return out


def _run_scenario() -> list[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-2")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        return _expression_scenario(client)


def test_updates_conditions_and_their_errors_are_moto_s_own() -> None:
    moto_patches.restore()
    try:
        alone = _run_scenario()
    finally:
        moto_patches.apply()
    patched = _run_scenario()
    assert len(patched) == len(alone) == 47
    for i, (a, b) in enumerate(zip(alone, patched, strict=True)):
        assert a == b, f"step {i}: moto alone {a!r}, patched {b!r}"
    errors = [o for o in patched if isinstance(o, tuple)]
    assert len(errors) >= 18, errors  # the refusals are part of what is compared


def test_an_expression_is_parsed_once_and_its_tree_walked_without_per_node_checks(
        dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    tokenizer = importlib.import_module("moto.dynamodb.parsing.tokens").ExpressionTokenizer
    lex = vars(comparisons.ConditionExpressionParser)["_lex_one_node"]
    overlapping = moto_patches._original_overlapping
    make_list = vars(tokenizer)["make_list"].__func__
    monkeypatch.setattr(tokenizer, "make_list",
                        classmethod(lambda cls, *a: calls.update(["tokenize"]) or make_list(cls, *a)))
    monkeypatch.setattr(comparisons.ConditionExpressionParser, "_lex_one_node",
                        lambda self, *a: calls.update(["lex"]) or lex(self, *a))
    monkeypatch.setattr(moto_patches, "_original_overlapping",
                        lambda self, node: calls.update(["overlap"]) or overlapping(self, node))
    expression = f"SET {', '.join(f'a{i} = :v' for i in range(8))} ADD c :one"
    for i in range(10):
        dynamodb.update_item(TableName="t", Key={"pk": {"S": "k"}}, UpdateExpression=expression,
                             ConditionExpression="attribute_not_exists(c) OR c < :max",
                             ExpressionAttributeValues={":v": {"N": str(i)}, ":one": {"N": "1"}, ":max": {"N": "99"}})
    item = dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})["Item"]
    assert item["a7"] == {"N": "9"} and item["c"] == {"N": "10"}
    assert calls["tokenize"] == 1, calls  # moto alone: twice per update (the request's check, the update)
    assert calls["lex"] == 12, calls  # once: the condition's 8 tokens and 4 spaces (moto alone: 3 times per update)
    assert calls["overlap"] == 11, calls  # once per validation (the first update, creating the item, has two); moto
    # alone: at each of the ~60 nodes of the tree


def test_a_transaction_s_plain_updates_are_applied_without_moto_s_update_and_each_condition_parsed_once(
        dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    backend = type(moto_patches.dynamodb_models.dynamodb_backends["123456789012"]["ap-northeast-2"])
    update_item, parse = backend.update_item, moto_patches._original_parse
    monkeypatch.setattr(backend, "update_item", lambda *a, **k: calls.update(["update"]) or update_item(*a, **k))
    monkeypatch.setattr(moto_patches, "_original_parse", lambda self: calls.update(["parse"]) or parse(self))
    for pk in ("a", "b", "c"):
        dynamodb.put_item(TableName="t", Item={"pk": {"S": pk}, "state": {"S": "open"}, "count": {"N": "1"}})
    repeats = [{"Update": {  # a batch's repeats (consumer/state/dynamodb.py)
        "TableName": "t", "Key": {"pk": {"S": pk}}, "UpdateExpression": "ADD #count :n SET last_seen = :now, #th = :l",
        "ConditionExpression": "#state = :open AND (attribute_not_exists(#th) OR #th < :first)",
        "ExpressionAttributeNames": {"#count": "count", "#state": "state", "#th": "th_0"},
        "ExpressionAttributeValues": {":n": {"N": str(n)}, ":now": {"N": "7"}, ":open": {"S": "open"},
                                      ":first": {"S": "0001"}, ":l": {"S": "0009"}}}}
        for n, pk in enumerate(("a", "b", "c"), start=2)]
    calls.clear()
    dynamodb.transact_write_items(TransactItems=repeats)
    items = [dynamodb.get_item(TableName="t", Key={"pk": {"S": pk}})["Item"] for pk in ("a", "b", "c")]
    assert [(i["count"], i["last_seen"], i["th_0"]) for i in items] == [
        ({"N": str(n)}, {"N": "7"}, {"S": "0009"}) for n in (3, 4, 5)]
    assert calls == {"parse": 3}, calls  # moto alone: three parses per condition (the request's check, the
    # transaction's, the update's) and moto's whole update (eight walks of the expression) per item
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):  # a re-read: counted before
        dynamodb.transact_write_items(TransactItems=repeats)
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["count"] == {"N": "3"}
