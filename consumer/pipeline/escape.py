"""Slack mrkdwn escaping and truncation.

https://api.slack.com/reference/surfaces/formatting#escaping : only &, < and > need escaping, and escaping them
also defuses <!channel>, <!here>, <@U123> and <url|label> written by a log line.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ELLIPSIS = "…"


def escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def truncate(text: str, limit: int, marker: str = " " + ELLIPSIS + " (truncated)") -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` characters, visibly when there is room for the marker; returns whether
    it cut. Never leaves half an escape such as "&am"."""
    if len(text) <= limit:
        return text, False
    room_for_marker = limit >= len(marker)
    cut = text[: limit - len(marker) if room_for_marker else limit]
    half = re.search(r"&[a-z]{0,3}$", cut)
    if half:
        cut = cut[: half.start()]
    return cut + (marker if room_for_marker else ""), True
