"""Restarts with backoff and a circuit breaker, on real child processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from consumer.config import REPO_ROOT
from localmode.supervisor import GaveUp, RestartPolicy, Supervisor, restart_delay, wait_for

POLICY = RestartPolicy(max_restarts=5, window_seconds=300, first_backoff=1, max_backoff=30)


@pytest.mark.parametrize(
    ("restarts", "now", "expected"),
    [
        pytest.param([], 1000, 1.0, id="first-crash-1s"),
        pytest.param([990], 1000, 2.0, id="second-2s"),
        pytest.param([960, 970, 980, 990], 1000, 16.0, id="fifth-16s"),
        pytest.param([950, 960, 970, 980, 990], 1000, None, id="sixth-within-5-min-gives-up"),
        pytest.param([100, 200, 960, 970, 980], 1000, 8.0, id="old-restarts-are-forgotten"),
    ],
)
def test_restart_delay(restarts: list[float], now: float, expected: float | None) -> None:
    assert restart_delay(restarts, now, POLICY) == expected


def test_backoff_is_capped() -> None:
    policy = RestartPolicy(max_restarts=10, max_backoff=30)
    assert restart_delay([1.0] * 8, 2.0, policy) == 30.0


def watch_until(supervisor: Supervisor, done: str, timeout: float = 20) -> list[str]:
    said: list[str] = []
    deadline = time.monotonic() + timeout
    while not any(done in line for line in said):
        assert time.monotonic() < deadline, said
        said += supervisor.watch(time.monotonic())
        time.sleep(0.02)
    return said


def test_a_crashed_part_is_restarted_and_the_log_says_so(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, policy=RestartPolicy(first_backoff=0.05))
    marker = tmp_path / "starts"
    child = supervisor.start("worker", [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x');"
                                        "import time; time.sleep(60)"], {}, restart=True)
    try:
        first = child.process.pid
        wait_for(lambda: marker.exists() and marker.read_text(), lambda text: text == "x", 10, "the first start")
        supervisor.kill_process(child)  # kill -9 of the process only, as a crash would

        said = watch_until(supervisor, "restarted")

        assert said[0] == "worker exited (code -9); restarting it in 0s"
        assert said[1].startswith("worker restarted (pid ") and "restart 1 of 5" in said[1]
        assert child.alive() and child.process.pid != first
        assert supervisor.restarts() == 1
        wait_for(lambda: marker.read_text(), lambda text: text == "xx", 10, "the second start")
    finally:
        supervisor.stop_all()


def test_after_five_restarts_in_the_window_it_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, policy=RestartPolicy(first_backoff=0.01, max_backoff=0.01))
    supervisor.start("flaky", [sys.executable, "-c", "raise SystemExit(3)"], {}, restart=True)
    try:
        with pytest.raises(GaveUp, match=r"flaky exited \(code 3\) after 5 restarts within 5 minutes; giving up"):
            watch_until(supervisor, "never")
    finally:
        supervisor.stop_all()


def test_a_part_without_restart_stops_everything(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    child = supervisor.start("emulator", [sys.executable, "-c", "raise SystemExit(1)"], {})
    child.process.wait()
    try:
        with pytest.raises(GaveUp, match="emulator exited \\(code 1\\); local mode cannot go on without it"):
            supervisor.watch(time.monotonic())
    finally:
        supervisor.stop_all()


def test_parts_get_sigterm_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """kill -9 of `python -m localmode run` must not leave its parts running (holding ports, never checkpointing)."""
    marker = tmp_path / "got-sigterm"
    part = (f"import signal, sys, time\n"
            f"signal.signal(signal.SIGTERM, lambda *_: (open({str(marker)!r}, 'w').write('term'), sys.exit(0)))\n"
            f"print('ready', flush=True)\ntime.sleep(60)")
    parent = (f"import sys, time\nfrom pathlib import Path\nfrom localmode.supervisor import Supervisor\n"
              f"Supervisor(Path({str(tmp_path)!r})).start('part', [sys.executable, '-c', {part!r}], {{}})\n"
              f"time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", parent], cwd=REPO_ROOT)
    try:
        log = tmp_path / "part.log"
        wait_for(lambda: log.read_text() if log.exists() else "", lambda text: "ready" in text, 30, "the part")
        process.kill()
        process.wait()
        wait_for(lambda: marker.exists() and marker.read_text(), lambda text: text == "term", 10, "SIGTERM in the part")
    finally:
        if process.poll() is None:
            process.kill()
