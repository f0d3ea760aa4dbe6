"""One log line -> ``LogEvent`` (or ``Dropped`` with a reason). Pure; never raises on bad input.

Shapes handled (see tests/fixtures/fluent-bit/README.md for what Fluent Bit really sends):
- a JSON object with level/message/service/... keys (Parser json, or [FILTER] parser on Docker records);
- ``{"log": "<text>"}`` from tail without a parser, and Docker records whose ``log`` holds an escaped JSON line;
- ``log_key log`` output: the JSON-escaped contents of ``log`` without quotes, i.e. not valid JSON;
- plain text such as ``2026-11-26 05:00:00,123 ERROR [payment-api] db timeout`` or Spring Boot's layout,
  and multi-line stack traces joined by Fluent Bit's multiline parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Set
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from consumer.model import Dropped, Level, LogEvent
from consumer.pipeline.levels import TEXT_LEVEL_WORDS, normalise_level

MAX_FIELD_CHARS = 64 * 1024  # longer values are cut here; Slack's own limits are applied when rendering

_LEVEL_KEYS = ("level", "severity", "levelname", "log_level", "loglevel", "lvl", "log.level")
_MESSAGE_KEYS = ("message", "msg", "@message", "text", "log")
_SERVICE_KEYS = ("service.name", "service", "service_name", "app", "application", "logger_name")
_TIME_KEYS = ("timestamp", "@timestamp", "time", "ts")
_TRACE_KEYS = ("trace_id", "traceId", "trace.id", "traceid")
_HOST_KEYS = ("host", "hostname", "host.name")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TEXT_LEVEL = re.compile(r"(?<![\w-])(" + "|".join(TEXT_LEVEL_WORDS) + r")(?![\w-])")
_BRACKETED = re.compile(r"\s*\[([^\]\s]{1,80})\]")
_SPRING = re.compile(r"\s*\d+\s+---\s+\[[^\]]*\]\s+(\S+)\s*:\s?")
_JAVA_EXCEPTION = re.compile(r"^([\w$.]+(?:Exception|Error|Throwable))(?::\s*(.*))?$")
_TRACE_ID = re.compile(r"\b([0-9a-f]{32})\b")


def parse_line(line: str, keep: Set[Level] | None = None) -> LogEvent | Dropped:
    """``keep``: the levels the caller alerts on. Events of other levels come back with their level only (the
    per-record fast path: most lines are INFO/DEBUG and only get counted)."""
    try:
        return _parse(line, keep)
    except RecursionError:
        return Dropped("too_deeply_nested")


def _parse(line: str, keep: Set[Level] | None = None) -> LogEvent | Dropped:
    if line.startswith("{") and line.endswith("}"):  # the common shape (Fluent Bit's JSON), without the strips
        obj = _load_object(line)
        if obj is not None:
            return _from_object(obj, keep)
    stripped = line.strip().lstrip("\ufeff\ufffd").strip()  # a BOM or replaced bytes before the JSON
    if not stripped:
        return Dropped("empty")
    if stripped.startswith("{"):
        obj = _load_object(stripped)
        if obj is None and stripped.startswith('{\\"'):
            obj = _load_object(_unescape(stripped))  # ``log_key log``: escaped JSON without the quotes
        if obj is not None:
            return _from_object(obj, keep)
    if stripped.startswith(("{", "[")):
        return _from_broken_json(stripped)
    return _from_text(stripped)


def _load_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)  # the fast parser; what it refuses (NaN, lone surrogates, huge ints) json takes
    except orjson.JSONDecodeError:
        try:
            value = json.loads(text)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _unescape(text: str) -> str:
    try:
        value = json.loads(f'"{text}"')
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def _first(obj: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if "." in key and key not in obj:
            head, _, tail = key.partition(".")
            inner = obj.get(head)
            if isinstance(inner, Mapping) and inner.get(tail) is not None:
                return inner[tail]
        elif obj.get(key) is not None:
            return obj[key]
    return None


@lru_cache(maxsize=1024)
def _below(raw_level: str) -> LogEvent:
    """The event of a line below the alert levels: only its level is counted. One shared (frozen) value per
    spelling, not one per line."""
    return LogEvent(level=normalise_level(raw_level), message="", raw_level=_text(raw_level))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:MAX_FIELD_CHARS]


def _from_object(obj: dict[str, Any], keep: Set[Level] | None = None) -> LogEvent | Dropped:
    raw_level = obj["level"] if "level" in obj else _first(obj, _LEVEL_KEYS)
    if raw_level is not None and keep is not None:
        level = normalise_level(raw_level)
        if level not in keep:
            return _below(raw_level) if isinstance(raw_level, str) else LogEvent(level, "", _text(raw_level))
    message = _first(obj, _MESSAGE_KEYS[:-1])
    log = obj.get("log")
    if raw_level is None and message is None and isinstance(log, str):
        inner = _parse(log, keep)  # tail without a parser, or Docker's record with the app line in ``log``
        if isinstance(inner, LogEvent):
            return _with_container(inner, obj)
        return inner
    if message is None and log is not None:
        message = log
    if raw_level is None and message is None and not log:
        return Dropped("no_fields")
    error_type, stack = _error_details(obj)
    return LogEvent(
        level=normalise_level(raw_level),
        raw_level=_text(raw_level),
        message=_text(message) or "",
        service=_text(_first(obj, _SERVICE_KEYS)),
        timestamp=_timestamp(_first(obj, _TIME_KEYS)),
        trace_id=_text(_first(obj, _TRACE_KEYS)),
        error_type=error_type,
        stack=stack,
        host=_text(_first(obj, _HOST_KEYS)),
        container=_container_name(obj),
        flaw=None if raw_level is not None else "no_level",
    )


def _error_details(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    error = obj.get("error") or obj.get("exception") or obj.get("err")
    if isinstance(error, Mapping):
        kind = error.get("type") or error.get("kind") or error.get("class") or error.get("name")
        stack = error.get("stack") or error.get("stack_trace") or error.get("stacktrace")
        return _text(kind), _text(stack)
    stack = obj.get("stack_trace") or obj.get("stack") or obj.get("exc_info")
    return (_text(error) if isinstance(error, str) else None), _text(stack)


def _container_name(obj: Mapping[str, Any]) -> str | None:
    name = obj.get("container_name")
    return name.lstrip("/") if isinstance(name, str) else None


def _with_container(event: LogEvent, obj: Mapping[str, Any]) -> LogEvent:
    container = _container_name(obj)
    if container is None:
        return event
    from dataclasses import replace

    return replace(event, container=container)


def _timestamp(value: Any) -> datetime | None:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 1e11 else value  # epoch millis or seconds
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


_JSON_LEVEL = re.compile(r'"(?:level|severity)"\s*:\s*"?(\w+)')
_JSON_SERVICE = re.compile(r'"service"\s*:\s*"([^"]{1,80})"')


def _from_broken_json(text: str) -> LogEvent:
    """A JSON array or a cut-off object: keep the whole line as the message, salvage level and service."""
    text = text[:MAX_FIELD_CHARS]
    level = _JSON_LEVEL.search(text) or _TEXT_LEVEL.search(text, 0, 120)
    service = _JSON_SERVICE.search(text)
    return LogEvent(
        level=normalise_level(level.group(1)) if level else Level.UNKNOWN,
        raw_level=level.group(1) if level else None,
        message=text,
        service=service.group(1) if service else None,
        flaw="broken_json",
    )


_BINARY = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffd]")


def _from_text(text: str) -> LogEvent | Dropped:
    text = _ANSI.sub("", text)[:MAX_FIELD_CHARS]
    if len(_BINARY.findall(text[:4096])) > len(text[:4096]) * 0.3:
        return Dropped("binary")
    lines = text.rstrip("\n").split("\n")
    if len(lines) > 1:
        trace = _stack_trace(lines)
        if trace is not None:
            return trace
    head = lines[0]
    match = _TEXT_LEVEL.search(head, 0, 120)
    if match is None:
        return LogEvent(level=Level.UNKNOWN, message=text.rstrip("\n"), flaw="no_level")
    rest = head[match.end():]
    service = None
    bracket = _BRACKETED.match(rest)
    spring = _SPRING.match(rest)
    if bracket:
        service, rest = bracket.group(1), rest[bracket.end():]
    elif spring:
        service, rest = spring.group(1), rest[spring.end():]
    message = "\n".join([rest.strip(), *lines[1:]]).strip()
    trace_id = _TRACE_ID.search(head)
    return LogEvent(
        level=normalise_level(match.group(1)),
        raw_level=match.group(1),
        message=message,
        service=service,
        timestamp=_timestamp(head[: match.start()].strip().replace(",", ".")),
        trace_id=trace_id.group(1) if trace_id else None,
    )


def _stack_trace(lines: list[str]) -> LogEvent | None:
    """A multi-line Python or Java trace with no level of its own is an error."""
    first = lines[0].strip()
    if first.startswith("Traceback (most recent call last)"):
        last = lines[-1].strip()
        kind, _, detail = last.partition(":")
        return LogEvent(level=Level.ERROR, raw_level=None, message=detail.strip() or last,
                        error_type=kind.strip() or None, stack="\n".join(lines))
    java = _JAVA_EXCEPTION.match(first)
    if java and any(line.lstrip().startswith("at ") for line in lines[1:]):
        return LogEvent(level=Level.ERROR, raw_level=None, message=java.group(2) or first,
                        error_type=java.group(1), stack="\n".join(lines))
    return None
