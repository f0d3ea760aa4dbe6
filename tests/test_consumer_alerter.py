"""The Alerter: which events become Slack messages, throttling into digests, retries, routing, accounting.

Everything the alerter touches is handed in: a RecordingSender per webhook, the in-memory AlertState with the
sliding-window budget, and a fake clock / fake sleep, so no test waits.

Semantics under test: a fingerprint is claimed under the alert's idempotency key (its owner) and released when
Slack (permanently) refuses; held events join the application-wide digest of the current interval (intervals are
aligned on the clock: the fake clock starts on a minute), which goes out once the interval closed (plus a second's
grace) and the budget allows (``tick(force=True)`` and ``drain()`` send it at once, over budget);
``digested_events`` counts digests actually sent, ``held`` what waits in unsent ones.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from consumer.alerter import Alerter, RecordIn
from consumer.decision import Mode
from consumer.deliver.slack import Posted
from consumer.errors import PermanentDelivery, RetryableDelivery
from consumer.model import Level, LogEvent
from consumer.pipeline.fingerprint import fingerprint
from consumer.pipeline.parse import parse_line
from consumer.state import Added, Begun, Claim, Contribution, Ending, Incident, Repeat, Repeated, Verdict
from consumer.state.memory import MemoryState
from consumer.timing import BACKOFF_MAX_SECONDS
from tests.corpus import fluent_bit_records

SEOUL = ZoneInfo("Asia/Seoul")
SHARD = "shardId-000000000000"


class RecordingSender:
    """Test double for the Slack edge (the alerter's ``Sender``): records what would be posted to a webhook.

    ``failures`` (DeliveryErrors, or anything else to simulate a crash) are raised, in order, by the first posts
    (each one counts as an attempt); then posts succeed.
    """

    def __init__(self, name: str = "main", failures: Iterable[Exception] = ()) -> None:
        self.name = name
        self.payloads: list[dict[str, Any]] = []
        self.attempts = 0
        self._failures = list(failures)

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        self.attempts += 1
        if self._failures:
            raise self._failures.pop(0)
        self.payloads.append(json.loads(json.dumps(payload)))  # what would go over the wire
        return Posted()

    def fail_next(self, *errors: Exception) -> None:
        self._failures.extend(errors)

    @property
    def texts(self) -> list[str]:
        return [str(p["text"]) for p in self.payloads]

    def full(self, index: int) -> str:
        """A message's fallback text and every block's text: what a reader sees."""
        payload = self.payloads[index]
        texts = [str(payload["text"])] + [str(b.get("text", {}).get("text", "")) for b in payload.get("blocks", [])]
        return "\n".join(texts)


class FakeClock:
    def __init__(self, now: float = 1_764_133_200.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """Records each requested sleep and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)


class Rig:
    def __init__(self, senders: Mapping[Level, RecordingSender] | None = None, limit: int = 5,
                 levels: frozenset[str] = frozenset({"ERROR", "WARN"}), state: MemoryState | None = None,
                 digest_interval: float | None = None, clock: FakeClock | None = None) -> None:
        self.clock = clock if clock is not None else FakeClock()
        self.sleep = FakeSleep(self.clock)
        self.main = RecordingSender("main")
        self.senders = dict(senders) if senders is not None else {Level.ERROR: self.main, Level.WARN: self.main}
        self.state = state if state is not None else MemoryState(limit)
        interval = {} if digest_interval is None else {"digest_interval": digest_interval}  # None: the default
        self.alerter = Alerter(levels=levels, state=self.state, senders=self.senders, display_tz=SEOUL,
                               clock=self.clock, sleep=self.sleep, dedup_window=300.0, **interval)
        self._seq = 0

    def record(self, *lines: dict[str, Any] | str) -> RecordIn:
        self._seq += 1
        text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
        return RecordIn(text.encode(), SHARD, f"{49659000000000000000000000000000000000000000000000000000 + self._seq}")

    def batch(self, *lines: dict[str, Any] | str) -> None:
        """One record per line, in one batch."""
        self.alerter.handle_batch([self.record(line) for line in lines])


def event(level: str | int | None, service: str, message: str) -> dict[str, Any]:
    return {"timestamp": "2026-11-26T05:00:00.000Z", "level": level, "service": service, "message": message}


# Distinct problems: different services and wording, so no two share a fingerprint.
DISTINCT = [
    event("ERROR", "payment-api", "db timeout on primary"),
    event("ERROR", "auth-api", "token signer unavailable"),
    event("ERROR", "order-api", "inventory service refused connection"),
    event("ERROR", "ledger-api", "cannot open ledger"),
    event("ERROR", "search-api", "index missing"),
    event("ERROR", "mail-api", "smtp relay rejected sender"),
    event("ERROR", "cart-api", "session store full"),
    event("ERROR", "user-api", "profile cache corrupted"),
]


@pytest.mark.parametrize(
    ("level", "alerted"),
    [
        pytest.param("ERROR", True, id="ERROR"),
        pytest.param("WARN", True, id="WARN"),
        pytest.param("error", True, id="error"),
        pytest.param("warning", True, id="warning"),
        pytest.param("FATAL", True, id="FATAL"),
        pytest.param("CRITICAL", True, id="CRITICAL"),
        pytest.param(50, True, id="50"),
        pytest.param(40, True, id="40"),
        pytest.param("INFO", False, id="INFO"),
        pytest.param("DEBUG", False, id="DEBUG"),
        pytest.param("TRACE", False, id="TRACE"),
        pytest.param(None, False, id="null"),
        pytest.param("verbose", False, id="unknown-word"),
    ],
)
def test_which_levels_alert(level: str | int | None, alerted: bool) -> None:
    rig = Rig()
    rig.batch(event(level, "payment-api", "db timeout"))
    assert len(rig.main.payloads) == (1 if alerted else 0)
    assert rig.alerter.stats.alerts_sent == (1 if alerted else 0)
    assert rig.alerter.held == 0


def test_plain_text_and_json_lines_in_one_record() -> None:
    rig = Rig()
    rig.alerter.handle_batch([rig.record(event("INFO", "a", "fine"), "2026-11-26 05:00:00,000 ERROR [b] broke",
                                         event("WARN", "c", "slow"), '{"log":""}')])
    assert [t.split(":")[0] for t in rig.main.texts] == ["[ERROR] b", "[WARN] c"]
    assert rig.alerter.stats.events == {"INFO": 1, "ERROR": 1, "WARN": 1}
    assert rig.alerter.stats.dropped == {"empty": 1}


def test_over_the_limit_is_digested_then_sent_as_one_digest() -> None:
    rig = Rig(limit=5)
    rig.batch(*DISTINCT)  # 8 distinct ERRORs at once
    stats = rig.alerter.stats
    assert (stats.alerts_sent, stats.digested_events, rig.alerter.held) == (5, 0, 3)  # counted once sent
    assert len(rig.main.payloads) == 5

    rig.clock.advance(60.0)
    rig.alerter.tick()
    assert len(rig.main.payloads) == 5  # the interval just closed: a second's grace for contributions in flight
    assert rig.alerter.held == 3

    rig.clock.advance(1.0)
    rig.alerter.tick()
    assert len(rig.main.payloads) == 6
    assert rig.main.texts[-1] == "3 more ERROR/WARN in the last minute: cart-api 1, mail-api 1, user-api 1"
    for held in DISTINCT[5:]:
        assert f"1 x ERROR: {held['message']}" in rig.main.full(-1)
    assert (stats.digests_sent, stats.digested_events, rig.alerter.held) == (1, 3, 0)

    rig.alerter.tick()  # nothing left to send
    assert len(rig.main.payloads) == 6


