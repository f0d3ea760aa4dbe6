"""moto's Kinesis, made to behave like Kinesis where CALI depends on it; moto's DynamoDB transactions and updates
made cheap (the same results and errors, without costs that grow with the table or the item).

1. Cost independent of the stream's length (below), and memory bounded: records older than the retention are
   trimmed on put, as Kinesis does after its retention period (moto keeps every record forever).
2. Resharding as in Kinesis: a split or merge closes the parents, which keep their records, and the children
   start empty; GetRecords at the end of a closed shard returns no NextShardIterator and the ChildShards, which is
   how the KCL finds SHARD_END and starts the children. moto 5.2.5 instead moves (split) or copies (merge) the
   parents' records into the children and never ends a shard.

On cost:
moto 5.2.5 walks a shard's records from the first one on every GetRecords, and copies every key into a list
to find the last sequence number on every put (``moto/kinesis/models.py``: ``Shard.get_records``,
``get_max_sequence_number``). A long-running local mode then slows down as the stream grows. A shard's
sequence numbers are consecutive integers (``put_record`` assigns last + 1), so a record is found by key.
"""

from __future__ import annotations

import copy
import importlib
import json
import pickle
import re
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
from moto.dynamodb.exceptions import (
    ItemSizeTooLarge,
    ItemSizeToUpdateTooLarge,
    MockValidationException,
    TransactionCanceledException,
)
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing import executors, validators
from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords
from moto.kinesis import models, responses
from moto.kinesis.utils import decompose_shard_iterator

ast_nodes: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")  # (untyped to mypy: "type: ignore" files)
UpdateExpressionParser: Any = importlib.import_module("moto.dynamodb.parsing.expressions").UpdateExpressionParser
_original_get_records = models.Shard.get_records
_original_put_record = models.Shard.put_record
DEFAULT_RETENTION_SECONDS = 30 * 60.0
_retention = DEFAULT_RETENTION_SECONDS


def _put_record(shard: Any, partition_key: str, data: str, explicit_hash_key: str) -> str:
    sequence = str(_original_put_record(shard, partition_key, data, explicit_hash_key))
    cutoff = time.time() - _retention
    records = shard.records
    while len(records) > 1 and next(iter(records.values())).created_at < cutoff:  # keep the newest: numbering
        records.popitem(last=False)
    return sequence


def _first_key(shard: Any) -> int:
    return next(iter(shard.records)) if shard.records else 0


def _last_key(shard: Any) -> int:
    return next(reversed(shard.records)) if shard.records else 0


