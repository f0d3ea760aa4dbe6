"""decode + parse_line over every real Fluent Bit record, plus hand-written edge cases.

The expectation table was written by reading ``tests/fixtures/fluent-bit/records.jsonl`` (and its README) and
deciding what a person reading the alert expects; it is not a dump of what the parser happens to return.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from consumer.model import Dropped, Level, LogEvent
from consumer.pipeline.decode import MAX_RECORD_BYTES, decode
from consumer.pipeline.parse import MAX_FIELD_CHARS, parse_line
from tests.corpus import fluent_bit_records

# -- the fixture -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixtureRecord:
    case: str
    index: int  # position within its case, in shard sequence order
    data: bytes
    description: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.case, self.index)


def load_fixture() -> list[FixtureRecord]:
    seen: Counter[str] = Counter()
    records: list[FixtureRecord] = []
    for raw in fluent_bit_records():
        case = str(raw["case"])
        records.append(FixtureRecord(case, seen[case], base64.b64decode(raw["data_b64"]), str(raw["description"])))
        seen[case] += 1
    return records


RECORDS = load_fixture()
RECORD_PARAMS = [pytest.param(r, id=f"{r.case}-{r.index}") for r in RECORDS]

# -- what a user expects from each record ----------------------------------------------------------------

C1 = "c1-tail-json-parser"
C2 = "c2-tail-json-timekey"
C2B = "c2b-tail-json-timekey-eventtime"
C3 = "c3-tail-raw-text"
C4A = "c4a-tail-stacktrace-no-multiline"
C4B = "c4b-tail-stacktrace-multiline"
C5 = "c5-tail-json-hostile"
C6A = "c6a-forward-docker-raw"
C6B = "c6b-forward-docker-parser-filter"
C6C = "c6c-forward-docker-log-key"

CASE_SIZES = {C1: 12, C2: 13, C2B: 4, C3: 10, C4A: 18, C4B: 8, C5: 10, C6A: 5, C6B: 5, C6C: 5}

Expect = tuple[Level, str | None, str]  # (level, service, message prefix)
EMPTY = Dropped("empty")

# The 12 application lines of c1_app.log (c2 repeats them, c2b takes four of them).
APP_LINES: list[Expect] = [
    (Level.ERROR, "payment-api", "db timeout after 3000ms"),
    (Level.WARN, "auth-api", "token refresh slow: 1200ms"),
    (Level.INFO, "order-api", "order 1234 created"),
    (Level.DEBUG, "order-api", "cache miss key=order:1234"),
    (Level.ERROR, "payment-api", "card declined by issuer"),  # "error"
    (Level.WARN, "inventory-api", "stock below threshold sku=A-100"),  # "warning"
    (Level.WARN, "auth-api", "password retry 4/5"),  # "Warn"
    (Level.ERROR, "ledger-api", "cannot open ledger db, exiting"),  # FATAL
    (Level.ERROR, "payment-api", "settlement job aborted"),  # CRITICAL
    (Level.ERROR, "payment-api", "charge failed"),  # nested error {type, stack}
    (Level.ERROR, "ledger-api", "ledger write failed"),  # FATAL + nested Java error
    (Level.ERROR, "checkout-api", "\uacb0\uc81c \uc2e4\ud328 url=https://pay.example/v1/charge"),  # json.dumps
]

# Docker records: c6a (app line escaped inside "log"), c6b (parser filter), c6c (log_key: escaped, not JSON).
DOCKER_LINES: list[Expect] = [
    (Level.ERROR, "payment-api", "db timeout after 3000ms"),
    (Level.WARN, "auth-api", "token refresh slow: 1200ms"),
    (Level.ERROR, "ledger-api", "ledger write failed"),  # FATAL with a nested error
    (Level.ERROR, "chat-bot", "<!channel> @here <@U123> & <https://evil.example|click>"),  # raw: escaped at render
    (Level.ERROR, "payment-api", "plain text, not JSON 6bf92f3577b34da6a3ce929d0e0e0006"),  # plain text in log
]

UNKNOWN = Level.UNKNOWN

EXPECTED: dict[tuple[str, int], Expect | Dropped] = {
    **{(C1, i): e for i, e in enumerate(APP_LINES)},
    **{(C2, i): e for i, e in enumerate(APP_LINES)},
    (C2, 12): (Level.ERROR, "search-api", "line already has an @timestamp field"),
    **{(C2B, i): APP_LINES[j] for i, j in enumerate((0, 1, 4, 9))},
    # c3: tail without a parser, every line is {"log": "..."}
    (C3, 0): (Level.ERROR, "payment-api", "db timeout after 3000ms"),
    (C3, 1): (Level.WARN, "auth-api", "user \"kim\" said 'hi' path=C:\\temp\\x.log"),
    (C3, 2): EMPTY,  # three spaces
    (C3, 3): EMPTY,  # {"log":""}
    (C3, 4): EMPTY,  # tab only
    (C3, 5): (Level.INFO, "web", "windows line ending"),
    (C3, 6): (Level.ERROR, "batch-worker", "oversized payload dump: 0123456789abcdefghijklmnopqrstuvwxyz-"),
    (C3, 7): (Level.ERROR, "\uacb0\uc81c-api",
              "\uacb0\uc81c \uc2e4\ud328: \uc794\uc561 \ubd80\uc871 \U0001f4b8\U0001f525"),  # Korean + emoji
    (C3, 8): (Level.ERROR, "legacy-api", "bad bytes \ue0ff\ue0fe here"),  # Fluent Bit's U+E0NN for invalid bytes
    (C3, 9): (Level.ERROR, "cli", "coloured output"),  # ANSI colour codes around the level
    # c4a: no multiline handling: the header lines keep their level, each trace line stands alone
    (C4A, 0): (Level.INFO, "worker", "job 42 started"),
    (C4A, 1): (Level.ERROR, "worker", "job 42 crashed"),
    (C4A, 2): (UNKNOWN, None, "Traceback (most recent call last):"),
    (C4A, 3): (UNKNOWN, None, 'File "/app/worker.py", line 12, in <module>'),
    (C4A, 4): (UNKNOWN, None, "main()"),
    (C4A, 5): (UNKNOWN, None, 'File "/app/worker.py", line 8, in main'),
    (C4A, 6): (UNKNOWN, None, "ratio = total / count"),
    (C4A, 7): (UNKNOWN, None, "ZeroDivisionError: division by zero"),
    (C4A, 8): (Level.INFO, "worker", "job 43 started"),
    (C4A, 9): (Level.INFO, "c.e.LedgerApp", "Started LedgerApp in 3.2 seconds"),  # Spring Boot layout
    (C4A, 10): (Level.ERROR, "c.e.LedgerController", "request failed"),
    (C4A, 11): (UNKNOWN, None, "java.lang.IllegalStateException: ledger write failed"),
    (C4A, 12): (UNKNOWN, None, "at com.example.ledger.LedgerService.write(LedgerService.java:142)"),
    (C4A, 13): (UNKNOWN, None, "at com.example.ledger.LedgerController.post(LedgerController.java:57)"),
    (C4A, 14): (UNKNOWN, None, "Caused by: java.sql.SQLTransientConnectionException: pool exhausted"),
    (C4A, 15): (UNKNOWN, None, "at com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:696)"),
    (C4A, 16): (UNKNOWN, None, "... 12 more"),
    (C4A, 17): (Level.INFO, "c.e.LedgerApp", "recovered"),
    # c4b: multiline joins each trace into one record (with a trailing \n in every log value)
    (C4B, 0): (Level.INFO, "worker", "job 42 started"),
    (C4B, 1): (Level.ERROR, "worker", "job 42 crashed"),
    (C4B, 2): (Level.ERROR, None, "division by zero"),
    (C4B, 3): (Level.INFO, "worker", "job 43 started"),
    (C4B, 4): (Level.INFO, "c.e.LedgerApp", "Started LedgerApp in 3.2 seconds"),
    (C4B, 5): (Level.ERROR, "c.e.LedgerController", "request failed"),
    (C4B, 6): (Level.ERROR, None, "ledger write failed"),
    (C4B, 7): (Level.INFO, "c.e.LedgerApp", "recovered"),
    # c5: hostile JSON lines
    (C5, 0): (Level.ERROR, "chat-bot", "<!channel> @here <@U123> & <https://evil.example|click>"),
    (C5, 1): (Level.ERROR, "bulk-api", "db timeout after 3000ms; db timeout after 3000ms; "),
    (C5, 2): (Level.ERROR, "node-api", "numeric level"),  # "level":50 (pino/bunyan)
    (C5, 3): (UNKNOWN, "node-api", "null level"),
    (C5, 4): (UNKNOWN, "node-api", "no level at all"),
    (C5, 5): (Level.ERROR, None, '["ERROR","payment-api","db timeout after 3000ms",'),  # array: whole line kept
    (C5, 6): (Level.ERROR, "legacy-api", "bad bytes \ue0ff\ue0fe in message"),
    (C5, 7): (Level.ERROR, "edge-api", "nul\x00 esc\x1b[31m lone\ue0ed\ue0a0\ue080 end"),  # kept raw; render escapes
    (C5, 8): (Level.ERROR, "dup-api", "duplicate level key"),
    (C5, 9): (Level.ERROR, "cut-api", '{"timestamp":"2026-11-26T05:03:09.000Z","level":"ERROR","service":"cut-api"'),
    **{(C6A, i): e for i, e in enumerate(DOCKER_LINES)},
    **{(C6B, i): e for i, e in enumerate(DOCKER_LINES)},
    **{(C6C, i): e for i, e in enumerate(DOCKER_LINES)},
}

ERROR_TYPES: dict[tuple[str, int], str] = {
    (C1, 9): "TimeoutError",
    (C1, 10): "java.lang.IllegalStateException",
    (C2, 9): "TimeoutError",
    (C2, 10): "java.lang.IllegalStateException",
    (C2B, 3): "TimeoutError",
    (C4B, 2): "ZeroDivisionError",
    (C4B, 6): "java.lang.IllegalStateException",
    (C6A, 2): "TimeoutError",
    (C6B, 2): "TimeoutError",
    (C6C, 2): "TimeoutError",
}

STACK_STARTS: dict[tuple[str, int], str] = {
    (C1, 9): "Traceback (most recent call last):\n",
    (C1, 10): "java.lang.IllegalStateException: ledger write failed\n\tat com.example.ledger.",
    (C4B, 2): "Traceback (most recent call last):\n  File",
    (C4B, 6): "java.lang.IllegalStateException: ledger write failed\n\tat ",
    (C6A, 2): "Traceback (most recent call last):\n",  # the nested stack was escaped twice in c6a
    (C6C, 2): "Traceback (most recent call last):\n",
}

DOCKER_CONTAINER = "cali-log-generator-1"  # container_name "/cali-log-generator-1" without the slash

TIMESTAMPS: dict[tuple[str, int], datetime] = {
    (C1, 0): datetime(2026, 11, 26, 5, 0, 0, 123000, tzinfo=UTC),
    (C2, 0): datetime(2026, 11, 26, 5, 0, 0, 123000, tzinfo=UTC),  # the event's time, not the read time
    (C2, 12): datetime(2026, 11, 26, 5, 0, 12, tzinfo=UTC),
    (C3, 0): datetime(2026, 11, 26, 5, 0, 0, 123000, tzinfo=UTC),  # "2026-11-26 05:00:00,123" in text
    (C4A, 10): datetime(2026, 11, 26, 5, 2, 1, tzinfo=UTC),  # Spring Boot layout
    (C6A, 0): datetime(2026, 11, 26, 5, 4, 0, tzinfo=UTC),
    (C6C, 4): datetime(2026, 11, 26, 5, 4, 5, tzinfo=UTC),
}


# -- fixture tests ---------------------------------------------------------------------------------------


def test_expectation_table_covers_every_fixture_record() -> None:
    assert Counter(r.case for r in RECORDS) == CASE_SIZES
    assert {r.key for r in RECORDS} == set(EXPECTED)


@pytest.mark.parametrize("record", RECORD_PARAMS)
def test_fixture_record(record: FixtureRecord) -> None:
    decoded = decode(record.data)
    # Every Fluent Bit record is one JSON text (or log_key text) + "\n", valid UTF-8, well under 1 MiB.
    assert (decoded.invalid_utf8, decoded.truncated) == (False, False)
    assert len(decoded.lines) == 1
    parsed = parse_line(decoded.lines[0])

    expected = EXPECTED[record.key]
    if isinstance(expected, Dropped):
        assert parsed == expected
        return
    assert isinstance(parsed, LogEvent), parsed
    level, service, prefix = expected
    assert (parsed.level, parsed.service) == (level, service)
    assert parsed.message.startswith(prefix), parsed.message[:200]
    assert parsed.error_type == ERROR_TYPES.get(record.key)
    if record.key in STACK_STARTS:
        assert parsed.stack is not None
        assert parsed.stack.startswith(STACK_STARTS[record.key])
    expected_container = DOCKER_CONTAINER if record.case in (C6A, C6B) else None
    assert parsed.container == expected_container
    if record.key in TIMESTAMPS:
        assert parsed.timestamp == TIMESTAMPS[record.key]


@pytest.mark.parametrize("record", RECORD_PARAMS)
def test_fixture_record_message_is_clean(record: FixtureRecord) -> None:
    """No parse artefacts: no leading indentation, no trailing multiline newline, no escaped JSON quotes."""
    parsed = parse_line(decode(record.data).lines[0])
    if isinstance(parsed, Dropped):
        return
    assert not parsed.message.startswith((" ", "\t", "\n"))
    assert not parsed.message.endswith(("\n", "\r"))
    if record.case != C5:  # c5 lines (array, cut JSON) legitimately keep JSON text
        assert '\\"' not in parsed.message


def test_long_fixture_messages_are_kept_whole() -> None:
    by_key = {r.key: r for r in RECORDS}
    bulk = parse_line(decode(by_key[(C5, 1)].data).lines[0])
    text = parse_line(decode(by_key[(C3, 6)].data).lines[0])
    assert isinstance(bulk, LogEvent)
    assert isinstance(text, LogEvent)
    assert len(bulk.message) == 50000  # under MAX_FIELD_CHARS: the render stage cuts for Slack, not parse
    assert text.message.startswith("oversized payload dump: ")
    assert len(text.message) > 19000


# -- hand-written records ----------------------------------------------------------------------------------


def parse_record(data: bytes) -> list[LogEvent | Dropped]:
    return [parse_line(line) for line in decode(data).lines]


Summary = tuple[Level, str | None, str] | Dropped


def summary(result: LogEvent | Dropped) -> Summary:
    if isinstance(result, Dropped):
        return Dropped(result.reason)
    return (result.level, result.service, result.message)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            b'{"level":"ERROR","service":"a","message":"one"}\n{"level":"INFO","message":"two"}\n',
            [(Level.ERROR, "a", "one"), (Level.INFO, None, "two")],
            id="two-json-lines",
        ),
        pytest.param(
            b'{"level":"WARN","message":"crlf"}\r\n\r\n   \n2026-11-26 05:00:00,000 ERROR [svc] text line',
            [(Level.WARN, None, "crlf"), (Level.ERROR, "svc", "text line")],
            id="crlf-blank-and-text-without-final-newline",
        ),
        pytest.param(b"\n\n \t \n", [], id="only-blank-lines"),
        pytest.param(b"", [], id="empty-record"),
        pytest.param(
            b'{"log":""}\n{"log":"ERROR [x] y"}\n',
            [Dropped("empty"), (Level.ERROR, "x", "y")],
            id="empty-log-then-text",
        ),
    ],
)
def test_several_lines_in_one_record(data: bytes, expected: list[Summary]) -> None:
    assert [summary(r) for r in parse_record(data)] == expected


def test_raw_invalid_utf8_is_replaced_not_fatal() -> None:
    decoded = decode(b'\xff\xfe{"level":"ERROR"}')
    assert decoded.invalid_utf8 is True
    [line] = decoded.lines
    assert line.startswith("\ufffd\ufffd")
    parsed = parse_line(line)
    assert isinstance(parsed, LogEvent)
    assert parsed.level is Level.ERROR


def test_raw_invalid_utf8_before_json_keeps_a_readable_message() -> None:
    [line] = decode(b'\xff\xfe{"level":"ERROR","message":"disk full"}').lines
    parsed = parse_line(line)
    assert isinstance(parsed, LogEvent)
    assert parsed.message == "disk full"  # the replaced bytes are stripped before the JSON


@pytest.mark.parametrize(
    "data",
    [
        pytest.param('\ufeff{"level":"ERROR","service":"win-api","message":"disk full"}\n'.encode(), id="raw-bom"),
        pytest.param(json.dumps({"log": '\ufeff{"level":"ERROR","service":"win-api","message":"disk full"}'}).encode(),
                     id="bom-inside-log"),
    ],
)
def test_utf8_bom_before_json(data: bytes) -> None:
    [parsed] = parse_record(data)
    assert summary(parsed) == (Level.ERROR, "win-api", "disk full")


def test_two_megabyte_record_is_cut_and_flagged() -> None:
    data = b'{"level":"ERROR","service":"big-api","message":"' + b"x" * (2 * 1024 * 1024) + b'"}\n'
    decoded = decode(data)
    assert decoded.truncated is True
    assert decoded.invalid_utf8 is False
    assert sum(len(line.encode()) for line in decoded.lines) <= MAX_RECORD_BYTES
    [parsed] = [parse_line(line) for line in decoded.lines]
    # The cut JSON no longer parses: level and service are salvaged, the message is bounded.
    assert isinstance(parsed, LogEvent)
    assert (parsed.level, parsed.service) == (Level.ERROR, "big-api")
    assert len(parsed.message) <= MAX_FIELD_CHARS


def test_cut_inside_a_multibyte_character_is_not_invalid_utf8() -> None:
    prefix = b'{"level":"ERROR","message":"x'  # 29 bytes: the 1 MiB cut lands inside a 3-byte character
    data = prefix + "\uac00".encode() * 400_000 + b'"}\n'
    assert (MAX_RECORD_BYTES - len(prefix)) % 3 != 0
    decoded = decode(data)
    assert decoded.truncated is True
    assert decoded.invalid_utf8 is False
    assert "\ufffd" not in decoded.lines[0]


@pytest.mark.parametrize("char", ["\u00e9", "\uac00", "\U0001f4b8"], ids=["2-byte", "3-byte", "4-byte"])
@pytest.mark.parametrize("pad", range(4))
def test_cut_lands_on_a_character_boundary(char: str, pad: int) -> None:
    prefix = b'{"level":"ERROR","message":"' + b"x" * pad
    data = prefix + char.encode() * (MAX_RECORD_BYTES // len(char.encode()) + 10) + b'"}\n'
    decoded = decode(data)
    assert (decoded.truncated, decoded.invalid_utf8) == (True, False)
    [line] = decoded.lines
    assert MAX_RECORD_BYTES - len(char.encode()) < len(line.encode()) <= MAX_RECORD_BYTES
    assert line.endswith(char)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(('{"a":' * 100_000 + "1" + "}" * 100_000).encode(), id="objects-100k"),
        pytest.param(('{"level":"ERROR","a":' + "[" * 5000 + "]" * 5000 + "}").encode(), id="arrays-in-object"),
        pytest.param(('{"log":"' + '{\\"a\\":' * 5000 + "1" + "}" * 5000 + '"}').encode(), id="inside-log"),
    ],
)
def test_deeply_nested_json_is_dropped(data: bytes) -> None:
    assert parse_record(data) == [Dropped("too_deeply_nested")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("[1,2,3]", (Level.UNKNOWN, None, "[1,2,3]"), id="numbers"),
        pytest.param('[{"level":"ERROR","service":"arr-api"}]', (Level.ERROR, "arr-api",
                                                                 '[{"level":"ERROR","service":"arr-api"}]'),
                     id="objects-level-salvaged"),
        pytest.param('["WARN","x"]', (Level.WARN, None, '["WARN","x"]'), id="strings"),
        pytest.param("[]", (Level.UNKNOWN, None, "[]"), id="empty"),
        pytest.param('"just a string"', (Level.UNKNOWN, None, '"just a string"'), id="json-string"),
        pytest.param("42", (Level.UNKNOWN, None, "42"), id="json-number"),
    ],
)
def test_json_that_is_not_an_object(line: str, expected: Summary) -> None:
    assert summary(parse_line(line)) == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        pytest.param("60", Level.ERROR, id="60-fatal"),
        pytest.param("50", Level.ERROR, id="50-error"),
        pytest.param("50.5", Level.ERROR, id="float"),
        pytest.param("40", Level.WARN, id="40-warn"),
        pytest.param("30", Level.INFO, id="30-info"),
        pytest.param("20", Level.DEBUG, id="20-debug"),
        pytest.param("10", Level.TRACE, id="10-trace"),
        pytest.param('"50"', Level.ERROR, id="numeric-string"),
        pytest.param("-1", Level.UNKNOWN, id="negative"),
        pytest.param("true", Level.UNKNOWN, id="true"),
        pytest.param("false", Level.UNKNOWN, id="false"),
        pytest.param("null", Level.UNKNOWN, id="null"),
        pytest.param('{"name":"ERROR"}', Level.UNKNOWN, id="object"),
        pytest.param('["ERROR"]', Level.UNKNOWN, id="array"),
    ],
)
def test_level_value_types(level: str, expected: Level) -> None:
    parsed = parse_line(f'{{"level":{level},"service":"s","message":"m"}}')
    assert summary(parsed) == (expected, "s", "m")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param('{"severity":"ERROR","message":"gcp"}', (Level.ERROR, None, "gcp"), id="severity"),
        pytest.param('{"severity":"WARNING","message":"gcp"}', (Level.WARN, None, "gcp"), id="severity-warning"),
        pytest.param('{"levelname":"CRITICAL","msg":"py","app":"py-api"}', (Level.ERROR, "py-api", "py"),
                     id="levelname-msg-app"),
        pytest.param('{"log.level":"warn","message":"ecs","service.name":"ecs-api"}', (Level.WARN, "ecs-api", "ecs"),
                     id="ecs-dotted-keys"),
        pytest.param('{"log":{"level":"error"},"message":"ecs nested"}', (Level.ERROR, None, "ecs nested"),
                     id="ecs-nested-log-level"),
        pytest.param('{"lvl":"err","msg":"short"}', (Level.ERROR, None, "short"), id="lvl-err"),
        pytest.param('{"loglevel":"Notice","text":"t"}', (Level.INFO, None, "t"), id="loglevel-notice"),
        pytest.param('{"level":"ERROR"}', (Level.ERROR, None, ""), id="no-message"),
        pytest.param('{"level":"ERROR","message":{"code":7}}', (Level.ERROR, None, '{"code": 7}'),
                     id="object-message"),
        pytest.param(
            '{"log.level":"error","message":"x","service":{"name":"ecs-api"}}', (Level.ERROR, "ecs-api", "x"),
            id="ecs-nested-service",
        ),
        pytest.param('{"level":"ERROR","message":"x","service":"svc","service.name":"dotted"}',
                     (Level.ERROR, "dotted", "x"), id="service-name-wins-over-service"),
    ],
)
def test_level_and_field_keys(line: str, expected: Summary) -> None:
    assert summary(parse_line(line)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1764133200123", datetime(2025, 11, 26, 5, 0, 0, 123000, tzinfo=UTC), id="epoch-millis"),
        pytest.param("1764133200", datetime(2025, 11, 26, 5, 0, 0, tzinfo=UTC), id="epoch-seconds"),
        pytest.param("1764133200.5", datetime(2025, 11, 26, 5, 0, 0, 500000, tzinfo=UTC), id="epoch-float"),
        pytest.param('"2026-11-26T05:00:00.123Z"', datetime(2026, 11, 26, 5, 0, 0, 123000, tzinfo=UTC), id="iso-z"),
        pytest.param('"2026-11-26T14:00:00+09:00"', datetime(2026, 11, 26, 5, 0, 0, tzinfo=UTC), id="iso-offset"),
        pytest.param('"2026-11-26 05:00:00"', datetime(2026, 11, 26, 5, 0, 0, tzinfo=UTC), id="naive-is-utc"),
        pytest.param('"yesterday"', None, id="unparseable"),
        pytest.param("99999999999999999999", None, id="out-of-range"),
        pytest.param("true", None, id="bool"),
    ],
)
def test_timestamps(value: str, expected: datetime | None) -> None:
    parsed = parse_line(f'{{"level":"ERROR","message":"m","timestamp":{value}}}')
    assert isinstance(parsed, LogEvent)
    assert parsed.timestamp == expected
    if parsed.timestamp is not None:
        assert parsed.timestamp.utcoffset() is not None


def test_offset_timestamp_keeps_the_instant() -> None:
    parsed = parse_line('{"level":"ERROR","message":"m","timestamp":"2026-11-26T14:00:00+09:00"}')
    assert isinstance(parsed, LogEvent)
    assert parsed.timestamp is not None
    assert parsed.timestamp.utcoffset() == timedelta(hours=9)
    assert parsed.timestamp == datetime(2026, 11, 26, 14, 0, tzinfo=timezone(timedelta(hours=9)))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("\x1b[31mERROR\x1b[0m [cli] boom", (Level.ERROR, "cli", "boom"), id="coloured-level"),
        pytest.param("2026-11-26 05:00:06,000 \x1b[1;33mWARN\x1b[0m [ui] \x1b[4mslow\x1b[0m render",
                     (Level.WARN, "ui", "slow render"), id="colours-everywhere"),
        pytest.param("\x1b[32mall good\x1b[0m", (Level.UNKNOWN, None, "all good"), id="no-level"),
        pytest.param("\x1b[?25l\x1b[2KERROR [tty] cursor codes", (Level.ERROR, "tty", "cursor codes"),
                     id="private-mode-codes"),
    ],
)
def test_text_lines_with_ansi_colour_codes(line: str, expected: Summary) -> None:
    parsed = parse_line(line)
    assert summary(parsed) == expected
    assert isinstance(parsed, LogEvent)
    assert "\x1b" not in parsed.message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("2026-11-26 05:00:00,123 ERROR [payment-api] db timeout", (Level.ERROR, "payment-api",
                                                                               "db timeout"), id="bracketed"),
        pytest.param("no errors here, just an ERROR-free line", (Level.UNKNOWN, None,
                                                                "no errors here, just an ERROR-free line"),
                     id="error-as-part-of-a-word"),
        pytest.param("WARNING: disk 91% full", (Level.WARN, None, ": disk 91% full"), id="python-warnings-style"),
        pytest.param("hello world", (Level.UNKNOWN, None, "hello world"), id="no-level"),
    ],
)
def test_text_lines(line: str, expected: Summary) -> None:
    assert summary(parse_line(line)) == expected


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("", id="empty"),
        pytest.param("{", id="open-brace"),
        pytest.param('{"log":', id="cut-log"),
        pytest.param('{"log":null}', id="null-log"),
        pytest.param('{"log":{"log":{"log":"x"}}}', id="log-objects"),
        pytest.param('{\\"a', id="escaped-cut"),
        pytest.param("\x00\x01\x02", id="control-bytes"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param('{"level":"ERROR","timestamp":"9999-99-99"}', id="bad-date"),
        pytest.param('{"level":"ERROR","timestamp":1e400}', id="infinite-time"),
        pytest.param('{"level":NaN,"timestamp":NaN}', id="nan"),
        pytest.param("x" * (MAX_FIELD_CHARS * 3), id="huge-text"),
    ],
)
def test_parse_never_raises(line: str) -> None:
    assert isinstance(parse_line(line), LogEvent | Dropped)


def test_fields_are_capped() -> None:
    long = "y" * (MAX_FIELD_CHARS + 10)
    parsed = parse_line(json.dumps({"level": "ERROR", "message": long, "service": long}))
    assert isinstance(parsed, LogEvent)
    assert len(parsed.message) == MAX_FIELD_CHARS
    assert parsed.service is not None
    assert len(parsed.service) == MAX_FIELD_CHARS