def test_held_back_events_go_out_before_new_alerts() -> None:
    rig = Rig(limit=5)
    rig.batch(*DISTINCT[:7])  # 5 alerts, 2 digested
    rig.clock.advance(61.0)
    rig.batch(DISTINCT[7])
    assert rig.main.texts[5].startswith("2 more ERROR/WARN")  # the digest first ...
    assert rig.main.texts[6].startswith("[ERROR] user-api: profile cache corrupted")  # ... then the new alert
    assert rig.alerter.held == 0


def test_while_the_budget_is_spent_new_alerts_join_the_digest() -> None:
    rig = Rig(limit=5)
    rig.batch(*DISTINCT[:6])
    rig.clock.advance(10.0)
    rig.batch(DISTINCT[6], DISTINCT[7])
    assert (rig.alerter.stats.digested_events, rig.alerter.held) == (0, 3)
    assert len(rig.main.payloads) == 5
    rig.clock.advance(51.0)
    rig.alerter.tick()
    assert rig.main.texts[-1].startswith("3 more ERROR/WARN")
    assert (rig.alerter.stats.digested_events, rig.alerter.held) == (3, 0)


class DigestCallsState(MemoryState):
    """A real MemoryState that records the size of each ``add_to_digest`` call (each one a round trip in
    DynamoState)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.digest_calls: list[int] = []

    def add_to_digest(self, contributions: Mapping[str, Sequence[Contribution]],
                      now: float) -> dict[str, list[tuple[Added, str | None]]]:
        self.digest_calls.append(sum(len(c) for c in contributions.values()))
        return super().add_to_digest(contributions, now)


def test_the_over_budget_groups_of_a_batch_go_into_the_digest_in_one_call() -> None:
    state = DigestCallsState(limit=2)
    rig = Rig(state=state)
    rig.batch(*DISTINCT, DISTINCT[5], DISTINCT[0])  # 8 fingerprints: 2 alerts, 6 groups (7 events) over budget
    assert (len(rig.main.payloads), state.digest_calls, rig.alerter.held) == (2, [6], 7)
    rig.batch(*DISTINCT)  # repeats of the alerted two, the rest over budget: still one call
    assert (state.digest_calls, rig.alerter.held) == ([6, 8], 15)


def test_a_pending_digest_does_not_block_alerts_for_new_fingerprints() -> None:
    rig = Rig(limit=5)
    rig.batch(DISTINCT[0])
    rig.clock.advance(5.0)
    rig.batch(DISTINCT[0])  # a repeat inside the dedup window: waits in the digest
    assert (rig.alerter.held, len(rig.main.payloads)) == (1, 1)
    rig.clock.advance(5.0)
    rig.batch(DISTINCT[1], DISTINCT[2])  # new problems, budget left: alerted at once, the digest keeps waiting
    assert [t.split(":")[0] for t in rig.main.texts] == ["[ERROR] payment-api", "[ERROR] auth-api", "[ERROR] order-api"]
    assert (rig.alerter.held, rig.alerter.stats.alerts_sent) == (1, 3)


def test_the_digest_collects_for_its_interval() -> None:
    rig = Rig(limit=5, digest_interval=10.0)
    rig.batch(DISTINCT[0])
    rig.batch(DISTINCT[0])  # folded
    rig.clock.advance(4.0)
    rig.batch(DISTINCT[0], DISTINCT[0])  # folded into the same digest
    rig.clock.advance(6.9)
    rig.alerter.tick()
    assert (len(rig.main.payloads), rig.alerter.held) == (1, 3)  # closed 0.9 s ago: still in its grace
    rig.clock.advance(0.1)
    rig.alerter.tick()
    assert (len(rig.main.payloads), rig.alerter.held) == (2, 0)
    assert rig.main.texts[1] == "3 more ERROR/WARN in the last minute: payment-api 3"
    assert "3 x ERROR: db timeout on primary" in rig.main.full(1)


def test_default_digest_interval_is_a_minute() -> None:
    rig = Rig(limit=5)
    rig.batch(DISTINCT[0])
    rig.batch(DISTINCT[0])
    rig.clock.advance(60.9)
    rig.alerter.tick()
    assert rig.alerter.held == 1
    rig.clock.advance(0.1)
    rig.alerter.tick()
    assert rig.alerter.held == 0


def test_one_digest_per_interval_for_every_processor() -> None:
    """Two processors (shards) of one application hold events in the same interval: one digest lists them all."""
    state = MemoryState(2)
    one = Rig(state=state)
    two = Rig(state=state, clock=one.clock)
    two.main = one.main
    two.alerter = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: one.main},
                          display_tz=SEOUL, clock=one.clock, sleep=one.sleep)
    one.batch(*DISTINCT[:4])  # 2 alerts, 2 held
    one.clock.advance(5.0)
    two.alerter.handle_batch([RecordIn(json.dumps(e).encode(), "shardId-000000000001", str(100 + i))
                              for i, e in enumerate(DISTINCT[4:])])  # 4 held by the other shard
    one.clock.advance(56.0)
    one.alerter.tick()
    two.alerter.tick()
    assert [t.split(" in ")[0] for t in one.main.texts[2:]] == ["6 more ERROR/WARN"]
    assert (one.alerter.stats.digested_events, two.alerter.stats.digested_events) == (2, 4)
    assert (one.alerter.stats.digests_sent, two.alerter.stats.digests_sent) == (1, 0)
    assert (one.alerter.held, two.alerter.held) == (0, 0)


def test_digest_lists_every_template_per_service_and_names_the_services() -> None:
    rig = Rig(limit=1)
    templates = [event("ERROR", f"svc-{s}", f"failure of kind {k} in {s}") for s in "abc" for k in "xyzw"]
    rig.batch(*templates)  # 1 alert, 11 held
    rig.clock.advance(61.0)
    rig.alerter.tick()
    text = rig.main.full(-1)
    for held in templates[1:]:
        assert f"1 x ERROR: {held['message']}" in text
    assert rig.main.texts[-1] == "11 more ERROR/WARN in the last minute: svc-b 4, svc-c 4, svc-a 3"
    assert "not listed" not in text


def test_force_tick_sends_now_even_over_budget() -> None:
    rig = Rig(limit=2)
    rig.batch(DISTINCT[0], DISTINCT[1], DISTINCT[2])  # 2 alerts, 1 held: budget spent
    rig.alerter.tick()
    assert (len(rig.main.payloads), rig.alerter.held) == (2, 1)  # interval open, over budget: held
    rig.alerter.tick(force=True)
    assert (len(rig.main.payloads), rig.alerter.held) == (3, 0)


def test_sliding_budget_over_many_batches() -> None:
    """One distinct ERROR every 2 s for 5 minutes: never more than 5 alerts in any 60 s, and one digest a minute."""
    rig = Rig(limit=5)
    sent_at: list[float] = []
    digests_at: list[float] = []
    for i in range(150):
        before = len(rig.main.payloads)
        rig.batch(event("ERROR", f"svc-{chr(97 + i % 26)}{chr(97 + i // 26)}", f"failure kind {chr(97 + i % 26)}"))
        rig.alerter.tick()
        for text in rig.main.texts[before:]:
            (digests_at if "more ERROR/WARN" in text else sent_at).append(rig.clock.now)
        rig.clock.advance(2.0)
    for t in sent_at:
        assert sum(1 for u in sent_at if t <= u < t + 60.0) <= 5
    for t in digests_at:
        assert sum(1 for u in digests_at if t <= u < t + 60.0) == 1
    stats = rig.alerter.stats
    assert stats.alerted_events + stats.digested_events + rig.alerter.held == 150
    rig.alerter.drain()
    assert stats.alerted_events + stats.digested_events == 150


def test_repeats_in_one_batch_become_one_alert() -> None:
    rig = Rig()
    rig.batch(*(event("ERROR", "payment-api", f"db timeout after {ms}ms") for ms in (3000, 3100, 2900)))
    assert len(rig.main.payloads) == 1
    assert rig.main.texts[0].endswith("(x3)")
    stats = rig.alerter.stats
    assert (stats.alerts_sent, stats.alerted_events) == (1, 3)


def test_repeat_within_dedup_window_is_folded_into_a_digest() -> None:
    rig = Rig()
    rig.batch(event("ERROR", "payment-api", "db timeout after 3000ms"))
    rig.clock.advance(30.0)
    rig.batch(event("ERROR", "payment-api", "db timeout after 4000ms"))
    assert (rig.alerter.stats.digested_events, rig.alerter.held) == (0, 1)
    assert rig.alerter.stats.decisions == {"alert": 1, "repeat": 1}
    assert len(rig.main.payloads) == 1
    rig.clock.advance(300.0)  # past the dedup window: a fresh alert again
    rig.alerter.tick()
    assert (rig.alerter.stats.digested_events, rig.alerter.held) == (1, 0)
    assert all(not t.startswith("[ERROR]") for t in rig.main.texts[1:])
    rig.batch(event("ERROR", "payment-api", "db timeout after 5000ms"))
    assert rig.main.texts[-1].startswith("[ERROR] payment-api: db timeout after 5000ms")


# -- accounting ---------------------------------------------------------------------------------------------


def ended(rig: Rig) -> int:
    """Events accounted for: ended (alerted, in a sent digest, delivered before, refused by Slack) or held in the
    unsent digest. The alerter's invariant: this equals the ERROR/WARN events read."""
    stats = rig.alerter.stats
    return (stats.alerted_events + stats.repeat_events + stats.digested_events + stats.already_delivered
            + stats.dropped["slack_permanent_error"] + rig.alerter.held)


