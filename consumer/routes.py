"""Routes: which Slack destination, and which throttle budget, each alert goes to (``routes.yaml``).

An ordered list of rules; the first whose ``match`` holds wins; otherwise the ``default`` route. A route names a
channel (Web API mode) and/or the NAME of an environment variable holding an incoming webhook's URL (webhook mode),
so no secret sits in the file. Each route has its own application-wide budget (``max_per_minute``, default
``THROTTLE_MAX_PER_MINUTE``). Omitted destinations fall back to the default route's, which fall back to
``SLACK_CHANNEL`` / ``SLACK_WEBHOOK_URL``.

The file is read with PyYAML's composer (its nodes keep line numbers) and checked against ``SCHEMA`` with
jsonschema. Any problem is one ``RoutesError`` sentence naming the file, the line and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from consumer.errors import ConfigError
from consumer.model import LogEvent
from consumer.pipeline.match import Match, MatchError, build

DEFAULT_ROUTE_NAME = "default"
_ONE_OR_MORE = {"oneOf": [{"type": "string", "minLength": 1},
                          {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}]}

_DESTINATION = {
    "channel": {"type": "string", "minLength": 1},
    "webhook": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"},
    "max_per_minute": {"type": "integer", "minimum": 1},
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "routes": {"type": "array", "items": {"$ref": "#/$defs/route"}},
        "default": {"$ref": "#/$defs/destination"},
    },
    "$defs": {
        "route": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "match"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
                "match": {"$ref": "#/$defs/match"},
                **_DESTINATION,
            },
        },
        "destination": {"type": "object", "additionalProperties": False, "properties": _DESTINATION},
        "match": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "service": _ONE_OR_MORE,
                "level": _ONE_OR_MORE,  # names checked by the matcher (``warning`` is WARN, ``FATAL`` is ERROR)
                "message": {"type": "string", "minLength": 1},
            },
        },
    },
}
jsonschema.Draft202012Validator.check_schema(SCHEMA)
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


class RoutesError(ConfigError):
    """The rules file cannot be used: ``<file>:<line>: <problem>``."""


@dataclass(frozen=True)
class Route:
    name: str
    match: Match
    channel: str | None  # Web API mode; None: SLACK_CHANNEL
    webhook: str | None  # webhook mode: the environment variable holding the URL; None: SLACK_WEBHOOK_URL
    max_per_minute: int
    line: int = 0  # where it is defined (0: not from a file)

    @property
    def budget_key(self) -> str:
        """The throttle budget's key in the shared state: one budget per route, application-wide."""
        return f"route#{self.name}"


@dataclass(frozen=True)
class Routes:
    rules: tuple[Route, ...]
    default: Route
    source: str = "(built in)"

    @property
    def all(self) -> tuple[Route, ...]:
        return (*self.rules, self.default)


def route_for(event: LogEvent, routes: Routes) -> Route:
    """The first rule whose match holds, else the default route. Pure."""
    return next((route for route in routes.rules if route.match.matches(event)), routes.default)


def default_only(max_per_minute: int) -> Routes:
    """Everything to ``SLACK_CHANNEL`` / ``SLACK_WEBHOOK_URL`` (no rules file)."""
    return Routes((), Route(DEFAULT_ROUTE_NAME, Match(), None, None, max_per_minute))


# -- reading ---------------------------------------------------------------------------------------------------

_Path = tuple[str | int, ...]


def load_routes(path: Path, default_max_per_minute: int) -> Routes:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutesError(f"{path}: cannot read the routes file ({exc.__class__.__name__}: {exc})") from None
    return parse_routes(text, str(path), default_max_per_minute)


