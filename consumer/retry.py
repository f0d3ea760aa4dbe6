"""The one retry policy of the alert path (tenacity), and the one definition of "transient".

Transient: trying again later can succeed. A Slack ``RetryableDelivery`` (429, 5xx, connection trouble, no answer),
DynamoDB throttling or server errors, and botocore's connection errors. Anything else is re-raised at once.

The policy retries without end, with capped exponential backoff and jitter: an outage stalls the processor (its
checkpoint does not move) instead of losing a batch; amazon-kclpy would report a raised batch as processed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_never, wait_exponential_jitter
from tenacity.wait import wait_base

from consumer.errors import RetryableDelivery
from consumer.timing import BACKOFF_MAX_SECONDS, BACKOFF_START_SECONDS

log = logging.getLogger("cali.retry")

T = TypeVar("T")

TRANSIENT_DYNAMODB_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError",
    "ServiceUnavailable", "TransactionInProgressException", "TransactionConflict",
})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, RetryableDelivery | BotoCoreError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        if error.get("Code") in TRANSIENT_DYNAMODB_CODES:
            return True
        if error.get("Code") == "TransactionCanceledException":  # a conflict with a concurrent transaction
            response: dict[str, Any] = dict(exc.response)
            reasons: list[dict[str, Any]] = response.get("CancellationReasons", [])
            return any(r.get("Code") == "TransactionConflict" for r in reasons)
    return False


class _Backoff(wait_base):
    """Exponential backoff with jitter, capped at ``cap``; after an uncertain outcome (Slack may have posted) at least
    ``cap`` (``UNCERTAIN_PAUSE_SECONDS`` is ``BACKOFF_MAX_SECONDS``): a slow Slack is not asked twice in a row."""

    def __init__(self, cap: float) -> None:
        self._cap = cap
        self._exponential = wait_exponential_jitter(initial=min(BACKOFF_START_SECONDS, cap), max=cap, jitter=0.2)

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = float(self._exponential(retry_state))
        outcome = retry_state.outcome
        problem = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(problem, RetryableDelivery) and problem.uncertain:
            return max(delay, self._cap)
        return delay


def policy(sleep: Callable[[float], None], what: str, on_retry: Callable[[BaseException], None] | None = None,
           cap: float = BACKOFF_MAX_SECONDS) -> Retrying:
    """A tenacity ``Retrying`` for one call site; ``what`` names it in the log, ``on_retry`` sees each failure,
    ``cap`` is the longest pause (Slack posts: ``CALI_SLACK_RETRY_MAX_SECONDS``, which tests shorten)."""

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        problem = outcome.exception() if outcome is not None else None
        if problem is not None and on_retry is not None:
            on_retry(problem)
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s failed (%s); retrying in %.1fs", what, problem, delay)

    return Retrying(retry=retry_if_exception(is_transient), stop=stop_never, sleep=sleep, reraise=True,
                    wait=_Backoff(cap),
                    before_sleep=before_sleep)


def patiently(call: Callable[[], T], sleep: Callable[[float], None], what: str,
              on_retry: Callable[[BaseException], None] | None = None, cap: float = BACKOFF_MAX_SECONDS) -> T:
    return policy(sleep, what, on_retry, cap)(call)