def alert_events(rig: Rig) -> int:
    return rig.alerter.stats.events["ERROR"] + rig.alerter.stats.events["WARN"]


def test_accounting_every_error_or_warn_ends_exactly_once() -> None:
    rig = Rig(limit=5)
    rig.batch(*DISTINCT, event("INFO", "x", "ok"), event("WARN", "auth-api", "slow"))
    rig.batch(*DISTINCT[:3])  # repeats of alerted fingerprints
    rig.clock.advance(120.0)
    rig.alerter.tick()
    stats = rig.alerter.stats
    assert alert_events(rig) == 12
    assert stats.alerts_sent == stats.alerted_events == 5
    assert ended(rig) == alert_events(rig)


def test_accounting_over_the_fluent_bit_fixture() -> None:
    lines = fluent_bit_records()
    rig = Rig(limit=5)
    records = [RecordIn(base64.b64decode(r["data_b64"]), SHARD, str(1000 + i)) for i, r in enumerate(lines)]
    for start in range(0, len(records), 10):
        rig.alerter.handle_batch(records[start:start + 10])
        rig.alerter.tick()
        rig.clock.advance(7.0)
    rig.clock.advance(61.0)
    rig.alerter.tick()
    assert rig.alerter.held == 0
    assert alert_events(rig) == 60  # every ERROR/WARN line of the corpus (see test_consumer_parse)
    assert ended(rig) == alert_events(rig)
    assert rig.alerter.stats.records == 90
    assert rig.alerter.stats.dropped["empty"] == 3


# -- delivery trouble -----------------------------------------------------------------------------------------


def test_retryable_twice_then_delivered() -> None:
    sender = RecordingSender("main", [RetryableDelivery(503, "service_unavailable", uncertain=True),
                                     RetryableDelivery(None, "x")])
    rig = Rig({Level.ERROR: sender})
    rig.batch(DISTINCT[0])
    assert len(sender.payloads) == 1
    assert sender.attempts == 3
    assert rig.alerter.stats.retries == 2
    assert rig.alerter.stats.alerts_sent == 1
    assert rig.alerter.stats.uncertain == 1  # a 503: Slack may have posted it
    assert 15.0 <= rig.sleep.calls[0] <= 15.2  # after an uncertain outcome: a pause, not an immediate re-post
    assert 1.0 <= rig.sleep.calls[1] <= 1.2  # backoff doubles (with up to 0.2 s of jitter)


def test_long_outage_backs_off_up_to_the_cap() -> None:
    sender = RecordingSender("main", [RetryableDelivery(429, "rate_limited")] * 10)
    rig = Rig({Level.ERROR: sender})
    rig.batch(DISTINCT[0])
    assert [round(x) for x in rig.sleep.calls] == [1, 1, 2, 4, 8, 15, 15, 15, 15, 15]
    assert max(rig.sleep.calls) == BACKOFF_MAX_SECONDS
    assert rig.alerter.stats.uncertain == 0  # a 429 was certainly not posted
    assert (len(sender.payloads), rig.alerter.stats.retries) == (1, 10)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(PermanentDelivery(404, "channel_not_found"), id="404"),
        pytest.param(PermanentDelivery(400, "invalid_payload"), id="400"),
        pytest.param(PermanentDelivery(410, "channel_is_archived"), id="410"),
    ],
)
def test_permanent_error_is_counted_and_not_retried(error: PermanentDelivery) -> None:
    sender = RecordingSender("main", [error])
    rig = Rig({Level.ERROR: sender})
    rig.batch(DISTINCT[0])
    stats = rig.alerter.stats
    assert sender.attempts == 1
    assert rig.sleep.calls == []
    assert (stats.alerts_sent, stats.retries) == (0, 0)
    assert stats.dropped["slack_permanent_error"] == 1
    rig.batch(DISTINCT[1])  # the next alert is tried normally
    assert len(sender.payloads) == 1
    assert ended(rig) == alert_events(rig)


def test_permanent_error_on_a_digest_counts_all_its_events() -> None:
    sender = RecordingSender("main")
    rig = Rig({Level.ERROR: sender}, limit=1)
    rig.batch(*DISTINCT[:4])  # 1 alert, 3 digested
    sender.fail_next(PermanentDelivery(400, "invalid_payload"))
    rig.clock.advance(61.0)
    rig.alerter.tick()
    stats = rig.alerter.stats
    assert (stats.digested_events, stats.dropped["slack_permanent_error"], stats.digests_sent) == (0, 3, 0)
    assert rig.alerter.held == 0  # dropped, not retried forever
    assert ended(rig) == alert_events(rig) == 4


