"""Slack's mrkdwn to a display tree, as Slack shows it (pure).

https://api.slack.com/reference/surfaces/formatting: ``*bold*``, ``_italic_``, ``~strike~``, ```` `code` ````,
```` ```pre``` ````, ``>`` quotes, ``<url|text>`` links, ``<@U..>``/``<#C..>``/``<!here>`` mentions, ``:emoji:``
shortcodes; ``&amp;``, ``&lt;``, ``&gt;`` are decoded exactly once, after the markup is read, so an escaped
``&lt;!channel&gt;`` shows as the text ``<!channel>`` and never becomes a mention.

A display tree is JSON: a string is text; ``[tag, {attributes}?, *children]`` is an element. The page's script
builds DOM nodes from it with ``createElement``/``textContent`` and a fixed list of tags, so nothing in a message
can become HTML or script.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .shortcodes import emoji_for

Node = str | list[Any]

LINK_SCHEMES = ("http://", "https://", "mailto:")
SPECIAL_MENTIONS = frozenset({"here", "channel", "everyone"})
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_PRE = re.compile(r"```(.*?)```", re.S)
_QUOTE = re.compile(r"^(?:&gt;|>) ?")
_INLINE = re.compile(
    r"(?P<code>`(?P<code_text>[^`\n]+)`)"
    r"|(?P<angle><(?P<angle_text>[^<>\n]+)>)"
    r"|(?P<emoji>:(?P<emoji_name>[a-z0-9_+'-]+):(?::(?P<tone>skin-tone-[2-6]):)?)"
    r"|(?P<style>(?<!\w)(?P<mark>[*_~])(?=\S)(?P<style_text>[^\n]+?)(?<=\S)(?P=mark)(?!\w))"
)
_STYLE_TAGS = {"*": "b", "_": "i", "~": "s"}


def decode(text: str) -> str:
    """Slack's three entities, decoded once (``&amp;lt;`` stays ``&lt;``)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m[1]], text)


def el(tag: str, *children: Node, **attrs: str) -> list[Any]:
    node: list[Any] = [tag]
    if attrs:
        node.append({("class" if k == "cls" else k): v for k, v in attrs.items()})
    node.extend(children)
    return node


def safe_href(url: str) -> str | None:
    return url if url.lower().startswith(LINK_SCHEMES) else None


def emoji_node(name: str, tone: str | None = None) -> Node | None:
    char = emoji_for(name, tone)
    if char is None:
        return None
    shortcode = f":{name}:" + (f":{tone}:" if tone else "")
    return el("span", char, cls="emoji", title=shortcode)


def with_emoji(text: str) -> list[Node]:
    """Plain text with shortcodes shown as emoji (plain_text objects with ``"emoji": true``)."""
    out: list[Node] = []
    pos = 0
    for m in re.finditer(r":([a-z0-9_+'-]+):(?::(skin-tone-[2-6]):)?", text):
        node = emoji_node(m[1], m[2])
        if node is not None:
            _text(out, text[pos:m.start()])
            out.append(node)
            pos = m.end()
    _text(out, text[pos:])
    return out


def _text(out: list[Node], text: str) -> None:
    if not text:
        return
    if out and isinstance(out[-1], str):
        out[-1] += text
    else:
        out.append(text)


def _angle(inner: str, channels: Mapping[str, str], links: bool = True) -> Node:
    """``<...>``: a link, a mention or a date; anything else stays visible as text."""
    target, _, label = inner.partition("|")
    label = decode(label)
    if target.startswith("@"):
        return el("span", "@" + (label.lstrip("@") or target[1:]), cls="mention")
    if target.startswith("#"):
        return el("span", "#" + (label or channels.get(target[1:], target[1:])), cls="mention")
    if target.startswith("!"):
        command = target[1:]
        if command in SPECIAL_MENTIONS:
            return el("span", "@" + command, cls="mention special")
        if command.startswith("subteam^"):
            return el("span", label or "@" + command.split("^", 1)[1], cls="mention")
        if command.startswith("date^"):
            return label or command
        return label or command
    href = safe_href(decode(target))
    if href is not None:
        shown = label or href.removeprefix("mailto:")
        return el("a", shown, href=href) if links else shown
    return "<" + decode(inner) + ">"


def inline(text: str, channels: Mapping[str, str] = {}) -> list[Node]:
    """One run of text without pre blocks or quotes: styles, code, links, mentions, emoji."""
    out: list[Node] = []
    pos = 0
    while True:
        m = _INLINE.search(text, pos)
        if m is None:
            break
        _text(out, decode(text[pos:m.start()]))
        if m["code"]:
            out.append(el("code", decode(m["code_text"])))
        elif m["angle"]:
            node = _angle(m["angle_text"], channels)
            if isinstance(node, str):
                _text(out, node)
            else:
                out.append(node)
        elif m["emoji"]:
            found = emoji_node(m["emoji_name"], m["tone"])
            if found is None:  # not an emoji: keep the colon, read on after it
                _text(out, ":")
                pos = m.start() + 1
                continue
            out.append(found)
        else:
            out.append(el(_STYLE_TAGS[m["mark"]], *inline(m["style_text"], channels)))
        pos = m.end()
    _text(out, decode(text[pos:]))
    return out


def _preformatted(text: str, channels: Mapping[str, str]) -> list[Node]:
    """Inside ```...```: no styles and no emoji; entities decoded, links and mentions shown by their text."""
    out: list[Node] = []
    pos = 0
    for m in re.finditer(r"<([^<>\n]+)>", text):
        _text(out, decode(text[pos:m.start()]))
        node = _angle(m[1], channels, links=False)
        _text(out, node if isinstance(node, str) else "".join(c for c in node[2:] if isinstance(c, str)))
        pos = m.end()
    _text(out, decode(text[pos:]))
    return out


def _lines(segment: str, channels: Mapping[str, str], out: list[Node]) -> None:
    plain: list[str] = []
    quoted: list[str] = []

    def flush() -> None:
        if plain:
            out.extend(inline("\n".join(plain), channels))
            plain.clear()
        if quoted:
            out.append(el("blockquote", *inline("\n".join(quoted), channels)))
            quoted.clear()

    for line in segment.split("\n"):
        quote = _QUOTE.match(line)
        if (quote is not None) != bool(quoted) and (plain or quoted):
            flush()
        if quote is not None:
            quoted.append(line[quote.end():])
        else:
            plain.append(line)
    flush()


def parse(text: str, channels: Mapping[str, str] = {}) -> list[Node]:
    """A whole mrkdwn text; ``channels`` maps channel ids to names for ``<#C..>``."""
    out: list[Node] = []
    pos = 0
    for m in _PRE.finditer(text):
        before = text[pos:m.start()]
        if before.strip("\n"):
            _lines(before.rstrip("\n") if before.endswith("\n") else before, channels, out)
        out.append(el("pre", *_preformatted(m[1].strip("\n"), channels)))
        pos = m.end()
    rest = text[pos:]
    if pos and rest.startswith("\n"):
        rest = rest[1:]
    if rest or not out:
        _lines(rest, channels, out)
    return out