def parse_routes(text: str, source: str, default_max_per_minute: int) -> Routes:
    def fail(line: int, problem: str) -> RoutesError:
        return RoutesError(f"{source}:{line}: {problem}")

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise fail(line, f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise fail(1, f"not valid YAML: {exc}") from None
    lines: dict[_Path, int] = {}
    data = {} if node is None else _plain(node, (), lines, fail)
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(data))
    if error is not None:
        where = tuple(error.absolute_path)
        line_at = where
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
            unknown = sorted(set(error.instance) - set(known))
            line_at = (*where, unknown[0]) if unknown else where
        raise fail(_line_of(line_at, lines), _explain(error, where))
    rules: list[Route] = []
    seen: dict[str, int] = {}
    for index, rule in enumerate(data.get("routes") or []):
        at: _Path = ("routes", index)
        name = str(rule["name"])
        if name == DEFAULT_ROUTE_NAME:
            raise fail(_line_of((*at, "name"), lines), f"routes[{index}]: the name {name!r} is the default route's")
        if name in seen:
            raise fail(_line_of((*at, "name"), lines),
                       f"routes[{index}]: the name {name!r} is already used by the route on line {seen[name]}")
        seen[name] = _line_of(at, lines)
        m = rule["match"]
        try:
            match = build(_listed(m.get("service")), _listed(m.get("level")), m.get("message"))
        except MatchError as exc:
            where = (*at, "match", exc.field)
            raise fail(_line_of(where, lines), f"{_dotted(where)}: {exc}") from None
        rules.append(Route(name, match, rule.get("channel"), rule.get("webhook"),
                           int(rule.get("max_per_minute", default_max_per_minute)), seen[name]))
    d = data.get("default") or {}
    default = Route(DEFAULT_ROUTE_NAME, Match(), d.get("channel"), d.get("webhook"),
                    int(d.get("max_per_minute", default_max_per_minute)), _line_of(("default",), lines))
    return Routes(tuple(rules), default, source)


def _listed(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _plain(node: yaml.Node, at: _Path, lines: dict[_Path, int], fail: Any) -> Any:
    """YAML node -> plain data (as ``yaml.safe_load`` would give), noting each value's line by its path."""
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                raise fail(key_node.start_mark.line + 1, f"{key!r} is given twice")
            out[key] = _plain(value_node, (*at, key), lines, fail)
            lines[(*at, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*at, index), lines, fail) for index, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _line_of(where: Sequence[str | int], lines: Mapping[_Path, int]) -> int:
    path = tuple(where)
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


def _dotted(where: Sequence[str | int]) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "the file"


def _explain(error: jsonschema.ValidationError, where: _Path) -> str:
    field = _dotted(where)
    if where and where[-1] == "webhook":  # never echo the value: it may be a pasted URL (a secret)
        return (f"{field}: must name an environment variable holding the webhook URL "
                "(e.g. SLACK_WEBHOOK_URL_PAYMENTS), not the URL itself")
    if error.validator == "additionalProperties":
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"{field}: unknown key {', '.join(map(repr, unknown))} (allowed: {', '.join(allowed)})"
    if error.validator == "minProperties" and where and where[-1] == "match":
        return f"{field}: give at least one of service, level, message"
    return f"{field}: {error.message}"


# -- python -m consumer.routes -----------------------------------------------------------------------------------


def describe(routes: Routes, webhooks: Mapping[str, object], default_channel: str | None) -> list[tuple[str, ...]]:
    """One row per route, in matching order: where its alerts go in each mode, and its budget."""
    default = routes.default
    rows: list[tuple[str, ...]] = [("route", "line", "match", "channel (Web API)", "webhook (webhook mode)",
                                    "budget/min")]
    for route in routes.all:
        channel = route.channel or default.channel or default_channel or "SLACK_CHANNEL"
        fallback = default.webhook or "SLACK_WEBHOOK_URL"
        if route.webhook is None or route.webhook == fallback:
            hook = fallback
        else:
            hook = route.webhook if route.webhook in webhooks else f"{route.webhook} (unset: {fallback})"
        match = route.match.describe() if route is not default else "(no rule matched)"
        rows.append((route.name, str(route.line or "-"), match, channel, hook, str(route.max_per_minute)))
    return rows


def main() -> None:
    """Print the routes in force (``CALI_ROUTES_FILE``) with their destinations and budgets; exit 2 if invalid."""
    import sys

    from consumer.config import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"python -m consumer.routes: {exc}\n")
        raise SystemExit(2) from None
    rows = describe(settings.routes, settings.webhooks, settings.slack_channel)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    sys.stdout.write(f"routes from {settings.routes.source} (first match wins)\n")
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


if __name__ == "__main__":
    main()
