"""Which events are "the same alert": service + level + message template.

The template replaces what varies between occurrences of one problem — numbers, ids (a prefixed one keeps its
prefix: ``pay_10d18426d84f`` -> ``pay_<id>``), hex, UUIDs, quoted values, durations, sizes, IPs, e-mails, URLs'
query strings — with placeholders. Pure.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from consumer.model import LogEvent

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\?[^\s\"']*"), "?<query>"),
    (re.compile(r"\"[^\"]*\"|'[^']*'"), "<quoted>"),
    (re.compile(r"\b([A-Za-z]+[_-])(?=[A-Za-z]*\d)[A-Za-z0-9]+\b"), r"\1<id>"),  # pay_10d18426d84f, u-1234
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:[KMGTP]i?B|B|bytes)\b", re.I), "<size>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b", re.I),
     "<hex>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds|m|min|mins|minutes|h|hours)\b", re.I),
     "<duration>"),
    (re.compile(r"\b\d+(?:[.,:/-]\d+)*\b"), "<n>"),
)
_SPACES = re.compile(r"\s+")
MAX_TEMPLATE_INPUT = 2000


@lru_cache(maxsize=4096)  # the same message text comes again and again in a burst
def template(message: str) -> str:
    text = message[:MAX_TEMPLATE_INPUT]
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()


def fingerprint(event: LogEvent) -> str:
    key = "\x1f".join((event.service or "", event.level.value, template(event.message)))
    return hashlib.sha1(key.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[:16]
