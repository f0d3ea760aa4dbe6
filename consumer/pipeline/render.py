"""Alerts and digests -> Slack webhook payloads (Block Kit + a plain-text fallback). Pure.

Limits: https://api.slack.com/reference/block-kit/blocks (section text 3,000, header 150, 50 blocks) and
https://api.slack.com/methods/chat.postMessage#truncating (text past 40,000 characters is cut).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from consumer.model import Alert, Level
from consumer.pipeline.escape import code, escape, plain, truncate

SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
FIELD_TEXT_LIMIT = 2000
MAX_BLOCKS = 50
MESSAGE_TEXT_LIMIT = 40000
STACK_LINES = 12

Payload = dict[str, Any]

_EMOJI = {Level.ERROR: ":red_circle:", Level.WARN: ":large_orange_circle:"}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(truncate(text, SECTION_TEXT_LIMIT)[0])}


def _time(ts: datetime | None, tz: ZoneInfo) -> str:
    if ts is None:
        return "unknown"
    utc = ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    local = ts.astimezone(tz)
    return f"{utc} ({local.strftime('%H:%M:%S')} {local.tzname()})"


def render_alert(alert: Alert, display_tz: ZoneInfo, repeat: int = 1) -> Payload:
    event = alert.event
    service = event.service or "unknown service"
    label = event.raw_level if event.raw_level and event.raw_level.upper() != event.level.value else None
    level = f"{event.level.value} ({label})" if label else event.level.value
    prefix = f"{_EMOJI[event.level]} " if event.level in _EMOJI else ""
    header = prefix + truncate(plain(f"{level} · {service}"), HEADER_TEXT_LIMIT - len(prefix))[0]
    message = escape(event.message) or "_(empty message)_"
    fields = [
        f"*Service*\n{escape(service)}",
        f"*Time*\n{_time(event.timestamp, display_tz)}",
    ]
    if event.trace_id:
        fields.append(f"*Trace id*\n`{code(event.trace_id)}`")
    if event.host or event.container:
        fields.append(f"*Host*\n{escape(' / '.join(x for x in (event.host, event.container) if x))}")
    if event.error_type:
        fields.append(f"*Error*\n`{code(event.error_type)}`")
    if repeat > 1:
        fields.append(f"*Repeated*\n{repeat} times")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        _section(message),
        {"type": "section", "fields": [_mrkdwn(truncate(f, FIELD_TEXT_LIMIT)[0]) for f in fields]},
    ]
    if event.stack:
        top = "\n".join(event.stack.strip("\n").split("\n")[:STACK_LINES])
        blocks.append(_section("```" + truncate(code(top), SECTION_TEXT_LIMIT - 6)[0] + "```"))
    blocks.append({"type": "context", "elements": [_mrkdwn(f"shard {escape(alert.ref.shard_id)} · "
                                                           f"seq {escape(alert.ref.sequence_number)}")]})
    times = f" (x{repeat})" if repeat > 1 else ""
    text = truncate(f"[{escape(level)}] {escape(service)}: {message}{times}", SECTION_TEXT_LIMIT)[0]
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


def render_digest(lines: Mapping[tuple[str, str, str], int], window_seconds: float) -> Payload:
    """The application-wide digest: every (level, service, template) count, listed per service, busiest first.
    Cut only past Slack's limits (50 blocks, 3,000 characters a section), visibly and with the count left out."""
    total = sum(lines.values())
    minutes = max(1, round(window_seconds / 60))
    span = "minute" if minutes == 1 else f"{minutes} minutes"
    title = f"{total} more ERROR/WARN in the last {span}"
    by_service: dict[str, list[tuple[int, str, str]]] = {}
    for (level, service, message), count in lines.items():
        by_service.setdefault(service, []).append((count, level, message))
    services = sorted(by_service, key=lambda name: (-sum(c for c, _, _ in by_service[name]), name))
    chunks: list[tuple[str, int]] = []  # (section text, events it lists)
    for service in services:
        name = escape(truncate(service, 200)[0])
        text, listed = f"*{name}*", 0
        for count, level, message in sorted(by_service[service], key=lambda x: (-x[0], x[1], x[2])):
            line = f"\n• {count} x {level}: {escape(truncate(message, 200)[0])}"
            if len(text) + len(line) > SECTION_TEXT_LIMIT:
                chunks.append((text, listed))
                text, listed = f"*{name}* (continued)", 0
            text, listed = text + line, listed + count
        chunks.append((text, listed))
    kept = chunks[: MAX_BLOCKS - 3]  # header, title, and the line that says what was cut
    sections = [_section(text) for text, _ in kept]
    shown = sum(listed for _, listed in kept)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": ":hourglass: Alert digest", "emoji": True}},
        _section(f"*{title}* (held back by the alert throttle or folded into an earlier alert)"),
        *sections,
    ]
    if shown < total:
        blocks.append(_section(f"_and {total - shown} more events not listed: past Slack's message limits_"))
    per_service = ", ".join(f"{truncate(service, 100)[0]} {sum(c for c, _, _ in by_service[service])}"
                            for service in services)
    fallback = f"{title}: {per_service}"
    return {"text": truncate(escape(fallback), MESSAGE_TEXT_LIMIT)[0], "blocks": blocks}


def incident_payload(root: Payload, count: int, last_seen: datetime, display_tz: ZoneInfo,
                     quiet: bool = False) -> Payload:
    """An incident's root message (Web API mode) as it reads now: the first event's alert, how many times it was
    seen, when last, and whether it went quiet. Pure; ``root`` is ``render_alert``'s payload for the first event."""
    seen = "once" if count == 1 else f"{count} times"
    when = _time(last_seen, display_tz)
    status = f":white_check_mark: Quiet since {when} · seen {seen}" if quiet else f"Seen {seen} · last {when}"
    text = str(root.get("text", ""))
    first, _, rest = text.partition("\n")
    times = f" (x{count})" if count > 1 else ""
    blocks = [*root.get("blocks", [])][: MAX_BLOCKS - 1]
    blocks.append({"type": "context", "elements": [_mrkdwn(status)]})
    head = ("[quiet] " if quiet else "") + first + times
    return {"text": truncate(head + ("\n" + rest if rest else ""), SECTION_TEXT_LIMIT)[0], "blocks": blocks}


def render_sample(alert: Alert, display_tz: ZoneInfo) -> Payload:
    """One event in an incident's thread: a distinct message text or trace id, with its details."""
    event = alert.event
    details = [f"{_time(event.timestamp, display_tz)}"]
    if event.trace_id:
        details.append(f"trace `{escape(event.trace_id)}`")
    message = escape(event.message) or "_(empty message)_"
    text = truncate(f"{message}\n{' · '.join(details)}", SECTION_TEXT_LIMIT)[0]
    return {"text": text, "blocks": [_section(text)]}
