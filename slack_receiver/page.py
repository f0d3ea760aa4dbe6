"""Self-contained HTML page listing received messages, newest first (pure rendering)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

MAX_SHOWN = 200
_MAX_DEPTH = 12

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;background:#f8f8fa;color:#1d1c1d}
h1{font-size:1.3rem}ol{list-style:none;padding:0}
li{background:#fff;border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.6rem .8rem}
.meta{color:#616061;font-size:.85rem}.meta code{margin-left:.6rem}
pre{white-space:pre-wrap;word-break:break-word;margin:.4rem 0 0;font:inherit}
pre.block{border-left:3px solid #ccc;padding-left:.6rem}
"""


def _collect_texts(node: object, out: list[str], depth: int = 0) -> None:
    """Every string under a ``text`` key (Block Kit nests them: section.text.text, fields[].text...)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                _collect_texts(value, out, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _collect_texts(item, out, depth + 1)


def block_texts(payload: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    _collect_texts(payload.get("blocks"), out)
    return [text for text in out if text.strip()]


def _format_time(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?"
    try:
        return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "?"


def _render_record(record: Mapping[str, Any]) -> str:
    payload = record.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    parts = [
        f'<li><div class="meta"><time>{escape(_format_time(record.get("received_at")))}</time>'
        f"<code>{escape(str(record.get('path', '')))}</code></div>"
    ]
    text = payload.get("text")
    if isinstance(text, str) and text.strip():
        parts.append(f"<pre>{escape(text)}</pre>")
    parts.extend(f'<pre class="block">{escape(block)}</pre>' for block in block_texts(payload))
    parts.append("</li>")
    return "".join(parts)


def render_page(records: Sequence[Mapping[str, Any]], refresh_seconds: int = 2) -> str:
    """The whole page; every message-derived string is HTML-escaped."""
    newest = list(reversed(records))[:MAX_SHOWN]
    if not records:
        summary = "No messages yet."
    elif len(records) > MAX_SHOWN:
        summary = f"{len(records)} messages, showing the newest {MAX_SHOWN}."
    else:
        summary = f"{len(records)} message{'s' if len(records) != 1 else ''}, newest first."
    items = "\n".join(_render_record(record) for record in newest)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'
        f"<title>CALI local Slack</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>CALI local Slack receiver</h1><p>{escape(summary)}</p>\n"
        f"<ol>\n{items}\n</ol></body></html>\n"
    )
