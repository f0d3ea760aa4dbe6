"""consumer/pipeline/fingerprint.py: what varies between occurrences of one problem becomes a placeholder."""

from __future__ import annotations

import pytest

from consumer.pipeline.fingerprint import template


@pytest.mark.parametrize(("message", "expected"), [
    ("db timeout after 3000ms", "db timeout after <duration>"),
    ("order 81723 creation failed", "order <n> creation failed"),
    ("user 3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f not found", "user <uuid> not found"),
    ("refund rf_0bf5e8d681 failed: ledger write rejected", "refund rf_<id> failed: ledger write rejected"),
    ("payment pay_10d18426d84f pending review: amount=120 USD", "payment pay_<id> pending review: amount=<n> USD"),
    ("worker 3 out of memory: rss 1192MB over limit 512MB", "worker <n> out of memory: rss <size> over limit <size>"),
    ("upload of 2.5 GiB refused", "upload of <size> refused"),
    ("retrying request to auth-db:5432 (attempt 2)", "retrying request to auth-db:<n> (attempt <n>)"),
    ("broker kafka-3 unreachable", "broker kafka-<id> unreachable"),
    ("password retry 3 for user u-1234", "password retry <n> for user u-<id>"),
    ("GET /v1/orders returned 503", "GET /v1/orders returned <n>"),  # short words with digits stay (v1, s3, http2)
    ("cache_miss_ratio_high on redis", "cache_miss_ratio_high on redis"),  # words without digits stay
    ("connect to 10.0.3.7:6379 refused", "connect to <ip> refused"),
    ('key "a b" missing', "key <quoted> missing"),
    ("  spaced\t out  ", "spaced out"),
])
def test_template(message: str, expected: str) -> None:
    assert template(message) == expected