# -- routing ----------------------------------------------------------------------------------------------------


def test_warn_goes_to_its_own_webhook() -> None:
    main, warn = RecordingSender("main"), RecordingSender("warn")
    rig = Rig({Level.ERROR: main, Level.WARN: warn})
    rig.batch(event("ERROR", "a", "broke"), event("WARN", "b", "slow"), event("warning", "c", "slower"))
    assert main.texts == ["[ERROR] a: broke"]
    assert [t.split(":")[0] for t in warn.texts] == ["[WARN] b", "[WARN (warning)] c"]


def test_each_webhook_has_its_own_budget_and_digest() -> None:
    main, warn = RecordingSender("main"), RecordingSender("warn")
    rig = Rig({Level.ERROR: main, Level.WARN: warn}, limit=2)
    errors = [event("ERROR", f"e{i}", f"error kind {'abc'[i]}") for i in range(3)]
    warns = [event("WARN", f"w{i}", f"warning kind {'abc'[i]}") for i in range(2)]
    rig.batch(*warns, *errors)
    assert (len(warn.payloads), len(main.payloads)) == (2, 2)
    rig.clock.advance(61.0)
    rig.alerter.tick()
    assert main.texts[-1].startswith("1 more ERROR/WARN")
    assert len(warn.payloads) == 2


def test_warn_without_its_own_webhook_uses_main() -> None:
    main = RecordingSender("main")
    rig = Rig({Level.ERROR: main})
    rig.batch(event("WARN", "b", "slow"))
    assert main.texts == ["[WARN] b: slow"]


# -- idempotency and shard end ------------------------------------------------------------------------------------


def test_re_reading_a_delivered_batch_sends_nothing_again() -> None:
    state = MemoryState(5)
    first = Rig(state=state)
    records = [first.record(e) for e in DISTINCT[:3]]
    first.alerter.handle_batch(records)
    assert len(first.main.payloads) == 3
    again = Rig(state=state)  # a new processor (restart, lease move) reading the same records
    again.clock.advance(600.0)  # outside the dedup window
    again.alerter.handle_batch(records)
    assert again.main.payloads == []
    assert again.alerter.stats.already_delivered == 3


def test_drain_sends_every_held_digest_at_once_over_budget() -> None:
    rig = Rig(limit=5)
    rig.batch(*DISTINCT)
    rig.alerter.drain()
    assert rig.alerter.held == 0  # the shard ended: nothing may stay behind SHARD_END
    assert rig.sleep.calls == []
    assert len(rig.main.payloads) == 6  # 5 alerts + the digest, over the budget of 5
    assert rig.main.texts[-1].startswith("3 more ERROR/WARN")
    assert (rig.alerter.stats.digests_sent, rig.alerter.stats.digested_events) == (1, 3)


def test_drain_with_nothing_held_does_nothing() -> None:
    rig = Rig(limit=5)
    rig.batch(DISTINCT[0])
    rig.alerter.drain()
    assert (len(rig.main.payloads), rig.sleep.calls) == (1, [])


# -- fingerprint claims: owners, releases, re-reads ---------------------------------------------------------------


def fp(line: dict[str, Any]) -> str:
    parsed = parse_line(json.dumps(line))
    assert isinstance(parsed, LogEvent)
    return fingerprint(parsed)


def test_over_budget_takes_no_fingerprint_claim() -> None:
    rig = Rig(limit=2)
    rig.batch(DISTINCT[0], DISTINCT[1], DISTINCT[2])  # the third is over budget: it claims nothing
    assert rig.alerter.held == 1
    assert rig.state.view("main", fp(DISTINCT[2]), rig.clock.now).fingerprint_open is False
    assert rig.state.view("main", fp(DISTINCT[0]), rig.clock.now).fingerprint_open is True


def test_a_throttled_problem_alerts_when_it_comes_back_after_the_budget_reopens() -> None:
    rig = Rig(limit=2)
    rig.batch(DISTINCT[0], DISTINCT[1], DISTINCT[2])
    rig.clock.advance(61.0)
    rig.batch(DISTINCT[2])  # the digest goes first (1 of 2), then this one is a real alert (2 of 2)
    assert rig.main.texts[2].startswith("1 more ERROR/WARN")
    assert rig.main.texts[3].startswith("[ERROR] order-api: inventory service refused connection")
    assert rig.alerter.held == 0


def test_claim_is_released_when_slack_refuses_permanently() -> None:
    sender = RecordingSender("main", [PermanentDelivery(400, "invalid_blocks")])
    rig = Rig({Level.ERROR: sender})
    rig.batch(DISTINCT[0])
    assert rig.alerter.stats.dropped["slack_permanent_error"] == 1
    rig.clock.advance(1.0)
    rig.batch(DISTINCT[0])  # the same problem again: not folded into a digest, since nothing went out
    assert sender.texts == ["[ERROR] payment-api: db timeout on primary"]
    assert rig.alerter.held == 0


class Crash(Exception):
    """The process dies while posting (not a DeliveryError: nothing catches it)."""


def test_a_re_read_after_a_crash_gets_its_claim_back() -> None:
    state = MemoryState(5)
    first = Rig(state=state)
    records = [first.record(e) for e in DISTINCT[:2]]
    first.main.fail_next(Crash())
    with pytest.raises(Crash):
        first.alerter.handle_batch(records)  # claimed DISTINCT[0], died before Slack answered
    assert first.main.payloads == []

    again = Rig(state=state)  # the restarted processor re-reads the same records (same idempotency keys)
    again.clock.advance(5.0)  # well inside the dedup window
    again.alerter.handle_batch(records)
    assert [t.split(":")[0] for t in again.main.texts] == ["[ERROR] payment-api", "[ERROR] auth-api"]
    assert again.alerter.held == 0

    other = Rig(state=state)  # a different record of the same problem is not the claim's owner: folded
    other.clock.advance(10.0)
    other.alerter.handle_batch([RecordIn(records[0].data, SHARD, "99")])
    assert (other.main.payloads, other.alerter.held) == ([], 1)


# -- the accounting invariant -----------------------------------------------------------------------------------


def assert_accounted(rig: Rig) -> None:
    stats = rig.alerter.stats
    assert ended(rig) == alert_events(rig), stats.as_dict()


