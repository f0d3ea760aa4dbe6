"""Silences: the pure decision and matchers as tables; the store and the CLI against a real DynamoDB API (the local
moto emulator, one per session)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from consumer.alerter import Alerter, RecordIn
from consumer.decision import Mode
from consumer.model import Level, LogEvent, sortable_position
from consumer.pipeline.match import MatchError, parse_matchers
from consumer.silence import Silence, parse_duration, silence_for
from consumer.silence.__main__ import main
from consumer.silence.apply import Silencer
from consumer.silence.store import SilenceCache, SilenceNotFound, SilenceStore
from consumer.state.memory import MemoryState
from localmode.resources import ensure_silences_table
from tests.emulator import make_client
from tests.test_consumer_alerter import FakeClock, FakeSleep, RecordingSender

NOW = 1_800_000_000.0


def event(service: str | None = "payment-api", level: Level = Level.ERROR, message: str = "db timeout after 3000ms",
          ) -> LogEvent:
    return LogEvent(level=level, message=message, service=service)


def silence(id: str, *matchers: str, starts: float = NOW - 60, ends: float = NOW + 60) -> Silence:
    return Silence(id, matchers, starts, ends, "alice", "known")


@pytest.mark.parametrize(("matchers", "ev", "silenced"), [
    pytest.param(("service=payment-api",), event(), True, id="service-exact"),
    pytest.param(("service=payment-*",), event(), True, id="service-glob"),
    pytest.param(("service=auth-api,payment-api",), event(), True, id="service-alternatives"),
    pytest.param(("service=payment",), event(), False, id="service-not-prefix"),
    pytest.param(("message~db timeout",), event(), True, id="message-regex-searches"),
    pytest.param(("message~^timeout",), event(), False, id="message-anchored"),
    pytest.param(("service=payment-api", "message~db timeout"), event(), True, id="all-hold"),
    pytest.param(("service=payment-api", "message~deadlock"), event(), False, id="one-fails"),
    pytest.param(("level=WARN",), event(), False, id="level-differs"),
    pytest.param(("level=warning",), event(level=Level.WARN), True, id="level-normalised"),
    pytest.param(("service=*",), event(service=None), True, id="star-matches-no-service"),
    pytest.param(("service=payment-api",), event(service=None), False, id="no-service"),
])
def test_silence_matching(matchers: tuple[str, ...], ev: LogEvent, silenced: bool) -> None:
    assert (silence_for(ev, [silence("s1", *matchers)], NOW) is not None) is silenced


def test_only_active_silences_hold_and_the_oldest_wins() -> None:
    older = silence("bbb", "service=payment-api", starts=NOW - 100)
    newer = silence("aaa", "message~db", starts=NOW - 10)
    ended = silence("ccc", "service=*", starts=NOW - 200, ends=NOW)
    assert silence_for(event(), [newer, ended, older], NOW) == older
    assert silence_for(event(), [ended], NOW) is None  # ends_at is exclusive: at NOW it no longer holds
    assert silence_for(event(), [ended], NOW - 1) == ended
    assert silence_for(event(service="auth-api"), [newer, older], NOW) == newer
    assert silence_for(event(), [], NOW) is None


@pytest.mark.parametrize(("texts", "problem"), [
    pytest.param(["servce=x"], "unknown field 'servce'", id="unknown-field"),
    pytest.param(["service"], "is not FIELD=VALUE", id="no-operator"),
    pytest.param(["message=db timeout"], "write message~", id="message-needs-tilde"),
    pytest.param(["service~pay"], "matches with '='", id="service-needs-equals"),
    pytest.param(["message~(oops"], "not a valid regular expression", id="bad-regex"),
    pytest.param(["level=LOUD"], "is not a log level", id="bad-level"),
    pytest.param(["service=a", "service=b"], "given twice", id="twice"),
    pytest.param(["service="], "service pattern is empty", id="empty"),
])
def test_matcher_errors_are_one_sentence(texts: list[str], problem: str) -> None:
    with pytest.raises(MatchError, match=problem) as caught:
        parse_matchers(texts)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400),
                                               ("1h30m", 5400), ("0.5h", 1800)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["2", "2 hours", "h", "0m", "-1h", "2h 30m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(MatchError, match="duration"):
        parse_duration(text)


# -- the store, on a real DynamoDB API ---------------------------------------------------------------------------


@pytest.fixture
def table(emulator_url: str) -> str:
    name = f"cali-test-{uuid.uuid4().hex[:8]}-silences"
    ensure_silences_table(make_client(emulator_url), name)
    return name


@pytest.fixture
def store(emulator_url: str, table: str) -> SilenceStore:
    return SilenceStore(make_client(emulator_url), table)


def pos(n: int) -> str:
    return sortable_position(f"shardId-000000000000/{n}/0/0")


def test_add_list_expire(store: SilenceStore) -> None:
    added = store.add(["service=payment-api", "message~db timeout"], NOW, NOW + 7200, "alice", "known incident")
    assert len(added.id) == 8
    (listed,) = store.all()
    assert listed == added
    assert listed.match.matches(event())
    ended = store.expire(added.id, "bob", NOW + 10)
    assert (ended.ends_at, ended.expired_by, ended.active(NOW + 10)) == (NOW + 10, "bob", False)
    with pytest.raises(SilenceNotFound):
        store.expire(added.id, "bob", NOW + 20)  # already ended
    with pytest.raises(SilenceNotFound):
        store.expire("nosuchid", "bob", NOW)


def test_counts_are_exact_across_processors_and_rereads(emulator_url: str, table: str, store: SilenceStore) -> None:
    s = store.add(["service=payment-api"], NOW, NOW + 60, "alice", "r")
    other = SilenceStore(make_client(emulator_url), table)  # another processor
    assert store.count(s.id, "shardId-000000000000", [pos(1), pos(2), pos(3)], NOW) == 3
    assert other.count(s.id, "shardId-000000000001", [sortable_position("shardId-000000000001/1/0/0")], NOW) == 1
    # a re-read after a restart: batch 1..5, of which 1..3 were counted
    assert other.count(s.id, "shardId-000000000000", [pos(1), pos(2), pos(3), pos(4), pos(5)], NOW + 1) == 2
    assert store.count(s.id, "shardId-000000000000", [pos(2), pos(5)], NOW + 2) == 0
    (listed,) = store.all()
    assert listed.silenced == 6
    assert listed.last_silenced_at == NOW + 1


def test_cache_sees_a_new_silence_after_its_refresh(store: SilenceStore) -> None:
    clock = [0.0]
    cache = SilenceCache(store, refresh_seconds=2.0, clock=lambda: clock[0])
    assert cache.current() == ()
    added = store.add(["level=WARN"], NOW, NOW + 60, "alice", "r")
    clock[0] = 1.9
    assert cache.current() == ()  # within the refresh interval: not re-read
    clock[0] = 2.0
    assert cache.current() == (added,)


def test_cache_keeps_the_known_silences_when_the_table_is_unreachable(store: SilenceStore) -> None:
    added = store.add(["level=WARN"], NOW, NOW + 60, "alice", "r")
    broken = SilenceStore(make_client("http://127.0.0.1:9"), "nope")
    clock = [0.0]
    cache = SilenceCache(store, 1.0, clock=lambda: clock[0])
    assert cache.current() == (added,)
    cache._store = broken
    clock[0] = 5.0
    assert cache.current() == (added,)


class HeldStore(SilenceStore):
    """The real store, whose re-reads after the first wait for ``gate`` (a slow table)."""

    def __init__(self, emulator_url: str, table: str) -> None:
        super().__init__(make_client(emulator_url), table)
        self.reads = 0
        self.gate = threading.Event()

    def all(self) -> list[Silence]:
        self.reads += 1
        if self.reads > 1:
            assert self.gate.wait(10.0)
        return super().all()


def test_a_background_cache_re_reads_while_the_record_path_goes_on(store: SilenceStore, emulator_url: str,
                                                                   table: str) -> None:
    held = HeldStore(emulator_url, table)
    clock = [0.0]
    cache = SilenceCache(held, 1.0, clock=lambda: clock[0], background=True)
    assert cache.current() == () and held.reads == 1  # the first read at once
    added = store.add(["level=WARN"], NOW, NOW + 60, "alice", "r")
    clock[0] = 1.0
    started = time.monotonic()
    assert cache.current() == ()  # the re-read waits on the table; the known silences meanwhile
    assert time.monotonic() - started < 1.0
    clock[0] = 2.5
    assert cache.current() == () and held.reads == 2  # one re-read at a time
    held.gate.set()
    for reread in [t for t in threading.enumerate() if t.name == "silences-reread"]:
        reread.join(10.0)
    assert cache.current() == (added,)


# -- the CLI ---------------------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emulator_url: str, table: str,
        *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_url)
    monkeypatch.setenv("CALI_APP_NAME", table.removesuffix("-silences"))
    monkeypatch.setenv("USER", "carol")
    monkeypatch.delenv("CALI_OPERATOR", raising=False)
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_add_list_expire(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emulator_url: str,
                             table: str, store: SilenceStore) -> None:
    run: Any = lambda *argv: cli(capsys, monkeypatch, emulator_url, table, *argv)  # noqa: E731
    code, out, err = run("add", "--match", "service=payment-api", "--match", "message~db timeout", "--for", "2h",
                         "--reason", "known: DB failover")
    assert (code, err) == (0, "")
    assert "by carol: known: DB failover" in out
    (s,) = store.all()
    assert s.matchers == ("service=payment-api", "message~db timeout") and s.author == "carol"
    assert 7199 < s.ends_at - s.starts_at < 7201 and abs(s.starts_at - time.time()) < 60
    store.count(s.id, "shardId-000000000000", [pos(1), pos(2)], NOW)
    code, out, _ = run("list")
    assert code == 0
    assert s.id in out and "active" in out
    assert out.splitlines()[-1] == "1 active (2 events silenced), 0 expired (0 events silenced)"
    code, out, _ = run("list", "--json")
    assert json.loads(out)["silenced"] == 2 and json.loads(out)["state"] == "active"
    code, out, _ = run("expire", s.id)
    assert code == 0 and "2 events silenced" in out
    code, out, _ = run("list")
    assert out.splitlines()[-1] == "0 active (0 events silenced), 1 expired (2 events silenced)"
    assert "expired by carol" in out


@pytest.mark.parametrize(("argv", "code", "message"), [
    pytest.param(("add", "--match", "servce=x", "--for", "1h", "--reason", "r"), 2, "unknown field 'servce'",
                 id="bad-matcher"),
    pytest.param(("add", "--match", "service=x", "--for", "soon", "--reason", "r"), 2, "duration 'soon'",
                 id="bad-duration"),
    pytest.param(("add", "--match", "service=x", "--for", "1h"), 2, "--reason", id="no-reason"),
    pytest.param(("expire", "deadbeef"), 1, "no active silence 'deadbeef'", id="unknown-id"),
    pytest.param(("frobnicate",), 2, "invalid choice", id="unknown-command"),
])
def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                 emulator_url: str, table: str, argv: tuple[str, ...], code: int,
                                 message: str) -> None:
    got, out, err = cli(capsys, monkeypatch, emulator_url, table, *argv)
    assert got == code and out == ""
    assert message in err and err.count("\n") == 1, err


def test_cli_missing_table_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       emulator_url: str) -> None:
    got, _, err = cli(capsys, monkeypatch, emulator_url, "never-created-silences", "list")
    assert got == 1 and "table never-created-silences not found" in err and err.count("\n") == 1



# -- in the alert path ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.WEBHOOK, Mode.WEB_API])
def test_silenced_events_are_counted_not_alerted_and_alert_as_new_after(store: SilenceStore, mode: Mode) -> None:
    clock = FakeClock(NOW)
    silencer = Silencer(SilenceCache(store, 0.0, clock=clock, wall=clock), store, clock)
    posts = RecordingSender()
    alerter = Alerter(levels={"ERROR", "WARN"}, state=MemoryState(100), senders={Level.ERROR: posts},
                      display_tz=ZoneInfo("UTC"), clock=clock, sleep=FakeSleep(clock), dedup_window=300.0,
                      mode=mode, silencer=silencer)
    seq = [0]

    def batch(*messages: str, service: str = "payment-api") -> None:
        records = []
        for message in messages:
            seq[0] += 1
            line = json.dumps({"level": "ERROR", "service": service, "message": message})
            records.append(RecordIn(line.encode(), "shardId-000000000000", str(1000 + seq[0])))
        alerter.handle_batch(records)

    batch("db timeout after 3000ms")
    assert len(posts.texts) == 1  # alerted: within the dedup window (webhook) / an open incident (Web API)
    s = store.add(["service=payment-api", "message~db timeout"], NOW, NOW + 60, "alice", "failover")
    clock.advance(1)
    batch("db timeout after 3001ms", "db timeout after 5000ms", "card declined")
    batch("db timeout after 10ms", service="auth-api")
    stats = alerter.stats
    assert stats.silenced_events == 2 and stats.silenced == {s.id: 2} and stats.decisions["silenced"] == 2
    assert [x.silenced for x in store.all()] == [2]
    assert len(posts.texts) == 3  # "card declined" and auth-api's timeout alerted, nothing silenced was
    clock.now = NOW + 61  # the silence ended; 61 s after the first alert, inside the 300 s dedup window
    batch("db timeout after 7000ms")
    assert len(posts.texts) == 4 and "7000" in posts.texts[-1]  # alerts as new, not as a repeat of the first
    batch("db timeout after 8000ms")
    assert len(posts.texts) == 4  # and it is one problem again after that
    assert (stats.alerted_events + stats.digested_events + stats.repeat_events + alerter.held
            + stats.silenced_events == sum(stats.events.values()) == 7)
