"""render_alert / render_digest: the exact payload for a representative alert, Slack's limits, hostile text."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from consumer.model import Alert, Level, LogEvent, RecordRef
from consumer.pipeline.render import Payload, render_alert, render_digest

SEOUL = ZoneInfo("Asia/Seoul")
SHARD = "shardId-000000000001"
SEQ = "49659000000000000000000000000000000000000000000000000042"

EVENT = LogEvent(
    level=Level.ERROR,
    raw_level="FATAL",
    message="ledger write failed for <@U123> & co",
    service="ledger-api",
    timestamp=datetime(2026, 11, 26, 5, 0, 10, tzinfo=UTC),
    trace_id="4bf92f3577b34da6a3ce929d0e0e0011",
    error_type="java.lang.IllegalStateException",
    stack="java.lang.IllegalStateException: ledger write failed\n"
          "\tat com.example.ledger.LedgerService.write(LedgerService.java:142)\n",
    host="ip-10-0-1-23",
    container="cali-log-generator-1",
)
ALERT = Alert(EVENT, RecordRef(SHARD, SEQ))

GOLDEN_ALERT: Payload = {
    "text": "[ERROR (FATAL)] ledger-api: ledger write failed for &lt;@U123&gt; &amp; co",
    "blocks": [
        {"type": "header",
         "text": {"type": "plain_text", "text": ":red_circle: ERROR (FATAL) \u00b7 ledger-api", "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "ledger write failed for &lt;@U123&gt; &amp; co"}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Service*\nledger-api"},
            {"type": "mrkdwn", "text": "*Time*\n2026-11-26 05:00:10.000 UTC (14:00:10 KST)"},
            {"type": "mrkdwn", "text": "*Trace id*\n`4bf92f3577b34da6a3ce929d0e0e0011`"},
            {"type": "mrkdwn", "text": "*Host*\nip-10-0-1-23 / cali-log-generator-1"},
            {"type": "mrkdwn", "text": "*Error*\n`java.lang.IllegalStateException`"},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            "```java.lang.IllegalStateException: ledger write failed\n"
            "\tat com.example.ledger.LedgerService.write(LedgerService.java:142)```")}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"shard {SHARD} \u00b7 seq {SEQ}"}]},
    ],
}


def test_golden_alert() -> None:
    assert render_alert(ALERT, SEOUL) == GOLDEN_ALERT


def test_golden_alert_repeated() -> None:
    payload = render_alert(ALERT, SEOUL, repeat=3)
    assert payload["text"] == GOLDEN_ALERT["text"] + " (x3)"
    fields = payload["blocks"][2]["fields"]
    assert fields[:-1] == GOLDEN_ALERT["blocks"][2]["fields"]
    assert fields[-1] == {"type": "mrkdwn", "text": "*Repeated*\n3 times"}


@pytest.mark.parametrize(
    ("event", "header", "text_start"),
    [
        pytest.param(LogEvent(Level.WARN, "slow", raw_level="WARN", service="auth-api"),
                     ":large_orange_circle: WARN \u00b7 auth-api", "[WARN] auth-api: slow", id="warn-same-label"),
        pytest.param(LogEvent(Level.WARN, "slow", raw_level="warning", service="auth-api"),
                     ":large_orange_circle: WARN (warning) \u00b7 auth-api", "[WARN (warning)] auth-api: slow",
                     id="warn-label-kept"),
        pytest.param(LogEvent(Level.ERROR, "x", raw_level="error"), ":red_circle: ERROR \u00b7 unknown service",
                     "[ERROR] unknown service: x", id="no-service-case-only-label"),
        pytest.param(LogEvent(Level.ERROR, "", raw_level="50", service="node-api"),
                     ":red_circle: ERROR (50) \u00b7 node-api", "[ERROR (50)] node-api: _(empty message)_",
                     id="numeric-level-empty-message"),
        pytest.param(LogEvent(Level.ERROR, "division by zero", error_type="ZeroDivisionError"),
                     ":red_circle: ERROR \u00b7 unknown service", "[ERROR] unknown service: division by zero",
                     id="trace-without-level"),
    ],
)
def test_header_and_fallback_text(event: LogEvent, header: str, text_start: str) -> None:
    payload = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL)
    assert payload["blocks"][0]["text"]["text"] == header
    assert payload["text"].startswith(text_start)


# -- display time --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "tz", "expected"),
    [
        pytest.param(datetime(2026, 11, 26, 5, 0, 10, tzinfo=UTC), "Asia/Seoul",
                     "2026-11-26 05:00:10.000 UTC (14:00:10 KST)", id="seoul"),
        pytest.param(datetime(2026, 11, 26, 16, 30, 0, 123000, tzinfo=UTC), "Asia/Seoul",
                     "2026-11-26 16:30:00.123 UTC (01:30:00 KST)", id="seoul-next-day"),
        pytest.param(datetime(2026, 11, 26, 5, 0, 10, tzinfo=UTC), "UTC",
                     "2026-11-26 05:00:10.000 UTC (05:00:10 UTC)", id="utc"),
        pytest.param(datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC), "America/New_York",
                     "2026-07-01 12:00:00.000 UTC (08:00:00 EDT)", id="new-york-summer"),
        pytest.param(None, "Asia/Seoul", "unknown", id="no-timestamp"),
        pytest.param(datetime(2026, 11, 26, 14, 0, 10, tzinfo=timezone(timedelta(hours=9))), "Asia/Seoul",
                     "2026-11-26 05:00:10.000 UTC (14:00:10 KST)", id="event-with-+09:00-offset"),
        pytest.param(datetime(2026, 11, 25, 21, 0, 10, tzinfo=timezone(timedelta(hours=-8))), "UTC",
                     "2026-11-26 05:00:10.000 UTC (05:00:10 UTC)", id="event-with--08:00-offset-next-day"),
    ],
)
def test_display_time(timestamp: datetime | None, tz: str, expected: str) -> None:
    payload = render_alert(Alert(replace(EVENT, timestamp=timestamp), RecordRef(SHARD, SEQ)), ZoneInfo(tz))
    assert payload["blocks"][2]["fields"][1]["text"] == f"*Time*\n{expected}"


# -- Slack's limits --------------------------------------------------------------------------------------------

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
MAX_BLOCKS = 50
TEXT_LIMIT = 40000


def check_limits(payload: Payload) -> None:
    blocks: list[dict[str, Any]] = payload["blocks"]
    assert 0 < len(blocks) <= MAX_BLOCKS
    assert 0 < len(payload["text"]) <= TEXT_LIMIT
    for block in blocks:
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= SECTION_LIMIT
            for field in block.get("fields", []):
                assert len(field["text"]) <= FIELD_LIMIT
            assert len(block.get("fields", [])) <= 10
        elif block["type"] == "context":
            for element in block["elements"]:
                assert len(element["text"]) <= SECTION_LIMIT


BIG = "db timeout after 3000ms & <retry>; " * 1500  # ~51 KB, with characters that grow when escaped
LONG_SERVICE = "svc-" + "x" * 196  # 200 characters

LIMIT_EVENTS = [
    pytest.param(replace(EVENT, message=BIG, service=LONG_SERVICE), id="50kb-message-200-char-service"),
    pytest.param(replace(EVENT, message="&" * 60000), id="60k-ampersands"),
    pytest.param(replace(EVENT, stack="\n".join(f"  at frame{i} & <{i}>" * 20 for i in range(1000))),
                 id="1000-line-stack"),
    pytest.param(replace(EVENT, trace_id="t" * 5000, error_type="E" * 5000, host="h" * 5000, container="c" * 5000),
                 id="huge-fields"),
    pytest.param(replace(EVENT, service="s" * 64 * 1024), id="64k-service"),
]


@pytest.mark.parametrize("event", LIMIT_EVENTS)
def test_alert_limits(event: LogEvent) -> None:
    payload = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL, repeat=12)
    check_limits(payload)
    json.dumps(payload)  # serialisable


def test_big_message_is_cut_visibly() -> None:
    payload = render_alert(Alert(replace(EVENT, message=BIG), RecordRef(SHARD, SEQ)), SEOUL)
    section = payload["blocks"][1]["text"]["text"]
    assert section.endswith("(truncated)")
    assert section.startswith("db timeout after 3000ms &amp; &lt;retry&gt;;")
    assert re.search(r"&(?:a|am|amp|l|lt|g|gt)?\s\u2026", section) is None  # no half escape before the marker


def test_stack_shows_the_top_lines() -> None:
    stack = "\n".join(f"line {i}" for i in range(100))
    payload = render_alert(Alert(replace(EVENT, stack=stack), RecordRef(SHARD, SEQ)), SEOUL)
    shown = payload["blocks"][3]["text"]["text"]
    assert shown == "```" + "\n".join(f"line {i}" for i in range(12)) + "```"


@pytest.mark.parametrize(
    ("level", "service"),
    [
        pytest.param(Level.ERROR, "ledger-api", id="short"),
        pytest.param(Level.WARN, "w" * 100, id="100-chars"),
        pytest.param(Level.ERROR, LONG_SERVICE, id="error-200-chars"),
        pytest.param(Level.WARN, LONG_SERVICE, id="warn-200-chars"),
        pytest.param(Level.ERROR, "e" * 140, id="error-140-chars"),
    ],
)
def test_header_within_150(level: Level, service: str) -> None:
    event = replace(EVENT, level=level, raw_level="warning" if level is Level.WARN else "FATAL", service=service)
    header = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL)["blocks"][0]["text"]["text"]
    assert len(header) <= HEADER_LIMIT
    assert header.startswith(":red_circle: " if level is Level.ERROR else ":large_orange_circle: ")
    assert header.endswith("(truncated)") == (len(service) > 120)


def test_header_cut_exactly_at_150_keeps_the_emoji() -> None:
    event = replace(EVENT, service="s" * 500)
    header = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL)["blocks"][0]["text"]["text"]
    assert len(header) == HEADER_LIMIT
    assert header.startswith(":red_circle: ERROR (FATAL) \u00b7 sss")
    assert header.endswith(" \u2026 (truncated)")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(replace(EVENT, service="<!channel> api"),
                     ":red_circle: ERROR (FATAL) \u00b7 \u2039!channel\u203a api", id="service"),
        pytest.param(replace(EVENT, raw_level="<!here>"), ":red_circle: ERROR (\u2039!here\u203a) \u00b7 ledger-api",
                     id="raw-level"),
        pytest.param(replace(EVENT, service="a & b"), ":red_circle: ERROR (FATAL) \u00b7 a & b", id="ampersand-kept"),
    ],
)
def test_header_has_no_angle_brackets(event: LogEvent, expected: str) -> None:
    header = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL)["blocks"][0]["text"]["text"]
    assert header == expected
    assert "<" not in header
    assert ">" not in header


# -- hostile text ----------------------------------------------------------------------------------------------

HOSTILE = "<!channel> <!here|here> <!everyone> <@U123> <#C123> <!subteam^S1> <https://evil.example|click> &amp;"
CONTROL = re.compile(r"<[!@#]|<https?:|<mailto:")


def unescaped_controls(payload: Payload) -> list[str]:
    return CONTROL.findall(json.dumps(payload, ensure_ascii=False))


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(replace(EVENT, message=HOSTILE), id="message"),
        pytest.param(replace(EVENT, trace_id=HOSTILE), id="trace_id"),
        pytest.param(replace(EVENT, error_type=HOSTILE), id="error_type"),
        pytest.param(replace(EVENT, host=HOSTILE), id="host"),
        pytest.param(replace(EVENT, container=HOSTILE), id="container"),
        pytest.param(replace(EVENT, stack=HOSTILE + "\n" + HOSTILE), id="stack"),
        pytest.param(replace(EVENT, message=HOSTILE * 200), id="long-message-cut"),
        pytest.param(replace(EVENT, service=HOSTILE), id="service"),
        pytest.param(replace(EVENT, raw_level=HOSTILE), id="raw_level"),
    ],
)
def test_hostile_text_never_reaches_slack_unescaped(event: LogEvent) -> None:
    payload = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL, repeat=2)
    assert unescaped_controls(payload) == []


def test_hostile_record_ref_is_escaped() -> None:
    payload = render_alert(Alert(EVENT, RecordRef(HOSTILE, HOSTILE)), SEOUL)
    assert unescaped_controls(payload) == []


def test_control_characters_are_visible_not_raw() -> None:
    event = replace(EVENT, message="nul\x00 esc\x1b[31m bell\x07", stack=None)
    payload = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL)
    assert payload["blocks"][1]["text"]["text"] == "nul\\x00 esc\\x1b[31m bell\\x07"
    assert re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", json.loads(json.dumps(payload))["text"]) is None


# -- digest ----------------------------------------------------------------------------------------------------

GOLDEN_DIGEST: Payload = {
    "text": "7 more ERROR/WARN in the last minute: payment-api 4, auth-api 3",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": ":hourglass: Alert digest", "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*7 more ERROR/WARN in the last minute* (held back by "
                                                               "the alert throttle or folded into an earlier alert)"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*payment-api*\n\u2022 4 x ERROR: db timeout "
                                                               "&lt;!here&gt;"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*auth-api*\n\u2022 3 x WARN: slow &amp; steady"}},
    ],
}


def test_golden_digest() -> None:
    lines = {("ERROR", "payment-api", "db timeout <!here>"): 4, ("WARN", "auth-api", "slow & steady"): 3}
    assert render_digest(lines, 60.0) == GOLDEN_DIGEST


@pytest.mark.parametrize(
    ("window", "span"),
    [
        pytest.param(0.0, "minute", id="0s"),
        pytest.param(60.0, "minute", id="60s"),
        pytest.param(89.0, "minute", id="89s"),
        pytest.param(150.0, "2 minutes", id="150s"),
        pytest.param(600.0, "10 minutes", id="600s"),
    ],
)
def test_digest_title_says_count_and_span(window: float, span: str) -> None:
    payload = render_digest({("ERROR", "a", "m"): 12}, window)
    assert payload["text"] == f"12 more ERROR/WARN in the last {span}: a 12"


def test_digest_lists_everything_within_slacks_limits_and_says_what_is_cut_past_them() -> None:
    many = {("ERROR", f"svc-{i:03d}", f"failure {'x' * 150} {i}"): 1 for i in range(1000)}
    payload = render_digest(many, 60.0)
    check_limits(payload)
    listed = sum(block["text"]["text"].count("\u2022 1 x ERROR") for block in payload["blocks"][2:-1])
    assert 0 < listed < 1000
    assert payload["blocks"][-1] == {"type": "section", "text": {
        "type": "mrkdwn", "text": f"_and {1000 - listed} more events not listed: past Slack's message limits_"}}
    few = render_digest({("ERROR", f"svc-{i}", "m"): 1 for i in range(40)}, 60.0)
    assert "not listed" not in json.dumps(few)  # 40 services fit: nothing cut


@pytest.mark.parametrize(
    "top",
    [
        pytest.param([("ERROR", HOSTILE, HOSTILE, 3)], id="hostile"),
        pytest.param([("ERROR", f"svc-{i}", BIG, 1) for i in range(10)], id="ten-services-50kb-messages"),
        pytest.param([("WARN", "s" * 64 * 1024, "m", 1)], id="64k-service"),
        pytest.param([("ERROR", f"svc-{i}", "m", 1) for i in range(200)], id="200-services"),
    ],
)
def test_digest_limits_and_escaping(top: list[tuple[str, str, str, int]]) -> None:
    payload = render_digest({(level, service, message): count for level, service, message, count in top}, 60.0)
    check_limits(payload)
    assert len(payload["blocks"][0]["text"]["text"]) <= HEADER_LIMIT
    assert unescaped_controls(payload) == []


# -- text hygiene in every field ---------------------------------------------------------------------------------

TRICKY = "ok\u202e gnp.exe \u200b```\n<!here> `x` \u2066"
INVISIBLE = re.compile("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def strings(payload: Any) -> list[str]:
    if isinstance(payload, str):
        return [payload]
    if isinstance(payload, dict):
        return [s for value in payload.values() for s in strings(value)]
    if isinstance(payload, list):
        return [s for value in payload for s in strings(value)]
    return []


@pytest.mark.parametrize("field", ["message", "trace_id", "error_type", "host", "container", "stack", "service",
                                   "raw_level"])
def test_bidi_and_zero_width_never_reach_slack(field: str) -> None:
    payload = render_alert(Alert(replace(EVENT, **{field: TRICKY}), RecordRef(SHARD, SEQ)), SEOUL, repeat=3)
    assert [s for s in strings(payload) if INVISIBLE.search(s)] == []
    assert "\\u202e" in json.dumps(payload, ensure_ascii=False).replace("\\\\", "\\")


def code_spans_are_intact(text: str) -> bool:
    """Our own backticks come in pairs (inline code) or as one ``` fence at each end of a block."""
    if text.startswith("```"):
        return text.endswith("```") and "`" not in text[3:-3]
    return text.count("`") % 2 == 0 and "```" not in text


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(replace(EVENT, error_type="Foo``` <!here>"), id="error-type"),
        pytest.param(replace(EVENT, trace_id="abc`def"), id="trace-id"),
        pytest.param(replace(EVENT, stack="Trace\n```\n*bold* outside\n`"), id="stack"),
        pytest.param(replace(EVENT, message="```\nfake block"), id="message"),
    ],
)
def test_log_text_cannot_close_or_open_a_code_block(event: LogEvent) -> None:
    payload = render_alert(Alert(event, RecordRef(SHARD, SEQ)), SEOUL)
    texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    texts += [f["text"].split("\n", 1)[1] for b in payload["blocks"] for f in b.get("fields", [])]
    assert all(code_spans_are_intact(t) for t in texts), texts


def test_digest_text_is_clean() -> None:
    payload = render_digest({("ERROR", "api\u202e", "db \u200b``` fail"): 3}, 60)
    assert [s for s in strings(payload) if INVISIBLE.search(s) or "```" in s] == []
