"""Routes and silences on the real pipeline (webhook mode): moto, the KCL MultiLangDaemon, the Python processors,
the Slack receiver with one channel per route; silences added and expired with the real CLI while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumer.health import read_heartbeats
from consumer.silence.store import SilenceStore
from localmode.stack import Stack
from tests.integration.conftest import Daemon, stack_env
from tests.integration.helpers import Receiver, error_line, event_count, put_lines, wait_for

TIMEOUT = 120.0
ROUTES = """\
routes:
  - name: team-a
    match: {service: "ra-*"}
    channel: team-a
    webhook: CALI_TEST_WEBHOOK_A
    max_per_minute: 3
  - name: team-b
    match: {service: "rb-*"}
    channel: team-b
    webhook: CALI_TEST_WEBHOOK_B
    max_per_minute: 2
default:
  max_per_minute: 100000
"""


@pytest.fixture(scope="module")
def routed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Receiver, Daemon]]:
    run = tmp_path_factory.mktemp("cali-routed")
    (run / "routes.yaml").write_text(ROUTES)
    env = stack_env(stack.settings.endpoint_url or "", CALI_ROUTES_FILE=str(run / "routes.yaml"),
                    CALI_SILENCE_REFRESH_SECONDS="1", CALI_DEDUP_WINDOW_SECONDS="300",
                    CALI_HEALTH_DIR=str(run / "health"), CALI_OPERATOR="integration-test")
    other = Stack(env=env, run_dir=run)
    try:
        other.start_emulator()  # finds the session's emulator and uses it
        other.create_resources()
        other.start_receiver()  # points CALI_TEST_WEBHOOK_A/B at the channels team-a/team-b
        daemon = Daemon(other, "cali-test-routed")
        daemon.start()
        yield other, Receiver(f"http://127.0.0.1:{other.local.slack_receiver_port}"), daemon
    finally:
        other.stop()


def totals(stack: Stack) -> dict[str, Any]:
    """The processors' stats summed over the shards' heartbeats (what the status line reads)."""
    names = ("events", "alerted_events", "repeat_events", "digested_events", "already_delivered", "held",
             "silenced_events", "dropped")
    out: Counter[str] = Counter(dict.fromkeys(names, 0))
    silenced: Counter[str] = Counter()
    for beat in read_heartbeats(stack.settings.health_dir).values():
        stats = beat.get("stats", {})
        out["events"] += stats.get("events", {}).get("ERROR", 0) + stats.get("events", {}).get("WARN", 0)
        for name in names[1:-1]:
            out[name] += stats.get(name, 0)
        out["dropped"] += stats.get("dropped", {}).get("slack_permanent_error", 0)
        silenced.update(stats.get("silenced", {}))
    return {**out, "silenced": dict(silenced)}


def accounted(t: dict[str, Any]) -> int:
    return int(t["alerted_events"] + t["repeat_events"] + t["digested_events"] + t["already_delivered"] + t["held"]
               + t["silenced_events"] + t["dropped"])


def test_two_routes_two_channels_each_within_its_own_budget(routed: tuple[Stack, Receiver, Daemon]) -> None:
    stack, receiver, _ = routed
    marker = uuid.uuid4().hex[:8]
    lines = [error_line(f"ra-{marker}-{i}", f"{marker} team a failure {i}") for i in range(6)]
    lines += [error_line(f"rb-{marker}-{i}", f"{marker} team b failure {i}") for i in range(5)]
    before = totals(stack)["events"]
    put_lines(stack.client("kinesis"), stack.settings.stream_name, lines)

    def per_channel() -> dict[str, tuple[int, int]]:
        """channel -> (alerts, events accounted for by its alerts and digests)"""
        out = {}
        for channel in ("team-a", "team-b", "cali-alerts"):
            payloads = [m["payload"] for m in receiver.messages(channel) if marker in m["payload"].get("text", "")]
            alerts = [p for p in payloads if not p["text"][0].isdigit()]
            out[channel] = (len(alerts), sum(event_count(p) for p in payloads))
        return out

    # 6 events in team-a: 3 alerts (its budget) and a digest of 3; 5 in team-b: 2 alerts and a digest of 3
    found = wait_for(per_channel, lambda c: c["team-a"][1] == 6 and c["team-b"][1] == 5, TIMEOUT,
                     "team-a and team-b to account for their 6 and 5 events")
    assert found == {"team-a": (3, 6), "team-b": (2, 5), "cali-alerts": (0, 0)}
    final = wait_for(lambda: totals(stack), lambda t: t["events"] - before >= 11 and accounted(t) == t["events"]
                     and t["held"] == 0, 30, "the heartbeats to account for all 11 events, none held")
    assert final["alerted_events"] >= 5 and final["digested_events"] >= 6


def silence_cli(stack: Stack, *argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", "consumer.silence", *argv], env=stack.env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def in_force_lines(daemon: Daemon, text: str) -> int:
    return sum(1 for line in daemon.log_text().splitlines() if f"silences in force: {text}" in line)


def test_a_silence_added_while_running_holds_counts_exactly_and_alerts_resume_after_it(
        routed: tuple[Stack, Receiver, Daemon]) -> None:
    stack, receiver, daemon = routed
    marker = uuid.uuid4().hex[:8]
    service = f"rs-{marker}"
    kinesis, stream = stack.client("kinesis"), stack.settings.stream_name
    timeouts = lambda: [t for t in receiver.texts(service) if "db timeout" in t]  # noqa: E731
    put_lines(kinesis, stream, [error_line(service, "db timeout after 3000ms")])
    first = wait_for(timeouts, lambda t: len(t) == 1, TIMEOUT, "the first alert, before the silence")

    out = silence_cli(stack, "add", "--match", f"service={service}", "--match", "message~db timeout", "--for", "1h",
                      "--reason", "known: failover")
    silence_id = out.split()[1]
    none_before = in_force_lines(daemon, "none")
    wait_for(lambda: in_force_lines(daemon, silence_id), lambda n: n >= 2, 30,
             "both shards' processors to see the new silence (no restart)")
    silenced = [error_line(service, f"db timeout after {1000 + i}ms") for i in range(7)]
    other = [error_line(f"{service}-{i}", f"{marker} card declined {i}") for i in range(2)]
    put_lines(kinesis, stream, silenced + other)

    wait_for(lambda: receiver.texts(f"{marker} card declined"), lambda t: len(t) == 2, TIMEOUT,
             "the 2 events no silence matches")
    store = SilenceStore(stack.client("dynamodb"), stack.settings.silences_table)
    counted = wait_for(lambda: {s.id: s.silenced for s in store.all()}.get(silence_id), lambda n: n == 7, 30,
                       "the silence's count")
    assert counted == 7
    assert timeouts() == first  # no alert, no digest for the silenced ones
    listing = [json.loads(line) for line in silence_cli(stack, "list", "--json").splitlines()]
    assert [(x["id"], x["state"], x["silenced"]) for x in listing if x["id"] == silence_id] == [
        (silence_id, "active", 7)]

    silence_cli(stack, "expire", silence_id)
    wait_for(lambda: in_force_lines(daemon, "none"), lambda n: n >= none_before + 2, 30,
             "both processors to see the silence end")
    put_lines(kinesis, stream, [error_line(service, "db timeout after 9999ms")])
    texts = wait_for(timeouts, lambda t: len(t) == 2, TIMEOUT, "the alert after the silence")
    assert "9999" in texts[-1]  # alerted as new, though within the 300 s dedup window of the first alert

    final = wait_for(lambda: totals(stack), lambda t: t["silenced"].get(silence_id) == 7
                     and accounted(t) == t["events"], 30, "the heartbeats to count the silenced events")
    assert final["silenced_events"] >= 7
    assert {s.id: s.silenced for s in store.all()}[silence_id] == 7  # exactly, not once per shard or re-read


def test_an_invalid_routes_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "routes.yaml"
    rules.write_text("routes:\n  - name: a\n    match: {level: LOUD}\n")
    result = subprocess.run([sys.executable, "-m", "consumer.routes"], env={**stack_env("http://127.0.0.1:9"),
                            "CALI_ROUTES_FILE": str(rules)}, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr == (f"python -m consumer.routes: {rules}:3: routes[0].match.level: 'LOUD' is not a log "
                             "level (ERROR, WARN, INFO, DEBUG, TRACE)\n")
