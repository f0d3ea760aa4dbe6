"""Unit tests of the log generator: records, Fluent Bit bytes, outputs, CLI. No network: Kinesis is faked."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from generator import (
    DEFAULT_SERVICES,
    LEVELS,
    KinesisOutput,
    LogLineFactory,
    RecordDiscarded,
    StdoutOutput,
    escape_string,
    fluent_bit_record,
    format_timestamp,
    make_line,
    partition_key,
)
from generator.__main__ import build_parser, run
from generator.fluentbit import MAX_EVENT_SIZE, _escape_utf8_bytes
from generator.outputs import docker_fields
from tests.corpus import fluent_bit_records

REPO = Path(__file__).resolve().parents[1]
FIXED = datetime(2026, 11, 26, 5, 0, 0, 123456, tzinfo=UTC)
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PARTITION_KEY_RE = re.compile(r"^[0-9A-Za-z]{10}[0-9]{6,8}$")


def fixed_clock() -> datetime:
    return FIXED


def without_timestamps(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "timestamp"} for r in records]


# ---------------------------------------------------------------------------------------------------- records


def test_same_seed_same_sequence() -> None:
    a = LogLineFactory(42, 0.3, now=fixed_clock).take(500)
    b = LogLineFactory(42, 0.3, now=fixed_clock).take(500)
    assert a == b
    assert LogLineFactory(43, 0.3, now=fixed_clock).take(500) != a


def test_same_seed_same_sequence_apart_from_time() -> None:
    ticks = iter(FIXED + timedelta(seconds=i) for i in range(10_000))
    a = LogLineFactory(7, 0.2, now=fixed_clock).take(200)
    b = LogLineFactory(7, 0.2, now=lambda: next(ticks)).take(200)
    assert without_timestamps(a) == without_timestamps(b)
    assert [r["timestamp"] for r in a] != [r["timestamp"] for r in b]


def test_level_ratio_roughly_honoured() -> None:
    n = 10_000
    levels = Counter(r["level"] for r in LogLineFactory(1, 0.2, now=fixed_clock).take(n))
    assert set(levels) == set(LEVELS)
    assert (levels["ERROR"] + levels["WARN"]) / n == pytest.approx(0.2, abs=0.015)
    assert levels["ERROR"] / n == pytest.approx(0.12, abs=0.012)
    assert levels["WARN"] / n == pytest.approx(0.08, abs=0.01)
    assert levels["INFO"] > levels["DEBUG"] > 0


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_level_ratio_extremes(ratio: float) -> None:
    levels = Counter(r["level"] for r in LogLineFactory(3, ratio, now=fixed_clock).take(2000))
    alerting = levels["ERROR"] + levels["WARN"]
    assert alerting == (2000 if ratio == 1.0 else 0)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_error_ratio_validated(bad: float) -> None:
    with pytest.raises(ValueError, match="error_ratio"):
        LogLineFactory(1, bad)


def test_fields_present_and_typed() -> None:
    records = LogLineFactory(5, 0.5).take(3000)
    with_error = 0
    for r in records:
        assert list(r)[:5] == ["timestamp", "level", "service", "message", "trace_id"]
        assert TIMESTAMP_RE.match(r["timestamp"]), r
        assert r["level"] in LEVELS
        assert r["service"] in DEFAULT_SERVICES
        assert isinstance(r["message"], str) and r["message"] and "{" not in r["message"]
        assert re.fullmatch(r"[0-9a-f]{32}", r["trace_id"])
        assert "seq" not in r
        if "error" in r:
            with_error += 1
            assert r["level"] == "ERROR"
            assert list(r) == ["timestamp", "level", "service", "message", "trace_id", "error"]
            error = r["error"]
            assert set(error) == {"type", "stack"}
            assert error["stack"].startswith("Traceback (most recent call last):\n  File ")
            assert error["stack"].splitlines()[-1].startswith(error["type"])
        else:
            assert list(r) == ["timestamp", "level", "service", "message", "trace_id"]
    errors = sum(1 for r in records if r["level"] == "ERROR")
    assert 0 < with_error < errors  # some ERRORs carry a stack, not all


def test_messages_are_realistic() -> None:
    messages = [r["message"] for r in LogLineFactory(11, 0.5, now=fixed_clock).take(3000)]
    assert len(set(messages)) > 1000  # numbers, ids and durations vary
    assert any(re.fullmatch(r"db timeout after \d+ms", m) for m in messages)
    assert any(re.fullmatch(r"token refresh slow: \d+ms", m) for m in messages)
    assert sum(bool(re.search(r"\d", m)) for m in messages) > 0.8 * len(messages)


def test_services_and_forced_level() -> None:
    factory = LogLineFactory(2, 0.2, services=["billing-worker"], now=fixed_clock)
    assert {r["service"] for r in factory.take(200)} == {"billing-worker"}
    forced = factory.line(level="ERROR", service="gateway")
    assert forced["level"] == "ERROR" and forced["service"] == "gateway"
    with pytest.raises(ValueError):
        factory.line(level="FATAL")


def test_injectable_clock_and_timestamp_format() -> None:
    record = LogLineFactory(1, now=fixed_clock).line()
    assert record["timestamp"] == "2026-11-26T05:00:00.123Z"
    seoul = datetime(2026, 11, 26, 14, 0, 1, 999_999, tzinfo=timezone(timedelta(hours=9)))
    assert format_timestamp(seoul) == "2026-11-26T05:00:01.999Z"
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"  # naive = UTC


def test_seq_when_asked() -> None:
    records = LogLineFactory(9, 0.5, with_seq=True, seq_start=100, now=fixed_clock).take(50)
    assert [r["seq"] for r in records] == list(range(100, 150))
    assert all(list(r)[-1] == "seq" for r in records)


def test_make_line_exact() -> None:
    record = make_line(
        "ERROR", "payment-api", "db timeout after 3000ms",
        timestamp=FIXED, trace_id="4bf92f3577b34da6a3ce929d0e0e0001",
        error={"type": "TimeoutError", "stack": "Traceback ...\n  File x\nTimeoutError: boom"},
        seq=7, extra={"host": "pod-1"},
    )
    assert list(record.items()) == [
        ("timestamp", "2026-11-26T05:00:00.123Z"),
        ("level", "ERROR"),
        ("service", "payment-api"),
        ("message", "db timeout after 3000ms"),
        ("trace_id", "4bf92f3577b34da6a3ce929d0e0e0001"),
        ("error", {"type": "TimeoutError", "stack": "Traceback ...\n  File x\nTimeoutError: boom"}),
        ("seq", 7),
        ("host", "pod-1"),
    ]
    minimal = make_line("warning", "auth-api", "x", now=fixed_clock)
    assert minimal["timestamp"] == "2026-11-26T05:00:00.123Z"
    assert re.fullmatch(r"[0-9a-f]{32}", minimal["trace_id"])
    assert list(minimal) == ["timestamp", "level", "service", "message", "trace_id"]


# ------------------------------------------------------------------------------------------ Fluent Bit bytes


def load_fixtures() -> list[dict[str, Any]]:
    return fluent_bit_records()


def fixture_data(record: Mapping[str, Any]) -> bytes:
    return base64.b64decode(record["data_b64"])


def decode_object(data: bytes) -> tuple[object, bool]:
    """JSON-decode Kinesis data; also says whether any object in it repeated a key."""
    duplicated = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        duplicated = duplicated or len(pairs) != len({k for k, _ in pairs})
        return dict(pairs)

    return json.loads(data.decode("utf-8"), object_pairs_hook=hook), duplicated


def test_fluent_bit_record_reproduces_fixture_bytes_c1_c6b() -> None:
    cases = [r for r in load_fixtures() if r["case"] in ("c1-tail-json-parser", "c6b-forward-docker-parser-filter")]
    assert len(cases) == 17
    for case in cases:
        data = fixture_data(case)
        obj, _ = decode_object(data)
        assert isinstance(obj, dict), case["description"]
        assert fluent_bit_record(obj) == data, case["description"]


def test_fluent_bit_record_reproduces_every_round_trippable_fixture() -> None:
    """All JSON-object records, except the 4 that need the raw input (invalid bytes, a duplicated key)."""
    checked = 0
    for case in load_fixtures():
        data = fixture_data(case)
        try:
            obj, duplicated = decode_object(data)
        except ValueError:
            continue  # c6c: log_key output is not JSON
        pua = any(0xE000 <= ord(ch) <= 0xE0FF for ch in data.decode("utf-8"))
        if not isinstance(obj, dict) or duplicated or pua:
            continue
        assert fluent_bit_record(obj) == data, (case["case"], case["description"])
        checked += 1
    assert checked == 81


def pua_to_raw(text: str) -> bytes:
    """Undo Fluent Bit's invalid-byte mapping: U+E0NN back to the raw byte 0xNN."""
    return b"".join(bytes([ord(ch) - 0xE000]) if 0xE000 <= ord(ch) <= 0xE0FF else ch.encode() for ch in text)