def test_accounting_invariant_across_throttle_dedup_permanent_error_and_re_read() -> None:
    state = MemoryState(3)
    first = Rig(state=state)
    batch1 = [first.record(e) for e in DISTINCT[:5]]
    first.alerter.handle_batch(batch1)  # t0: 3 alerts, 2 throttled into the digest
    assert (first.alerter.stats.alerted_events, first.alerter.held) == (3, 2)
    assert_accounted(first)

    first.clock.advance(5.0)
    first.batch(DISTINCT[0], DISTINCT[0], event("INFO", "x", "fine"))  # repeats: dedup into the digest
    assert first.alerter.held == 4
    assert_accounted(first)

    first.clock.advance(56.0)  # t0 + 61: the digest is due and the budget reopened
    first.main.fail_next(PermanentDelivery(400, "invalid_blocks"))
    first.batch(DISTINCT[5])  # the digest goes first and is refused (4 dropped); then an alert
    assert (first.alerter.stats.dropped["slack_permanent_error"], first.alerter.held) == (4, 0)
    assert first.main.texts[-1].startswith("[ERROR] mail-api")
    assert_accounted(first)

    first.main.fail_next(PermanentDelivery(404, "channel_not_found"))
    first.batch(DISTINCT[6])  # refused: dropped, its claim released
    assert first.alerter.stats.dropped["slack_permanent_error"] == 5
    assert_accounted(first)

    first.clock.advance(1.0)
    first.batch(DISTINCT[6])  # claim free again: alerted (the digest took no slot: 3 alerts since t0 + 61)
    first.batch(DISTINCT[7])  # the budget is spent: held
    assert (first.alerter.stats.alerts_sent, first.alerter.held) == (5, 1)
    assert_accounted(first)

    again = Rig(state=state, clock=first.clock)  # a restart (or lease move): the first batch is read again
    first.clock.advance(8.0)  # t0 + 70
    again.alerter.handle_batch(batch1)
    stats = again.alerter.stats
    # three alerts reached Slack; the two held at t0 went into a digest that ended (refused for good)
    assert (stats.already_delivered, again.alerter.held) == (5, 0)
    assert_accounted(again)

    first.clock.advance(60.0)  # t0 + 130: the second interval's digest is due, the budget has room
    first.alerter.tick()
    again.alerter.tick()
    assert (first.alerter.held, again.alerter.held) == (0, 0)
    assert_accounted(first)
    assert_accounted(again)
    assert alert_events(first) == 5 + 2 + 1 + 1 + 1 + 1
    assert alert_events(again) == 5
    assert first.alerter.stats.as_dict()["digested_events"] == 1
    assert (stats.digested_events, stats.digests_sent) == (0, 0)


def test_a_re_read_skips_only_the_events_the_earlier_alert_covered() -> None:
    """Record 1 alerted; then a crash. The re-read batch holds record 1 and a repeat in record 2: record 1 is
    already delivered, record 2's occurrence is still accounted for (folded into the digest), not lost."""
    first = Rig(limit=5)
    first.alerter.handle_batch([first.record(event("ERROR", "pay", "db timeout after 30ms"))])
    assert first.alerter.stats.alerts_sent == 1

    again = Rig(state=first.state, clock=first.clock)  # a new process after the crash, same shared state
    again.batch(event("ERROR", "pay", "db timeout after 30ms"), event("ERROR", "pay", "db timeout after 45ms"))

    stats = again.alerter.stats
    assert (stats.already_delivered, stats.alerts_sent, again.alerter.held) == (1, 0, 1)
    assert again.main.texts == []


# -- Web API mode: incidents ------------------------------------------------------------------------------------


class ThreadedSender(RecordingSender):
    """The Web API edge: posts return a channel and ts; updates and thread replies are recorded."""

    def __init__(self, name: str = "main") -> None:
        super().__init__(name)
        self.updates: list[tuple[str | None, dict[str, Any]]] = []
        self.replies: list[tuple[str | None, dict[str, Any]]] = []
        self.keys: list[str] = []
        self.uncertain_calls: list[bool] = []
        self.since: list[float] = []

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        self.uncertain_calls.append(uncertain)
        self.since.append(since)
        super().post(payload)
        self.keys.append(key)
        return Posted("C0CALI", f"{1000 + len(self.payloads)}.000100")

    def update(self, posted: Posted, payload: Mapping[str, Any]) -> None:
        self.updates.append((posted.ts, json.loads(json.dumps(payload))))

    def reply(self, posted: Posted, payload: Mapping[str, Any], *, key: str = "") -> None:
        self.replies.append((posted.ts, json.loads(json.dumps(payload))))


def web_api_rig(limit: int = 5, **kwargs: Any) -> tuple[Rig, ThreadedSender]:
    sender = ThreadedSender()
    rig = Rig({Level.ERROR: sender}, limit=limit)
    rig.alerter = Alerter(levels=frozenset({"ERROR", "WARN"}), state=rig.state, senders={Level.ERROR: sender},
                          display_tz=SEOUL, clock=rig.clock, sleep=rig.sleep, mode=Mode.WEB_API,
                          update_interval=10.0, resolve_after=900.0, **kwargs)
    return rig, sender


def test_web_api_one_root_per_problem_and_repeats_update_its_count() -> None:
    rig, sender = web_api_rig()
    rig.batch(*(event("ERROR", "pay", f"db timeout after {ms}ms") for ms in (30, 40)))
    assert sender.texts == ["[ERROR] pay: db timeout after 30ms (x2)"]
    rig.clock.advance(3.0)
    rig.batch(*(event("ERROR", "pay", f"db timeout after {ms}ms") for ms in (50, 60, 70)))
    assert len(sender.payloads) == 1  # no new message: a counted repeat
    assert sender.updates == []  # the root was posted 3 s ago: the update waits for the interval
    stats = rig.alerter.stats
    assert (stats.alerted_events, stats.repeat_events, stats.decisions) == (2, 3, {"alert": 2, "repeat": 3})
    rig.clock.advance(7.0)
    rig.alerter.tick()
    assert len(sender.updates) == 1
    ts, update = sender.updates[0]
    assert ts == "1001.000100"
    assert update["text"].startswith("[ERROR] pay: db timeout after 30ms (x5)")
    assert "Seen 5 times" in json.dumps(update)
    rig.alerter.tick()
    assert len(sender.updates) == 1  # nothing new: no second update
    assert ended(rig) == alert_events(rig) == 5


def test_web_api_distinct_texts_go_into_the_thread_bounded_per_minute() -> None:
    rig, sender = web_api_rig()
    rig.batch(event("ERROR", "pay", "db timeout after 30ms"))
    rig.batch(*(event("ERROR", "pay", f"db timeout after {ms}ms") for ms in range(100, 110)))
    assert [payload["text"].split("\n")[0] for _, payload in sender.replies] == [
        "db timeout after 100ms", "db timeout after 101ms", "db timeout after 102ms"]
    rig.clock.advance(60.0)
    rig.batch(event("ERROR", "pay", "db timeout after 100ms"), event("ERROR", "pay", "db timeout after 200ms"))
    assert len(sender.replies) == 4  # a new minute; the text already sampled is not posted again


