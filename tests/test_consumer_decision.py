"""The alert decision as a table: (what is known) -> the named reason. Pure, no state, no clock."""

from __future__ import annotations

import pytest

from consumer.decision import Decision, Reason, bucket_closes_at, decide, digest_bucket
from consumer.state import View


@pytest.mark.parametrize(
    ("view", "silenced", "expected"),
    [
        pytest.param(View(fingerprint_open=False, free_slot=3), False, Decision(Reason.ALERT, 3), id="new-with-budget"),
        pytest.param(View(fingerprint_open=False, free_slot=0), False, Decision(Reason.ALERT, 0), id="slot-zero"),
        pytest.param(View(fingerprint_open=False, free_slot=None), False, Decision(Reason.OVER_BUDGET),
                     id="new-over-budget"),
        pytest.param(View(fingerprint_open=True, free_slot=3), False, Decision(Reason.REPEAT), id="repeat"),
        pytest.param(View(fingerprint_open=True, free_slot=None), False, Decision(Reason.REPEAT),
                     id="repeat-over-budget-is-still-a-repeat"),
        pytest.param(View(fingerprint_open=False, free_slot=3), True, Decision(Reason.SILENCED), id="silenced"),
        pytest.param(View(fingerprint_open=True, free_slot=None), True, Decision(Reason.SILENCED),
                     id="silenced-repeat"),
    ],
)
def test_decide(view: View, silenced: bool, expected: Decision) -> None:
    assert decide(view, silenced=silenced) == expected


@pytest.mark.parametrize(
    ("now", "interval", "not_before", "expected"),
    [
        pytest.param(120.0, 60.0, 0, ("main#2", 2), id="on-the-boundary"),
        pytest.param(179.9, 60.0, 0, ("main#2", 2), id="end-of-interval"),
        pytest.param(179.9, 60.0, 3, ("main#3", 3), id="sealed-early-join-the-next"),
        pytest.param(25.0, 10.0, 0, ("main#2", 2), id="ten-second-intervals"),
    ],
)
def test_digest_bucket(now: float, interval: float, not_before: int, expected: tuple[str, int]) -> None:
    assert digest_bucket("main", now, interval, not_before) == expected
    assert bucket_closes_at(expected[1], interval) == (expected[1] + 1) * interval
