"""The Web API subset: ``auth.test``, ``chat.postMessage``, ``chat.update``, ``conversations.history`` and
``conversations.replies``, answering as https://api.slack.com/methods documents (a stand-in for tests and local
runs: one workspace, one bot, no users, no rate limits but the scripted faults).

Arguments come from the query string and the body (JSON, or form-encoded where ``blocks`` and ``metadata``
are JSON strings), as slack-sdk sends them. Every answer is ``{"ok": true, ...}`` or
``{"ok": false, "error": "<code>", ...}``; :func:`call` returns the HTTP status and that object.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from .blocks import block_problems
from .channels import Channel
from .workspace import Message, Workspace, parse_ts

API_PREFIX = "/api/"
MAX_TEXT = 40_000  # Slack: "msg_too_long"
DEFAULT_HISTORY_LIMIT = 100
DEFAULT_REPLIES_LIMIT = 1000
MAX_LIMIT = 999
TEAM_ID, TEAM_NAME = "T0CALILOCAL", "CALI local"
BOT_USER_ID, BOT_USER_NAME, BOT_ID, APP_ID = "U0CALIBOT", "cali", "B0CALIBOT", "A0CALIAPP"
WEBHOOK_BOT_ID = "B0CALIHOOK"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
_JSON_ARGS = ("blocks", "metadata")  # JSON text in form-encoded calls


class ApiError(Exception):
    """An ``ok: false`` answer; ``extra`` goes into the answer beside ``error``."""

    def __init__(self, code: str, status: int = 200, **extra: Any) -> None:
        super().__init__(code)
        self.code, self.status, self.extra = code, status, extra


@dataclass(frozen=True)
class Request:
    args: dict[str, Any]
    received_at: float
    path: str
    base_url: str


# -- arguments ------------------------------------------------------------------------------------


def parse_args(query: str, body: bytes, content_type: str | None) -> dict[str, Any]:
    """Query string and body merged (the body wins); raises ApiError(invalid_json / invalid_form_data)."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if not body.strip():
        return args
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError("invalid_form_data") from exc
    if mime == JSON_TYPE:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ApiError("invalid_json") from exc
        if not isinstance(data, dict):
            raise ApiError("json_not_object")
        args.update(data)
    elif mime in (FORM_TYPE, ""):
        args.update(parse_qsl(text, keep_blank_values=True))
    else:
        raise ApiError("invalid_form_data")
    return args


def check_token(args: Mapping[str, Any], authorization: str | None, expected: str) -> None:
    scheme, _, value = (authorization or "").partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    token = token or str(args.get("token") or "")
    if not token:
        raise ApiError("not_authed")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError("invalid_auth")


def _flag(value: object) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.lower() in ("1", "true"))


def _json_arg(args: Mapping[str, Any], name: str, error: str) -> Any:
    value = args.get(name)
    if isinstance(value, str) and name in _JSON_ARGS:
        try:
            return json.loads(value) if value.strip() else None
        except ValueError:
            raise ApiError(error) from None
    return value


def _limit(args: Mapping[str, Any], default: int) -> int:
    raw = args.get("limit")
    if raw in (None, "", 0, "0"):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise ApiError("invalid_limit") from None
    if value < 1:
        raise ApiError("invalid_limit")
    return min(value, MAX_LIMIT)