def test_invalid_utf8_bytes_match_fixtures() -> None:
    by_description = {r["description"]: fixture_data(r) for r in load_fixtures()}
    raw_line = next(d for k, d in by_description.items() if k.startswith("Line with raw invalid UTF-8"))
    raw_message = next(d for k, d in by_description.items() if k.startswith("JSON object whose message contains raw"))
    lone = next(d for k, d in by_description.items() if "lone surrogate" in k)

    line_obj, _ = decode_object(raw_line)
    assert isinstance(line_obj, dict)
    assert fluent_bit_record({"log": pua_to_raw(line_obj["log"])}) == raw_line

    message_obj, _ = decode_object(raw_message)
    assert isinstance(message_obj, dict)
    message_obj["message"] = pua_to_raw(message_obj["message"])
    assert b"\xff\xfe" in message_obj["message"]
    assert fluent_bit_record(message_obj) == raw_message

    # The input line had the JSON escape \ud800; json.loads makes that a lone surrogate in a str.
    lone_obj, _ = decode_object(lone)
    assert isinstance(lone_obj, dict)
    lone_obj["message"] = lone_obj["message"].replace("\ue0ed\ue0a0\ue080", "\ud800")
    assert fluent_bit_record(lone_obj) == lone


ESCAPES = [
    ("plain", "db timeout after 3000ms", b'"db timeout after 3000ms"'),
    ("emoji", "pay \U0001f4b8\U0001f525", b'"pay \\ud83d\\udcb8\\ud83d\\udd25"'),
    ("korean", "결제 실패", b'"\\uacb0\\uc81c \\uc2e4\\ud328"'),
    ("latin-1", "café", b'"caf\\u00e9"'),
    ("line separator", "a\u2028b", b'"a\\u2028b"'),
    ("nul", "a\x00b", b'"a\\u0000b"'),
    ("esc", "\x1b[31mERROR\x1b[0m", b'"\\u001b[31mERROR\\u001b[0m"'),
    ("del", "a\x7fb", b'"a\\u007fb"'),
    ("bell", "\x07", b'"\\u0007"'),
    ("vertical tab", "\x0b", b'"\\u000b"'),
    ("unit separator", "\x1f", b'"\\u001f"'),
    ("newline", "a\nb", b'"a\\nb"'),
    ("tab", "a\tb", b'"a\\tb"'),
    ("carriage return", "a\rb", b'"a\\rb"'),
    ("backspace", "a\bb", b'"a\\bb"'),  # Fluent Bit's escape table has \b and \f (none in the corpus)
    ("form feed", "a\fb", b'"a\\fb"'),
    ("quote", 'say "hi"', b'"say \\"hi\\""'),
    ("backslash", "C:\\temp\\x.log", b'"C:\\\\temp\\\\x.log"'),
    ("slash", "https://pay.example/v1/charge", b'"https://pay.example/v1/charge"'),
    ("slack", "<!channel> @here <@U123> & <https://evil.example|click>",
     b'"<!channel> @here <@U123> & <https://evil.example|click>"'),
    ("apostrophe", "it's", b"\"it's\""),
    ("lone surrogate", "x\ud800y", b'"x\xee\x83\xad\xee\x82\xa0\xee\x82\x80y"'),
    ("invalid bytes", b"bad \xff\xfe in message", b'"bad \xee\x83\xbf\xee\x83\xbe in message"'),
    ("valid bytes", "결".encode(), b'"\\uacb0"'),
]


