"""AlertState in DynamoDB: one table (``<app>-state``, hash key ``pk``, TTL on ``expires_at``).

Items:
- ``throttle#<webhook>``: ``sent`` = send times inside the window (at most the limit), ``ver`` = version.
  Read, decide with the pure ``admit``, write back on condition that ``ver`` did not change (optimistic
  concurrency; a lost race re-reads). Every processor of every worker shares the one budget.
- ``fp#<fingerprint>``: ``at`` = when its last alert was claimed, ``owner`` = that alert's idempotency key;
  claimed with a conditional put (free, expired, or already ours after a re-read), deleted if not sent.
- ``sent#<shard/seq/sub/line>``: a message that reached Slack (idempotency across re-reads), keyed by its first
  event, with ``through`` = its last event (an alert may fold several); kept a week.

A small local cache of claimed fingerprints keeps DynamoDB off the per-event path during a burst.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from consumer.pipeline.throttle import WINDOW_SECONDS, admit

log = logging.getLogger("cali.state")

DELIVERED_TTL_SECONDS = 7 * 24 * 3600
RACE_RETRIES = 20
CLAIM_CACHE_SECONDS = 10.0


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoState:
    def __init__(self, client: Any, table: str, limit: int, window: float = WINDOW_SECONDS) -> None:
        self._db = client
        self._table = table
        self._limit = limit
        self._window = window
        self._claimed_until: dict[str, float] = {}

    def try_acquire(self, webhook: str, now: float) -> bool:
        key = {"pk": {"S": f"throttle#{webhook}"}}
        for _ in range(RACE_RETRIES):
            item = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            sent = [float(x["N"]) for x in item["sent"]["L"]] if item else []
            version = int(item["ver"]["N"]) if item else 0
            admitted = admit(sent, now, self._limit, self._window)
            if admitted is None:
                return False
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item={**key, "sent": {"L": [{"N": repr(t)} for t in admitted]}, "ver": {"N": str(version + 1)},
                          "expires_at": {"N": str(int(now + 2 * self._window))}},
                    ConditionExpression="attribute_not_exists(pk) OR ver = :v",
                    ExpressionAttributeValues={":v": {"N": str(version)}},
                )
                return True
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        log.warning("throttle item for %s kept changing under us; treating as no budget", webhook)
        return False

    def claim_fingerprint(self, fingerprint: str, owner: str, now: float, window: float) -> bool:
        if self._claimed_until.get(fingerprint, 0.0) > now:
            return False
        try:
            self._db.put_item(
                TableName=self._table,
                Item={"pk": {"S": f"fp#{fingerprint}"}, "at": {"N": repr(now)}, "owner": {"S": owner},
                      "expires_at": {"N": str(int(now + window + 3600))}},
                ConditionExpression="attribute_not_exists(pk) OR #at <= :cutoff OR #owner = :owner",
                ExpressionAttributeNames={"#at": "at", "#owner": "owner"},
                ExpressionAttributeValues={":cutoff": {"N": repr(now - window)}, ":owner": {"S": owner}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            response: dict[str, Any] = dict(exc.response)
            old = response.get("Item", {}).get("at", {}).get("N")
            # remember the other claim for a while (not its whole window: its owner may release it)
            self._claimed_until[fingerprint] = min((float(old) if old else now) + window, now + CLAIM_CACHE_SECONDS)
            return False
        return True

    def release_fingerprint(self, fingerprint: str, owner: str) -> None:
        try:
            self._db.delete_item(TableName=self._table, Key={"pk": {"S": f"fp#{fingerprint}"}},
                                 ConditionExpression="#owner = :owner", ExpressionAttributeNames={"#owner": "owner"},
                                 ExpressionAttributeValues={":owner": {"S": owner}})
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def delivered_through(self, key: str) -> str | None:
        item = self._db.get_item(TableName=self._table, Key={"pk": {"S": f"sent#{key}"}}, ConsistentRead=True)
        if "Item" not in item:
            return None
        return str(item["Item"].get("through", {}).get("S", key))

    def mark_delivered(self, key: str, now: float, through: str) -> None:
        self._db.put_item(TableName=self._table, Item={"pk": {"S": f"sent#{key}"}, "at": {"N": repr(now)},
                                                       "through": {"S": through},
                                                       "expires_at": {"N": str(int(now + DELIVERED_TTL_SECONDS))}})


def ensure_table(client: Any, table: str) -> None:
    """Create the state table if missing (local mode; Terraform declares it for compose and AWS)."""
    try:
        client.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
    except client.exceptions.ResourceInUseException:
        return
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    try:
        client.update_time_to_live(TableName=table,
                                   TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    except ClientError as exc:  # some emulators lack TTL; expiry is then only a tidy-up concern
        log.warning("could not enable TTL on %s: %s", table, exc)