def _get_records(shard: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    after = int(last_sequence_id)
    if not shard.records:
        return [], after, 0
    last = _last_key(shard)
    seq = max(after + 1, _first_key(shard))
    results: list[Any] = []
    while seq <= last and (limit is None or len(results) < limit):
        record = shard.records.get(seq)
        if record is None:  # not consecutive after all: fall back to moto's own scan
            return _original_get_records(shard, last_sequence_id, limit)
        results.append(record)
        seq += 1
    if not results:
        return [], after, 0
    behind = shard.records[last].created_at - results[-1].created_at
    return results, results[-1].sequence_number, int(behind * 1000)


_original_split = models.Stream.split_shard
_original_merge = models.Stream.merge_shards
_original_backend_get_records = models.KinesisBackend.get_records
_original_shard_for_key = models.Stream.get_shard_for_key


def _children(stream: Any, parent_id: str) -> list[Any]:
    return [s for s in stream.shards.values() if parent_id in (s.parent, s.adjacent_parent)]


def _split_shard(stream: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
    kept = stream.shards[shard_to_split].records
    _original_split(stream, shard_to_split, new_starting_hash_key)
    stream.shards[shard_to_split].records = kept
    for child in _children(stream, shard_to_split):
        child.records = OrderedDict()


def _merge_shards(stream: Any, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
    _original_merge(stream, shard_to_merge, adjacent_shard_to_merge)
    for child in _children(stream, shard_to_merge):
        child.records = OrderedDict()


def _shard_for_key(stream: Any, partition_key: str, explicit_hash_key: str) -> Any:
    """Route puts to open shards only (moto would pick a closed parent whose hash range still matches)."""
    every = stream.shards
    stream.shards = OrderedDict((k, v) for k, v in every.items() if v.is_open)
    try:
        return _original_shard_for_key(stream, partition_key, explicit_hash_key)
    finally:
        stream.shards = every


def _closed_and_done(backend: Any, stream_arn: str | None, iterator: str | None) -> tuple[Any, Any] | None:
    """(stream, shard) when ``iterator`` points past the last record of a closed shard."""
    if iterator is None:
        return None
    stream_name, shard_id, position = decompose_shard_iterator(iterator)
    stream = backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    shard = stream.get_shard(shard_id)
    if shard.is_open or int(position) < _last_key(shard):
        return None
    return stream, shard


def _backend_get_records(backend: Any, stream_arn: str | None, shard_iterator: str,
                         limit: int | None) -> tuple[str | None, list[Any], int]:
    next_iterator, records, behind = _original_backend_get_records(backend, stream_arn, shard_iterator, limit)
    if _closed_and_done(backend, stream_arn, next_iterator) is not None:
        return None, records, behind
    return next_iterator, records, behind


def _response_get_records(self: Any) -> Any:
    stream_arn = self._get_param("StreamARN")
    shard_iterator = self._get_param("ShardIterator")
    next_iterator, records, behind = self.kinesis_backend.get_records(stream_arn, shard_iterator,
                                                                     self._get_param("Limit"))
    result: dict[str, Any] = {"NextShardIterator": next_iterator, "Records": [r.to_json() for r in records],
                              "MillisBehindLatest": behind}
    if next_iterator is None:
        stream_name, shard_id, _ = decompose_shard_iterator(shard_iterator)
        stream = self.kinesis_backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        result["ChildShards"] = [
            {"ShardId": child.shard_id, "ParentShards": [p for p in (child.parent, child.adjacent_parent) if p],
             "HashKeyRange": {"StartingHashKey": str(child.starting_hash), "EndingHashKey": str(child.ending_hash)}}
            for child in _children(stream, shard_id)
        ]
    return ActionResult(result)


# -- DynamoDB TransactWriteItems ------------------------------------------------------------------------------------
# moto 5.2.5 deep-copies every table a transaction names before applying it, to roll back on a failed condition: a
# transaction costs O(items in the table), and CALI's alert path is two transactions per alert on a table that grows
# with every message sent. Here every condition is checked first, against the items as they are (a transaction's
# items are distinct, and requests are serialised, so this is what checking them in turn would give); only when all
# hold does moto apply the transaction, without the copies and without checking the conditions again (its plain
# updates are applied here, below). Refused: the same TransactionCanceledException as moto's; a write over the item
# size limit cancels the transaction naming that write, as DynamoDB does (moto raises a ValidationException).
_original_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items
_CHEAP_COPY = type("CheapCopy", (), {"deepcopy": staticmethod(lambda value: value)})()


def _refusals(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]] | None:
    """Per item (code, message, old item) as moto reports them, or None when every condition holds."""
    reasons: list[tuple[Any, Any, Any]] = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        current = backend.get_item(op["TableName"], _key(backend, op_type, op))
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")).expr(current):
            old = current.to_json()["Attributes"] if current is not None and \
                op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            reasons.append((None, None, None))
    return reasons if any(code is not None for code, _, _ in reasons) else None


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    table = backend.get_table(op["TableName"])
    source = op["Item"] if op_type == "Put" else op["Key"]
    return {name: source[name] for name in (table.hash_key_attr, table.range_key_attr) if name}


class _Undo:
    """The items a transaction touches, as they were (their top-level attributes: CALI writes no nested paths), to
    put back when one of its writes is refused while applying (an item over DynamoDB's size limit)."""

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        self._saved = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            key = _key(backend, op_type, op)
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(hash_value, range_value)
            self._saved.append((table, hash_value, range_value, item, dict(item.attrs) if item is not None else None))

    def __call__(self, applied: int) -> None:
        for table, hash_value, range_value, item, attrs in reversed(self._saved[:applied + 1]):
            if item is None:
                if table.get_item(hash_value, range_value) is not None:
                    table.delete_item(hash_value, range_value)
                continue
            dict.clear(item.attrs)
            dict.update(item.attrs, attrs)
            if range_value is None:
                table.items[hash_value] = item
            else:
                table.items[hash_value][range_value] = item


def _transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100 or any(len(entry) != 1 or next(iter(entry)) not in
                                        ("ConditionCheck", "Put", "Delete", "Update") for entry in transact_items):
        return _original_transact_write_items(backend, transact_items)  # moto's own validation errors
    keys = [json.dumps([next(iter(e.values()))["TableName"], _key(backend, *next(iter(e.items())))], sort_keys=True)
            for e in transact_items]
    if len(set(keys)) < len(keys):
        return _original_transact_write_items(backend, transact_items)  # moto's error for two writes to one item
    refused = _refusals(backend, transact_items)
    if refused is not None:
        raise TransactionCanceledException(refused)
    checked = [{op_type: {name: value for name, value in op.items() if name != "ConditionExpression"}}
               for entry in transact_items for op_type, op in entry.items()]  # (moto would parse each twice more)
    undo = _Undo(backend, transact_items)
    real_copy, dynamodb_models.copy = dynamodb_models.copy, _CHEAP_COPY  # type: ignore[attr-defined]
    try:
        for index, entry in enumerate(checked):
            try:
                if not _plain_update(backend, entry):
                    _original_transact_write_items(backend, [entry])
            except MockValidationException as exc:
                undo(index)
                if not isinstance(exc, ItemSizeTooLarge | ItemSizeToUpdateTooLarge):
                    raise  # (moto's error, as moto raises it)
                reasons: list[tuple[Any, Any, Any]] = [(None, None, None)] * len(checked)
                reasons[index] = ("ValidationError", exc.message, None)  # DynamoDB cancels the transaction,
                # naming the write refused
                raise TransactionCanceledException(reasons) from None
    finally:
        dynamodb_models.copy = real_copy  # type: ignore[attr-defined]


# A transaction's plain updates (``SET a = :v`` and ``ADD n :k`` of top-level attributes, scalar values, numbers
# added) are applied here directly: moto's validators walk the expression's tree eight times and copy it per update,
# most of a 30-update transaction's cost (a batch's repeats, ``DynamoState.add_repeats``). Anything else (paths,
# functions, REMOVE/DELETE, sets, a reserved word, a key attribute, a missing name or value, a type moto refuses)
# goes through moto's own update, with its own errors; tests/test_moto_patches.py compares the two.
_PLAIN_VALUE_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL"})
_NAME = re.compile(r"#[A-Za-z0-9_]+|[A-Za-z][A-Za-z0-9_]*")
_SET_ACTION = re.compile(rf"\s*({_NAME.pattern})\s*=\s*(:[A-Za-z0-9_]+)\s*")
_ADD_ACTION = re.compile(rf"\s*({_NAME.pattern})\s+(:[A-Za-z0-9_]+)\s*")
_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b", re.IGNORECASE)
_plain: OrderedDict[str, tuple[tuple[str, str, str], ...] | None] = OrderedDict()  # expression -> its actions
_RESERVED = frozenset(word.upper() for word in ReservedKeywords.get_reserved_keywords())


def _plain_actions(expression: str) -> tuple[tuple[str, str, str], ...] | None:
    """(``SET`` or ``ADD``, name, value) of each action of a plain update expression; None for any other."""
    if expression in _plain:
        return _plain[expression]
    parts = _CLAUSE.split(expression)
    actions: list[tuple[str, str, str]] | None = [] if not parts[0].strip() else None
    clauses = [keyword.upper() for keyword in parts[1::2]]
    if len(set(clauses)) < len(clauses) or not set(clauses) <= {"SET", "ADD"}:
        actions = None
    for keyword, body in zip(clauses, parts[2::2], strict=True):
        pattern = _SET_ACTION if keyword == "SET" else _ADD_ACTION
        for action in body.split(","):
            match = pattern.fullmatch(action)
            if actions is None or match is None or match[1].upper() in _RESERVED:
                actions = None
                break
            actions.append((keyword, match[1], match[2]))
    plain = tuple(actions) if actions else None
    _keep(_plain, expression, plain)
    return plain


def _plain_update(backend: Any, entry: dict[str, Any]) -> bool:
    """Apply ``entry`` if it is a plain update of an existing item (its condition was checked): whether it was."""
    op_type, op = next(iter(entry.items()))
    actions = _plain_actions(op.get("UpdateExpression", "")) if op_type == "Update" else None
    if actions is None:
        return False
    table = backend.get_table(op["TableName"])
    key = _key(backend, op_type, op)
    if table.range_key_attr or table.stream_shard is not None or table.global_indexes or table.indexes:
        return False
    item = table.get_item(DynamoType(key[table.hash_key_attr]), None)
    if item is None:
        return False
    names, values = op.get("ExpressionAttributeNames") or {}, op.get("ExpressionAttributeValues") or {}
    changes: dict[str, DynamoType] = {}
    for keyword, name, placeholder in actions:
        attribute = names.get(name) if name.startswith("#") else name
        raw = values.get(placeholder)
        if attribute is None or raw is None or attribute == table.hash_key_attr or attribute in changes or \
                len(raw) != 1 or next(iter(raw)) not in _PLAIN_VALUE_TYPES:
            return False
        value = DynamoType(raw)
        if keyword == "ADD":
            current = item.attrs.get(attribute, DynamoType({"N": "0"}))
            if value.type != "N" or current.type != "N":
                return False
            try:
                value = current + value
            except Exception:  # (a number moto cannot add: its own error, from its own update)
                return False
        changes[attribute] = value
    before = dict(item.attrs)
    dict.update(item.attrs, changes)
    if _item_size(item.attrs) > ITEM_SIZE_LIMIT:
        dict.clear(item.attrs)
        dict.update(item.attrs, before)
        raise ItemSizeToUpdateTooLarge
    return True


# -- DynamoDB UpdateItem: costs linear in the expression --------------------------------------------------------
# moto 5.2.5 checks the whole item's size on every attribute an update sets (``LimitedSizeDict.__setitem__``), and
# counts the clauses of the whole sub-tree at every node of the expression (``ActionCountValidator``): an update
# of n attributes costs O(n x item) + O(n^2). DynamoDB checks the item once, after the update; so does this, and
# the clause count is checked once, at the root. The limits and errors are moto's own.
_original_setitem = dynamo_type.LimitedSizeDict.__setitem__
_original_execute = executors.UpdateExpressionExecutor.execute
_original_verify_action_counts = validators.ActionCountValidator.verify_action_counts
_size_check = threading.local()  # .deferred: inside an update, the size is checked once at its end
ITEM_SIZE_LIMIT = 405000  # moto's (dynamo_type.LimitedSizeDict)


def _setitem(self: Any, key: str, value: Any) -> None:
    if getattr(_size_check, "deferred", False):
        dict.__setitem__(self, key, value)
    else:
        _original_setitem(self, key, value)


def _item_size(attrs: dict[str, Any]) -> int:
    size = 0
    for name, value in attrs.items():
        size += bytesize(name) + (value.size() if type(value) is dynamo_type.DynamoType else bytesize(str(value)))
    return size


def _execute(self: Any, node: Any = None) -> None:
    if node is not None or getattr(_size_check, "deferred", False):
        return _original_execute(self, node)  # a sub-node of the update being executed
    attrs = self.item.attrs
    before = dict(attrs)
    _size_check.deferred = True
    try:
        _original_execute(self)
    finally:
        _size_check.deferred = False
    if _item_size(attrs) > ITEM_SIZE_LIMIT:
        dict.clear(attrs)
        dict.update(attrs, before)
        raise ItemSizeTooLarge


def _verify_action_counts(self: Any, node: Any) -> Any:
    return node if node.parent is not None else _original_verify_action_counts(self, node)


# -- DynamoDB expressions: parsed once per expression, trees walked without per-node look-ups ------------------------
# Every UpdateItem (alone or in a transaction) made moto parse its UpdateExpression twice (the request's validation,
# then the update), deep-copy the tree for its validators, walk it ten times asking every node ``isinstance`` of
# every processor's abstract classes (building each processor's map per node), and lex every ConditionExpression
# with regular expressions compiled per token. CALI sends the same few expressions with other values all day: here
# an expression is parsed (lexed) once and its tree kept pickled, each use gets a fresh copy (moto's validators
# rewrite the tree they walk), a tree is copied with pickle, and a walk looks its node types up once. Errors are
# moto's own: an expression that does not parse is not kept, and raises as before on every use.
EXPRESSIONS_KEPT = 1024  # distinct expressions kept per kind (CALI uses a few dozen); then the oldest goes
_original_make = UpdateExpressionParser.make.__func__
_original_lex = ConditionExpressionParser._lex_condition_expression
_parsed: OrderedDict[str, bytes] = OrderedDict()  # UpdateExpression -> its tree, pickled
_lexed: OrderedDict[str, tuple[tuple[Any, ...], ...]] = OrderedDict()  # ConditionExpression -> its tokens
_shared: OrderedDict[str, Any] = OrderedDict()  # UpdateExpression -> its tree, read only (the request layer's)
_original_parse = ConditionExpressionParser.parse
_conditions: OrderedDict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = OrderedDict()  # (expression, names,
# values) -> the condition, the names and values it uses


def _keep(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    if len(cache) > EXPRESSIONS_KEPT:
        cache.popitem(last=False)


def _make(cls: Any, expression: str) -> Any:
    pickled = _parsed.get(expression)
    if pickled is None:
        tree = _original_make(cls, expression)
        _keep(_parsed, expression, pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))
        return tree
    return pickle.loads(pickled)


def _lex(self: Any) -> Any:
    tokens = _lexed.get(self.condition_expression)
    if tokens is None:
        nodes = _original_lex(self)
        _keep(_lexed, self.condition_expression, tuple(tuple(node[:4]) for node in nodes))
        return nodes
    return deque(self.Node(*token, children=[]) for token in tokens)  # (a lexed token's children: a new list)


def _parse_condition(self: Any) -> Any:
    """moto parses a request's ConditionExpression once to check the request, and again to evaluate it (in a
    transaction: the check before applying, ``_refusals``). The same expression with the same names and values gives
    the same condition (moto's condition objects are not changed by evaluating them): here it is parsed once."""
    if not self.condition_expression:
        return _original_parse(self)
    key = json.dumps([self.condition_expression, self.expression_attribute_names,
                      self.expression_attribute_values], sort_keys=True)
    kept = _conditions.get(key)
    if kept is None:
        op = _original_parse(self)
        _keep(_conditions, key, (op, tuple(self.expr_attr_names_found), tuple(self.expr_attr_values_found)))
        return op
    op, names, values = kept
    self.expr_attr_names_found.extend(names)
    self.expr_attr_values_found.extend(values)
    return op


class _SharedTrees:
    """``UpdateExpressionParser`` for moto's request layer, which only reads a tree (the names and values it uses):
    the one kept tree of the expression, not a copy per request."""

    @staticmethod
    def make(expression: str) -> Any:
        tree = _shared.get(expression)
        if tree is None:
            tree = _make(UpdateExpressionParser, expression)
            _keep(_shared, expression, tree)
        return tree


def _copy_tree(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` for moto's validators: a whole update expression's tree by pickle (the same copy, ~4x
    faster), anything else as before."""
    if type(value) is ast_nodes.UpdateExpression and memo is None:
        return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    return copy.deepcopy(value, memo)


_dispatch: dict[tuple[type, type], type | None] = {}  # (traverser, node type) -> the processing map's key for it
_is_node: dict[type, bool] = {}  # isinstance(x, Node) by type (Node is abstract: its isinstance is slow)
_BASE_PRE_PROCESSING = ast_nodes.DepthFirstTraverser.pre_processing_of_child


def _node_type(kind: type) -> bool:
    known = _is_node.get(kind)
    if known is None:
        known = _is_node[kind] = issubclass(kind, ast_nodes.Node)
    return known


def _traverse(self: Any, node: Any) -> Any:
    """moto's ``DepthFirstTraverser.traverse``: depth first, children before their parent, a processed node takes
    its place in the parent; each processor's map built once per walk, not per node."""
    processing = self._processing_map()
    keys = tuple(processing)
    pre = None if type(self).pre_processing_of_child is _BASE_PRE_PROCESSING else self.pre_processing_of_child
    owner = type(self)

    def walk(node: Any, child_id: int) -> Any:
        parent = node.parent
        children = node.children
        if children is not None:
            for i, child in enumerate(children):
                if pre is not None:
                    pre(node, i)
                is_node = _is_node.get(type(child))
                if is_node or (is_node is None and _node_type(type(child))):
                    walk(child, i)
        kind = type(node)
        key = _dispatch.get((owner, kind), _dispatch)
        if key is _dispatch:
            key = next((k for k in keys if issubclass(kind, k)), None)
            _dispatch[(owner, kind)] = key
        if key is not None:
            node = processing[key](node)
            node.parent = parent
            if parent:
                parent.children[child_id] = node
        return node

    return walk(node, -1) if _node_type(type(node)) else node


_original_overlapping = validators.OverlappingPathsValidator.check_for_overlapping_paths


def _check_for_overlapping_paths(self: Any, node: Any) -> Any:
    """moto checks the paths under every node of the tree, children first (O(nodes x actions)). A tree whose
    paths have no overlap at its root has none in any part: then that one check, without a walk; else moto's,
    node by node (the same error, naming the same paths)."""
    return node if self.__dict__.get("_cali_clean") else _original_overlapping(self, node)


def _traverse_overlapping(self: Any, root: Any) -> Any:
    try:
        _original_overlapping(self, root)
    except Exception:  # moto raises it again in the walk, at the node it would have raised it at
        return _traverse(self, root)
    self.__dict__["_cali_clean"] = True
    return root


def _traverse_action_counts(self: Any, root: Any) -> Any:
    """The clause count is checked at the root only (``_verify_action_counts``): no walk to get there."""
    return self.verify_action_counts(root) if isinstance(root, ast_nodes.UpdateExpression) else root


PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (models.Shard, "put_record", _put_record),
    (models.Shard, "get_records", _get_records),
    (models.Shard, "get_min_sequence_number", _first_key),
    (models.Shard, "get_max_sequence_number", _last_key),
    (models.Stream, "split_shard", _split_shard),
    (models.Stream, "merge_shards", _merge_shards),
    (models.Stream, "get_shard_for_key", _shard_for_key),
    (models.KinesisBackend, "get_records", _backend_get_records),
    (responses.KinesisResponse, "get_records", _response_get_records),
    (dynamodb_models.DynamoDBBackend, "transact_write_items", _transact_write_items),
    (dynamo_type.LimitedSizeDict, "__setitem__", _setitem),
    (executors.UpdateExpressionExecutor, "execute", _execute),
    (validators.ActionCountValidator, "verify_action_counts", _verify_action_counts),
    (UpdateExpressionParser, "make", classmethod(_make)),
    (ConditionExpressionParser, "_lex_condition_expression", _lex),
    (ConditionExpressionParser, "parse", _parse_condition),
    (dynamodb_responses, "UpdateExpressionParser", _SharedTrees),
    (validators, "deepcopy", _copy_tree),
    (ast_nodes.DepthFirstTraverser, "traverse", _traverse),
    (validators.OverlappingPathsValidator, "check_for_overlapping_paths", _check_for_overlapping_paths),
    (validators.OverlappingPathsValidator, "traverse", _traverse_overlapping),
    (validators.ActionCountValidator, "traverse", _traverse_action_counts),
)
_INHERITED = object()  # a patch that shadows a method the class inherits
_ORIGINALS = tuple((owner, name, vars(owner).get(name, _INHERITED)) for owner, name, _ in PATCHES)  # moto as it comes


def apply(retention_seconds: float = DEFAULT_RETENTION_SECONDS) -> None:
    global _retention
    _retention = retention_seconds
    for owner, name, function in PATCHES:
        setattr(owner, name, function)


def restore() -> None:
    """moto as it comes (the tests compare the patched moto with it)."""
    for owner, name, original in _ORIGINALS:
        if original is _INHERITED:
            if name in vars(owner):
                delattr(owner, name)
        else:
            setattr(owner, name, original)
