"""AlertState in DynamoDB: one table (``<app>-state``, hash key ``pk``, TTL on ``expires_at``).

Items:
- ``throttle#<webhook>``: ``sent`` = send times inside the window (at most the limit), ``ver`` = version.
  Read, decide with the pure ``admit``, write back on condition that ``ver`` did not change (optimistic
  concurrency; a lost race re-reads). Every processor of every worker shares the one budget.
- ``fp#<fingerprint>``: ``at`` = when its last alert was claimed, ``owner`` = that alert's idempotency key;
  claimed with a conditional put (free, expired, or already ours after a re-read), deleted if not sent.
- ``sent#<shard/seq/sub/line>``: one Slack message, keyed by its first event (idempotency across re-reads).
  Written ``status = sending`` with a conditional put BEFORE posting (so two processors of one shard, e.g. a
  zombie after a lease move, never both post) and ``status = done, through = <its last event>`` after (an
  alert may fold several events). A ``sending`` claim older than ``stale_after`` (its owner crashed) may be
  taken over. Kept a week.

- ``hwm#<shard>``: the shard's high-water mark, the last event covered by any ended message (``sortable`` is the
  position as a fixed-width string, raised only, by a conditional update). A re-read checks ``sent#`` only for
  events up to it, so catching up costs no read per event.

Local caches keep DynamoDB off the per-event path: claimed fingerprints (10 s), and a spent budget until the
window opens again (``has_budget``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from consumer.model import position
from consumer.pipeline.throttle import WINDOW_SECONDS, admit, next_opening

log = logging.getLogger("cali.state")

DELIVERED_TTL_SECONDS = 7 * 24 * 3600
RACE_RETRIES = 20
CLAIM_CACHE_SECONDS = 10.0


BACKOFF_MAX_SECONDS = 30.0
_TRANSIENT_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException"}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class _Patient:
    """Wraps a boto3 DynamoDB client: connection trouble and throttling are retried with backoff, without end.

    The state table being unreachable (emulator down, network cut) must stall the processor, not lose a batch:
    amazon-kclpy reports a batch as processed even if the processor raised.
    """

    def __init__(self, client: Any, sleep: Callable[[float], None]) -> None:
        self._client = client
        self._sleep = sleep

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(self._client, name)

        def patient(**kwargs: Any) -> Any:
            delay = 0.2
            while True:
                try:
                    return call(**kwargs)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _TRANSIENT_CODES:
                        raise
                    problem: Exception = exc
                except BotoCoreError as exc:
                    problem = exc
                log.warning("state table %s failed (%s); retrying in %.1fs", name, problem, delay)
                self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)

        return patient


class DynamoState:
    def __init__(self, client: Any, table: str, limit: int, window: float = WINDOW_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._db = _Patient(client, sleep)
        self._table = table
        self._limit = limit
        self._window = window
        self._claimed_until: dict[str, float] = {}
        self._spent_until: dict[str, float] = {}

    def try_acquire(self, webhook: str, now: float) -> bool:
        key = {"pk": {"S": f"throttle#{webhook}"}}
        for _ in range(RACE_RETRIES):
            item = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            sent = [float(x["N"]) for x in item["sent"]["L"]] if item else []
            version = int(item["ver"]["N"]) if item else 0
            admitted = admit(sent, now, self._limit, self._window)
            if admitted is None:
                self._spent_until[webhook] = now + next_opening(sent, now, self._limit, self._window)
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

    def has_budget(self, webhook: str, now: float) -> bool:
        return now >= self._spent_until.get(webhook, 0.0)

    def ended_through(self, shard_id: str) -> str | None:
        item = self._db.get_item(TableName=self._table, Key={"pk": {"S": f"hwm#{shard_id}"}}, ConsistentRead=True)
        found = item.get("Item")
        return str(found["through"]["S"]) if found else None

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
        found = item.get("Item")
        if found is None or found.get("status", {}).get("S") != "done":
            return None
        return str(found.get("through", {}).get("S", key))

    def begin_send(self, key: str, owner: str, now: float, stale_after: float) -> tuple[bool, str | None]:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={"pk": {"S": f"sent#{key}"}, "status": {"S": "sending"}, "owner": {"S": owner},
                      "at": {"N": repr(now)}, "expires_at": {"N": str(int(now + DELIVERED_TTL_SECONDS))}},
                ConditionExpression=("attribute_not_exists(pk) OR "
                                     "(#status = :sending AND (#owner = :owner OR #at < :stale))"),
                ExpressionAttributeNames={"#status": "status", "#owner": "owner", "#at": "at"},
                ExpressionAttributeValues={":sending": {"S": "sending"}, ":owner": {"S": owner},
                                           ":stale": {"N": repr(now - stale_after)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True, None
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            response: dict[str, Any] = dict(exc.response)
            old: dict[str, Any] = response.get("Item", {})
            if old.get("status", {}).get("S") == "done":
                return False, str(old.get("through", {}).get("S", key))
            return False, None

    def keep_sending(self, key: str, owner: str, now: float) -> None:
        try:
            self._db.update_item(TableName=self._table, Key={"pk": {"S": f"sent#{key}"}},
                                 UpdateExpression="SET #at = :now",
                                 ConditionExpression="#status = :sending AND #owner = :owner",
                                 ExpressionAttributeNames={"#at": "at", "#status": "status", "#owner": "owner"},
                                 ExpressionAttributeValues={":now": {"N": repr(now)}, ":sending": {"S": "sending"},
                                                            ":owner": {"S": owner}})
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def end_send(self, key: str, owner: str, now: float, through: str) -> None:
        self._db.put_item(TableName=self._table, Item={"pk": {"S": f"sent#{key}"}, "status": {"S": "done"},
                                                       "owner": {"S": owner}, "at": {"N": repr(now)},
                                                       "through": {"S": through},
                                                       "expires_at": {"N": str(int(now + DELIVERED_TTL_SECONDS))}})
        sequence, sub, line = position(through)
        sortable = f"{sequence:060d}/{sub:010d}/{line:08d}"
        try:
            self._db.update_item(
                TableName=self._table, Key={"pk": {"S": f"hwm#{through.rsplit('/', 3)[0]}"}},
                UpdateExpression="SET sortable = :s, through = :t, expires_at = :e",
                ConditionExpression="attribute_not_exists(sortable) OR sortable < :s",
                ExpressionAttributeValues={":s": {"S": sortable}, ":t": {"S": through},
                                           ":e": {"N": str(int(now + DELIVERED_TTL_SECONDS))}})
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise


def ensure_table(client: Any, table: str, key: str = "pk") -> None:
    """Create the state table (or another with a string hash ``key`` and TTL on ``expires_at``) if missing (local
    mode; Terraform declares them for compose and AWS)."""
    try:
        client.create_table(TableName=table, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
    except client.exceptions.ResourceInUseException:
        return
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    try:
        client.update_time_to_live(TableName=table,
                                   TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    except ClientError as exc:  # some emulators lack TTL; expiry is then only a tidy-up concern
        log.warning("could not enable TTL on %s: %s", table, exc)
