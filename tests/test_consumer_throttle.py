"""The sliding-window throttle: pure admit/next_opening, and LocalThrottle with a fake clock."""

from __future__ import annotations

import pytest

from consumer.pipeline.throttle import WINDOW_SECONDS, LocalThrottle, admit, next_opening


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("sent", "now", "limit", "expected"),
    [
        pytest.param([], 0.0, 5, [0.0], id="empty-log"),
        pytest.param([0.0, 1.0, 2.0, 3.0], 4.0, 5, [0.0, 1.0, 2.0, 3.0, 4.0], id="fifth-fits"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 5.0, 5, None, id="sixth-refused"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 59.999, 5, None, id="still-refused-just-before-window"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 60.0, 5, [1.0, 2.0, 3.0, 4.0, 60.0], id="oldest-leaves-at-60s"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 200.0, 5, [200.0], id="all-expired-pruned"),
        pytest.param([0.0], 10.0, 1, None, id="limit-1-refused"),
        pytest.param([0.0], 60.0, 1, [60.0], id="limit-1-admitted"),
        pytest.param([4.0, 0.0, 3.0, 1.0, 2.0], 5.0, 5, None, id="unsorted-log"),
        pytest.param([50.0, 51.0, 52.0, 53.0, 54.0], 61.0, 5, None, id="no-fixed-minute-reset"),
        pytest.param([0.0, 1.0, 2.0], 5.0, 10, [0.0, 1.0, 2.0, 5.0], id="custom-limit"),
        pytest.param([], 0.0, 0, None, id="limit-0"),
    ],
)
def test_admit(sent: list[float], now: float, limit: int, expected: list[float] | None) -> None:
    assert admit(sent, now, limit) == expected


@pytest.mark.parametrize(
    ("sent", "now", "window", "expected"),
    [
        pytest.param([0.0], 10.0, 10.0, [10.0], id="custom-window-expired"),
        pytest.param([0.0], 9.0, 10.0, None, id="custom-window-full"),
    ],
)
def test_admit_custom_window(sent: list[float], now: float, window: float, expected: list[float] | None) -> None:
    assert admit(sent, now, 1, window) == expected


@pytest.mark.parametrize(
    ("sent", "now", "limit", "expected"),
    [
        pytest.param([], 0.0, 5, 0.0, id="empty"),
        pytest.param([0.0, 1.0, 2.0, 3.0], 4.0, 5, 0.0, id="room-left"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 5.0, 5, 55.0, id="full-waits-for-oldest"),
        pytest.param([4.0, 0.0, 3.0, 1.0, 2.0], 5.0, 5, 55.0, id="unsorted"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 59.5, 5, 0.5, id="half-a-second"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 60.0, 5, 0.0, id="oldest-gone"),
        pytest.param([0.0, 10.0, 20.0, 30.0, 40.0], 50.0, 3, 30.0, id="limit-lowered-waits-for-third-newest"),
    ],
)
def test_next_opening(sent: list[float], now: float, limit: int, expected: float) -> None:
    assert next_opening(sent, now, limit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("sent", "now", "limit"),
    [
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 5.0, 5, id="full"),
        pytest.param([0.0, 10.0, 20.0, 30.0, 40.0], 50.0, 3, id="over-a-lowered-limit"),
        pytest.param([10.0, 11.0], 12.0, 2, id="limit-2"),
    ],
)
def test_next_opening_agrees_with_admit(sent: list[float], now: float, limit: int) -> None:
    wait = next_opening(sent, now, limit)
    assert admit(sent, now + wait, limit) is not None
    assert admit(sent, now + wait - 0.001, limit) is None


def test_local_throttle_five_a_minute_then_refused() -> None:
    clock = FakeClock(0.0)
    throttle = LocalThrottle(5, clock)
    assert [throttle.try_acquire() for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now = 59.9
    assert throttle.try_acquire() is False
    clock.now = 60.0
    assert throttle.try_acquire() is True  # exactly one slot opened (the five were all sent at t=0)
    assert throttle.try_acquire() is True
    assert throttle.try_acquire() is True
    assert throttle.try_acquire() is True
    assert throttle.try_acquire() is True
    assert throttle.try_acquire() is False


def test_local_throttle_refusals_do_not_use_budget() -> None:
    clock = FakeClock(0.0)
    throttle = LocalThrottle(1, clock)
    assert throttle.try_acquire() is True
    for t in range(1, 60):
        clock.now = float(t)
        assert throttle.try_acquire() is False
    clock.now = 60.0
    assert throttle.try_acquire() is True


# (time, expected) steps: sends late in one clock minute still count at the start of the next one.
SLIDING_STEPS = [
    (50.0, True), (51.0, True), (52.0, True), (53.0, True), (54.0, True),
    (60.0, False),  # a fixed per-minute counter would reset here
    (61.0, False), (109.9, False),
    (110.0, True),  # 50.0 left the window
    (110.5, False),
    (111.0, True),  # 51.0 left
    (114.0, True), (114.0, True), (114.0, True),  # 52, 53, 54 left
    (114.0, False),
    (170.0, True),
]


def test_local_throttle_is_a_sliding_window() -> None:
    clock = FakeClock(0.0)
    throttle = LocalThrottle(5, clock)
    results = []
    for at, _ in SLIDING_STEPS:
        clock.now = at
        results.append((at, throttle.try_acquire()))
    assert results == SLIDING_STEPS


@pytest.mark.parametrize("start", [0.0, 30.0, 59.0, 1e9])
def test_never_more_than_limit_in_any_window(start: float) -> None:
    """Requests every 0.5 s for 5 minutes: count admissions in every 60 s window."""
    clock = FakeClock(start)
    throttle = LocalThrottle(5, clock)
    admitted: list[float] = []
    for step in range(600):
        clock.now = start + step * 0.5
        if throttle.try_acquire():
            admitted.append(clock.now)
    assert len(admitted) == 5 * 5  # five per minute, steadily
    for t in admitted:
        assert sum(1 for u in admitted if t <= u < t + WINDOW_SECONDS) <= 5
