"""Golden transcripts of the KCL MultiLangDaemon protocol, played against the real amazon-kclpy loop, no Java.

The daemon's side (``initialize``, ``processRecords``, checkpoint answers, ``shutdownRequested``...) is scripted;
the processor is wired like ``consumer.wiring.build_processor`` (default settings: checkpoint interval 5 s,
digest interval 60 s, budget 5 per minute, dedup window 300 s) but with a RecordingSender for Slack, the in-memory
AlertState, and a fake clock that the script moves between messages. The test asserts every line the
child writes on its protocol channel, and that nothing else reaches stdout or the error stream.

Protocol (amazon_kclpy/kcl.py, messages.py): each action is one JSON line on stdin; the child answers every action
with ``{"action": "status", "responseFor": <action>}``; a checkpoint is a request line
``{"action": "checkpoint", "sequenceNumber": ..., "subSequenceNumber": ...}`` answered by the daemon with
``{"action": "checkpoint", "sequenceNumber": ..., "subSequenceNumber": ..., "error": null|"<Exception>"}`` (kclpy
requires both number keys in the answer). Records carry ``"action": "record"``.

Checkpoint policy under test: a checkpoint names the last record whose events have all ended (none waits in an
unsent digest), and is written once ``CALI_CHECKPOINT_INTERVAL_SECONDS`` passed since the previous one -- an alert
going out does not force one (a re-read is deduplicated by the idempotency records). ``shutdownRequested`` first
sends a pending digest early (budget permitting), then checkpoints at the last record if nothing is held back.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from amazon_kclpy import kcl

from consumer.alerter import Alerter
from consumer.config import load_settings
from consumer.deliver.slack import Posted
from consumer.kcl.checkpoint import Position, should_checkpoint
from consumer.kcl.processor import AlertRecordProcessor
from consumer.model import Level
from consumer.state.memory import MemoryState
from tests.corpus import fluent_bit_records

SHARD = "shardId-000000000000"
T0 = 1_764_133_200.0
ARRIVAL_MS = 1_764_133_200_000
DEFAULTS = load_settings({})
CHECKPOINT_INTERVAL = 5.0
DIGEST_INTERVAL = 60.0


def seq(n: int) -> str:
    """A Kinesis-shaped sequence number (56 digits)."""
    return f"{49659000000000000000000000000000000000000000000000000000 + n}"


# -- fixture records by (case, index within case) ------------------------------------------------------------


def load_fixture() -> dict[tuple[str, int], dict[str, Any]]:
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for raw in fluent_bit_records():
        index = seen.get(raw["case"], 0)
        seen[raw["case"]] = index + 1
        by_key[(raw["case"], index)] = raw
    return by_key


FIXTURE_RECORDS = load_fixture()
C1, C2, C3, C4A, C4B, C5 = ("c1-tail-json-parser", "c2-tail-json-timekey", "c3-tail-raw-text",
                            "c4a-tail-stacktrace-no-multiline", "c4b-tail-stacktrace-multiline",
                            "c5-tail-json-hostile")


def record(n: int, case: str, index: int) -> dict[str, Any]:
    raw = FIXTURE_RECORDS[(case, index)]
    return {"action": "record", "data": raw["data_b64"], "partitionKey": raw["partition_key"],
            "sequenceNumber": seq(n), "subSequenceNumber": 0, "approximateArrivalTimestamp": ARRIVAL_MS + n}


# -- the daemon's side -------------------------------------------------------------------------------------------


def line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj) + "\n"


def initialize() -> str:
    return line({"action": "initialize", "shardId": SHARD, "sequenceNumber": "TRIM_HORIZON", "subSequenceNumber": 0})


def process(*records: dict[str, Any]) -> str:
    return line({"action": "processRecords", "records": list(records), "millisBehindLatest": 0})


def checkpoint_answer(sequence: str | None, sub: int | None = 0, error: str | None = None) -> str:
    return line({"action": "checkpoint", "sequenceNumber": sequence, "subSequenceNumber": sub, "error": error})


@dataclass(frozen=True)
class Advance:
    """Move the fake clock before the next line is read."""

    seconds: float


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class ScriptedDaemon:
    """The child's stdin: the MultiLangDaemon's lines in order, with clock moves between them."""

    def __init__(self, clock: FakeClock, script: Iterable[str | Advance]) -> None:
        self._clock = clock
        self._script = list(script)

    def readline(self) -> str:
        while self._script:
            item = self._script.pop(0)
            if isinstance(item, Advance):
                self._clock.now += item.seconds
                continue
            return item
        return ""

    @property
    def unread(self) -> list[str | Advance]:
        return list(self._script)


# -- the child's side ----------------------------------------------------------------------------------------------


class RecordingSender:
    """Test double for the Slack edge (the alerter's ``Sender``): records what would be posted to the webhook."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.payloads: list[dict[str, Any]] = []

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        self.payloads.append(json.loads(json.dumps(payload)))
        return Posted()

    @property
    def texts(self) -> list[str]:
        return [str(p["text"]) for p in self.payloads]


@dataclass
class Run:
    out: list[str]
    err: str
    sender: RecordingSender
    sleeps: list[float]
    unread: list[str | Advance]


def play(script: Iterable[str | Advance], capsys: pytest.CaptureFixture[str]) -> Run:
    clock = FakeClock()
    sender = RecordingSender("main")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    state = MemoryState(5)  # THROTTLE_MAX_PER_MINUTE=5

    def make_alerter(shard_id: str) -> Alerter:
        return Alerter(levels=frozenset({"ERROR", "WARN"}), state=state,
                       senders={Level.ERROR: sender, Level.WARN: sender}, display_tz=ZoneInfo("Asia/Seoul"),
                       clock=clock, sleep=sleep, dedup_window=300.0, digest_interval=DIGEST_INTERVAL)

    processor = AlertRecordProcessor(make_alerter, clock=clock, checkpoint_interval=CHECKPOINT_INTERVAL)
    daemon = ScriptedDaemon(clock, script)
    out, err = io.StringIO(), io.StringIO()
    kcl.KCLProcess(processor, input_file=daemon, output_file=out, error_file=err).run()
    assert capsys.readouterr().out == ""  # nothing leaked to the real stdout either
    return Run(out.getvalue().splitlines(), err.getvalue(), sender, sleeps, daemon.unread)


def status(action: str) -> str:
    return json.dumps({"action": "status", "responseFor": action})


def checkpoint_request(sequence: str | None, sub: int | None = 0) -> str:
    return json.dumps({"action": "checkpoint", "sequenceNumber": sequence, "subSequenceNumber": sub})


def protocol_lines(run: Run) -> list[str]:
    """The non-blank lines of the protocol channel (kclpy frames each message with newlines), all valid JSON."""
    lines = [x for x in run.out if x.strip()]
    for text in lines:
        message = json.loads(text)
        assert isinstance(message, dict)
        assert message["action"] in ("status", "checkpoint")
    assert all(not x.strip() for x in run.out if x not in lines)
    return lines


def assert_clean(run: Run) -> None:
    assert run.err == ""
    assert "Traceback" not in run.err
    assert run.unread == []  # the child read exactly the daemon's lines, checkpoint answers included


# -- transcripts ----------------------------------------------------------------------------------------------------


def test_transcript_uses_the_default_settings() -> None:
    assert DEFAULTS.checkpoint_interval_seconds == CHECKPOINT_INTERVAL
    assert DEFAULTS.digest_interval_seconds == DIGEST_INTERVAL
    assert (DEFAULTS.throttle_max_per_minute, DEFAULTS.dedup_window_seconds) == (5, 300.0)


def test_golden_transcript(capsys: pytest.CaptureFixture[str]) -> None:
    script: list[str | Advance] = [
        initialize(),  # T0
        # B1: ERROR + WARN alert at once; INFO and an empty line do not. Alerts went out, but the interval has not
        # passed since initialize: no checkpoint.
        process(record(1, C1, 0), record(2, C1, 1), record(3, C1, 2), record(4, C3, 3)),
        Advance(6.0),
        # B2 (T0+6): nothing to alert; the interval passed: checkpoint at the batch's last record.
        process(record(5, C1, 3), record(6, C4A, 2)),
        checkpoint_answer(seq(6)),
        Advance(1.0),
        # B3 (T0+7): six distinct ERRORs, three left in the budget: three alerts, three held back in the digest of
        # this minute (it closes at T0+60). The checkpoint may not pass the held-back events: it stays at 6.
        process(record(7, C1, 4), record(8, C1, 7), record(9, C1, 8), record(10, C5, 0), record(11, C5, 2),
                record(12, C4B, 2)),
        Advance(6.0),
        # B4 (T0+13): the interval passed, but the digest still waits: no checkpoint past it.
        process(record(13, C1, 2)),
        Advance(50.0),
        # B5 (T0+63): the minute closed at T0+60 (plus a second's grace): its digest goes out first, outside the alert
        # budget. The two alerts of T0 left the window: a new problem alerts at once; the same problem as record 1
        # (c2 repeats c1's first line, inside the dedup window) joins the next minute's digest. Every event up to
        # record 13 has ended and the interval passed: checkpoint at 13.
        process(record(14, C1, 9), record(15, C2, 0)),
        checkpoint_answer(seq(13)),
        Advance(4.0),
        # B6 (T0+67, empty): nothing due.
        process(),
        Advance(1.0),
        # B7 (T0+68): a new problem, alerted; the checkpoint cannot pass record 15 (held): none.
        process(record(16, C1, 10)),
        # B8: a repeat of record 7's problem: folded into the same (second) digest.
        process(record(17, C2, 4)),
        # Shutdown: no Slack call on the way out. The held events wait in the shared digest for whoever reads them
        # again (this shard's next processor, from the checkpoint): the checkpoint stays at 13.
        line({"action": "shutdownRequested"}),
    ]
    run = play(script, capsys)
    assert protocol_lines(run) == [
        status("initialize"),
        status("processRecords"),
        checkpoint_request(seq(6)),
        status("processRecords"),
        status("processRecords"),
        status("processRecords"),
        checkpoint_request(seq(13)),
        status("processRecords"),
        status("processRecords"),
        status("processRecords"),
        status("processRecords"),
        status("shutdownRequested"),
    ]
    assert_clean(run)
    texts = run.sender.texts
    assert [t.split(":")[0] for t in texts] == [
        "[ERROR] payment-api", "[WARN] auth-api",  # B1
        "[ERROR] payment-api", "[ERROR (FATAL)] ledger-api", "[ERROR (CRITICAL)] payment-api",  # B3
        "3 more ERROR/WARN in the last minute",  # B5: the first minute's digest ...
        "[ERROR] payment-api",  # ... then B5's new problem
        "[ERROR (FATAL)] ledger-api",  # B7
    ]
    assert "charge failed" in texts[6]
    assert "&lt;!channel&gt;" in json.dumps(run.sender.payloads[5])  # the hostile c5 line, escaped in the digest
    assert run.sleeps == []


def test_shard_end_drains_the_digest_then_checkpoints_at_shard_end(capsys: pytest.CaptureFixture[str]) -> None:
    script: list[str | Advance] = [
        initialize(),
        process(record(1, C1, 0), record(2, C1, 1), record(3, C1, 4), record(4, C1, 7), record(5, C1, 8),
                record(6, C5, 0), record(7, C5, 2)),
        Advance(2.0),
        line({"action": "shardEnded"}),
        checkpoint_answer(None, None),
    ]
    run = play(script, capsys)
    assert protocol_lines(run) == [
        status("initialize"),
        status("processRecords"),  # the first batch held events back: nothing safe to checkpoint yet
        checkpoint_request(None, None),  # SHARD_END
        status("shardEnded"),
    ]
    assert_clean(run)
    assert len(run.sender.payloads) == 6
    assert run.sender.texts[-1].startswith("2 more ERROR/WARN in the last minute: ")
    assert run.sleeps == []  # sent at once: nothing may stay behind SHARD_END


def test_checkpoint_errors_and_lease_lost(capsys: pytest.CaptureFixture[str]) -> None:
    script: list[str | Advance] = [
        initialize(),
        Advance(11.0),
        process(record(1, C1, 2)),
        checkpoint_answer(seq(1), error="ThrottlingException"),  # retried after a short pause
        checkpoint_answer(seq(1)),
        Advance(11.0),
        process(record(2, C1, 3)),
        checkpoint_answer(seq(2), error="ShutdownException"),  # the lease moved on: not retried
        line({"action": "leaseLost"}),
    ]
    run = play(script, capsys)
    assert protocol_lines(run) == [
        status("initialize"),
        checkpoint_request(seq(1)),
        checkpoint_request(seq(1)),
        status("processRecords"),
        checkpoint_request(seq(2)),
        status("processRecords"),
        status("leaseLost"),  # no checkpoint after the lease is gone
    ]
    assert_clean(run)
    assert run.sender.payloads == []


@pytest.mark.parametrize(
    ("records", "checkpoint_at"),
    [
        pytest.param([(1, C1, 0)], 1, id="one-error"),
        pytest.param([(n + 1, C1, n) for n in range(12)], None, id="all-of-c1-digest-still-held-at-shutdown"),
        pytest.param([(1, C5, 1), (2, C5, 7), (3, C3, 8)], 3, id="huge-control-chars-invalid-bytes"),
        pytest.param([(1, C3, 2), (2, C3, 3), (3, C3, 4)], 3, id="only-empty-lines"),
        pytest.param([(1, C1, 0), (2, C2, 0), (3, C1, 2)], 3, id="repeat-held-then-sent-early-at-shutdown"),
        pytest.param([(n + 1, C1, n) for n in range(5)], 5, id="within-budget"),
    ],
)
def test_shutdown_transcripts(records: list[tuple[int, str, int]], checkpoint_at: int | None,
                              capsys: pytest.CaptureFixture[str]) -> None:
    script: list[str | Advance] = [
        initialize(),
        process(*(record(n, case, index) for n, case, index in records)),
        line({"action": "shutdownRequested"}),
    ]
    expected = [status("initialize"), status("processRecords")]
    if checkpoint_at is not None:
        script.append(checkpoint_answer(seq(checkpoint_at)))
        expected.append(checkpoint_request(seq(checkpoint_at)))
    expected.append(status("shutdownRequested"))
    run = play(script, capsys)
    assert protocol_lines(run) == expected
    assert_clean(run)


@pytest.mark.parametrize(
    ("safe", "last", "seconds_since", "expected"),
    [
        pytest.param(None, None, 100.0, False, id="nothing-safe-yet"),
        pytest.param(Position("5", 0), Position("5", 0), 100.0, False, id="already-checkpointed-there"),
        pytest.param(Position("6", 0), Position("5", 0), 4.9, False, id="before-the-interval"),
        pytest.param(Position("6", 0), Position("5", 0), 5.0, True, id="at-the-interval"),
        pytest.param(Position("6", 0), None, 5.0, True, id="first-checkpoint"),
        pytest.param(Position("5", 1), Position("5", 0), 60.0, True, id="next-sub-sequence"),
    ],
)
def test_should_checkpoint(safe: Position | None, last: Position | None, seconds_since: float, expected: bool) -> None:
    due = should_checkpoint(safe=safe, last=last, seconds_since=seconds_since, interval=CHECKPOINT_INTERVAL)
    assert due is expected


def test_alerts_alone_do_not_force_a_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    """One alert per batch, a second apart: checkpoints come with the interval, not with each delivery."""
    cases = [(C1, 0), (C1, 1), (C1, 4), (C1, 7), (C1, 8), (C1, 2), (C1, 3)]
    script: list[str | Advance] = [initialize()]
    for n, (case, index) in enumerate(cases, start=1):
        script.append(Advance(1.0))
        script.append(process(record(n, case, index)))
        if n == 5:  # T0+5: the interval passed
            script.append(checkpoint_answer(seq(5)))
    script.append(line({"action": "shutdownRequested"}))
    script.append(checkpoint_answer(seq(7)))
    run = play(script, capsys)
    assert protocol_lines(run) == [
        status("initialize"),
        *[status("processRecords")] * 4,
        checkpoint_request(seq(5)),
        *[status("processRecords")] * 3,
        checkpoint_request(seq(7)),
        status("shutdownRequested"),
    ]
    assert_clean(run)
    assert len(run.sender.payloads) == 5
