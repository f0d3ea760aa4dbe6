"""Slack mrkdwn escaping, text hygiene and truncation. Every piece of log text reaches Slack through one of
``escape`` (mrkdwn), ``code`` (inside backticks) or ``plain`` (plain_text blocks).

https://api.slack.com/reference/surfaces/formatting#escaping : only &, < and > need escaping, and escaping them
also defuses <!channel>, <!here>, <@U123> and <url|label> written by a log line.

Hygiene: characters that change how a reader sees the text without being seen themselves are shown as ``\\uXXXX``:
control characters (``\\xNN``), bidirectional controls (a U+202E makes the text after it read backwards; the
"Trojan Source" characters, CVE-2021-42574) and zero-width characters. Mrkdwn has no escape for a backtick, so a
log line could close the code block its stack trace is shown in: inside code every backtick becomes U+02CB (a
look-alike), and elsewhere runs of three or more do, so no log text opens a code block either.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# U+061C arabic letter mark, U+180E mongolian vowel separator, U+200B-200D zero-width space/non-joiner/joiner,
# U+200E/200F LRM/RLM, U+202A-202E embeddings and overrides, U+2060-2064 word joiner and invisible operators,
# U+2066-2069 isolates, U+FEFF zero-width no-break space, U+E0000-E007F tag characters (invisible ASCII).
_INVISIBLE = re.compile("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
                        "\U000e0000-\U000e007f]")
_BACKTICK_RUN = re.compile("`{3,}")
BACKTICK_LOOKALIKE = "\u02cb"
ELLIPSIS = "…"


def _reveal(text: str) -> str:
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}" if ord(m.group()) <= 0xFFFF
                          else f"\\U{ord(m.group()):08x}", text)


def escape(text: str) -> str:
    """Log text for mrkdwn: &, <, > escaped, invisible characters shown, no code fence."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _BACKTICK_RUN.sub(lambda m: BACKTICK_LOOKALIKE * len(m.group()), text)
    return _reveal(text)


def code(text: str) -> str:
    """Log text to be shown between backticks (inline code or a code block): no backtick can close it."""
    return escape(text).replace("`", BACKTICK_LOOKALIKE)


def plain(text: str) -> str:
    """Log text for a plain_text block: not parsed for mentions, but no raw "<!channel>" goes out anyway."""
    return _reveal(text.replace("<", "\u2039").replace(">", "\u203a"))


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