class SampleClaimsState(MemoryState):
    """A real MemoryState that counts ``claim_samples`` calls (each one a round trip in DynamoState)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.sample_claims = 0

    def claim_samples(self, fingerprint: str, now: float, per_minute: int, wanted: int) -> int:
        self.sample_claims += 1
        return super().claim_samples(fingerprint, now, per_minute, wanted)


def test_web_api_a_minute_whose_samples_are_taken_asks_no_more_claims() -> None:
    rig, sender = web_api_rig()
    state = SampleClaimsState(5)
    rig.alerter = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                          display_tz=SEOUL, clock=rig.clock, sleep=rig.sleep, mode=Mode.WEB_API)
    rig.batch(event("ERROR", "pay", "db timeout after 30ms"))
    rig.batch(*(event("ERROR", "pay", f"db timeout after {ms}ms") for ms in range(100, 110)))
    assert (len(sender.replies), state.sample_claims) == (3, 1)  # the batch's three texts: one claim
    rig.batch(event("ERROR", "pay", "db timeout after 199ms"))
    assert (len(sender.replies), state.sample_claims) == (3, 2)  # refused: the minute is full
    for batch in range(5):  # more new texts within the minute: no claim asked
        rig.batch(event("ERROR", "pay", f"db timeout after {200 + batch}ms"))
    assert (len(sender.replies), state.sample_claims) == (3, 2)
    rig.clock.advance(60.0)
    rig.batch(event("ERROR", "pay", "db timeout after 300ms"))
    assert (len(sender.replies), state.sample_claims) == (4, 3)


class CountCallsState(MemoryState):
    """A real MemoryState that lists the calls counting a batch's events (each one a round trip in DynamoState)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.calls: list[str] = []

    def add_repeats(self, repeats: Sequence[Repeated], now: float) -> list[Repeat]:
        self.calls.append("add_repeats")
        return super().add_repeats(repeats, now)

    def add_to_digest(self, contributions: Mapping[str, Sequence[Contribution]],
                      now: float) -> dict[str, list[tuple[Added, str | None]]]:
        self.calls.append("add_to_digest")
        return super().add_to_digest(contributions, now)

    def add_counts(self, repeats: Sequence[Repeated], contributions: Mapping[str, Sequence[Contribution]],
                   now: float) -> tuple[list[Repeat], dict[str, list[tuple[Added, str | None]]]]:
        self.calls.append("add_counts")
        return MemoryState.add_repeats(self, repeats, now), MemoryState.add_to_digest(self, contributions, now)


def test_web_api_a_batch_s_repeats_and_digest_groups_are_counted_in_one_call() -> None:
    rig, sender = web_api_rig(limit=2)
    state = CountCallsState(2)
    rig.alerter = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                          display_tz=SEOUL, clock=rig.clock, sleep=rig.sleep, mode=Mode.WEB_API)
    rig.batch(*DISTINCT[:2])  # two incidents: their roots
    assert (len(sender.payloads), state.calls) == (2, [])
    rig.batch(*DISTINCT, DISTINCT[0])  # repeats of both, the other six over budget: one call for all
    assert state.calls == ["add_counts"]
    stats = rig.alerter.stats
    assert (stats.repeat_events, stats.decisions["over_budget"], rig.alerter.held) == (3, 6, 6)
    state.calls.clear()
    rig.batch(DISTINCT[1])  # repeats alone
    rig.batch(DISTINCT[3])  # the digest alone
    assert state.calls == ["add_repeats", "add_to_digest"]
    assert ended(rig) == alert_events(rig)


def test_web_api_quiet_after_the_resolve_time_then_a_new_incident() -> None:
    rig, sender = web_api_rig()
    rig.batch(event("ERROR", "pay", "db timeout after 30ms"))
    rig.clock.advance(899.0)
    rig.alerter.tick()
    assert sender.updates == []
    rig.clock.advance(1.0)
    rig.alerter.tick()
    assert len(sender.updates) == 1
    assert sender.updates[0][1]["text"].startswith("[quiet] [ERROR] pay: db timeout after 30ms")
    assert "Quiet since" in json.dumps(sender.updates[0][1])
    rig.clock.advance(5.0)
    rig.batch(event("ERROR", "pay", "db timeout after 31ms"))  # the problem is back: a new root
    assert len(sender.payloads) == 2


def test_web_api_over_budget_new_problems_go_to_the_digest() -> None:
    rig, sender = web_api_rig(limit=2)
    rig.batch(*DISTINCT[:4])
    assert len(sender.payloads) == 2
    rig.clock.advance(61.0)
    rig.alerter.tick()
    assert sender.texts[-1].startswith("2 more ERROR/WARN in the last minute")
    assert ended(rig) == alert_events(rig) == 4


def test_web_api_a_re_read_counts_nothing_twice() -> None:
    state = MemoryState(5)
    first, sender = web_api_rig()
    first.state = state
    first.alerter = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                            display_tz=SEOUL, clock=first.clock, sleep=first.sleep, mode=Mode.WEB_API)
    records = [first.record(event("ERROR", "pay", f"db timeout after {ms}ms")) for ms in (1, 2, 3)]
    first.alerter.handle_batch(records[:1])
    first.alerter.handle_batch(records[1:])
    again = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                    display_tz=SEOUL, clock=first.clock, sleep=first.sleep, mode=Mode.WEB_API)
    again.handle_batch(records)
    assert again.stats.already_delivered == 3
    assert len(sender.payloads) == 1
    assert state.incidents([fp(event("ERROR", "pay", "db timeout after 1ms"))]).popitem()[1].count == 3


def test_web_api_mode_opens_an_incident_over_a_webhook_mode_claim() -> None:
    """`make run`, then `SLACK_BOT_TOKEN=... make run` on the state it saved: a fingerprint alerted in webhook mode
    (a dedup claim, no incident) is not an open incident; Web API mode opens one. (It used to decide REPEAT, be
    refused, and decide REPEAT again, without end.)"""
    rig = Rig()
    rig.batch(event("ERROR", "pay", "db down"))
    sender = ThreadedSender()
    web = Alerter(levels=frozenset({"ERROR"}), state=rig.state, senders={Level.ERROR: sender}, display_tz=SEOUL,
                  clock=rig.clock, sleep=rig.sleep, mode=Mode.WEB_API)
    web.handle_batch([rig.record(event("ERROR", "pay", "db down")), rig.record(event("ERROR", "pay", "db down"))])
    assert web.stats.alerts_sent == 1 and len(sender.payloads) == 1 and web.stats.alerted_events == 2
    web.handle_batch([rig.record(event("ERROR", "pay", "db down"))])
    assert web.stats.repeat_events == 1  # and the incident it opened counts the next one


def test_web_api_a_taken_over_claim_posts_with_the_look_up() -> None:
    state = MemoryState(5)
    first, _ = web_api_rig()
    records = [first.record(DISTINCT[0])]
    crashing = ThreadedSender()
    crashing.fail_next(Crash())
    crashed = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: crashing},
                      display_tz=SEOUL, clock=first.clock, sleep=first.sleep, mode=Mode.WEB_API)
    with pytest.raises(Crash):
        crashed.handle_batch(records)
    sender = ThreadedSender()
    again = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                    display_tz=SEOUL, clock=first.clock, sleep=first.sleep, mode=Mode.WEB_API)
    again.handle_batch(records)  # waits for the dead processor's claim to go stale, then takes it over
    assert sender.uncertain_calls == [True]  # the outcome of the crashed attempt is unknown: look it up first
    assert sender.since == [FakeClock().now]  # from the crashed attempt's claim on
    assert sender.keys == [records[0].shard_id + "/" + records[0].sequence_number + "/0/0"]


