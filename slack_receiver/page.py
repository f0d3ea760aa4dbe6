"""The receiver's page: a static shell, its script and style, and the JSON state the script polls.

Every message-derived string travels as a string in a display tree (:mod:`slack_receiver.mrkdwn`) and becomes a
DOM text node in the browser; the shell itself holds no message text. The Content-Security-Policy allows only
this server's own script, style and JSON, and Trusted Types forbid HTML sinks, so no text from a log can run.

Adding a panel (e.g. silences): put its container in ``SHELL``, its data as a new key of :func:`state` (display
trees for anything that came from outside), and build it in ``static/page.js`` with ``build()``; ``version``
must change when its data does (``Workspace.version``, or a counter of your own folded into :func:`version`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import render
from .channels import Channel
from .workspace import Workspace

MAX_SHOWN = 200  # root messages shown per channel, the newest
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'none'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; "
       "trusted-types 'none'")
_BOOT = uuid.uuid4().hex[:8]  # a restarted receiver never answers "unchanged" to an old page's version

SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>CALI local Slack</title><link rel="stylesheet" href="/static/page.css">
<script src="/static/page.js" defer></script></head>
<body><div class="app">
<nav class="sidebar" aria-label="Channels"><div class="workspace">CALI local</div>
<div class="section">Channels</div><ul id="channels"></ul>
<div class="section"><a href="/silences">Silences</a></div>
<p class="note">A local stand-in for Slack: webhooks and a Web API subset. Not Slack.</p></nav>
<main><header class="channel-head"><h1 id="channel-name"></h1><span id="summary"></span></header>
<div id="messages" class="messages" aria-live="polite"></div></main></div>
<noscript>This page needs JavaScript to show messages; /_control/messages lists them as JSON.</noscript>
</body></html>
"""


def static_file(name: str) -> tuple[str, str] | None:
    """(content type, text) of a file in ``static/``, None for anything else."""
    path = STATIC_DIR / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or path.parent != STATIC_DIR or not path.is_file():
        return None
    return kind, path.read_text("utf-8")


def in_channel(view: Mapping[str, Any]) -> bool:
    """Shown in the channel itself: not a thread reply, unless it was also sent to the channel."""
    return view.get("thread_ts") in (None, view["ts"]) or bool(view.get("reply_broadcast"))


def version(workspace: Workspace) -> str:
    return f"{_BOOT}-{workspace.version}"


def state(workspace: Workspace, channel_ref: str, since: str = "") -> dict[str, Any]:
    """What the page shows for one channel (the default one when ``channel_ref`` names none)."""
    current = version(workspace)
    if since == current:
        return {"version": current, "unchanged": True}
    directory = workspace.directory
    names: Mapping[str, str] = {ch.id: ch.name for ch in directory.channels}
    counts = {ch.id: 0 for ch in directory.channels}
    latest = directory.default
    for view in workspace.views():
        if in_channel(view):
            counts[view["channel"]] = counts.get(view["channel"], 0) + 1
            latest = directory.find(view["channel"]) or latest
    # No channel asked for: the default one, or, while it is empty, where the newest message went (with routes,
    # every alert may land in a team's channel; a first look should not be an empty page). The page then sticks.
    channel: Channel = directory.find(channel_ref) or (
        directory.default if counts.get(directory.default.id) else latest)
    views = workspace.views(channel)
    roots = [v for v in views if in_channel(v)]
    keep = {v["ts"] for v in roots[-MAX_SHOWN:]}
    shown = [v for v in views if v["ts"] in keep or v.get("thread_ts") in keep]
    return {
        "version": current,
        "channel": {"id": channel.id, "name": channel.name},
        "channels": [{"id": ch.id, "name": ch.name, "count": counts.get(ch.id, 0)} for ch in directory.channels],
        "total": len(roots),
        "messages": render.channel_messages(shown, names),
    }
