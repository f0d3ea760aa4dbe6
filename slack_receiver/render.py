"""Messages and Block Kit to display trees (see :mod:`slack_receiver.mrkdwn`), as Slack shows them (pure).

Blocks win over the text: when a message has blocks, its ``text`` is only the notification fallback and is not
shown. Images are shown as links (the page loads nothing from elsewhere). Unknown block types are named, not
guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .mrkdwn import Node, decode, el, emoji_node, inline, parse, safe_href, with_emoji
from .workspace import parse_ts

Channels = Mapping[str, str]
BOT_NAME = "cali"
GROUP_SECONDS = 300


def text_object(obj: object, channels: Channels) -> list[Node]:
    """A Block Kit text object: mrkdwn parsed, plain_text shown as is (emoji shortcodes unless emoji=false)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return []
    text: str = obj["text"]
    if obj.get("type") == "mrkdwn" and obj.get("verbatim") is not True:
        return parse(text, channels)
    if obj.get("type") == "mrkdwn":
        return [decode(text)]
    return with_emoji(text) if obj.get("emoji", True) is not False else [text]


def _image_link(obj: Mapping[str, Any]) -> Node:
    url = obj.get("image_url")
    title = obj.get("title")
    label = (title.get("text") if isinstance(title, dict) else None) or obj.get("alt_text") or "image"
    href = safe_href(url) if isinstance(url, str) else None
    shown = f"\U0001f5bc {label}"
    return el("a", shown, href=href, cls="image") if href else el("span", shown, cls="image")


def _element(obj: object, channels: Channels) -> Node:
    """An accessory or an element of a context/actions block."""
    if not isinstance(obj, dict):
        return ""
    kind = obj.get("type")
    if kind == "image":
        return _image_link(obj)
    if kind in ("mrkdwn", "plain_text"):
        return el("span", *text_object(obj, channels))
    if kind == "button":
        return el("span", *text_object(obj.get("text"), channels), cls="button")
    return el("span", f"[{kind}]", cls="unknown")


def _rich_inline(obj: object, channels: Channels) -> Node:
    if not isinstance(obj, dict):
        return ""
    kind = obj.get("type")
    node: Node
    if kind == "text":
        node = str(obj.get("text", ""))
    elif kind == "link":
        href = safe_href(str(obj.get("url", "")))
        shown = str(obj.get("text") or obj.get("url", ""))
        node = el("a", shown, href=href) if href else shown
    elif kind == "emoji":
        node = emoji_node(str(obj.get("name", "")), None) or f":{obj.get('name', '')}:"
    elif kind == "user":
        node = el("span", f"@{obj.get('user_id', '')}", cls="mention")
    elif kind == "channel":
        cid = str(obj.get("channel_id", ""))
        node = el("span", "#" + channels.get(cid, cid), cls="mention")
    elif kind == "broadcast":
        node = el("span", f"@{obj.get('range', '')}", cls="mention special")
    elif kind == "usergroup":
        node = el("span", f"@{obj.get('usergroup_id', '')}", cls="mention")
    elif kind == "date":
        node = str(obj.get("fallback") or obj.get("timestamp", ""))
    else:
        node = f"[{kind}]"
    style = obj.get("style")
    if isinstance(style, dict):
        for key, tag in (("code", "code"), ("strike", "s"), ("italic", "i"), ("bold", "b")):
            if style.get(key):
                node = el(tag, node)
    return node


def _rich_text(block: Mapping[str, Any], channels: Channels) -> Node:
    out: list[Node] = []
    for section in block.get("elements") or []:
        if not isinstance(section, dict):
            continue
        kind = section.get("type")
        children = [_rich_inline(e, channels) for e in section.get("elements") or []]
        if kind == "rich_text_preformatted":
            out.append(el("pre", *children))
        elif kind == "rich_text_quote":
            out.append(el("blockquote", *children))
        elif kind == "rich_text_list":
            items = [el("li", *(child[2:] if isinstance(child, list) else [child])) for child in
                     (_rich_text({"elements": [e]}, channels) for e in section.get("elements") or [])]
            out.append(el("ol" if section.get("style") == "ordered" else "ul", *items))
        else:
            out.append(el("span", *children))
    return el("div", *out, cls="rich")


def block(obj: object, channels: Channels) -> Node:
    if not isinstance(obj, dict):
        return ""
    kind = obj.get("type")
    if kind == "header":
        return el("div", *text_object(obj.get("text"), channels), cls="b-header")
    if kind == "section":
        parts: list[Node] = []
        if obj.get("text") is not None:
            parts.append(el("div", *text_object(obj.get("text"), channels), cls="mrkdwn"))
        fields = obj.get("fields")
        if isinstance(fields, list) and fields:
            parts.append(el("div", *(el("div", *text_object(f, channels), cls="mrkdwn")
                                     for f in fields), cls="fields"))
        if obj.get("accessory") is not None:
            parts.append(el("div", _element(obj.get("accessory"), channels), cls="accessory"))
        return el("div", *parts, cls="b-section")
    if kind == "context":
        items = [_element(e, channels) for e in obj.get("elements") or []]
        return el("div", *items, cls="b-context")
    if kind == "divider":
        return el("hr")
    if kind == "image":
        return el("div", _image_link(obj), cls="b-image")
    if kind == "rich_text":
        return _rich_text(obj, channels)
    if kind == "markdown":
        return el("div", *parse(str(obj.get("text", "")), channels), cls="mrkdwn")
    if kind == "actions":
        return el("div", *(_element(e, channels) for e in obj.get("elements") or []), cls="b-actions")
    return el("div", f"[{kind} block]", cls="unknown")