class EndsState(MemoryState):
    """MemoryState that logs the alert path's calls into ``log``, shared with the sender's posts."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(5)
        self.log = log

    def begin(self, claim: Claim) -> Begun:
        self.log.append("begin")
        return super().begin(claim)

    def begin_all(self, claims: Sequence[Claim]) -> list[Begun]:
        self.log.append(f"begin_all {len(claims)}")
        return [MemoryState.begin(self, claim) for claim in claims]

    def end(self, key: str, owner: str, now: float, through: str | None, **kwargs: Any) -> None:
        self.log.append("end")
        super().end(key, owner, now, through, **kwargs)

    def end_all(self, endings: Sequence[Ending]) -> None:
        self.log.append(f"end_all {len(endings)}")
        for e in endings:
            super().end(e.key, e.owner, e.now, e.through, refused=e.refused, release=e.release, root=e.root)


class LoggingSender(ThreadedSender):
    """Logs each post attempt by service; the first attempt for a service in ``fail_once`` fails (a 503)."""

    def __init__(self, log: list[str], fail_once: Iterable[str] = ()) -> None:
        super().__init__()
        self.log = log
        self.fail_once = set(fail_once)

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        service = str(payload["text"]).split(":")[0].split()[-1]
        self.log.append(f"post {service}")
        if service in self.fail_once:
            self.fail_once.discard(service)
            raise RetryableDelivery(503, "service unavailable")
        return super().post(payload, key=key, since=since, uncertain=uncertain)


def ends_rig(mode: Mode, fail_once: Iterable[str] = ()) -> tuple[Rig, list[str]]:
    log: list[str] = []
    sender = LoggingSender(log, fail_once)
    rig = Rig({Level.ERROR: sender}, state=EndsState(log))
    rig.alerter = Alerter(levels=frozenset({"ERROR"}), state=rig.state, senders={Level.ERROR: sender},
                          display_tz=SEOUL, clock=rig.clock, sleep=rig.sleep, mode=mode)
    return rig, log


def test_web_api_a_batch_s_alerts_end_together_after_their_posts() -> None:
    """The batch's alerts begin together; an alert's post does not wait for the one before it to end: the ends go
    in one call at the batch's end."""
    rig, log = ends_rig(Mode.WEB_API)
    rig.batch(*(event("ERROR", service, "down") for service in ("a", "b", "c")))
    assert log == ["begin_all 3", "post a", "post b", "post c", "end_all 3"]
    assert rig.alerter.stats.alerts_sent == 3 and rig.state.ended_through(SHARD) is not None
    assert rig.alerter.safe_through is not None


def test_web_api_a_post_in_trouble_ends_the_alerts_posted_before_it_first() -> None:
    rig, log = ends_rig(Mode.WEB_API, fail_once={"b"})
    rig.batch(*(event("ERROR", service, "down") for service in ("a", "b")))
    assert log == ["begin_all 2", "post a", "post b", "end_all 1", "post b", "end_all 1"]
    assert rig.alerter.stats.alerts_sent == 2 and rig.alerter.stats.retries == 1


class SlowSender(LoggingSender):
    """Slack answers each post after ``seconds`` (of the rig's clock)."""

    def __init__(self, log: list[str], clock: FakeClock, seconds: float = 5.0) -> None:
        super().__init__(log)
        self.clock = clock
        self.seconds = seconds

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        self.clock.advance(self.seconds)
        return super().post(payload, key=key, since=since, uncertain=uncertain)


class KeptState(EndsState):
    def keep_sending(self, key: str, owner: str, now: float) -> None:
        self.log.append(f"keep {key}")
        super().keep_sending(key, owner, now)


@pytest.mark.parametrize(("mode", "ends"), [
    pytest.param(Mode.WEB_API, ["post a", "keep c", "post b", "post c", "end_all 3"], id="web-api"),
    pytest.param(Mode.WEBHOOK, ["post a", "keep c", "end_all 1", "post b", "end_all 1", "post c", "end_all 1"],
                 id="webhook-ends-each-before-the-next-slow-post"),
])
def test_claims_waiting_for_a_slow_slack_are_kept_fresh(mode: Mode, ends: list[str]) -> None:
    """A batch's alerts begin together, then Slack takes 5 s a post: the claims still waiting are refreshed before
    the next post (no other processor may take them over as stale meanwhile)."""
    log: list[str] = []
    rig = Rig(state=KeptState(log))
    sender = SlowSender(log, rig.clock)
    rig.alerter = Alerter(levels=frozenset({"ERROR"}), state=rig.state, senders={Level.ERROR: sender},
                          display_tz=SEOUL, clock=rig.clock, sleep=rig.sleep, mode=mode)
    records = [rig.record(event("ERROR", service, "down")) for service in ("a", "b", "c")]
    rig.alerter.handle_batch(records)
    keep_c = f"keep {SHARD}/{records[2].sequence_number}/0/0"
    assert log == ["begin_all 3", *(keep_c if line == "keep c" else line for line in ends)]


def test_webhook_mode_ends_posted_alerts_together_within_a_bound() -> None:
    """Webhook mode: nothing can be looked up after a crash, so the alerts posted end before the next post once the
    oldest waited WEBHOOK_END_WITHIN_SECONDS (0.25 s): here Slack answers in 0.1 s."""
    log: list[str] = []
    rig = Rig(state=EndsState(log))
    sender = SlowSender(log, rig.clock, seconds=0.1)
    rig.alerter = Alerter(levels=frozenset({"ERROR"}), state=rig.state, senders={Level.ERROR: sender},
                          display_tz=SEOUL, clock=rig.clock, sleep=rig.sleep, mode=Mode.WEBHOOK)
    rig.batch(*(event("ERROR", service, "down") for service in "abcde"))
    assert log == ["begin_all 5", "post a", "post b", "post c", "post d", "end_all 4", "post e", "end_all 1"]
    assert rig.alerter.stats.alerts_sent == 5 and rig.alerter.safe_through is not None


def test_web_api_samples_seen_while_the_root_is_in_flight_go_out_once_it_is_known() -> None:
    """Another processor posted the root and has not ended it yet (its batch goes on): the repeats' texts wait,
    then go into the thread once the root's ts is in the state."""
    rig, sender = web_api_rig()
    first = event("ERROR", "pay", "db timeout after 30ms")
    key = f"{SHARD}/1/0/0"
    assert rig.state.begin(Claim(key=key, owner="other", now=rig.clock(), budget="main", slot=0, stale_after=90.0,
                                 fingerprint=fp(first), dedup_window=300.0, incident_events=1, shard=SHARD,
                                 through=key)).verdict is Verdict.TAKEN
    rig.batch(*(event("ERROR", "pay", f"db timeout after {ms}ms") for ms in (40, 50, 40)))
    assert sender.replies == [] and rig.alerter.stats.repeat_events == 3
    rig.state.end(key, "other", rig.clock(), key, root=Incident(fp(first), 1, rig.clock(), "C0CALI", "999.000100",
                                                                 shown_count=1, root="{}"))
    rig.clock.advance(1.0)
    rig.alerter.tick()
    assert [(ts, payload["text"].split("\n")[0]) for ts, payload in sender.replies] == [
        ("999.000100", "db timeout after 40ms"), ("999.000100", "db timeout after 50ms")]
    rig.alerter.tick()
    assert len(sender.replies) == 2  # once


# -- Web API mode: the incidents' upkeep on its worker thread (a real thread; waits are on conditions) ------------
WAIT = 10.0  # seconds a condition may take on a busy machine; a passing run does not wait for it


