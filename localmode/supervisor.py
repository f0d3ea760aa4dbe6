"""Start child processes, wait for them to be ready, restart the ones that crash, stop them all in reverse order.

Restarts work like docker compose's ``restart: on-failure`` with a circuit breaker: a part that exits is started
again after a backoff (1 s, doubling up to 30 s); the sixth exit of one part within five minutes gives up
(``GaveUp``), because something is wrong that restarting cannot fix. The decision is a pure function
(``restart_delay``) of the part's recent restart times.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

log = logging.getLogger("cali.supervisor")
T = TypeVar("T")


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1,
               alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not alive():
            raise RuntimeError(f"{what}: the process exited before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(interval)


def wait_for(produce: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Poll ``produce`` until ``done`` says yes; its value. Tests and benchmarks wait on the pipeline with it."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {value!r:.2000}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _load_prctl()  # looked up here: the child, between fork and exec, only calls it
_PR_SET_PDEATHSIG = 1


def _term_with_parent() -> None:
    """In the child: SIGTERM when the supervisor dies, even by kill -9. Each part runs in its own session (Ctrl-C
    reaches only the supervisor, which stops them in order), so without this they would outlive it, holding their
    ports; with it, the daemon still checkpoints and the emulator still saves its state."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    window_seconds: float = 300.0
    first_backoff: float = 1.0
    max_backoff: float = 30.0


def restart_delay(restarts: Sequence[float], now: float, policy: RestartPolicy) -> float | None:
    """Seconds to wait before the next restart, or None when the part restarted too often to try again. Pure."""
    recent = [t for t in restarts if now - t < policy.window_seconds]
    if len(recent) >= policy.max_restarts:
        return None
    return float(min(policy.max_backoff, policy.first_backoff * 2 ** len(recent)))


class GaveUp(RuntimeError):
    """A part that must run exited and will not be restarted (not restartable, or too many restarts)."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout: float
    log_file: IO[bytes] | None = None
    respawn: Callable[[], subprocess.Popen[bytes]] | None = None  # None: this part is not restarted
    restarts: list[float] = field(default_factory=list)  # monotonic times of its restarts
    restart_at: float | None = None  # a restart is scheduled for then

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def restartable(self) -> bool:
        return self.respawn is not None


@dataclass
class Supervisor:
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    policy: RestartPolicy = field(default_factory=RestartPolicy)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], *, stop_timeout: float = 10.0,
              stdout: int | IO[bytes] | None = None, stdin: int | IO[bytes] | None = None,
              to_log: bool = True, restart: bool = False) -> Child:
        """``restart``: start it again when it exits (``watch``); only for parts started without pipes."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_dir / f"{name}.log", "ab") if to_log else None  # noqa: SIM115 (closed in stop)

        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(list(argv), env=dict(env),
                                    stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                    stdout=stdout if stdout is not None else log_file, stderr=log_file,
                                    start_new_session=True, preexec_fn=_term_with_parent)

        process = spawn()
        child = Child(name, process, stop_timeout, log_file, respawn=spawn if restart else None)
        self.children.append(child)
        log.info("started %s (pid %d)%s", name, process.pid,
                 f", log {self.log_dir / (name + '.log')}" if to_log else "")
        return child

    def watch(self, now: float) -> list[str]:
        """Restart what exited, when its backoff has passed; what happened, one line each. Raises ``GaveUp``."""
        said = []
        for child in list(self.children):
            if child.alive():
                continue
            code = child.process.returncode
            if child.respawn is None:
                raise GaveUp(f"{child.name} exited (code {code}); local mode cannot go on without it "
                             f"(see {self.log_dir / (child.name + '.log')})")
            if child.restart_at is None:
                delay = restart_delay(child.restarts, now, self.policy)
                if delay is None:
                    raise GaveUp(f"{child.name} exited (code {code}) after {len(child.restarts)} restarts within "
                                 f"{self.policy.window_seconds / 60:.0f} minutes; giving up "
                                 f"(see {self.log_dir / (child.name + '.log')})")
                self._reap_group(child)
                child.restart_at = now + delay
                said.append(f"{child.name} exited (code {code}); restarting it in {delay:.0f}s")
            elif now >= child.restart_at:
                child.process = child.respawn()
                child.restarts.append(now)
                child.restart_at = None
                recent = len([t for t in child.restarts if now - t < self.policy.window_seconds])
                said.append(f"{child.name} restarted (pid {child.process.pid}; restart {recent} of "
                            f"{self.policy.max_restarts} allowed within {self.policy.window_seconds / 60:.0f} "
                            "minutes)")
        return said

    def restarts(self) -> int:
        return sum(len(child.restarts) for child in self.children)

    def _reap_group(self, child: Child) -> None:
        """What the dead leader left behind in its process group (e.g. the KCL's Python children): asked to stop,
        then killed, so the restarted part does not find them still holding its ports or shards."""
        pgid = child.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                os.killpg(pgid, 0)  # raises ProcessLookupError once the group is empty
                time.sleep(0.1)
            os.killpg(pgid, signal.SIGKILL)

    def stop(self, child: Child) -> int | None:
        if child.alive():
            # SIGTERM to the leader only: the KCL daemon must ask its Python children to shut down itself.
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(child.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", child.name, child.stop_timeout)
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signal.SIGKILL)  # anything the leader left behind
        if child.log_file:
            child.log_file.close()
        if child in self.children:
            self.children.remove(child)
        return child.process.returncode

    def kill(self, child: Child) -> None:
        """SIGKILL, as a crash would (tests)."""
        if child.alive():
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        self.stop(child)

    def kill_process(self, child: Child) -> None:
        """SIGKILL of the part's own process, as a crash would; ``watch`` restarts it (tests)."""
        child.process.kill()
        child.process.wait()

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)
