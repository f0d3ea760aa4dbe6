"""Every timing relation the alert path depends on, in one place (tests/test_consumer_timing.py asserts them).

- A Slack request waits at most ``SLACK_TIMEOUT_SECONDS`` (slack-sdk's own default: room for a slow but working
  Slack; an unanswered request is an *unknown* outcome, never re-posted at once).
- One post is bounded: the request, one 429 retry after at most ``MAX_RETRY_AFTER_SECONDS``, the request again.
- A send claim not refreshed for ``SEND_STALE_SECONDS`` belongs to a dead processor: it must exceed one post's worst
  case plus the longest backoff sleep between posts (the claim is refreshed between attempts). Claims taken together
  (a batch's alerts, the digests due) wait for the posts before theirs: they are refreshed before a post once
  ``WAITING_CLAIM_REFRESH_SECONDS`` passed since their last refresh, so none waits a worst post plus that.
- Webhook mode ends a batch's posted alerts together once the oldest waited ``WEBHOOK_END_WITHIN_SECONDS`` (or a
  post took that long): a crash in that window may post them again (a webhook cannot be asked), so it stays of the
  order of one end's own round trip on a busy table (0.1-0.5 s measured, bench/RESULTS.md 8h).
- A heartbeat older than ``HEALTH_STALE_SECONDS`` means a stuck processor: it must exceed the longest wait a healthy
  processor makes between two heartbeats (one post's worst case plus one backoff sleep, or a wait for a busy claim).
- The incidents' upkeep (root updates, thread samples: ``consumer/incidents.py``) spaces its requests (claims and
  Slack calls) ``UPKEEP_GAP_SECONDS`` apart on each processor: Slack allows about one post per second per channel and
  ~50 ``chat.update`` a minute (https://api.slack.com/docs/rate-limits), and the state table serves the record path
  too. Alerts and digests are not spaced (they are few: the budget), nor held back by it (another thread).
- On SIGTERM the KCL gives the processor ``shutdownGraceMillis`` (properties/cali.properties) to checkpoint. The
  shutdown path makes no Slack call (held events wait in the shared digest, which any processor sends), so the grace
  must cover the DynamoDB calls of one checkpoint-worthy step: a few requests at their timeouts.
"""

from __future__ import annotations

SLACK_TIMEOUT_SECONDS = 30
MAX_RETRY_AFTER_SECONDS = 20
WORST_POST_SECONDS = 2 * SLACK_TIMEOUT_SECONDS + MAX_RETRY_AFTER_SECONDS

BACKOFF_START_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 15.0
UNCERTAIN_PAUSE_SECONDS = BACKOFF_MAX_SECONDS  # after an unanswered post, before posting again

SEND_STALE_SECONDS = WORST_POST_SECONDS + BACKOFF_MAX_SECONDS + 15.0
WAITING_CLAIM_REFRESH_SECONDS = 2.0
WEBHOOK_END_WITHIN_SECONDS = 0.25
BUSY_POLL_SECONDS = 2.0
UPKEEP_GAP_SECONDS = 1.0

HEALTH_STALE_SECONDS = WORST_POST_SECONDS + BACKOFF_MAX_SECONDS + 25.0
DYNAMODB_CONNECT_TIMEOUT_SECONDS = 5
DYNAMODB_READ_TIMEOUT_SECONDS = 10
WORST_STATE_CALL_SECONDS = DYNAMODB_CONNECT_TIMEOUT_SECONDS + DYNAMODB_READ_TIMEOUT_SECONDS