class GatedSender(ThreadedSender):
    """Root updates wait for ``gate`` (a Slack that answers updates slowly)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.updating = threading.Event()

    def update(self, posted: Posted, payload: Mapping[str, Any]) -> None:
        self.updating.set()
        assert self.gate.wait(WAIT)
        super().update(posted, payload)


class CountingState(MemoryState):
    """A real MemoryState that counts the upkeep's claims and reads (each one a round trip in DynamoState) and can
    fail one claim."""

    def __init__(self) -> None:
        super().__init__(5)
        self.update_claims = 0
        self.reads: list[int] = []  # the incidents asked for, per read
        self.fail_next_claim: Exception | None = None

    def incidents(self, fingerprints: Sequence[str]) -> dict[str, Incident]:
        self.reads.append(len(fingerprints))
        return super().incidents(fingerprints)

    def claim_update(self, fingerprint: str, now: float, interval: float) -> tuple[bool, Incident | None]:
        self.update_claims += 1
        if self.fail_next_claim is not None:
            problem, self.fail_next_claim = self.fail_next_claim, None
            raise problem
        return super().claim_update(fingerprint, now, interval)


def background_rig(sender: ThreadedSender, gap: float = 0.0) -> tuple[Rig, CountingState]:
    rig = Rig({Level.ERROR: sender})
    state = CountingState()
    rig.state = state
    rig.alerter = Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender},
                          display_tz=SEOUL, clock=rig.clock, sleep=rig.sleep, mode=Mode.WEB_API,
                          update_interval=10.0, background_upkeep=True, upkeep_gap=gap)
    return rig, state


def pay(ms: int) -> dict[str, Any]:
    return event("ERROR", "pay", f"db timeout after {ms}ms")


def held_in_update() -> tuple[Rig, CountingState, GatedSender]:
    """A root posted, a repeat 10 s later: the worker is in the root's update, held by Slack."""
    sender = GatedSender()
    rig, state = background_rig(sender)
    rig.batch(pay(30))
    rig.clock.advance(10.0)
    rig.batch(pay(31))
    assert sender.updating.wait(WAIT)
    return rig, state, sender


def test_background_upkeep_updates_roots_and_posts_samples() -> None:
    sender = ThreadedSender()
    rig, _ = background_rig(sender)
    rig.batch(pay(30))
    rig.batch(*(pay(ms) for ms in range(100, 110)))
    assert rig.alerter.upkeep.idle(WAIT)
    assert [payload["text"].split("\n")[0] for _, payload in sender.replies] == [
        "db timeout after 100ms", "db timeout after 101ms", "db timeout after 102ms"]
    rig.clock.advance(10.0)
    rig.alerter.tick()
    assert rig.alerter.upkeep.idle(WAIT)
    assert [payload["text"].split("\n")[0] for _, payload in sender.updates] == [
        "[ERROR] pay: db timeout after 30ms (x11)"]
    assert ended(rig) == alert_events(rig) == 11


def test_a_slow_update_does_not_hold_the_batches_and_their_notes_merge() -> None:
    rig, state, sender = held_in_update()
    for ms in range(40, 60):  # twenty more batches go through meanwhile
        rig.batch(pay(ms))
    assert rig.alerter.stats.repeat_events == 21 and sender.updates == []
    claims = state.update_claims
    sender.gate.set()
    assert rig.alerter.upkeep.idle(WAIT)
    assert state.update_claims - claims <= 1  # the twenty notes were one by the time the worker looked
    assert len(sender.updates) == 1


def test_the_worker_reads_the_incidents_of_the_notes_it_took_in_one_request() -> None:
    sender = GatedSender()
    rig, state = background_rig(sender)
    rig.batch(pay(30), event("ERROR", "auth", "token expired for 1"))  # two roots
    assert rig.alerter.upkeep.idle(WAIT)
    rig.clock.advance(10.0)
    rig.batch(pay(31))
    assert sender.updating.wait(WAIT)  # the worker read the pay incident, and is in its root's update
    assert state.reads == [1]
    rig.batch(pay(32), event("ERROR", "auth", "token expired for 2"))  # two notes wait, with new texts
    sender.gate.set()
    assert rig.alerter.upkeep.idle(WAIT)
    assert state.reads == [1, 2]  # both incidents in one read
    assert [payload["text"].split("\n")[0] for _, payload in sender.replies] == [
        "db timeout after 31ms", "db timeout after 32ms", "token expired for 2"]
    rig.batch(pay(32), event("ERROR", "auth", "token expired for 2"))  # texts shown already: nothing to read
    assert rig.alerter.upkeep.idle(WAIT)
    assert state.reads == [1, 2] and rig.alerter.stats.repeat_events == 5


def test_an_upkeep_failure_is_one_line_and_counted_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    sender = ThreadedSender()
    rig, state = background_rig(sender)
    rig.batch(pay(30))
    rig.clock.advance(10.0)
    state.fail_next_claim = RuntimeError("the state table gave up")
    rig.batch(pay(31))
    assert rig.alerter.upkeep.idle(WAIT)
    assert rig.alerter.stats.notes["upkeep_failed"] == 1
    failures = [r.getMessage() for r in caplog.records if r.name == "cali.incidents"]
    assert failures == ["incident upkeep failed: RuntimeError: the state table gave up"]
    rig.alerter.tick()  # the incident is still dirty: the next look updates it
    assert rig.alerter.upkeep.idle(WAIT)
    assert len(sender.updates) == 1


def test_close_ends_the_worker_after_its_step_and_drops_the_rest() -> None:
    rig, state, sender = held_in_update()
    rig.batch(pay(32))  # a note waiting behind the update in hand
    rig.alerter.close()
    claims = state.update_claims
    sender.gate.set()
    worker = rig.alerter.upkeep._thread
    assert worker is not None
    worker.join(WAIT)
    assert not worker.is_alive()
    assert len(sender.updates) == 1 and state.update_claims == claims  # the step in hand finished; the note dropped


class TimedSender(ThreadedSender):
    """Notes the real time of each thread reply."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def reply(self, posted: Posted, payload: Mapping[str, Any], *, key: str = "") -> None:
        self.at.append(time.monotonic())
        super().reply(posted, payload, key=key)


def test_the_worker_spaces_its_requests_and_the_batches_do_not_wait_for_it() -> None:
    sender = TimedSender()
    rig, state = background_rig(sender, gap=0.3)
    claim_samples = state.claim_samples

    def timed_claim(fingerprint: str, now: float, per_minute: int, wanted: int) -> int:
        sender.at.append(time.monotonic())  # a claim is a request too (a round trip in DynamoState)
        return claim_samples(fingerprint, now, per_minute, wanted)

    state.claim_samples = timed_claim  # type: ignore[method-assign]
    rig.batch(pay(30))
    started = time.monotonic()
    rig.batch(*(pay(ms) for ms in range(100, 110)))  # three thread samples to claim (one request) and post
    assert time.monotonic() - started < 0.3  # the batch did not wait for them
    assert rig.alerter.upkeep.idle(WAIT)
    assert len(sender.at) == 4 and len(sender.replies) == 3
    assert min(b - a for a, b in zip(sender.at, sender.at[1:], strict=False)) >= 0.29
