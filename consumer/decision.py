"""What happens to a group of events of one fingerprint: a pure function of what is known, returning a reason.

Like Alertmanager's ``DedupStage.needsUpdate``: the decision reads a ``View`` (the state this processor knows,
without I/O) and returns a named ``Reason``; the alerter carries it out. When carrying it out finds the state moved
meanwhile (a conditional write refused), the view is refreshed and the decision taken again.

A route (destination, budget, silences) decides which destination's view is read; ``silenced`` is its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consumer.state import View


class Mode(StrEnum):
    WEBHOOK = "webhook"  # every message is a new post; repeats go into the digest
    WEB_API = "web_api"  # one incident per fingerprint: a root message, updated in place, samples in its thread


class Reason(StrEnum):
    ALERT = "alert"  # post a message: an alert (webhook) or an incident's root (Web API); takes a budget slot
    REPEAT = "repeat"  # the fingerprint alerted recently: digest (webhook) or counted in the open incident (Web API)
    OVER_BUDGET = "over_budget"  # the destination's budget is spent: the application-wide digest
    SILENCED = "silenced"  # a silence matches: a counted drop


@dataclass(frozen=True)
class Decision:
    reason: Reason
    slot: int | None = None  # the budget slot an ALERT takes


def decide(view: View, *, silenced: bool = False) -> Decision:
    if silenced:
        return Decision(Reason.SILENCED)
    if view.fingerprint_open:
        return Decision(Reason.REPEAT)
    if view.free_slot is None:
        return Decision(Reason.OVER_BUDGET)
    return Decision(Reason.ALERT, view.free_slot)


def digest_bucket(destination: str, now: float, interval: float, not_before: int = 0) -> tuple[str, int]:
    """The application-wide digest that events held at ``now`` join: one per destination and interval."""
    index = max(int(now // interval), not_before)
    return f"{destination}#{index}", index


def bucket_closes_at(index: int, interval: float) -> float:
    return (index + 1) * interval
