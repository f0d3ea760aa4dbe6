"""Parse and validate a webhook body the way Slack's incoming webhooks do (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class PayloadError(ValueError):
    """The body is not acceptable; ``code`` is the text Slack answers with a 400."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _loads(text: str) -> Any:
    # NaN/Infinity would make the stored line unreadable for strict JSON readers.
    return json.loads(text, parse_constant=_reject_constant)


def _form_payload(text: str) -> str | None:
    values = parse_qs(text, keep_blank_values=True).get("payload")
    return values[0] if values else None


def _non_empty(value: object) -> bool:
    return bool(value.strip()) if isinstance(value, str) else False


def parse_webhook_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Return the message object or raise :class:`PayloadError` (``invalid_payload``/``no_text``).

    JSON bodies and ``payload=<urlencoded json>`` form bodies are both accepted. A form content type
    without a ``payload`` field falls back to JSON (``curl -d '{"text": ...}'`` sends that).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("invalid_payload") from exc
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime == FORM_CONTENT_TYPE or text.startswith("payload="):
        text = _form_payload(text) or text
    try:
        payload = _loads(text)
    except ValueError as exc:
        raise PayloadError("invalid_payload") from exc
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload")
    blocks = payload.get("blocks")
    if not _non_empty(payload.get("text")) and not (isinstance(blocks, list) and blocks):
        raise PayloadError("no_text")
    return payload
