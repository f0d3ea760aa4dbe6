"""Routes: matching tables (first match, globs, regex, levels, default) and the rules file's errors, one line each."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from consumer.alerter import Alerter, RecordIn
from consumer.config import DEFAULT_ROUTES_FILE, Secret, load_settings
from consumer.decision import Mode
from consumer.errors import ConfigError
from consumer.model import Level, LogEvent
from consumer.routes import RoutesError, default_only, load_routes, parse_routes, route_for
from consumer.state.memory import MemoryState
from tests.test_consumer_alerter import FakeClock, FakeSleep, RecordingSender

RULES = """\
routes:
  - name: database
    match:
      level: ERROR
      message: "(?i)db timeout|deadlock"
    channel: db-oncall
    webhook: SLACK_WEBHOOK_URL_DATABASE
  - name: payments
    match:
      service: payment-api
    channel: payments-alerts
    max_per_minute: 10
  - name: commerce
    match:
      service: [order-api, "inventory-*"]
  - name: edge-warn
    match:
      service: "gate?ay"
      level: [WARN]
  - name: warnings
    match:
      level: warning
default:
  channel: alerts
  max_per_minute: 3
"""


def event(service: str | None, level: Level = Level.ERROR, message: str = "boom") -> LogEvent:
    return LogEvent(level=level, message=message, service=service)


@pytest.mark.parametrize(("ev", "expected"), [
    pytest.param(event("payment-api", message="DB Timeout after 3000ms"), "database", id="regex-first-match-wins"),
    pytest.param(event("payment-api", Level.WARN, "db timeout after 3000ms"), "payments", id="regex-but-wrong-level"),
    pytest.param(event("payment-api", message="card declined"), "payments", id="service-exact"),
    pytest.param(event("payment-api-v2"), "default", id="exact-is-not-prefix"),
    pytest.param(event("order-api"), "commerce", id="service-list"),
    pytest.param(event("inventory-api"), "commerce", id="service-glob-in-list"),
    pytest.param(event("gateway", Level.WARN), "edge-warn", id="glob-question-mark-and-level"),
    pytest.param(event("gateway", Level.ERROR), "default", id="level-excludes"),
    pytest.param(event("auth-api", Level.WARN), "warnings", id="level-normalised-warning"),
    pytest.param(event(None, Level.WARN), "warnings", id="no-service-level-only-rule"),
    pytest.param(event(None), "default", id="no-service-default"),
    pytest.param(event("Payment-API"), "default", id="service-case-sensitive"),
    pytest.param(event("x", message="a deadlock detected"), "database", id="regex-searches-anywhere"),
])
def test_route_for(ev: LogEvent, expected: str) -> None:
    routes = parse_routes(RULES, "routes.yaml", 5)
    assert route_for(ev, routes).name == expected


def test_route_fields_and_defaults() -> None:
    routes = parse_routes(RULES, "routes.yaml", 5)
    by_name = {r.name: r for r in routes.all}
    assert (by_name["database"].channel, by_name["database"].webhook, by_name["database"].max_per_minute) == \
        ("db-oncall", "SLACK_WEBHOOK_URL_DATABASE", 5)
    assert (by_name["payments"].webhook, by_name["payments"].max_per_minute) == (None, 10)
    assert (by_name["default"].channel, by_name["default"].max_per_minute) == ("alerts", 3)
    assert by_name["payments"].line == 8
    assert by_name["payments"].budget_key == "route#payments"
    assert [r.name for r in routes.all] == ["database", "payments", "commerce", "edge-warn", "warnings", "default"]


def test_no_rules_everything_to_the_default() -> None:
    routes = default_only(7)
    assert route_for(event("anything"), routes) == routes.default
    assert routes.default.max_per_minute == 7 and routes.default.channel is None and routes.default.webhook is None
    assert route_for(event("x"), parse_routes("", "empty.yaml", 5)).name == "default"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("routes:\n  - name: a\n    match: {service: x}\n    chanel: c\n",
                 "routes.yaml:4: routes[0]: unknown key 'chanel'", id="unknown-key"),
    pytest.param("routes:\n  - match: {service: x}\n",
                 "routes.yaml:2: routes[0]: 'name' is a required property", id="no-name"),
    pytest.param("routes:\n  - name: a\n", "routes.yaml:2: routes[0]: 'match' is a required property", id="no-match"),
    pytest.param("routes:\n  - name: a\n    match: {}\n",
                 "routes.yaml:3: routes[0].match: give at least one of service", id="empty-match"),
    pytest.param("routes:\n  - name: a\n    match:\n      level: FOO\n",
                 "routes.yaml:4: routes[0].match.level: 'FOO' is not a log level", id="bad-level"),
    pytest.param("routes:\n  - name: a\n    match:\n      message: '(unclosed'\n",
                 "routes.yaml:4: routes[0].match.message: '(unclosed' is not a valid regular", id="bad-regex"),
    pytest.param("routes:\n  - name: a\n    match: {service: x}\n    max_per_minute: 0\n",
                 "routes.yaml:4: routes[0].max_per_minute: 0 is less than the minimum of 1", id="zero-budget"),
    pytest.param("routes:\n  - name: a\n    match: {service: x}\n    max_per_minute: many\n",
                 "routes.yaml:4: routes[0].max_per_minute: 'many' is not of type 'integer'", id="budget-not-a-number"),
    pytest.param("routes:\n  - name: a\n    match: {service: x}\n  - name: a\n    match: {service: y}\n",
                 "routes.yaml:4: routes[1]: the name 'a' is already used by the route on line 2", id="duplicate-name"),
    pytest.param("routes:\n  - name: default\n    match: {service: x}\n",
                 "routes.yaml:2: routes[0]: the name 'default' is the default route's", id="name-default"),
    pytest.param("routes:\n  - name: Bad Name\n    match: {service: x}\n",
                 "routes.yaml:2: routes[0].name:", id="bad-name"),
    pytest.param("routes:\n  - name: a\n    match: {service: x}\n  name: b\n",
                 "routes.yaml:4: not valid YAML", id="yaml-syntax"),
    pytest.param("routes:\n  - name: a\n    name: b\n    match: {service: x}\n",
                 "routes.yaml:3: 'name' is given twice", id="duplicate-key"),
    pytest.param("routes: {}\n", "routes.yaml:1: routes: {} is not of type 'array'", id="routes-not-a-list"),
    pytest.param("route:\n  - name: a\n",
                 "routes.yaml:1: the file: unknown key 'route' (allowed: default, routes)", id="top-level-typo"),
    pytest.param("default:\n  webhok: X\n", "routes.yaml:2: default: unknown key 'webhok'", id="default-unknown-key"),
    pytest.param("routes:\n  - name: a\n    match: {service: [x, 3]}\n",
                 "routes.yaml:3: routes[0].match.service[1]: 3 is not of type 'string'", id="service-not-text"),
])
def test_schema_errors_are_one_line_with_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(text, "routes.yaml", 5)
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_a_webhook_url_in_the_file_is_refused_without_echoing_it() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    text = f"routes:\n  - name: a\n    match: {{service: x}}\n    webhook: {url}\n"
    with pytest.raises(RoutesError) as caught:
        parse_routes(text, "routes.yaml", 5)
    assert str(caught.value).startswith("routes.yaml:4: routes[0].webhook: must name an environment variable")
    assert "XXXXSECRET" not in str(caught.value) and "hooks.slack.com" not in str(caught.value)


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RoutesError, match=r"^.*missing\.yaml: cannot read the routes file"):
        load_routes(tmp_path / "missing.yaml", 5)


def test_the_shipped_file_routes_the_generators_services() -> None:
    from generator.lines import DEFAULT_SERVICES

    routes = load_routes(DEFAULT_ROUTES_FILE, 5)
    for service in DEFAULT_SERVICES:  # every service has its team's route, for ERROR and WARN alike
        for level in (Level.ERROR, Level.WARN):
            assert route_for(event(service, level, "something else"), routes).name not in {"default", "warnings"}
    assert route_for(event("payment-api", message="db timeout after 3000ms"), routes).name == "database"
    assert route_for(event("billing-api", Level.WARN), routes).name == "warnings"
    assert route_for(event("billing-api"), routes).name == "default"
    assert all(r.webhook is None or r.webhook.startswith("SLACK_WEBHOOK_URL") for r in routes.all)


def test_settings_read_the_routes_file_and_only_the_named_webhooks(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("routes:\n  - name: a\n    match: {service: x}\n    webhook: HOOK_A\n"
                     "  - name: b\n    match: {service: y}\n    webhook: HOOK_B\n")
    settings = load_settings({"CALI_ROUTES_FILE": str(rules), "HOOK_A": "https://example.test/a",
                              "OTHER": "https://example.test/other", "THROTTLE_MAX_PER_MINUTE": "4"})
    assert settings.webhooks == {"HOOK_A": Secret("https://example.test/a")}  # HOOK_B unset: default webhook
    assert [r.max_per_minute for r in settings.routes.all] == [4, 4, 4]
    assert "example.test" not in repr(settings)
    assert load_settings({"CALI_ROUTES_FILE": "none"}).routes.rules == ()
    with pytest.raises(ConfigError, match="cannot read the routes file"):
        load_settings({"CALI_ROUTES_FILE": str(tmp_path / "nope.yaml")})


# -- in the alert path: each route its own sender, budget, digest and incidents -----------------------------------

RULES_TWO = "routes:\n  - name: pay\n    match: {service: payment-api}\n    max_per_minute: 2\ndefault: {}\n"


class Routed:
    def __init__(self, mode: Mode = Mode.WEBHOOK) -> None:
        self.clock = FakeClock()
        self.routes = parse_routes(RULES_TWO, "routes.yaml", 3)
        self.senders = {r.name: RecordingSender(r.budget_key) for r in self.routes.all}
        limits = {r.budget_key: r.max_per_minute for r in self.routes.all}
        self.alerter = Alerter(levels={"ERROR", "WARN"}, state=MemoryState(99, limits=limits), senders=self.senders,
                               display_tz=ZoneInfo("UTC"), clock=self.clock, sleep=FakeSleep(self.clock),
                               digest_interval=60.0, mode=mode, routes=self.routes)
        self.seq = 0

    def batch(self, *events: tuple[str, str]) -> None:
        records = []
        for service, message in events:
            self.seq += 1
            line = json.dumps({"level": "ERROR", "service": service, "message": message})
            records.append(RecordIn(line.encode(), "shardId-000000000000", str(1000 + self.seq)))
        self.alerter.handle_batch(records)


def test_each_route_has_its_own_sender_budget_and_digest() -> None:
    rig = Routed()
    kinds = ["db timeout", "card declined", "ledger locked", "refund failed", "fraud check down"]
    rig.batch(*[("payment-api", kind) for kind in kinds], *[("auth-api", kind) for kind in kinds])
    pay, default = rig.senders["pay"], rig.senders["default"]
    assert (len(pay.texts), len(default.texts)) == (2, 3)  # 2 and 3 a minute: each route its own budget
    assert all("payment-api" in t for t in pay.texts) and all("auth-api" in t for t in default.texts)
    assert rig.alerter.held == 5
    rig.clock.advance(125)  # both routes' digest intervals closed
    rig.alerter.tick()
    assert "3 more" in pay.texts[-1] and "2 more" in default.texts[-1]  # each route's digest to its own sender
    stats = rig.alerter.stats
    assert (stats.alerted_events, stats.digested_events, rig.alerter.held) == (5, 5, 0)


def test_web_api_incidents_are_per_route() -> None:
    rig = Routed(Mode.WEB_API)
    rig.batch(("payment-api", "db timeout after 10ms"), ("auth-api", "db timeout after 10ms"))
    rig.batch(("payment-api", "db timeout after 20ms"), ("auth-api", "db timeout after 30ms"))
    assert len(rig.senders["pay"].texts) == 1 and len(rig.senders["default"].texts) == 1  # one root per route
    assert rig.alerter.stats.repeat_events == 2  # the repeats counted into each route's own incident
