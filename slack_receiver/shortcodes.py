"""Emoji shortcodes (``:red_circle:``) to emoji, with Slack's names.

The table (``emoji_table.json``) is derived from npm's ``emoji-datasource`` (iamcal/emoji-data), the data set
Slack's own shortcodes come from: it names ``:large_orange_circle:`` as Slack does, where CLDR-based tables say
``orange_circle``. ``scripts/emoji_table.py`` rebuilds it from the pinned package version. A skin tone follows
its emoji as a second shortcode (``:wave::skin-tone-3:``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent / "emoji_table.json"


@cache
def table() -> dict[str, str]:
    """Shortcode name -> emoji."""
    names: dict[str, str] = json.loads(TABLE_PATH.read_text("utf-8"))["names"]
    return {name: "".join(chr(int(code, 16)) for code in unified.split("-")) for name, unified in names.items()}


def emoji_for(name: str, tone: str | None = None) -> str | None:
    """The emoji for a shortcode name (without colons), None when Slack would not know it either."""
    char = table().get(name)
    if char is None:
        return None
    if tone is not None:
        char += table().get(tone, "")
    return char
