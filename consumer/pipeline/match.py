"""Which events a route or a silence applies to: service (exact or glob), level, message (regex). Pure.

One ``Match`` serves both routes (``routes.yaml``) and silences (``--match service=payment-api``), so an operator
writes the same matcher in both places. Every condition given must hold; an empty ``Match`` matches everything.

- service: shell-style globs (``fnmatch``, case-sensitive): ``payment-api``, ``*-api``, ``gateway?``; any of a list.
  An event without a service matches only ``*``.
- level: any of the given levels, after normalisation (``warning`` is WARN, ``FATAL`` is ERROR).
- message: a Python regular expression searched anywhere in the message (``db timeout`` matches
  ``db timeout after 3000ms``); anchor it with ``^``/``$`` to match the whole message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from consumer.model import Level, LogEvent
from consumer.pipeline.levels import normalise_level

MATCH_FIELDS = ("service", "level", "message")


class MatchError(ValueError):
    """A matcher that cannot be used; the message is one sentence for the operator. ``field``: which one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Match:
    services: tuple[str, ...] = ()
    levels: frozenset[Level] = frozenset()
    message: re.Pattern[str] | None = None

    def matches(self, event: LogEvent) -> bool:
        if self.levels and event.level not in self.levels:
            return False
        if self.services and not any(fnmatchcase(event.service or "", glob) for glob in self.services):
            return False
        return self.message is None or self.message.search(event.message) is not None

    def describe(self) -> str:
        """The matcher in the CLI's own syntax: ``service=payment-api level=ERROR message~db timeout``."""
        parts = [f"service={','.join(self.services)}"] if self.services else []
        if self.levels:
            parts.append(f"level={','.join(sorted(level.value for level in self.levels))}")
        if self.message is not None:
            parts.append(f"message~{self.message.pattern}")
        return " ".join(parts) or "(everything)"


def level_of(name: str) -> Level:
    level = normalise_level(name)
    if level is Level.UNKNOWN:
        raise MatchError(f"{name!r} is not a log level (ERROR, WARN, INFO, DEBUG, TRACE)", "level")
    return level


def regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise MatchError(f"{pattern!r} is not a valid regular expression ({exc})", "message") from None


def build(services: list[str] | tuple[str, ...] = (), levels: list[str] | tuple[str, ...] = (),
          message: str | None = None) -> Match:
    if any(not glob for glob in services):
        raise MatchError("a service pattern is empty", "service")
    return Match(tuple(services), frozenset(level_of(name) for name in levels),
                 None if message is None else regex(message))


def parse_matchers(texts: list[str]) -> Match:
    """The CLI's ``--match`` arguments: ``service=GLOB``, ``level=LEVEL``, ``message~REGEX`` (each field once;
    ``service`` and ``level`` take comma-separated alternatives)."""
    services: list[str] = []
    levels: list[str] = []
    message: str | None = None
    seen: set[str] = set()
    for text in texts:
        found = re.match(r"\s*([a-z_]+)\s*(=|~)(.*)\Z", text, re.S)
        if found is None:
            raise MatchError(f"matcher {text!r} is not FIELD=VALUE or message~REGEX")
        name, op, value = found.group(1), found.group(2), found.group(3)
        if name not in MATCH_FIELDS:
            raise MatchError(f"matcher {text!r}: unknown field {name!r} (use {', '.join(MATCH_FIELDS)})")
        if name in seen:
            raise MatchError(f"matcher {text!r}: {name} is given twice")
        seen.add(name)
        if name == "message":
            if op != "~":
                raise MatchError(f"matcher {text!r}: the message matches by regular expression, write message~...")
            message = value
        elif op != "=":
            raise MatchError(f"matcher {text!r}: {name} matches with '=' (service globs like payment-*)")
        else:
            values = [v.strip() for v in value.split(",")]
            (services if name == "service" else levels).extend(values)
    return build(services, levels, message)
