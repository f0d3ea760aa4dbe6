"""The status line and the Slack warning, folded from heartbeats of the shape processors write (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from localmode.status import Board, SlackWatch, Status

T0 = 1_000_000.0


def beat(shard: str, at: float, pid: int = 1, **extra: Any) -> dict[str, Any]:
    return {"shard_id": shard, "at": at, "pid": pid, **extra}


def stats(records: int, error: int = 0, warn: int = 0, **more: Any) -> dict[str, Any]:
    return {"records": records, "events": {"ERROR": error, "WARN": warn, "INFO": 7}, **more}


def test_totals_add_up_over_shards_and_over_a_processor_restart() -> None:
    board = Board(since=T0)
    board.update({"s0": beat("s0", T0 + 1, pid=10, stats=stats(100, error=5, alerts_sent=3, digested_events=2,
                                                                      dropped={"not_json": 1}))}, T0 + 1, 0)
    # s0's processor restarted (new pid, counts from zero); s1 appears
    status = board.update({
        "s0": beat("s0", T0 + 11, pid=11, stats=stats(20, error=1, alerts_sent=1, digested_events=0,
                                                      dropped={"not_json": 2}, held=4)),
        "s1": beat("s1", T0 + 11, pid=12, millis_behind_latest=250,
                   stats=stats(50, warn=2, alerts_sent=2, digested_events=0, held=1, silenced_events=3,
                               silenced={"a1b2c3d4": 3})),
    }, T0 + 11, restarts=1)

    assert (status.records, status.error_warn, status.alerts_sent, status.digested) == (170, 8, 6, 2)
    assert status.dropped == {"not_json": 3}
    assert status.silenced == 3
    assert status.held == 5  # a gauge: only the live processors' latest figure
    assert status.millis_behind == 250
    assert status.records_per_second == pytest.approx(7.0)  # (170 - 100) / 10 s
    assert (status.shards, status.restarts) == (2, 1)


def test_beats_of_an_earlier_run_and_missing_keys_show_as_dashes() -> None:
    board = Board(since=T0)
    status = board.update({"old": beat("old", T0 - 5, stats=stats(999)), "s0": beat("s0", T0 + 1)}, T0 + 1, 0)
    line = status.line()

    assert status.records is None and status.shards == 1
    assert "ERROR/WARN read - |" in line and "alerts sent - |" in line and "Slack - |" in line
    assert "999" not in line


def test_the_line_names_every_figure_an_operator_asked_for() -> None:
    status = Status(shards=2, records_per_second=12.5, records=10, error_warn=4, alerts_sent=3, digested=1, held=0,
                    dropped={"not_json": 2, "slack_permanent_error": 1}, silenced=5, millis_behind=120, slack="ok",
                    restarts=2)
    assert status.line() == ("records in 12.5/s | ERROR/WARN read 4 | alerts sent 3 | digested 1 | held 0 | "
                             "silenced 5 | dropped not_json=2 slack_permanent_error=1 | behind tip 120 ms | Slack ok | "
                             "restarts 2 | shards 2")


def test_web_api_repeats_show_when_there_are_any() -> None:
    status = Status(shards=1, records_per_second=1.0, records=10, error_warn=9, alerts_sent=3, digested=0, held=0,
                    dropped={}, millis_behind=0, slack="ok", restarts=0, repeats=6)
    assert "| alerts sent 3 | repeats 6 | digested 0 |" in status.line()


def slack_beat(at: float, state: str, since: float, error: str = "") -> dict[str, Any]:
    return beat("s0", at, slack={"state": state, "since": since, "error": error})


def test_slack_warning_after_30s_of_failure_once_then_a_recovery_line_once() -> None:
    watch = SlackWatch()
    failing_since = T0
    said = [watch.observe({"s0": slack_beat(T0 + t, "failing", failing_since, "connection refused")}, T0 + t)
            for t in (5, 29, 31, 40)]
    assert said[:2] == [None, None]
    assert said[2] is not None and "31s" in said[2] and "connection refused" in said[2]
    assert said[3] is None  # said once

    back = watch.observe({"s0": slack_beat(T0 + 50, "ok", T0 + 49)}, T0 + 50)
    assert back is not None and "answering again after 50s" in back
    assert watch.observe({"s0": slack_beat(T0 + 55, "ok", T0 + 49)}, T0 + 55) is None


def test_a_short_slack_hiccup_says_nothing_and_the_line_shows_it() -> None:
    watch, board = SlackWatch(), Board(since=T0)
    assert watch.observe({"s0": slack_beat(T0 + 10, "failing", T0)}, T0 + 10) is None
    assert watch.observe({"s0": slack_beat(T0 + 12, "ok", T0 + 11)}, T0 + 12) is None
    assert board.update({"s0": slack_beat(T0 + 10, "failing", T0)}, T0 + 10, 0).slack == "failing 10s"


def test_a_processor_blocked_on_slack_stops_beating_and_its_last_beat_still_counts() -> None:
    """The blocked shard's beat is 40 s old; the other shard beats on, saying ok."""
    watch, board = SlackWatch(since=T0), Board(since=T0)
    beats = {"s0": {**slack_beat(T0 + 5, "failing", T0 + 4), "stats": stats(3, error=1, held=1)},
             "s1": beat("s1", T0 + 44, slack={"state": "ok", "since": T0}, stats=stats(2))}
    said = watch.observe(beats, T0 + 45)
    status = board.update(beats, T0 + 45, 0)
    assert said is not None and "41s" in said
    assert (status.slack, status.held, status.shards) == ("failing 41s", 1, 2)