def _ts_bound(args: Mapping[str, Any], name: str, default: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    micros = parse_ts(raw)
    if micros is None:
        raise ApiError("invalid_ts_" + name)
    return micros


def _channel(ws: Workspace, args: Mapping[str, Any]) -> Channel:
    channel = ws.directory.find(str(args.get("channel") or ""))
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def _cursor(args: Mapping[str, Any]) -> int | None:
    raw = str(args.get("cursor") or "")
    if not raw:
        return None
    try:
        text = base64.b64decode(raw.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError("invalid_cursor") from None
    micros = parse_ts(text.removeprefix("next_ts:")) if text.startswith("next_ts:") else None
    if micros is None:
        raise ApiError("invalid_cursor")
    return micros


def _next_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


# -- message content ------------------------------------------------------------------------------


def _content(args: Mapping[str, Any], required: bool) -> dict[str, Any]:
    """text / blocks / metadata of a post or an update, checked as Slack checks them."""
    content: dict[str, Any] = {}
    text = args.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise ApiError("invalid_arguments")
        content["text"] = text
    blocks = _json_arg(args, "blocks", "invalid_blocks_format")
    if blocks is not None:
        if not isinstance(blocks, list):
            raise ApiError("invalid_blocks_format")
        problems = block_problems(blocks)
        if problems:
            raise ApiError("invalid_blocks", errors=problems,
                           response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
        content["blocks"] = blocks
    if required and not (content.get("text") or "").strip() and not content.get("blocks"):
        raise ApiError("no_text")
    if len(content.get("text") or "") > MAX_TEXT:
        raise ApiError("msg_too_long")
    for name in ("username", "icon_emoji"):  # chat:write.customize; shown on the page
        if isinstance(args.get(name), str) and args[name]:
            content[name] = args[name]
    metadata = _json_arg(args, "metadata", "invalid_metadata_format")
    if metadata is not None:
        if not (isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str)
                and isinstance(metadata.get("event_payload"), dict)):
            raise ApiError("invalid_metadata_format")
        content["metadata"] = {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}
    return content


def slack_message(message: Message, include_metadata: bool = True) -> dict[str, Any]:
    """A stored message as Slack's message object."""
    payload = message.payload
    out: dict[str, Any] = {"type": "message", "ts": message.ts, "text": payload.get("text") or ""}
    if message.from_webhook:
        out.update(subtype="bot_message", bot_id=WEBHOOK_BOT_ID)
    else:
        out.update(user=BOT_USER_ID, bot_id=BOT_ID, app_id=APP_ID, team=TEAM_ID)
    if isinstance(payload.get("username"), str):
        out["username"] = payload["username"]
    if isinstance(payload.get("blocks"), list) and payload["blocks"]:
        out["blocks"] = payload["blocks"]
    if message.thread_ts is not None:
        out["thread_ts"] = message.thread_ts
    if message.is_reply:
        out["parent_user_id"] = BOT_USER_ID
        if message.reply_broadcast:
            out["subtype"] = "thread_broadcast"
    if message.replies:
        out.update(reply_count=len(message.replies), reply_users_count=1, reply_users=[BOT_USER_ID],
                   latest_reply=message.replies[-1])
    if message.edits:
        out["edited"] = {"user": BOT_USER_ID, "ts": message.edits[-1]["edit_ts"]}
    if include_metadata and isinstance(payload.get("metadata"), dict):
        out["metadata"] = payload["metadata"]
    return out


# -- methods --------------------------------------------------------------------------------------


def auth_test(ws: Workspace, req: Request) -> dict[str, Any]:
    return {"url": req.base_url, "team": TEAM_NAME, "user": BOT_USER_NAME, "team_id": TEAM_ID,
            "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}


def chat_post_message(ws: Workspace, req: Request) -> dict[str, Any]:
    channel = _channel(ws, req.args)
    content = _content(req.args, required=True)
    thread_ts = str(req.args.get("thread_ts") or "") or None
    try:
        message = ws.post(channel, req.received_at, req.path, content, thread_ts,
                          _flag(req.args.get("reply_broadcast")))
    except KeyError:
        raise ApiError("thread_not_found") from None
    return {"channel": channel.id, "ts": message.ts, "message": slack_message(message)}


def chat_update(ws: Workspace, req: Request) -> dict[str, Any]:
    channel = _channel(ws, req.args)
    ts = str(req.args.get("ts") or "")
    message = ws.get(channel, ts) if ts else None
    if message is None:
        raise ApiError("message_not_found")
    if message.from_webhook:
        raise ApiError("cant_update_message")
    changes = _content(req.args, required=False)
    if not changes:
        raise ApiError("no_text")
    message = ws.edit(channel, ts, req.received_at, req.path, changes)
    return {"channel": channel.id, "ts": ts, "text": message.payload.get("text") or "",
            "message": slack_message(message)}


def _page(messages: list[Message], args: Mapping[str, Any], default_limit: int,
          newest_first: bool) -> tuple[list[Message], str | None]:
    """Messages between oldest and latest, one page of ``limit`` from ``cursor`` on, and the next cursor."""
    inclusive = _flag(args.get("inclusive"))
    oldest, latest = _ts_bound(args, "oldest", 0), _ts_bound(args, "latest", 1 << 62)
    limit, cursor = _limit(args, default_limit), _cursor(args)

    def inside(m: Message) -> bool:
        micros = parse_ts(m.ts) or 0
        if inclusive:
            return oldest <= micros <= latest
        return oldest < micros < latest

    chosen = sorted((m for m in messages if inside(m)), key=lambda m: parse_ts(m.ts) or 0, reverse=newest_first)
    if cursor is not None:
        chosen = [m for m in chosen if ((parse_ts(m.ts) or 0) <= cursor if newest_first
                                        else (parse_ts(m.ts) or 0) >= cursor)]
    page, rest = chosen[:limit], chosen[limit:]
    return page, (rest[0].ts if rest else None)


def _listing(page: list[Message], next_ts: str | None, include_metadata: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": [slack_message(m, include_metadata) for m in page],
                           "has_more": next_ts is not None}
    if next_ts is not None:
        out["response_metadata"] = {"next_cursor": _next_cursor(next_ts)}
    return out


def conversations_history(ws: Workspace, req: Request) -> dict[str, Any]:
    channel = _channel(ws, req.args)
    shown = [m for m in ws.channel_messages(channel) if not m.is_reply or m.reply_broadcast]
    page, next_ts = _page(shown, req.args, DEFAULT_HISTORY_LIMIT, newest_first=True)
    out = _listing(page, next_ts, _flag(req.args.get("include_all_metadata")))
    out.update(pin_count=0, channel_actions_ts=None, channel_actions_count=0)
    return out


def conversations_replies(ws: Workspace, req: Request) -> dict[str, Any]:
    channel = _channel(ws, req.args)
    ts = str(req.args.get("ts") or "")
    thread = ws.thread(channel, ts) if ts else []
    if not thread:
        raise ApiError("thread_not_found")
    page, next_ts = _page(thread, req.args, DEFAULT_REPLIES_LIMIT, newest_first=False)
    return _listing(page, next_ts, _flag(req.args.get("include_all_metadata")))


METHODS: dict[str, Callable[[Workspace, Request], dict[str, Any]]] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
}


def call(ws: Workspace, method: str, req: Request, authorization: str | None, token: str) -> tuple[int, dict[str, Any]]:
    """Run one method: (HTTP status, answer). Unknown methods are 404 ``unknown_method`` as on Slack."""
    handler = METHODS.get(method)
    try:
        if handler is None:
            raise ApiError("unknown_method", status=404, req_method=method)
        check_token(req.args, authorization, token)
        return 200, {"ok": True, **handler(ws, req)}
    except ApiError as exc:
        return exc.status, {"ok": False, "error": exc.code, **exc.extra}