@pytest.mark.parametrize(("value", "expected"), [(v, e) for _, v, e in ESCAPES], ids=[n for n, _, _ in ESCAPES])
def test_escaping_table(value: str | bytes, expected: bytes) -> None:
    assert escape_string(value) == expected
    assert fluent_bit_record({"m": value}) == b'{"m":' + expected + b"}\n"


def test_fast_path_equals_byte_level_escaping() -> None:
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x80)] + ["é", "ü", "한", "글", "\u2028", "\uffff", "\U0001f4b8", "\U0010ffff"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert escape_string(text) == b'"' + _escape_utf8_bytes(text.encode("utf-8")) + b'"', repr(text)


def test_invalid_utf8_edge_cases() -> None:
    assert _escape_utf8_bytes(b"\xed\xa0\x80") == "\ue0ed\ue0a0\ue080".encode()  # encoded surrogate
    assert _escape_utf8_bytes(b"\xe2\x28\xa1x") == "\ue0e2(\ue0a1x".encode()  # bad continuation is re-read
    assert _escape_utf8_bytes(b"\xc0\xafab") == "\ue0c0\ue0afab".encode()  # overlong lead rejected
    # A lead byte claiming more bytes than the string has left is skipped (0xF8-0xFF claim 5-6 bytes).
    assert _escape_utf8_bytes(b"ab\xe2\x82") == b"ab" + "\ue082".encode()
    assert _escape_utf8_bytes(b"end \xff\xfe") == b"end "


def test_json_values_and_key_order() -> None:
    record = {
        "z": 1, "a": -2, "float": 3000.5, "tenth": 0.1, "whole": 3.0, "huge": 1e20, "tiny": 1e-7,
        "big": 12345678901234567890, "yes": True, "no": False, "none": None,
        "list": ["db", 2, [], {}], "nested": {"k": "v", "n": {"deep": [1.5]}}, "tuple": ("a",),
    }
    assert fluent_bit_record(record) == (
        b'{"z":1,"a":-2,"float":3000.5,"tenth":0.1,"whole":3.0,"huge":1e+20,"tiny":1e-07,'
        b'"big":9223372036854775807,"yes":true,"no":false,"none":null,'
        b'"list":["db",2,[],{}],"nested":{"k":"v","n":{"deep":[1.5]}},"tuple":["a"]}\n'
    )
    # Generated lines: Fluent Bit's bytes are json.dumps' compact output plus a newline.
    for line in LogLineFactory(4, 0.5, with_seq=True).take(300):
        assert fluent_bit_record(line) == json.dumps(line, separators=(",", ":")).encode() + b"\n"


def test_records_fluent_bit_would_not_send() -> None:
    with pytest.raises(RecordDiscarded):
        fluent_bit_record({})
    with pytest.raises(RecordDiscarded):
        fluent_bit_record({"log": "x" * MAX_EVENT_SIZE})
    with pytest.raises(ValueError):
        fluent_bit_record({"x": float("nan")})
    with pytest.raises(TypeError):
        fluent_bit_record({"x": object()})
    with pytest.raises(TypeError):
        fluent_bit_record({1: "x"})  # type: ignore[dict-item]


def test_partition_key_shape() -> None:
    rng = random.Random(1)
    keys = [partition_key(rng) for _ in range(2000)]
    for key in keys:
        assert PARTITION_KEY_RE.match(key), key
        assert 16 <= len(key) <= 18
    assert len(set(keys)) == len(keys)
    assert {len(k) for k in keys} == {16, 17, 18}
    same_prefix = [partition_key(rng, "qZWjp4fGz3") for _ in range(100)]
    assert all(k.startswith("qZWjp4fGz3") and PARTITION_KEY_RE.match(k) for k in same_prefix)
    assert len(set(same_prefix)) > 90


def test_partition_key_matches_fixture_shape() -> None:
    for case in load_fixtures():
        assert PARTITION_KEY_RE.match(case["partition_key"]), case["partition_key"]


# ---------------------------------------------------------------------------------------------------- outputs


def test_stdout_output_format(capsys: pytest.CaptureFixture[str]) -> None:
    records = [*LogLineFactory(8, 0.5, now=fixed_clock).take(30), make_line("ERROR", "x", "결제 \U0001f4b8 </a>&")]
    output = StdoutOutput()
    output.write(records[:10])
    output.write([])
    output.write(records[10:])
    output.close()
    out = capsys.readouterr().out
    assert out.endswith("\n")
    lines = out.splitlines()
    assert [json.loads(line) for line in lines] == records
    for line, record in zip(lines, records, strict=True):
        assert line == json.dumps(record, separators=(",", ":"))
        assert line.isascii()
    assert '"message":"\\uacb0\\uc81c \\ud83d\\udcb8 </a>&"' in lines[-1]


def test_stdout_output_flushes_each_write() -> None:
    class Recording(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    stream = Recording()
    output = StdoutOutput(stream)
    output.write([make_line("INFO", "a", "one", now=fixed_clock)])
    assert stream.flushes == 1
    assert stream.getvalue().count("\n") == 1


class FakeKinesisClient:
    """A stand-in for a boto3 Kinesis client: records PutRecords calls, fails entries on request.

    ``fail`` decides, per call number (1-based) and entry, whether that entry gets an ErrorCode.
    ``raise_on`` maps call numbers to an exception to raise instead of answering.
    """

    def __init__(
        self,
        fail: Callable[[int, Mapping[str, Any]], str | None] | None = None,
        raise_on: Mapping[int, Exception] | None = None,
    ) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []
        self._fail = fail
        self._raise_on = dict(raise_on or {})

    def put_records(self, *, Records: Sequence[Any], StreamName: str) -> dict[str, Any]:
        entries = [dict(e) for e in Records]
        self.calls.append((StreamName, entries))
        call = len(self.calls)
        if call in self._raise_on:
            raise self._raise_on[call]
        results: list[dict[str, Any]] = []
        for i, entry in enumerate(entries):
            code = self._fail(call, entry) if self._fail else None
            if code:
                results.append({"ErrorCode": code, "ErrorMessage": "Rate exceeded for shard shardId-000000000000"})
            else:
                results.append({"SequenceNumber": f"{call:010d}{i:06d}", "ShardId": "shardId-000000000000"})
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}

    @property
    def accepted(self) -> list[bytes]:
        """Data of every entry that was answered without an ErrorCode (same failure rule re-applied)."""
        out: list[bytes] = []
        for call, (_, entries) in enumerate(self.calls, start=1):
            if call in self._raise_on:
                continue
            out.extend(e["Data"] for e in entries if not (self._fail and self._fail(call, e)))
        return out


def no_sleep(delays: list[float]) -> Callable[[float], None]:
    return delays.append


def test_kinesis_output_with_docker_fields_writes_the_bytes_of_compose_s_fluent_bit_path() -> None:
    """Defect: the direct output stood in for the compose path without its container_id/container_name/source.
    The app lines Docker's driver sent (case c6a) through KinesisOutput(container=...) are byte for byte what Fluent
    Bit wrote after its parser filter (case c6b), for every line that is JSON."""
    raw = [r for r in load_fixtures() if r["case"] == "c6a-forward-docker-raw"]
    parsed = [r for r in load_fixtures() if r["case"] == "c6b-forward-docker-parser-filter"]
    pairs = [(json.loads(fixture_data(a)), fixture_data(b)) for a, b in zip(raw, parsed, strict=True)]
    pairs = [(docker, data) for docker, data in pairs if docker["log"].startswith("{")]
    assert len(pairs) == 4
    for docker, expected in pairs:
        client = FakeKinesisClient()
        output = KinesisOutput("s", client, rng=random.Random(1), sleep=no_sleep([]),
                               container={k: docker[k] for k in ("container_id", "container_name", "source")})
        output.write([json.loads(docker["log"])])
        assert client.accepted == [expected], docker["log"]


def test_docker_fields_are_the_compose_container_s() -> None:
    fields = docker_fields()
    assert list(fields) == ["container_id", "container_name", "source"]
    assert re.fullmatch(r"[0-9a-f]{64}", fields["container_id"])
    assert (fields["container_name"], fields["source"]) == ("/cali-log-generator-1", "stdout")  # project cali


def test_kinesis_output_batches_500_with_fluent_bit_bytes() -> None:
    client = FakeKinesisClient()
    output = KinesisOutput("cali-log-stream", client, rng=random.Random(3), sleep=no_sleep([]))
    records = LogLineFactory(12, 0.3, now=fixed_clock).take(1234)
    output.write(records)
    output.close()
    assert [len(entries) for _, entries in client.calls] == [500, 500, 234]
    assert {stream for stream, _ in client.calls} == {"cali-log-stream"}
    sent = [e for _, entries in client.calls for e in entries]
    assert [e["Data"] for e in sent] == [fluent_bit_record(r) for r in records]
    keys = [e["PartitionKey"] for e in sent]
    assert all(PARTITION_KEY_RE.match(k) for k in keys)
    assert len({k[:10] for k in keys}) == 1  # one output instance, one prefix, like Fluent Bit
    assert len(set(keys)) > 1000
    assert output.stats.records_sent == 1234 and output.stats.records_lost == 0 and output.stats.put_calls == 3


def test_kinesis_output_splits_by_request_size() -> None:
    client = FakeKinesisClient()
    output = KinesisOutput("s", client, rng=random.Random(1), sleep=no_sleep([]))
    big = [make_line("INFO", "bulk", "x" * 900_000, now=fixed_clock, seq=i) for i in range(12)]
    output.write(big)
    sizes = [sum(len(e["Data"]) + len(e["PartitionKey"]) for e in entries) for _, entries in client.calls]
    assert [len(entries) for _, entries in client.calls] == [5, 5, 2]
    assert all(size <= 5 * 1024 * 1024 for size in sizes)
    assert output.stats.records_sent == 12


def test_kinesis_output_resends_only_failed_entries() -> None:
    records = LogLineFactory(13, 0.3, with_seq=True, now=fixed_clock).take(20)
    flaky_seqs = {3, 7, 8, 19}

    def fail(call: int, entry: Mapping[str, Any]) -> str | None:
        seq = json.loads(entry["Data"])["seq"]
        if call == 1 and seq in flaky_seqs:
            return "ProvisionedThroughputExceededException"
        if call == 2 and seq == 8:
            return "InternalFailure"
        return None

    client = FakeKinesisClient(fail)
    delays: list[float] = []
    output = KinesisOutput("s", client, rng=random.Random(2), sleep=no_sleep(delays))
    assert output.send(records) == []
    assert [len(entries) for _, entries in client.calls] == [20, 4, 1]
    retried = [json.loads(e["Data"])["seq"] for e in client.calls[1][1]]
    assert retried == [3, 7, 8, 19]
    assert [json.loads(e["Data"])["seq"] for e in client.calls[2][1]] == [8]
    # Re-sent entries keep their bytes and partition key.
    first = {e["Data"]: e["PartitionKey"] for e in client.calls[0][1]}
    assert all(first[e["Data"]] == e["PartitionKey"] for e in client.calls[1][1])
    assert sorted(json.loads(d)["seq"] for d in client.accepted) == list(range(1, 21))
    assert len(delays) == 2 and all(0 < d <= 0.5 for d in delays) and delays[1] >= delays[0] / 2
    assert output.stats.records_sent == 20 and output.stats.records_retried == 5 and output.stats.records_lost == 0


def test_kinesis_output_counts_and_logs_what_is_finally_lost(caplog: pytest.LogCaptureFixture) -> None:
    records = LogLineFactory(14, 0.3, with_seq=True, now=fixed_clock).take(10)

    def fail(call: int, entry: Mapping[str, Any]) -> str | None:
        return "ProvisionedThroughputExceededException" if json.loads(entry["Data"])["seq"] == 5 else None

    client = FakeKinesisClient(fail)
    delays: list[float] = []
    output = KinesisOutput("s", client, rng=random.Random(2), max_attempts=4, sleep=no_sleep(delays))
    with caplog.at_level(logging.INFO, logger="generator.outputs"):
        lost = output.send(records)
        output.close()
    assert lost == [records[4]]
    assert len(client.calls) == 4 and len(delays) == 3
    assert output.stats.records_sent == 9 and output.stats.records_lost == 1
    assert output.stats.lost_reasons == Counter({"ProvisionedThroughputExceededException": 1})
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "1 records lost" in errors[0].getMessage()
    assert any("1 lost" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}}, "PutRecords"
    )


