"""The status line of ``python -m localmode run``, folded from the processors' heartbeats. Pure: no I/O here.

Each processor writes ``<health_dir>/<shard>.json`` every few seconds (``consumer.health.write_heartbeat``) with its
cumulative ``stats``, ``millis_behind_latest`` and ``slack`` state. A processor that restarts (new pid) counts from
zero, so the run's totals are the sum of the latest stats of every (shard, pid) seen since the run started. Keys
are read tolerantly: what a heartbeat does not carry shows as ``-``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SLACK_WARN_AFTER_SECONDS = 30.0
RATE_WINDOW_SECONDS = 15.0


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _counts(value: Any) -> Counter[str]:
    if not isinstance(value, Mapping):
        return Counter()
    return Counter({str(k): n for k, v in value.items() if (n := _int(v)) is not None})


@dataclass(frozen=True)
class Status:
    shards: int
    records_per_second: float | None
    records: int | None
    error_warn: int | None
    alerts_sent: int | None
    digested: int | None
    held: int | None
    dropped: Counter[str]
    millis_behind: int | None
    slack: str  # "ok", "failing 45s", or "-"
    restarts: int
    repeats: int | None = None  # Web API mode: events counted into an open incident's root
    silenced: int | None = None  # events taken out by silences (python -m consumer.silence)

    def line(self) -> str:
        def show(value: int | None) -> str:
            return "-" if value is None else str(value)

        rate = "-" if self.records_per_second is None else f"{self.records_per_second:.1f}/s"
        dropped = " ".join(f"{reason}={n}" for reason, n in sorted(self.dropped.items()) if n) or "0"
        repeats = f" | repeats {self.repeats}" if self.repeats else ""
        return (f"records in {rate} | ERROR/WARN read {show(self.error_warn)} | alerts sent {show(self.alerts_sent)}"
                f"{repeats} | digested {show(self.digested)} | held {show(self.held)}"
                f" | silenced {show(self.silenced)} | dropped {dropped}"
                f" | behind tip {show(self.millis_behind)} ms | Slack {self.slack} | restarts {self.restarts}"
                f" | shards {self.shards}")


@dataclass
class Board:
    """Folds heartbeats into the run's totals; ``since`` (epoch seconds) ignores beats of an earlier run."""

    since: float
    _latest: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    _records: deque[tuple[float, int]] = field(default_factory=deque)

    def update(self, beats: Mapping[str, Mapping[str, Any]], now: float, restarts: int) -> Status:
        # The current beat of each shard, however old: a processor blocked on a dead Slack stops beating, and its
        # last beat (Slack failing, events held) is what is true. A shard whose lease moved has no file any more.
        current = _this_run(beats, self.since)
        for shard, beat in current.items():
            self._latest[(shard, _int(beat.get("pid")) or 0)] = dict(beat)
        stats = [b.get("stats") for b in self._latest.values()]
        known = [s for s in stats if isinstance(s, Mapping)]

        def total(key: str) -> int | None:
            values = [v for s in known if (v := _int(s.get(key))) is not None]
            return sum(values) if values else None

        records = total("records")
        events = sum((_counts(s.get("events")) for s in known), Counter())
        dropped = sum((_counts(s.get("dropped")) for s in known), Counter())
        held_values = [h for b in current.values() if (h := _held(b)) is not None]
        behind = [m for b in current.values() if (m := _int(b.get("millis_behind_latest"))) is not None]
        return Status(
            shards=len(current),
            records_per_second=self._rate(now, records),
            records=records,
            error_warn=events["ERROR"] + events["WARN"] if known else None,
            alerts_sent=total("alerts_sent"),
            digested=total("digested_events"),
            held=sum(held_values) if held_values else None,
            dropped=dropped,
            silenced=total("silenced_events"),
            millis_behind=max(behind) if behind else None,
            slack=slack_summary(current.values(), now),
            restarts=restarts,
            repeats=total("repeat_events"),
        )

    def _rate(self, now: float, records: int | None) -> float | None:
        if records is None:
            return None
        self._records.append((now, records))
        while len(self._records) > 2 and now - self._records[1][0] >= RATE_WINDOW_SECONDS:
            self._records.popleft()
        (then, before), _ = self._records[0], self._records[-1]
        return (records - before) / (now - then) if now - then >= 1 else None


def _this_run(beats: Mapping[str, Mapping[str, Any]], since: float) -> dict[str, Mapping[str, Any]]:
    return {shard: beat for shard, beat in beats.items()
            if isinstance(at := beat.get("at"), int | float) and at >= since}


def _held(beat: Mapping[str, Any]) -> int | None:
    stats = beat.get("stats")
    held = _int(stats.get("held")) if isinstance(stats, Mapping) else None
    return held if held is not None else _int(beat.get("held"))


def _slack(beat: Mapping[str, Any]) -> tuple[str, float | None, str]:
    slack = beat.get("slack")
    if not isinstance(slack, Mapping):
        return "-", None, ""
    since = slack.get("since")
    return (str(slack.get("state", "-")), float(since) if isinstance(since, int | float) else None,
            str(slack.get("error", "")))


def slack_summary(beats: Any, now: float) -> str:
    states = [_slack(b) for b in beats]
    failing = [since for state, since, _ in states if state == "failing"]
    if failing:
        known = [s for s in failing if s is not None]
        return f"failing {now - min(known):.0f}s" if known else "failing"
    return "ok" if any(state == "ok" for state, _, _ in states) else "-"


@dataclass
class SlackWatch:
    """Says once when Slack has been failing for longer than ``after`` seconds, and once when it answers again."""

    since: float = 0.0  # beats older than this (an earlier run's) are ignored
    after: float = SLACK_WARN_AFTER_SECONDS
    warned_since: float | None = None

    def observe(self, beats: Mapping[str, Mapping[str, Any]], now: float) -> str | None:
        states = {shard: _slack(beat) for shard, beat in _this_run(beats, self.since).items()}
        failing = {shard: (since, error) for shard, (state, since, error) in states.items()
                   if state == "failing" and since is not None}
        if self.warned_since is None:
            long = {s: v for s, v in failing.items() if now - v[0] > self.after}
            if not long:
                return None
            shard, (since, error) = min(long.items(), key=lambda item: item[1][0])
            self.warned_since = since
            reason = f" ({error})" if error else ""
            return (f"WARNING: Slack has refused or not answered every post for {now - since:.0f}s{reason}; "
                    f"alerts are held and retried, the checkpoint waits, nothing is lost (first seen on {shard})")
        if failing or not any(state == "ok" for state, _, _ in states.values()):
            return None
        lasted = now - self.warned_since
        self.warned_since = None
        return f"Slack is answering again after {lasted:.0f}s; the held alerts are going out"