def body(payload: Mapping[str, Any], channels: Channels) -> Node:
    """What a person sees of a message: its blocks, or its text when it has none."""
    blocks = payload.get("blocks")
    if isinstance(blocks, list) and blocks:
        return el("div", *(block(b, channels) for b in blocks), cls="blocks")
    text = payload.get("text")
    if not isinstance(text, str):
        return el("div", cls="mrkdwn")
    shown = parse(text, channels) if payload.get("mrkdwn", True) is not False else [decode(text)]
    return el("div", *shown, cls="mrkdwn")


def _time(ts: str) -> Node:
    micros = parse_ts(ts) or 0
    at = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    return el("time", at.strftime("%H:%M"), datetime=at.isoformat(), title=at.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _sender(payload: Mapping[str, Any]) -> tuple[str, Node]:
    name = payload.get("username")
    name = name if isinstance(name, str) and name.strip() else BOT_NAME
    icon = payload.get("icon_emoji")
    avatar: Node = name[:1].upper()
    if isinstance(icon, str):
        found = emoji_node(icon.strip(":"))
        if found is not None:
            avatar = found
    return name, avatar


def message(view: Mapping[str, Any], channels: Channels, replies: list[Mapping[str, Any]] | None = None,
            in_thread: bool = False, continued: bool = False) -> Node:
    """One message (``/_control/messages`` view), with its thread when ``replies`` is given.

    ``continued``: the same sender posted just before, so, as in Slack, no avatar and name, and the time shows
    in the gutter on hover.
    """
    payload = view.get("payload") if isinstance(view.get("payload"), dict) else {}
    assert isinstance(payload, dict)
    name, avatar = _sender(payload)
    ts = str(view.get("ts", ""))
    head: list[Node] = [el("span", name, cls="name"), el("span", "APP", cls="badge"), _time(ts)]
    shown = body(payload, channels)
    if view.get("edits") and isinstance(shown, list):
        shown.append(el("span", "(edited)", cls="edited"))  # after the text, as Slack shows it
    content: list[Node] = [el("div", *head, cls="head"), shown]
    if view.get("reply_broadcast"):
        note = "also sent to the channel" if in_thread else "replied to a thread"
        content.insert(1, el("div", note, cls="broadcast"))
    if replies:
        count = len(replies)
        summary = el("summary", el("span", f"{count} {'reply' if count == 1 else 'replies'}", cls="count"),
                     el("span", "View thread", cls="view"))
        content.append(el("details", summary, el("div", *(message(r, channels, in_thread=True) for r in replies),
                                                      cls="replies"),
                          cls="thread", **{"data-ts": ts}))
    if continued:
        content.pop(0)
        return el("div", el("div", _time(ts), cls="gutter"), el("div", *content, cls="content"),
                  cls="message continued", **{"data-ts": ts})
    return el("div", el("div", avatar, cls="avatar"), el("div", *content, cls="content"), cls="message",
              **{"data-ts": ts})


def channel_messages(views: Sequence[Mapping[str, Any]], channels: Channels) -> list[Node]:
    """A channel's messages oldest first, replies under their root (broadcast ones also in the channel)."""
    replies: dict[str, list[Mapping[str, Any]]] = {}
    for view in views:
        root = view.get("thread_ts")
        if root is not None and root != view.get("ts"):
            replies.setdefault(str(root), []).append(view)
    shown = [v for v in views if v.get("thread_ts") in (None, v.get("ts")) or v.get("reply_broadcast")]
    out: list[Node] = []
    previous: Mapping[str, Any] | None = None
    for view in shown:
        thread = None if view.get("reply_broadcast") else replies.get(str(view.get("ts")))
        out.append(message(view, channels, thread, continued=_continues(previous, view, replies)))
        previous = view
    return out


def _continues(previous: Mapping[str, Any] | None, view: Mapping[str, Any],
               replies: Mapping[str, list[Mapping[str, Any]]]) -> bool:
    """Slack folds a message into the one before when the same sender posted it within 5 minutes."""
    if previous is None or view.get("reply_broadcast") or str(previous.get("ts")) in replies:
        return False
    gap = (parse_ts(str(view.get("ts"))) or 0) - (parse_ts(str(previous.get("ts"))) or 0)
    same = _sender(previous.get("payload") or {})[0] == _sender(view.get("payload") or {})[0]
    return same and 0 <= gap < GROUP_SECONDS * 1_000_000


def plain_text(node: Node) -> str:
    """The text content of one node (what ``textContent`` gives in the browser), for tests and logs."""
    if isinstance(node, str):
        return node
    return "".join(plain_text(child) for child in node[1:] if not isinstance(child, dict))


__all__ = ["block", "body", "channel_messages", "inline", "message", "plain_text", "text_object"]