def test_kinesis_output_retries_throttled_calls() -> None:
    client = FakeKinesisClient(raise_on={1: throttled(), 2: throttled()})
    delays: list[float] = []
    output = KinesisOutput("s", client, rng=random.Random(2), sleep=no_sleep(delays))
    records = LogLineFactory(15, now=fixed_clock).take(7)
    assert output.send(records) == []
    assert [len(entries) for _, entries in client.calls] == [7, 7, 7]
    assert len(delays) == 2 and output.stats.records_sent == 7


def test_kinesis_output_raises_what_retrying_cannot_fix() -> None:
    missing = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no stream"}}, "PutRecords")
    client = FakeKinesisClient(raise_on={1: missing})
    output = KinesisOutput("nope", client, rng=random.Random(2), sleep=no_sleep([]))
    with pytest.raises(ClientError):
        output.write(LogLineFactory(15, now=fixed_clock).take(3))
    assert len(client.calls) == 1


def test_kinesis_output_drops_records_fluent_bit_would_not_send(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeKinesisClient()
    output = KinesisOutput("s", client, rng=random.Random(2), sleep=no_sleep([]))
    ok = make_line("INFO", "a", "fine", now=fixed_clock)
    with caplog.at_level(logging.ERROR, logger="generator.outputs"):
        lost = output.send([{}, ok])
    assert lost == [{}]
    assert [e["Data"] for e in client.calls[0][1]] == [fluent_bit_record(ok)]
    assert output.stats.lost_reasons == Counter({"discarded": 1})


# -------------------------------------------------------------------------------------------------- CLI / run


class ListOutput:
    def __init__(self) -> None:
        self.writes: list[list[dict[str, Any]]] = []
        self.closed = False

    def write(self, records: list[dict[str, Any]]) -> None:
        self.writes.append(list(records))

    def close(self) -> None:
        self.closed = True


def test_run_paces_to_the_rate() -> None:
    output = ListOutput()
    started = time.monotonic()
    written = run(LogLineFactory(1), output, rate=100.0, count=20)
    elapsed = time.monotonic() - started
    assert written == 20 and sum(len(w) for w in output.writes) == 20
    assert 0.18 <= elapsed < 2.0
    assert all(len(w) == 1 for w in output.writes)  # no batch interval: every line at once


def test_run_batches_and_flushes_on_stop() -> None:
    output = ListOutput()
    stop = threading.Event()
    timer = threading.Timer(0.35, stop.set)
    timer.start()
    try:
        written = run(LogLineFactory(1), output, rate=100.0, count=0, batch_interval=0.1, stop=stop)
    finally:
        timer.cancel()
    assert written == sum(len(w) for w in output.writes)
    assert 15 <= written <= 50
    assert 2 <= len(output.writes) <= 6  # lines went out in batches, the last one flushed on stop
    assert not output.closed


def test_run_unpaced_batches_by_size() -> None:
    output = ListOutput()
    assert run(LogLineFactory(1), output, rate=0, count=1234, batch_interval=60.0) == 1234
    assert [len(w) for w in output.writes] == [500, 500, 234]


@pytest.mark.parametrize("stream_variable", ["KINESIS_STREAM_NAME", "CALI_STREAM_NAME"])
def test_env_defaults(stream_variable: str) -> None:
    env = {"GENERATOR_RATE": "7.5", "GENERATOR_ERROR_RATIO": "0.4", "GENERATOR_SEED": "42",
           stream_variable: "other-stream"}
    args = build_parser(env).parse_args([])
    assert (args.rate, args.error_ratio, args.seed, args.stream) == (7.5, 0.4, 42, "other-stream")
    args = build_parser(env).parse_args(["--rate", "0", "--seed", "1", "--stream", "x"])
    assert (args.rate, args.seed, args.stream) == (0.0, 1, "x")
    empty = build_parser({"GENERATOR_SEED": "", "GENERATOR_RATE": ""}).parse_args([])
    assert (empty.rate, empty.error_ratio, empty.seed, empty.stream, empty.count, empty.output) == (
        5.0, 0.2, None, "cali-log-stream", 0, "stdout",
    )


@pytest.mark.parametrize("argv", [["--rate", "-1"], ["--error-ratio", "1.5"], ["--count", "-3"], ["--rate", "x"]])
def test_bad_arguments_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser({}).parse_args(argv)
    assert exc.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize(("name", "raw"), [("GENERATOR_ERROR_RATIO", "lots"), ("GENERATOR_ERROR_RATIO", "1.5"),
                                           ("GENERATOR_RATE", "-1"), ("GENERATOR_SEED", "x")])
def test_bad_env_value_rejected(capsys: pytest.CaptureFixture[str], name: str, raw: str) -> None:
    """The rules local mode checks before it starts anything (consumer/config.py's load_generator_settings)."""
    with pytest.raises(SystemExit) as exc:
        build_parser({name: raw})
    assert exc.value.code == 2
    assert f"environment: {name} must be" in capsys.readouterr().err


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENERATOR_", "CALI_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def test_cli_stdout_count() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "generator", "--output", "stdout", "--count", "20", "--rate", "0", "--seed", "42"],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 20
    records = [json.loads(line) for line in lines]
    assert all(r["level"] in LEVELS and TIMESTAMP_RE.match(r["timestamp"]) for r in records)
    assert without_timestamps(records) == without_timestamps(LogLineFactory(42, 0.2).take(20))


def test_cli_exits_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", "--rate", "50", "--count", "0", "--with-seq"],
        cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = [proc.stdout.readline() for _ in range(5)]
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    seqs = [json.loads(line)["seq"] for line in first + rest.splitlines()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "SIGTERM received" in err


def test_status_log_json_lines_are_info_records_of_the_log_generator() -> None:
    """In compose Docker's logging driver takes the generator's stderr to Fluent Bit with its stdout: with
    `--status-log json` each status line is a JSON record the consumer parses as INFO of service log-generator
    (counted, never alerted), not a non-JSON text record."""
    from consumer.model import LogEvent
    from consumer.pipeline.parse import parse_line

    result = subprocess.run([sys.executable, "-m", "generator", "--count", "3", "--rate", "0", "--seed", "1",
                             "--status-log", "json"], cwd=REPO, capture_output=True, text=True, timeout=60,
                            check=True)
    lines = result.stderr.splitlines()
    assert len(lines) == 2  # "generating to stdout ..." and "done: 3 lines written"
    events = [parse_line(line) for line in lines]
    assert all(isinstance(e, LogEvent) and (e.level.value, e.service) == ("INFO", "log-generator") for e in events)
    assert len(result.stdout.splitlines()) == 3
