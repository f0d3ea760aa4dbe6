"""The timing relations of consumer/timing.py hold, and the values used elsewhere are the ones it defines."""

from __future__ import annotations

import re
from pathlib import Path

from consumer import health, timing
from consumer.deliver.slack import RETRIES_PER_POST

REPO = Path(__file__).resolve().parents[1]


def properties() -> dict[str, str]:
    text = (REPO / "properties" / "cali.properties").read_text()
    return dict(re.findall(r"^\s*(\w+)\s*=\s*(\S+)", text, re.M))


def test_one_post_is_bounded_by_its_timeout_and_one_retry_after() -> None:
    # a post: the request, at most one 429 retry (slack-sdk's handler, RETRIES_PER_POST) after Retry-After
    assert RETRIES_PER_POST == 1
    assert timing.WORST_POST_SECONDS >= (1 + RETRIES_PER_POST) * timing.SLACK_TIMEOUT_SECONDS \
        + timing.MAX_RETRY_AFTER_SECONDS


def test_a_slow_but_working_slack_fits_in_the_timeout() -> None:
    assert timing.SLACK_TIMEOUT_SECONDS >= 30  # slack-sdk's own default; issue 8 measured 8 s answers


def test_a_stale_send_claim_outlives_the_worst_post_and_a_backoff() -> None:
    assert timing.SEND_STALE_SECONDS > timing.WORST_POST_SECONDS + timing.BACKOFF_MAX_SECONDS


def test_a_claim_waiting_for_the_posts_before_it_is_refreshed_before_it_goes_stale() -> None:
    assert timing.WAITING_CLAIM_REFRESH_SECONDS + timing.WORST_POST_SECONDS < timing.SEND_STALE_SECONDS


def test_an_uncertain_outcome_waits_before_posting_again() -> None:
    assert timing.UNCERTAIN_PAUSE_SECONDS >= timing.BACKOFF_MAX_SECONDS


def test_health_staleness_exceeds_the_longest_legitimate_wait() -> None:
    longest = max(timing.WORST_POST_SECONDS + timing.BACKOFF_MAX_SECONDS,
                  timing.BUSY_POLL_SECONDS + timing.WORST_STATE_CALL_SECONDS)
    assert longest < timing.HEALTH_STALE_SECONDS
    assert health.STALE_AFTER_SECONDS == timing.HEALTH_STALE_SECONDS
    assert health.BEAT_EVERY_SECONDS < timing.HEALTH_STALE_SECONDS


def test_the_shutdown_grace_covers_the_state_calls_of_a_checkpoint() -> None:
    grace = int(properties()["shutdownGraceMillis"]) / 1000
    assert grace > timing.WORST_STATE_CALL_SECONDS  # shutdown makes no Slack call (no post on stop)
